"""Command line: `byol-skeleton --mode=MODE --config=configs/FILE.py[:PRESETS] --workdir=DIR`.

Any config field can be overridden, e.g. `--config.pretrain.base_lr=0.1`; a
mistyped field is an error naming it.
"""
import contextlib
import difflib
import importlib
import importlib.util
import os

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from byol_skeleton import errors
from byol_skeleton.train import workdir as workdir_lib

# mode -> module with `run(config, workdir, checkpoint_step)`.
MODES = {
    'pretrain': 'byol_skeleton.pretraining.pretrain',
    'linear_eval': 'byol_skeleton.protocols.linear',
    'knn': 'byol_skeleton.protocols.knn',
    'finetune': 'byol_skeleton.protocols.finetune',
    'distill': 'byol_skeleton.protocols.distill',
    'transfer': 'byol_skeleton.protocols.transfer',
    'supervised': 'byol_skeleton.protocols.supervised',
    'evaluate': 'byol_skeleton.protocols.evaluate',
    'tsne': 'byol_skeleton.protocols.tsne',
    'predict': 'byol_skeleton.protocols.predict',
    'embed': 'byol_skeleton.protocols.embed',
    'visualize': 'byol_skeleton.protocols.visualize',
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
_RESTART = flags.DEFINE_bool(
    'restart', False, "Start the mode over: its earlier outputs in the workdir "
    'are moved to WORKDIR/replaced/<mode>_<time>, not deleted.')
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


def _config_fields(config, prefix: str = 'config') -> list[str]:
  """Dotted names of every leaf field, as they are given on the command line."""
  fields = []
  for key, value in config.items():
    name = f'{prefix}.{key}'
    fields += (_config_fields(value, name)
               if isinstance(value, ml_collections.ConfigDict) else [name])
  return fields


def _load_config(argv):
  """The --config file's config, loaded as config_flags does; None if that
  fails (the flag error then says why)."""
  spec = ([a.split('=', 1)[1] for a in argv if a.startswith('--config=')]
          or [flags.FLAGS['config'].default_as_str.strip("'")])[-1]
  path, _, presets = spec.partition(':')
  try:
    loader = importlib.util.spec_from_file_location('_config', path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module.get_config(presets) if presets else module.get_config()
  except Exception:  # pylint: disable=broad-except
    return None


def _parse_flags(argv):
  """absl's flag parsing; every bad flag or config override is one sentence.

  An override of a field that does not exist is named, with the closest
  existing field; any other flag error is its root cause's message (a bad
  preset otherwise surfaces as a flag error carrying a whole traceback).
  """
  try:
    return flags.FLAGS(argv)
  except (flags.Error, AttributeError, KeyError) as e:
    config = flags.FLAGS['config'].value or _load_config(argv)
    if config is not None:
      fields = _config_fields(config)
      unknown = [a[2:].split('=')[0] for a in argv[1:]
                 if a.startswith('--config.') and
                 a[2:].split('=')[0] not in fields]
      if unknown:
        leaf = unknown[0].rsplit('.', 1)
        siblings = [f.rsplit('.', 1)[1] for f in fields
                    if f.rsplit('.', 1)[0] == leaf[0]]
        close = difflib.get_close_matches(leaf[1], siblings, n=1)
        errors.fail(f'--{unknown[0]}: no such config field'
                    + (f' (did you mean {close[0]!r}?)' if close else '') + '.')
    root = e
    while root.__cause__ or root.__context__:
      root = root.__cause__ or root.__context__
    flag = str(e).split(': ')[0]
    errors.fail(f'{flag}: {root}' if root is not e and flag.startswith('flag --')
                else str(e))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every file at INFO.
  with errors.reported():
    workdir = workdir_lib.prepare(_WORKDIR.value)
    _maybe_initialize_distributed()
    import jax  # pylint: disable=g-import-not-at-top
    # Process 0 speaks for a multi-host run: its processes share the workdir.
    lock = (workdir_lib.mode_lock(workdir, _MODE.value)
            if jax.process_index() == 0 else contextlib.nullcontext())
    with lock:
      if _RESTART.value and jax.process_index() == 0:
        aside = workdir_lib.set_aside(workdir, _MODE.value)
        if aside:
          logging.warning('--restart: moved the earlier %s outputs to %s.',
                          _MODE.value, aside)
      module = importlib.import_module(MODES[_MODE.value])
      module.run(_CONFIG.value, workdir,
                 checkpoint_step=_CHECKPOINT_STEP.value)


def run():
  app.run(main, flags_parser=_parse_flags)


if __name__ == '__main__':
  run()
