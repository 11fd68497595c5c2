"""`./run.sh`: pretrain on the synthetic dataset, then linear-evaluate the
pretrained encoder and a randomly initialised one with the same protocol.

  python -m byol_skeleton.demo --data_dir=runs/data --workdir=runs/demo

run.sh builds the dataset first (`python -m data_prep.build --dataset=synthetic`);
this module only reads shards. Writes WORKDIR/summary.json with
`pretrained_top1` and `random_top1` and prints where the plots are.
"""
import json
import pathlib
import time

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from byol_skeleton import errors
from byol_skeleton.pretraining import pretrain
from byol_skeleton.protocols import linear
from byol_skeleton.protocols import tsne

# Loaded as the CLI loads --config, so any field can be overridden too.
_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/synthetic.py:demo', 'Config file[:presets].',
    lock_config=True)
_DATA_DIR = flags.DEFINE_string('data_dir', 'runs/data',
                                'Where the synthetic shards are.')
_WORKDIR = flags.DEFINE_string('workdir', 'runs/demo', 'Run directory.')


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  workdir = pathlib.Path(_WORKDIR.value).absolute()
  config = _CONFIG.value
  config.data.data_dir = str(pathlib.Path(_DATA_DIR.value).absolute())
  config.linear.random_baseline = True
  tic = time.perf_counter()
  with errors.reported():
    pretrain.run(config, workdir)
    probe = linear.run(config, workdir)
    tsne.run(config, workdir)
  summary = {  # percent; results.json files hold fractions
      'pretrained_top1': 100 * probe['top1'],
      'random_top1': 100 * probe['random_top1'],
      'pretrained_top5': 100 * probe['top5'],
      'random_top5': 100 * probe['random_top5'],
      'wall_seconds': time.perf_counter() - tic,
      'plots': sorted(str(p) for p in workdir.rglob('*.png')),
  }
  (workdir / 'summary.json').write_text(json.dumps(summary, indent=2))
  print('\nLinear evaluation on the synthetic test split (top-1, %):')
  print(f'  {"encoder":<32}{"top-1":>8}')
  print(f'  {"BYOL pretrained":<32}{summary["pretrained_top1"]:>8.1f}')
  print(f'  {"random initialisation":<32}{summary["random_top1"]:>8.1f}')
  print('\nPlots:\n  ' + '\n  '.join(summary['plots']))
  print(f'Summary: {workdir / "summary.json"} '
        f'({summary["wall_seconds"]:.0f} s)')


if __name__ == '__main__':
  app.run(main)
