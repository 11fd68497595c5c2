"""BYOL pretraining step throughput: pairs/s, achieved GFLOP/s, peak memory.

  python benchmarks/step_throughput.py [--configs=paper,short,paper_b32,short_b32]
                                       [--dtype=float32|bfloat16] [--steps=N]
  # on one GPU:
  python benchmarks/step_throughput.py --configs=paper_b512,short_b512 \
      --dtype=bfloat16 --steps=20 --output=benchmarks/results/step_throughput_gpu.json
  # the `./run.sh` demo's narrow shape:
  python benchmarks/step_throughput.py --configs=demo --steps=10 \
      --output=benchmarks/results/step_throughput_demo.json
  # where the step's time goes: add --trace_dir=DIR, then (pip install xprof)
  # xprof's hlo_stats tool on DIR/<config>/plugins/profile/*/*.xplane.pb

Each config runs in its own subprocess so its peak RSS is its own. The step
timed is the whole training step (both views augmented on device, online
forward/backward on both views, target forward on both, optimizer, EMA), on
one device with the given per-device batch. FLOPs are counted analytically
from the ST-GCN layer table (multiply-adds x 2) and exclude augmentation.
Writes benchmarks/results/step_throughput.json.
"""
import argparse
import json
import pathlib
import resource
import subprocess
import sys
import time

import device_info  # benchmarks/device_info.py, beside this script

from configs import synthetic


def _config_shape(config):
  """A config's row of CONFIGS, so a preset's shape is not restated here."""
  return (config.pretrain.batch_size, config.data.num_frames,
          config.data.num_persons, config.data.max_frames, config.model.width,
          config.model.projector_hidden)


CONFIGS = {
    # name: (per-device batch, frames, persons, stored frames, width,
    #        projector and predictor hidden size)
    'paper': (8, 150, 2, 300, 1.0, 4096),
    'short': (8, 64, 1, 128, 1.0, 4096),
    'paper_b32': (32, 150, 2, 300, 1.0, 4096),
    'short_b32': (32, 64, 1, 128, 1.0, 4096),
    # Accelerator scale (issue target: >= 2,000 pairs/s in bfloat16).
    'paper_b512': (512, 150, 2, 300, 1.0, 4096),
    'short_b512': (512, 64, 1, 128, 1.0, 4096),
    # configs/synthetic.py:demo, what `./run.sh` trains.
    'demo': _config_shape(synthetic.get_config('demo')),
}
CPU_CONFIGS = 'paper,short,paper_b32,short_b32'
RESULTS = pathlib.Path(__file__).resolve().parent / 'results'


def stgcn_forward_flops(frames, persons, joints=25, in_channels=6, width=1.0,
                        partitions=3):
  """FLOPs (2 x multiply-adds) of one ST-GCN forward pass for one sample.

  Counted on the reference formulation: 1x1 conv to K*C_out, aggregation
  with K (V x V) matrices, temporal (9 x 1) conv, residual 1x1 conv.
  """
  from byol_skeleton.model import stgcn  # pylint: disable=g-import-not-at-top
  channels = stgcn.block_channels(width)
  strides = [stride for _, stride in stgcn.BLOCKS]
  kernel = stgcn.TEMPORAL_KERNEL
  macs, t, c_in = 0, frames, in_channels
  for block, (c_out, stride) in enumerate(zip(channels, strides)):
    macs += t * joints * c_in * partitions * c_out  # 1x1 conv
    macs += partitions * t * joints * joints * c_out  # graph aggregation
    t_out = (t - 1) // stride + 1
    macs += t_out * joints * kernel * c_out * c_out  # temporal conv
    if block > 0 and (c_in != c_out or stride != 1):
      macs += t_out * joints * c_in * c_out  # residual 1x1 conv
    t, c_in = t_out, c_out
  return 2 * macs * persons


def mlp_flops(d_in, hidden, d_out):
  return 2 * (d_in * hidden + hidden * d_out)


def byol_step_flops(batch, frames, persons, width=1.0, hidden=4096):
  """Per step: online fwd+bwd (3x fwd) on 2 views, target fwd on 2 views."""
  from byol_skeleton.model import stgcn  # pylint: disable=g-import-not-at-top
  encoder = stgcn_forward_flops(frames, persons, width=width)
  projector = mlp_flops(stgcn.block_channels(width)[-1], hidden, 256)
  predictor = mlp_flops(256, hidden, 256)
  online = encoder + projector + predictor
  target = encoder + projector
  return batch * 2 * (3 * online + target)


def matmul_gflops(dtype, n, repeats=10):
  """This device's matmul rate in the step's compute dtype."""
  import jax  # pylint: disable=g-import-not-at-top
  a = jax.random.normal(jax.random.key(0), (n, n), dtype)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  tic = time.perf_counter()
  for _ in range(repeats):
    f(a).block_until_ready()
  return 2 * n ** 3 * repeats / (time.perf_counter() - tic) / 1e9


def run_one(name, dtype, steps, trace_dir=''):
  """Times one config in this process; prints its JSON record."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.sharding import NamedSharding, PartitionSpec as P  # pylint: disable=g-import-not-at-top,g-multiple-import
  from byol_skeleton.model import build  # pylint: disable=g-import-not-at-top
  from byol_skeleton.pretraining import byol, pretrain  # pylint: disable=g-import-not-at-top,g-multiple-import
  from byol_skeleton.train import optimizers, parallel, schedules  # pylint: disable=g-import-not-at-top,g-multiple-import
  from configs import base  # pylint: disable=g-import-not-at-top

  batch, frames, persons, stored, width, hidden = CONFIGS[name]
  config = base.get_config()
  config.model.width = width
  config.model.projector_hidden = config.model.predictor_hidden = hidden
  config.data.num_frames = frames
  config.data.num_persons = persons
  config.data.max_frames = stored
  config.model.dtype = dtype
  config.pretrain.batch_size = batch
  mesh = parallel.make_mesh()
  assert jax.device_count() == 1, 'run the benchmark on one device'
  net = build.byol_network(config)
  lr_fn = schedules.pretrain_lr(0.2, batch, 1e-6, 10, 1000)
  tx = optimizers.byol_optimizer(config.pretrain, lr_fn)
  state = jax.jit(lambda r: byol.init_state(net, tx, r,
                                            build.sample_input(config)),
                  out_shardings=NamedSharding(mesh, P()))(jax.random.key(0))
  step = pretrain.make_train_step(config, net, tx,
                                  schedules.target_ema(0.99, 1000), mesh)
  rng = np.random.default_rng(0)
  lengths = rng.integers(stored // 4, stored, size=batch).astype(np.int32)
  skel = rng.normal(size=(batch, stored, persons, 25, 3)).astype(np.float32)
  data = {'skeleton_1': skel, 'length_1': lengths,
          'skeleton_2': skel[::-1].copy(), 'length_2': lengths[::-1].copy()}
  data = jax.device_put(data, NamedSharding(mesh, P(parallel.AXIS)))
  for _ in range(2):  # compile and warm up
    state, out = step(state, data)
  out['loss'].block_until_ready()
  tic = time.perf_counter()
  for _ in range(steps):
    state, out = step(state, data)
  out['loss'].block_until_ready()
  seconds = (time.perf_counter() - tic) / steps
  if trace_dir:  # a profile of 3 more steps, for xprof / TensorBoard
    with jax.profiler.trace(f'{trace_dir}/{name}'):
      for _ in range(3):
        state, out = step(state, data)
      out['loss'].block_until_ready()
  flops = byol_step_flops(batch, frames, persons, width, hidden)
  device = jax.devices()[0]
  on_cpu = device.platform == 'cpu'
  memory = {} if on_cpu else device.memory_stats() or {}
  record = {
      'config': name, 'per_device_batch': batch, 'frames': frames,
      'persons': persons, 'width': width, 'dtype': dtype,
      'pairs_per_s': batch / seconds,
      'gflops': flops / seconds / 1e9,
      'matmul_gflops': matmul_gflops(dtype, 2048 if on_cpu else 8192),
      'step_seconds': seconds,
      'gflop_per_step': flops / 1e9,
      'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
      'peak_device_memory_mb': memory.get('peak_bytes_in_use', 0) / 2**20,
      'device': device_info.describe(),
  }
  print(json.dumps(record))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--configs', default=CPU_CONFIGS)
  parser.add_argument('--dtype', default='float32')
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--trace_dir', default='',
                      help='also write a jax.profiler trace of 3 steps per '
                      'config under DIR/<config> (read it with xprof)')
  parser.add_argument('--one', help=argparse.SUPPRESS)
  parser.add_argument('--output', default=str(RESULTS / 'step_throughput.json'))
  args = parser.parse_args()
  if args.one:
    run_one(args.one, args.dtype, args.steps, args.trace_dir)
    return
  records = []
  for name in args.configs.split(','):
    out = subprocess.run(
        [sys.executable, __file__, f'--one={name}', f'--dtype={args.dtype}',
         f'--steps={args.steps}', f'--trace_dir={args.trace_dir}'],
        check=False, capture_output=True, text=True)
    if out.returncode:  # e.g. out of memory: report it, time the others
      print(f'{name:>10}  failed (exit {out.returncode}):\n{out.stderr[-2000:]}',
            flush=True)
      continue
    records.append(json.loads(out.stdout.strip().splitlines()[-1]))
    r = records[-1]
    device_memory = (f", device {r['peak_device_memory_mb']:.0f} MB"
                     if r['peak_device_memory_mb'] else '')
    print(f"{r['config']:>10}  batch {r['per_device_batch']:>3}  "
          f"{r['pairs_per_s']:8.2f} pairs/s  {r['gflops']:8.1f} GFLOP/s "
          f"({100 * r['gflops'] / r['matmul_gflops']:.0f}% of matmul "
          f"{r['matmul_gflops']:.0f})  peak RSS {r['peak_rss_mb']:.0f} MB"
          f"{device_memory}", flush=True)
  pathlib.Path(args.output).parent.mkdir(parents=True, exist_ok=True)
  pathlib.Path(args.output).write_text(json.dumps(records, indent=2))
  print(f'wrote {args.output}')


if __name__ == '__main__':
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  main()
