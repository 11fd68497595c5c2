"""Real data: BYOL on NW-UCLA (cross-view: views 1, 2 -> 3) on this CPU.

  python benchmarks/nw_ucla.py [--raw=../shared/data/nw_ucla/all_sqe]
                               [--workdir=runs/nw_ucla] [--preset=xview,cpu]
                               [--skip=no_mvs,symmetric,supervised]
                               [--seeds=0,1,2]
                               [--set=pretrain.steps_override=2000 ...]
  # the cpu preset counts steps (pretrain.steps_override), the others epochs
  # one GPU: --preset=xview,gpu (5 min on an H200); the paper's full recipe,
  # --preset=xview, BYOL and random only: --skip=no_mvs,symmetric,supervised

1. builds the shards; 2. pretrains with configs/nw_ucla.py:xview,cpu;
3. linear-eval (the standardised probe, and the paper's plain one) and kNN
   top-1 on view 3 for the BYOL encoder, a random encoder,
   the ablations without multi-viewpoint sampling (`no_mvs`) and with symmetric
   aggressive pipelines (`mvs_aggressive`) at the same budget, and the
   supervised ST-GCN; with several --seeds, BYOL and its random encoder run
   once per seed (the ablations and the supervised run on the first seed)
   and the JSON holds each seed's numbers and their mean; 4. writes
   benchmarks/results/nw_ucla.json (accuracies in percent; `pretrain_seconds`,
   each pretraining's own training time; `wall_seconds`, this invocation's,
   which counts nothing for reused runs), a bar chart PNG beside it and the
   kNN curves of pretraining (nw_ucla_knn.png). Runs that finished are reused.
"""
import argparse
import ast
import functools
import json
import pathlib
import sys
import time

import device_info  # benchmarks/device_info.py, beside this script

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / 'benchmarks' / 'results'
# Each ablation's run name and its preset, run on the first seed.
ABLATIONS = {'no_mvs': 'no_mvs', 'symmetric': 'mvs_aggressive'}
OPTIONAL_RUNS = (*ABLATIONS, 'supervised')


def bar_chart(results: dict, path: pathlib.Path, title: str):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = [('BYOL (linear)', 'byol_linear_top1'), ('BYOL (kNN)', 'byol_knn_top1'),
          ('no MVS (linear)', 'no_mvs_linear_top1'),
          ('symmetric (linear)', 'symmetric_linear_top1'),
          ('random (linear)', 'random_linear_top1'),
          ('BYOL (plain probe)', 'byol_plain_linear_top1'),
          ('random (plain probe)', 'random_plain_linear_top1'),
          ('supervised', 'supervised_top1')]
  rows = [(name, key) for name, key in rows if key in results]
  per_seed = results.get('seeds', {})
  if per_seed:  # means beside the first seed's ablations: each row says which
    first = next(iter(per_seed))
    rows = [(f'{name}, mean' if key in per_seed[first]
             else f'{name}, seed {first}', key) for name, key in rows]
  fig, ax = plt.subplots(figsize=(7, 3.5))
  values = [results[k] for _, k in rows]
  ax.barh([name for name, _ in rows], values, color='tab:blue')
  for y, (v, (_, key)) in enumerate(zip(values, rows)):
    seeds = [r[key] for r in per_seed.values() if key in r]
    ax.plot(seeds, [y] * len(seeds), 'k.', markersize=4,
            label='one seed' if seeds and y == 0 else None)
    ax.text(max([v, *seeds]) + 1, y, f'{v:.1f}', va='center', fontsize=8)
  if per_seed:
    ax.legend(loc='lower right', fontsize=8)
  ax.invert_yaxis()
  ax.set_xlim(0, 100)
  ax.set_xlabel('top-1 on view 3 (%)')
  ax.set_title(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def knn_curves(run_dirs: dict, path: pathlib.Path, title: str):
  """kNN top-1 of the online encoder along pretraining, one line per seed."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(6, 3.5))
  for seed, run_dir in run_dirs.items():
    lines = (run_dir / 'pretrain' / 'metrics.jsonl').read_text().splitlines()
    points = sorted({r['step']: 100 * r['knn_top1']
                     for r in map(json.loads, lines) if 'knn_top1' in r}.items())
    if points:
      ax.plot(*zip(*points), marker='o', label=f'seed {seed}')
  ax.set_xlabel('pretraining step')
  ax.set_ylabel('kNN top-1 on view 3 (%)')
  ax.set_title(title)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--raw', default=str(REPO.parent / 'shared' / 'data' /
                                           'nw_ucla' / 'all_sqe'))
  parser.add_argument('--workdir', default=str(REPO / 'runs' / 'nw_ucla'))
  parser.add_argument('--preset', default='xview,cpu')
  parser.add_argument('--output', default=str(RESULTS / 'nw_ucla.json'))
  parser.add_argument('--skip', default='',
                      help=f'comma-separated runs to leave out (their keys are '
                      f'then absent): {",".join(OPTIONAL_RUNS)}')
  parser.add_argument('--seeds', default='0',
                      help='comma-separated config.seed values for the BYOL '
                      'and random-encoder runs, e.g. 0,1,2')
  parser.add_argument('--skip_plain_probe', action='store_true',
                      help="leave out the paper's plain linear probe (no "
                      'feature standardisation) of BYOL and random encoders')
  parser.add_argument('--set', action='append', default=[],
                      metavar='FIELD=VALUE',
                      help='overrides a config field of every run, e.g. '
                      '--set=pretrain.steps_override=2000 (repeatable)')
  args = parser.parse_args()
  if any('=' not in kv for kv in args.set):
    parser.error(f'--set expects FIELD=VALUE, got {args.set}')
  overrides = dict(kv.split('=', 1) for kv in args.set)
  try:
    seeds = [int(s) for s in args.seeds.split(',')]
  except ValueError:
    parser.error(f'--seeds expects comma-separated integers, got {args.seeds}')
  skip = set(filter(None, args.skip.split(',')))
  if skip - set(OPTIONAL_RUNS):
    parser.error(f'--skip: unknown runs {sorted(skip - set(OPTIONAL_RUNS))}; '
                 f'expected some of {",".join(OPTIONAL_RUNS)}')
  sys.path.insert(0, str(REPO))
  from absl import logging  # pylint: disable=g-import-not-at-top
  from byol_skeleton.pretraining import pretrain  # pylint: disable=g-import-not-at-top
  from byol_skeleton.protocols import knn, linear, supervised  # pylint: disable=g-import-not-at-top,g-multiple-import
  from configs import nw_ucla  # pylint: disable=g-import-not-at-top
  from data_prep import build  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)

  tic = time.perf_counter()
  workdir = pathlib.Path(args.workdir).absolute()
  data_dir = workdir / 'data'
  for protocol, report in build.build('nw_ucla', manual_dir=args.raw,
                                      data_dir=str(data_dir)).items():
    print(f'nw_ucla/{protocol}:\n{report}')

  def config(extra='', seed=seeds[0]):
    c = nw_ucla.get_config(','.join(filter(None, (args.preset, extra))))
    c.data.data_dir = str(data_dir)
    c.seed = seed
    c.lock()  # an unknown field is then an error, not a new field
    for field, text in overrides.items():
      *parents, leaf = field.split('.')
      try:
        value = ast.literal_eval(text)
      except (ValueError, SyntaxError):
        value = text  # a plain string
      try:
        functools.reduce(getattr, parents, c)[leaf] = value
      except (AttributeError, KeyError, TypeError) as e:
        parser.error(f'--set={field}={text}: {e}')
    c.unlock()
    return c

  # One seed keeps the single-seed layout of earlier workdirs.
  seed_dir = lambda seed: workdir / (f'seed{seed}' if len(seeds) > 1 else '')

  def byol_run(name, ablation, seed=seeds[0], with_random=False):
    c = config(ablation, seed)
    c.linear.random_baseline = with_random
    run_dir = seed_dir(seed) / name
    print(f'\n== seed {seed}, {name}: pretrain ({ablation or "full method"}) '
          '==', flush=True)
    pretrained = pretrain.run(c, run_dir)
    print(f'== seed {seed}, {name}: linear evaluation ==', flush=True)
    return c, run_dir, pretrained, linear.run(c, run_dir)

  pct = lambda fraction: 100 * fraction  # results.json files hold fractions
  per_seed, byol_dirs = {}, {}
  for seed in seeds:
    c, byol_dir, pretrained, byol = byol_run('byol', '', seed,
                                             with_random=True)
    byol_dirs[seed] = byol_dir
    print(f'== seed {seed}, byol: kNN ==', flush=True)
    per_seed[seed] = {'byol_linear_top1': pct(byol['top1']),
                      'byol_knn_top1': pct(knn.run(c, byol_dir)['top1']),
                      'random_linear_top1': pct(byol['random_top1']),
                      'pretrain_seconds': pretrained['wall_seconds']}
    if not args.skip_plain_probe:
      # The paper's probe on the same encoders, in a workdir of its own.
      print(f'== seed {seed}, byol: plain linear probe ==', flush=True)
      plain_config = c.copy_and_resolve_references()
      plain_config.linear.standardize_features = False
      plain_config.eval.pretrained_workdir = str(byol_dir)
      plain = linear.run(plain_config, byol_dir / 'plain_probe')
      per_seed[seed].update(byol_plain_linear_top1=pct(plain['top1']),
                            random_plain_linear_top1=pct(plain['random_top1']))
  results = {key: sum(r[key] for r in per_seed.values()) / len(seeds)
             for key in per_seed[seeds[0]]}
  for name, ablation in ABLATIONS.items():
    if name not in skip:
      *_, pretrained, probed = byol_run(name, ablation)
      results[f'{name}_linear_top1'] = pct(probed['top1'])
      results[f'{name}_pretrain_seconds'] = pretrained['wall_seconds']
  if 'supervised' not in skip:
    print('\n== supervised ST-GCN ==', flush=True)
    results['supervised_top1'] = pct(
        supervised.run(config(), seed_dir(seeds[0]) / 'supervised')['top1'])
  if len(seeds) > 1:
    results['seeds'] = per_seed
  device = device_info.describe()
  results = {
      **results,
      'wall_seconds': time.perf_counter() - tic,
      'preset': args.preset,
      'device': device,
      'config': json.loads(c.to_json_best_effort()),
  }
  out = pathlib.Path(args.output)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=2))
  bar_chart(results, out.with_suffix('.png'),
            f'NW-UCLA cross-view, preset {args.preset} ({device})')
  curves = out.with_name(f'{out.stem}_knn.png')
  knn_curves(byol_dirs, curves, f'NW-UCLA, preset {args.preset}: kNN while '
             'pretraining')
  first = f'seed {seeds[0]}'
  print('\nNW-UCLA cross-view, top-1 on view 3 (%)'
        + (f'; BYOL and random: mean of seeds {args.seeds}, the others: '
           f'{first}' if len(seeds) > 1 else '') + ':')
  for key, value in results.items():
    if key.endswith('top1'):
      print(f'  {key:<24}{value:6.1f}')
  for seed, seed_results in per_seed.items() if len(seeds) > 1 else ():
    print(f'  seed {seed}: ' + ', '.join(
        f'{key} {value:.1f}' for key, value in seed_results.items()
        if key.endswith('top1')))
  pretraining = {f'seed {seed}': r['pretrain_seconds']
                 for seed, r in per_seed.items()}
  pretraining.update({f'{name} ({first})': results[f'{name}_pretrain_seconds']
                      for name in ABLATIONS if name not in skip})
  print('  pretraining (min): ' + ', '.join(
      f'{name} {seconds / 60:.1f}' for name, seconds in pretraining.items()))
  print(f'  wall {results["wall_seconds"] / 60:.1f} min (what this run did; '
        f'finished runs are reused); wrote {out}, {out.with_suffix(".png")} '
        f'and {curves}')


if __name__ == '__main__':
  main()
