"""Command line: `byol-skeleton --mode=MODE --config=configs/FILE.py[:PRESETS] --workdir=DIR`.

Any config field can be overridden, e.g. `--config.pretrain.base_lr=0.1`; a
mistyped field is an error naming it.
"""
import importlib
import os
import pathlib
import re
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from byol_skeleton import errors

# mode -> module with `run(config, workdir, checkpoint_step)`.
MODES = {
    'pretrain': 'byol_skeleton.pretrain',
    'linear_eval': 'byol_skeleton.linear',
    'knn': 'byol_skeleton.knn',
    'finetune': 'byol_skeleton.finetune',
    'distill': 'byol_skeleton.distill',
    'transfer': 'byol_skeleton.transfer',
    'supervised': 'byol_skeleton.supervised',
    'evaluate': 'byol_skeleton.evaluate',
    'tsne': 'byol_skeleton.tsne',
}

_MODE = flags.DEFINE_enum('mode', 'pretrain', sorted(MODES), 'What to run.')
_CONFIG = config_flags.DEFINE_config_file(
    'config', 'configs/synthetic.py', 'Config file[:comma-separated presets].',
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    'workdir', None, 'Run directory: checkpoints, metrics, results, plots.',
    required=True)
_CHECKPOINT_STEP = flags.DEFINE_integer(
    'checkpoint_step', None, 'Checkpoint to start from (default: latest).')
_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None,
    'host:port of process 0 for multi-host runs (jax.distributed).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None,
                                      'Processes in a multi-host run.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None,
                                   'This process in a multi-host run.')


def _maybe_initialize_distributed():
  """Starts JAX's multi-process runtime when flags or JAX's env ask for it."""
  import jax  # pylint: disable=g-import-not-at-top
  if _COORDINATOR.value or os.environ.get('JAX_COORDINATOR_ADDRESS'):
    jax.distributed.initialize(
        coordinator_address=_COORDINATOR.value,
        num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)
    logging.info('Process %d of %d, %d local / %d global devices.',
                 jax.process_index(), jax.process_count(),
                 jax.local_device_count(), jax.device_count())


def _prepare_workdir(path: str) -> pathlib.Path:
  workdir = pathlib.Path(path).expanduser()
  if workdir.exists() and not workdir.is_dir():
    raise errors.UserError(f'--workdir {workdir} exists and is not a directory.')
  try:
    workdir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise errors.UserError(
        f'--workdir {workdir} cannot be created: {e.strerror}.') from None
  # A real write, not os.access: root passes access() on read-only mounts.
  try:
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise errors.UserError(
        f'--workdir {workdir} is not writable: {e.strerror}.') from None
  return workdir


def _parse_flags(argv):
  """absl's flag parsing; every bad flag or config override is one sentence.

  ml_collections raises AttributeError/KeyError (with a did-you-mean hint) for
  an override of a field that does not exist, and a bad preset surfaces as a
  flag error carrying the whole traceback; the user gets the root message.
  """
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, KeyError) as e:
    chain = [e]
    while chain[-1].__cause__ or chain[-1].__context__:
      chain.append(chain[-1].__cause__ or chain[-1].__context__)
    root = chain[-1]
    if isinstance(root, (AttributeError, KeyError)):
      key = str(root.args[0]) if root.args else ''  # the missing field
      overrides = [a[2:].split('=')[0] for a in argv[1:]
                   if a.startswith('--config.')]
      named = [o for o in overrides if key in o.split('.')[1:]]
      hint = re.search(r'Did you mean "([^"]+)"',
                       ' '.join(str(x.args[0] if x.args else x) for x in chain))
      _fail(f'--{named[0] if named else "config"}: no such config field'
            + (f' (did you mean {hint.group(1)!r}?)' if hint else '') + '.')
    flag = str(e).split(': ')[0]
    _fail(f'{flag}: {root}' if root is not e and flag.startswith('flag --')
          else str(e))


def _fail(message: str):
  """Prints one sentence (library messages often lack the full stop); exits."""
  message = message.rstrip()
  if not message.endswith(('.', '?', '!')):
    message += '.'
  print(f'byol-skeleton: error: {message}', file=sys.stderr)
  sys.exit(2)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every file at INFO.
  try:
    workdir = _prepare_workdir(_WORKDIR.value)
    _maybe_initialize_distributed()
    module = importlib.import_module(MODES[_MODE.value])
    module.run(_CONFIG.value, workdir, checkpoint_step=_CHECKPOINT_STEP.value)
  except errors.UserError as e:
    _fail(str(e))


def run():
  app.run(main, flags_parser=_parse_flags)


if __name__ == '__main__':
  run()
