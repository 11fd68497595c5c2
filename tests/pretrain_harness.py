"""Shared by the resume, fault and multi-host tests: the CLI in subprocesses,
checkpoints read back as numpy.

Subprocesses share the tests' XLA compilation cache, so a repeated run loads
its compiled step instead of compiling it again.
"""
import os
import pathlib
import re
import subprocess
import sys

import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

from byol_skeleton.pretraining import pretrained
from byol_skeleton.train import checkpoints
from byol_skeleton.train import parallel
from configs import synthetic as synthetic_config
from data_prep import synthetic

REPO = pathlib.Path(__file__).resolve().parents[1]
TIMEOUT_S = 300  # Any one CLI run; a hung run fails the test, not the suite.
_XLA_CACHE = (pathlib.Path(os.environ.get('TMPDIR', '/tmp'))
              / 'byol_skeleton_xla_cache')  # as tests/conftest.py


def build_data(tmp_path_factory) -> str:
  """The smallest synthetic build: 70 train sequences, 4 steps per epoch."""
  data_dir = tmp_path_factory.mktemp('synthetic')
  synthetic.build_synthetic(data_dir, repetitions=1)
  return str(data_dir)


def tiny_config(data_dir: str, **pretrain):
  """configs/synthetic.py:tiny on `data_dir`, with pretrain.* overrides."""
  config = synthetic_config.get_config('tiny')
  config.data.data_dir = data_dir
  config.pretrain.update(pretrain)
  return config


def env(devices: int, fast_compile: bool = False) -> dict:
  """A CLI subprocess's environment: `devices` CPU devices, the tests' cache.

  fast_compile: LLVM at -O0, compiling about 3x faster and running about 4x
  slower; for programs that the cache cannot hold (a multi-process run's
  process 1 never writes it).
  """
  flags = f'--xla_force_host_platform_device_count={devices}'
  if fast_compile:
    flags += ' --xla_backend_optimization_level=0'
  return dict(
      os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS=flags,
      JAX_COMPILATION_CACHE_DIR=str(_XLA_CACHE),
      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='1')


def command(workdir, data_dir, *flags, mode='pretrain',
            config='configs/synthetic.py:tiny') -> list[str]:
  """`byol-skeleton --mode=MODE` (pretraining on the tiny config unless
  told); `flags` come last."""
  return [sys.executable, '-m', 'byol_skeleton.main', f'--mode={mode}',
          f'--config={config}', f'--workdir={workdir}',
          f'--config.data.data_dir={data_dir}', *map(str, flags)]


def start(cmd, log_path, devices=2, fast_compile=False) -> subprocess.Popen:
  """Starts `cmd` with stdout and stderr into `log_path` (no pipe to fill)."""
  with open(log_path, 'w') as log:
    return subprocess.Popen(cmd, cwd=REPO, env=env(devices, fast_compile),
                            stdout=log, stderr=subprocess.STDOUT)


def run(cmd, devices=2, timeout=TIMEOUT_S,
        **environ) -> subprocess.CompletedProcess:
  """Runs `cmd` to its end; `environ`: extra environment variables."""
  return subprocess.run(cmd, cwd=REPO, env={**env(devices), **environ},
                        capture_output=True, text=True, timeout=timeout,
                        check=False)


def with_nan_at(cmd, step: int) -> tuple[list[str], dict]:
  """`cmd` (a `command`) through tests/cli_with_nan.py, which feeds a NaN
  batch at `step`; returns (command, its extra environment)."""
  assert cmd[1:3] == ['-m', 'byol_skeleton.main'], cmd
  return ([cmd[0], str(REPO / 'tests' / 'cli_with_nan.py'), *cmd[3:]],
          {'NAN_AT_STEP': str(step)})


def committed_steps(workdir) -> list[int]:
  """Finished checkpoints (Orbax renames a step's directory when complete)."""
  directory = pathlib.Path(workdir) / 'checkpoints'
  if not directory.is_dir():
    return []
  return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())


def restore(workdir, step=None, config=None):
  """(state, data-iterator state) of a pretraining checkpoint, on all devices.

  `config` gives the model's shapes (default: the tiny config's).
  """
  abstract = pretrained.abstract_pretrain_state(
      config or tiny_config(''), NamedSharding(parallel.make_mesh(), P()))
  ckpts = checkpoints.Checkpoints(pathlib.Path(workdir) / 'checkpoints',
                                  read_only=True)
  try:
    restored = ckpts.restore(abstract, step)
  finally:
    ckpts.close()
  return restored.state, restored.data


def leaves(state) -> dict:
  """'path' -> numpy value of every leaf (PRNG keys as their raw data)."""
  def value(x):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    return np.asarray(x)
  return {jax.tree_util.keystr(p): value(x)
          for p, x in jax.tree_util.tree_flatten_with_path(state)[0]}


def error_line(stderr: str) -> str:
  """The CLI's one-sentence error, checked to be the only thing it reported."""
  assert 'Traceback' not in stderr, stderr
  lines = [l for l in stderr.replace('\r', '\n').splitlines() if l.strip()]
  errors = [l for l in lines if l.startswith('byol-skeleton: error: ')]
  assert len(errors) == 1 and lines[-1] == errors[0], stderr
  message = errors[0].removeprefix('byol-skeleton: error: ')
  # One sentence: it ends once, and no new sentence starts inside it.
  assert message.endswith('.'), message
  assert not re.search(r'[.;]\s+[A-Z]', message), message
  return message
