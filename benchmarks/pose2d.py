"""Synthetic 2D skeletons: BYOL against its random encoder at the demo's budget.

  python benchmarks/pose2d.py [--workdir=runs/pose2d] [--preset=demo]
                              [--set=pretrain.steps_override=1000 ...]

1. writes the synthetic takes as a COCO-17 2D annotation pickle
   (`python -m data_prep.synthetic_pose2d`); 2. builds it
   (`python -m data_prep.build --dataset=pose2d`); 3. runs the demo
   (`python -m byol_skeleton.demo --config=configs/pose2d.py:PRESET`):
   pretraining, then the same linear evaluation of the pretrained and a
   random encoder; 4. writes benchmarks/results/pose2d.json (top-1 in
   percent, the margin, the device, the wall time). A finished pickle or
   build is reused.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

import device_info  # benchmarks/device_info.py, beside this script

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / 'benchmarks' / 'results'


def _run(*args):
  print('$', ' '.join(args), flush=True)
  subprocess.run([sys.executable, *args], cwd=REPO, check=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--workdir', default='runs/pose2d')
  parser.add_argument('--preset', default='demo')
  parser.add_argument('--set', nargs='*', default=[],
                      help='config overrides FIELD=VALUE')
  args = parser.parse_args()
  workdir = (REPO / args.workdir).absolute()
  data_dir = workdir / 'data'
  pickle_path = data_dir / 'synthetic.pkl'
  data_dir.mkdir(parents=True, exist_ok=True)
  tic = time.perf_counter()
  if not pickle_path.exists():
    _run('-m', 'data_prep.synthetic_pose2d', f'--output={pickle_path}')
  _run('-m', 'data_prep.build', '--dataset=pose2d',
       f'--manual_dir={pickle_path}', f'--data_dir={data_dir}')
  run_dir = workdir / args.preset.replace(',', '_')
  _run('-m', 'byol_skeleton.demo',
       f'--config=configs/pose2d.py:{args.preset}', f'--data_dir={data_dir}',
       f'--workdir={run_dir}', *(f'--config.{s}' for s in args.set))
  summary = json.loads((run_dir / 'summary.json').read_text())
  results = {
      'config': f'configs/pose2d.py:{args.preset}',
      'overrides': args.set,
      'byol_linear_top1': summary['pretrained_top1'],
      'random_linear_top1': summary['random_top1'],
      'margin': summary['pretrained_top1'] - summary['random_top1'],
      'device': device_info.describe(),
      'wall_seconds': time.perf_counter() - tic,
  }
  RESULTS.mkdir(exist_ok=True)
  path = RESULTS / 'pose2d.json'
  path.write_text(json.dumps(results, indent=2) + '\n')
  print(json.dumps(results, indent=2), f'\nwritten to {path}')


if __name__ == '__main__':
  main()
