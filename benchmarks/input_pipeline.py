"""Host input pipeline: build time, sequences/s and peak memory.

  python benchmarks/input_pipeline.py [--steps=N] [--workers=0,2]

Builds the synthetic dataset at 1x and 4x (repetitions 5 and 20) and, when
../shared/data/nw_ucla exists, NW-UCLA, into a temporary data dir. Then,
each in its own subprocess so that its peak RSS is its own:
  * pretrain: multi-view pairs (global batch 128, padded to the config's
    max_frames), `steps` batches; sequences/s counts both views;
  * eval: one epoch of single views with labels (batch 256);
  * epoch: one full pretraining epoch, at 1x and 4x; RSS after setup (with
    the metadata read) and peak RSS show memory does not grow with the data.
Timings on a shared machine vary by tens of percent between runs.
Writes benchmarks/results/input_pipeline.json.
"""
import argparse
import json
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import psutil
import tensorflow_datasets as tfds

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / 'benchmarks' / 'results'
NW_UCLA = ROOT.parent / 'shared' / 'data' / 'nw_ucla'
PAIR_BATCH, EVAL_BATCH = 128, 256


def make_config(dataset, data_dir, workers=0):
  if dataset == 'nw_ucla':
    from configs import nw_ucla as cfg  # pylint: disable=g-import-not-at-top
  else:
    from configs import synthetic as cfg  # pylint: disable=g-import-not-at-top
  config = cfg.get_config()
  config.data.data_dir = data_dir
  config.data.worker_count = workers
  config.pretrain.batch_size = PAIR_BATCH
  return config


def peak_rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind, dataset, data_dir, workers, steps):
  """One measurement in this process; prints a JSON record.

  kind: 'pretrain' (`steps` batches of pairs, across epochs), 'epoch' (one
  pretraining epoch) or 'eval' (one epoch of labelled single views).
  """
  from byol_skeleton.data import pipeline as ip  # pylint: disable=g-import-not-at-top
  config = make_config(dataset, data_dir, workers)
  start = time.perf_counter()
  if kind == 'eval':
    loader = ip.EvalData(config, 'train', EVAL_BATCH, process_index=0,
                         process_count=1)
    batches, steps = iter(loader), loader.steps_per_epoch
  else:
    loader = ip.PretrainData(config, process_index=0, process_count=1)
    loader.next_batch()  # workers start, read-ahead fills
    batches = loader
    steps = loader.steps_per_epoch if kind == 'epoch' else steps
  setup = time.perf_counter() - start
  rss_setup = psutil.Process().memory_info().rss / 2**20
  start = time.perf_counter()
  sequences = 0
  for _ in range(steps):
    b = next(batches)
    sequences += int(b['mask'].sum()) if 'mask' in b else 2 * len(b['label'])
  seconds = time.perf_counter() - start
  loader.close()
  print(json.dumps(dict(
      kind=kind, dataset=dataset, workers=workers, steps=steps,
      setup_s=round(setup, 2), sequences_per_s=round(sequences / seconds),
      rss_after_setup_mb=round(rss_setup), peak_rss_mb=round(peak_rss_mb()))))


def run_child(*args):
  out = subprocess.run(
      [sys.executable, __file__, '--child', *map(str, args)], cwd=ROOT,
      capture_output=True, text=True, check=False)
  if out.returncode:
    raise RuntimeError(out.stderr[-3000:])
  return json.loads(out.stdout.strip().splitlines()[-1])


def build(dataset, data_dir, **kwargs):
  from data_prep import build as build_lib  # pylint: disable=g-import-not-at-top
  from data_prep import synthetic  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  if dataset == 'synthetic':
    info = synthetic.build_synthetic(data_dir, **kwargs).info
  else:
    build_lib.build(dataset, str(NW_UCLA), str(data_dir))
    info = tfds.builder(f'{dataset}/xview', data_dir=str(data_dir)).info
  examples = sum(s.num_examples for s in info.splits.values())
  size = sum(f.stat().st_size for f in pathlib.Path(data_dir).rglob('*')
             if f.is_file())
  return dict(dataset=dataset, build_s=round(time.perf_counter() - start, 1),
              examples=examples, size_mb=round(size / 2**20, 1), **kwargs)


def measure_all(tmp, steps, workers):
  """(builds, runs) records of every dataset under the folder `tmp`."""
  # name -> (dataset, data dir, build arguments)
  datasets = {'synthetic_1x': ('synthetic', tmp / 's1', dict(repetitions=5)),
              'synthetic_4x': ('synthetic', tmp / 's4', dict(repetitions=20))}
  if NW_UCLA.is_dir():
    datasets['nw_ucla'] = ('nw_ucla', tmp / 'nw', {})
  builds = [dict(name=name, **build(dataset, d, **kwargs))
            for name, (dataset, d, kwargs) in datasets.items()]
  jobs = []  # (name, child arguments)
  for name, (dataset, d, _) in datasets.items():
    jobs += [(name, ('pretrain', dataset, d, w, steps)) for w in workers]
    jobs.append((name, ('eval', dataset, d, 0, 0)))
    if dataset == 'synthetic':
      jobs.append((name, ('epoch', dataset, d, 0, 0)))
  return builds, [dict(name=name, **run_child(*a)) for name, a in jobs]


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--child', nargs=5)
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--workers', default='0,2')
  parser.add_argument('--output', default=str(RESULTS / 'input_pipeline.json'))
  args = parser.parse_args()
  if args.child:
    kind, dataset, data_dir, workers, steps = args.child
    return child(kind, dataset, data_dir, int(workers), int(steps))

  with tempfile.TemporaryDirectory(prefix='input_pipeline_') as tmp:
    builds, runs = measure_all(pathlib.Path(tmp), args.steps,
                               [int(w) for w in args.workers.split(',')])
  print(f'\n{"build":<14}{"examples":>10}{"MB":>8}{"seconds":>9}')
  for b in builds:
    print(f'{b["name"]:<14}{b["examples"]:>10}{b["size_mb"]:>8}'
          f'{b["build_s"]:>9}')
  print(f'\n{"dataset":<14}{"kind":<16}{"workers":>8}{"steps":>7}'
        f'{"seq/s":>9}{"RSS MB":>8}{"peak":>6}{"setup s":>9}')
  for r in runs:
    print(f'{r["name"]:<14}{r["kind"]:<16}{r["workers"]:>8}{r["steps"]:>7}'
          f'{r["sequences_per_s"]:>9}{r["rss_after_setup_mb"]:>8}'
          f'{r["peak_rss_mb"]:>6}{r["setup_s"]:>9}')
  if not NW_UCLA.is_dir():
    print(f'NW-UCLA not measured: {NW_UCLA} not found.')
  RESULTS.mkdir(parents=True, exist_ok=True)
  pathlib.Path(args.output).write_text(json.dumps(
      dict(pair_batch=PAIR_BATCH, eval_batch=EVAL_BATCH, builds=builds,
           runs=runs), indent=2))
  print(f'wrote {args.output}')


if __name__ == '__main__':
  main()
