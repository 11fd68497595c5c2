"""Cost of the on-device augmentations, against the BYOL step and a host pipeline.

  python benchmarks/augment_throughput.py [--configs=paper,short] [--repeats=N]
                                          [--step_repeats=N (0: no step)]

Per config and pipeline (aggressive = T1 on view 1, conservative = T2 on view
2, both = what one training step does) it times, per batch:
  - device: `augment.augment_batch` of `make_view_fn` inside one jitted
    function (after compilation);
  - host: the same transforms in numpy, one sample at a time, as PyTorch
    dataloaders usually do (scipy.signal.savgol_filter, vectorised linear
    interpolation, np.roll, matmul) on one core;
and the whole pretraining step (`pretrain.make_train_step`: both views
augmented, BYOL update), whose share the device augmentation is.
Times are the best of --repeats (--step_repeats) calls, per batch.
Writes benchmarks/results/augment_throughput.json.
"""
import argparse
import json
import math
import pathlib
import sys
import time

import numpy as np
from scipy import signal

import device_info  # benchmarks/device_info.py, beside this script

CONFIGS = {
    # name: (per-device batch, stored padded frames, frames seen, persons);
    # the same shapes as benchmarks/step_throughput.py.
    'paper': (8, 300, 150, 2),
    'short': (8, 128, 64, 1),
}
RESULTS = pathlib.Path(__file__).resolve().parent / 'results'


def make_config(name):
  from configs import base  # pylint: disable=g-import-not-at-top
  batch, stored, frames, persons = CONFIGS[name]
  config = base.get_config()
  config.data.max_frames = stored
  config.data.num_frames = frames
  config.data.num_persons = persons
  config.pretrain.batch_size = batch
  return config


def host_view(rng, x, length, spec):
  """One view of one sample in numpy, the transforms of augment.py in its order."""
  x = x[:length]
  if (spec.filter_prob is not None and rng.random() < spec.filter_prob
      and length >= spec.filter_window):
    x = signal.savgol_filter(x, spec.filter_window, spec.filter_order, axis=0)
  rate = rng.uniform(*spec.resample_range) if spec.resample_range else 1.0
  new_length = max(1, round(length / rate))
  positions = np.linspace(0, length - 1, new_length)
  lower = np.floor(positions).astype(int)
  upper = np.minimum(lower + 1, length - 1)
  w = (positions - lower)[:, None, None, None]
  x = (1 - w) * x[lower] + w * x[upper]
  n = spec.num_frames
  if new_length >= n:
    slack = new_length - n
    start = rng.integers(0, slack + 1) if spec.random_crop else (slack + 1) // 2
    x = x[start:start + n]
  else:
    x = np.tile(x, (math.ceil(n / new_length), 1, 1, 1))[:n]
  if spec.shift_max is not None:
    x = np.roll(x, rng.integers(0, spec.shift_max + 1), axis=0)
  if spec.shear_range is not None:
    s = rng.uniform(-spec.shear_range, spec.shear_range, (3, 3))
    np.fill_diagonal(s, 1)
    x = x @ s.T
  if spec.drop_prob is not None and rng.random() < spec.drop_prob:
    x[:, :, list(spec.layout.left if rng.random() < 0.5 else
                 spec.layout.right)] = 0
  if spec.use_bones:
    parents = [p for _, p in spec.layout.bone_pairs]
    x = np.concatenate([x, x - x[:, :, parents]], axis=-1)
  return x.astype(np.float32)


def best_seconds(fn, repeats):
  """Fastest of `repeats` calls: on a shared machine the least disturbed one."""
  times = []
  for i in range(repeats):
    tic = time.perf_counter()
    fn(i)
    times.append(time.perf_counter() - tic)
  return min(times)


def step_seconds(config, data, repeats):
  """Best time of the whole jitted pretraining step on one device."""
  import jax  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top,g-multiple-import
  from byol_skeleton.model import build  # pylint: disable=g-import-not-at-top
  from byol_skeleton.pretraining import byol, pretrain  # pylint: disable=g-import-not-at-top,g-multiple-import
  from byol_skeleton.train import optimizers, parallel, schedules  # pylint: disable=g-import-not-at-top,g-multiple-import
  mesh = parallel.make_mesh()
  net = build.byol_network(config)
  tx = optimizers.byol_optimizer(config.pretrain, schedules.pretrain_lr(
      0.2, config.pretrain.batch_size, 1e-6, 10, 1000))
  state = jax.jit(
      lambda r: byol.init_state(net, tx, r, build.sample_input(config)),
      out_shardings=NamedSharding(mesh, P()))(jax.random.key(0))
  step = pretrain.make_train_step(config, net, tx,
                                  schedules.target_ema(0.99, 1000), mesh)
  data = jax.device_put(data, NamedSharding(mesh, P(parallel.AXIS)))
  state, out = step(state, data)  # compile
  out['loss'].block_until_ready()

  def run(_):
    nonlocal state
    state, out = step(state, data)
    out['loss'].block_until_ready()

  return best_seconds(run, repeats)


def bench(name, repeats, step_repeats):
  import jax  # pylint: disable=g-import-not-at-top
  from byol_skeleton.data import augment  # pylint: disable=g-import-not-at-top
  config = make_config(name)
  batch, stored, _, persons = CONFIGS[name]
  rng = np.random.default_rng(0)
  lengths = rng.integers(stored // 4, stored, size=batch).astype(np.int32)
  skel = rng.normal(size=(batch, stored, persons, 25, 3)).astype(np.float32)
  data = {'skeleton_1': skel, 'length_1': lengths,
          'skeleton_2': skel[::-1].copy(), 'length_2': lengths[::-1].copy()}
  views = {'aggressive': ('aggressive', None), 'conservative': (None, 'conservative'),
           'both': ('aggressive', 'conservative')}
  rows = []
  for label, pipelines in views.items():
    fns = [augment.make_view_fn(config, p) if p else None for p in pipelines]
    specs = [augment.view_spec(config, p) if p else None for p in pipelines]

    @jax.jit
    def device(key, d, fns=fns):
      keys = jax.random.split(key)
      return [augment.augment_batch(fn, k, d[f'skeleton_{i}'], d[f'length_{i}'])
              for i, (fn, k) in enumerate(zip(fns, keys), 1) if fn]

    d = jax.device_put(data)
    jax.block_until_ready(device(jax.random.key(0), d))  # compile
    dev = best_seconds(
        lambda i, d=d: jax.block_until_ready(device(jax.random.key(i), d)),
        repeats)
    host_rng = np.random.default_rng(1)

    def host(_, specs=specs):
      return [np.stack([host_view(host_rng, data[f'skeleton_{i}'][b],
                                  data[f'length_{i}'][b], spec)
                        for b in range(batch)])
              for i, spec in enumerate(specs, 1) if spec]

    rows.append({'config': name, 'pipeline': label, 'per_device_batch': batch,
                 'stored_frames': stored, 'frames': config.data.num_frames,
                 'persons': persons, 'device_ms': 1e3 * dev,
                 'host_numpy_ms': 1e3 * best_seconds(host, repeats)})
  if step_repeats:
    step = step_seconds(config, data, step_repeats)
    for row in rows:
      row['step_ms'] = 1e3 * step
      row['share_of_step'] = row['device_ms'] / row['step_ms']
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--configs', default=','.join(CONFIGS))
  parser.add_argument('--repeats', type=int, default=20)
  parser.add_argument('--step_repeats', type=int, default=3)
  parser.add_argument('--output',
                      default=str(RESULTS / 'augment_throughput.json'))
  args = parser.parse_args()
  device = device_info.describe()
  print(f'{"config":>7} {"pipeline":>12} {"device ms":>10} {"host ms":>9} '
        f'{"host/dev":>8} {"step ms":>9} {"share":>7}')
  records = []
  for name in args.configs.split(','):
    for r in bench(name, args.repeats, args.step_repeats):
      r['device'] = device
      records.append(r)
      step = (f"{r['step_ms']:9.0f} {100 * r['share_of_step']:6.2f}%"
              if 'step_ms' in r else f'{"-":>9} {"-":>7}')
      print(f"{r['config']:>7} {r['pipeline']:>12} {r['device_ms']:10.2f} "
            f"{r['host_numpy_ms']:9.2f} "
            f"{r['host_numpy_ms'] / r['device_ms']:7.1f}x {step}", flush=True)
  pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
  pathlib.Path(args.output).write_text(json.dumps(records, indent=2))
  print(f'wrote {args.output} on {device}')


if __name__ == '__main__':
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  main()
