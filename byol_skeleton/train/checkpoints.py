"""Orbax checkpoints of a train state, with the input-iterator state and the config.

Orbax writes each step into a temporary directory and renames it when complete,
so a killed run never leaves a half-written checkpoint that looks finished.
Old checkpoints go the same way: renamed into a trash directory (atomic), then
removed, never deleted file by file in place, where a kill would leave a
listed but unreadable step.
"""
import json
import logging
import pathlib
import shutil
import time
from typing import Any, NamedTuple

from absl import logging as logging_lib
import jax
import numpy as np
import orbax.checkpoint as ocp

from byol_skeleton import errors

_TRASH = 'deleted'  # Orbax moves checkpoints it drops here; we empty it.


class _QuietOrbax(logging.Filter):
  """Drops two Orbax warnings about what this module does on purpose: that a
  manager opened to read is read only (every evaluation opens one) and that
  the array handler below replaces the default. The terminal is for progress
  and results."""

  EXPECTED = ('Given directory is read only',
              f'Type handler registry type "{jax.Array}" overriding')

  def filter(self, record):
    return not record.getMessage().startswith(self.EXPECTED)


logging.getLogger('absl').addFilter(_QuietOrbax())

# Orbax's default on the CPU (on GPUs it is off already) has every replica
# write a slice of each replicated array, cut by one eager op per leaf and
# replica: 1.8 of the 2.0 s that a small model's save blocks the step.
ocp.type_handlers.register_type_handler(
    jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=False),
    override=True)


class CheckpointMismatchError(errors.UserError):
  """A checkpoint does not fit the model the config describes."""


class DamagedCheckpointError(errors.UserError):
  """A checkpoint's files cannot be read back: truncated, missing, corrupt."""

  def __init__(self, where, cause):
    if isinstance(cause, Exception):
      first_line = (str(cause).strip().splitlines() or [''])[0][:200]
      cause = f'{type(cause).__name__}: {first_line}'
    super().__init__(f'checkpoint {where} is damaged ({cause})')


class Restored(NamedTuple):
  state: Any
  data: dict  # the input pipeline's position
  config: dict  # the config it was saved with
  step: int


def read_only_options() -> ocp.CheckpointManagerOptions:
  """Options of a manager that only reads, with no saving policy set: Orbax
  warns about each one it has to switch off."""
  return ocp.CheckpointManagerOptions(read_only=True, create=False,
                                      save_interval_steps=0)


class Checkpoints:
  """Keeps the last `keep` checkpoints plus every `keep_every`-th step."""

  def __init__(self, directory, keep: int = 3, keep_every: int | None = None,
               async_save: bool = True, read_only: bool = False):
    self.directory = pathlib.Path(directory).absolute()
    self._read_only = read_only
    options = (read_only_options() if read_only else
               ocp.CheckpointManagerOptions(
                   max_to_keep=keep, keep_period=keep_every or None,
                   enable_async_checkpointing=async_save,
                   todelete_subdir=_TRASH))
    # Handlers, not just item names: without them item_metadata() is empty
    # and a shape mismatch could not be named before restoring.
    self._manager = ocp.CheckpointManager(
        self.directory, options=options, item_handlers=dict(
            state=ocp.StandardCheckpointHandler(),
            data=ocp.JsonCheckpointHandler(),
            config=ocp.JsonCheckpointHandler()))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self):
    return list(self._manager.all_steps())

  def save(self, step: int, state, config, data_state=None, force=True):
    self.wait()  # as Orbax's save would, then the trash is emptied
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        data=ocp.args.JsonSave(data_state or {}),
        config=ocp.args.JsonSave(json.loads(config.to_json_best_effort()))),
        force=force)

  def restore(self, abstract_state, step: int | None = None) -> Restored:
    """Restores checkpoint `step`, by default the newest one that restores.

    `abstract_state` gives the shapes and shardings to restore into, so a
    checkpoint saved on N devices restores on any device count. A damaged
    newest step (a truncated or missing file) is skipped with a warning that
    says why, and, unless this manager only reads, moved to a sibling
    directory for inspection (the run then saves that step anew).
    """
    if step is not None:
      if step not in self.all_steps():
        raise errors.UserError(
            f'No checkpoint at step {step} in {self.directory}; '
            f'available steps: {self.all_steps() or "none"}.')
      return self._restore(abstract_state, step)
    for step in sorted(self.all_steps(), reverse=True):
      try:
        return self._restore(abstract_state, step)
      except DamagedCheckpointError as e:
        if not self._read_only and jax.process_index() == 0:
          aside = self.directory.with_name(f'{self.directory.name}_damaged')
          aside.mkdir(exist_ok=True)
          (self.directory / str(step)).rename(
              aside / f'{step}_{time.strftime("%Y%m%d-%H%M%S")}')
          self._manager.reload()
          where = f'moved it to {aside}'
        else:
          where = 'left it in place'
        logging_lib.warning('%s; %s and fell back to the step before.', e,
                            where)
    raise errors.UserError(f'No checkpoint in {self.directory} restores.'
                           if self.all_steps() else
                           f'No checkpoints in {self.directory}.')

  def _restore(self, abstract_state, step: int) -> Restored:
    where = self.directory / str(step)
    try:
      saved = self._manager.item_metadata(step)
    except Exception as e:  # pylint: disable=broad-except
      raise DamagedCheckpointError(where, e) from None
    if not saved or not saved.get('state'):
      raise DamagedCheckpointError(where, 'its state metadata is missing')
    check_compatible(saved['state'], abstract_state, where)
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract_state),
          data=ocp.args.JsonRestore(),
          config=ocp.args.JsonRestore()))
    except Exception as e:  # pylint: disable=broad-except
      raise DamagedCheckpointError(where, e) from None
    return Restored(restored['state'], restored['data'], restored['config'],
                    step)

  def wait(self):
    """Waits for the pending save, then removes the checkpoints it dropped."""
    self._manager.wait_until_finished()
    if jax.process_index() == 0:  # Orbax's primary host moves them
      shutil.rmtree(self.directory / _TRASH, ignore_errors=True)

  def close(self):
    self._manager.close()


def set_aside_after(directory, step: int) -> pathlib.Path | None:
  """Moves the checkpoints after `step` out of `directory`, not deleting them.

  Restarting from an earlier step (after a divergence, say) must not collide
  with the later steps when it saves them again. They go to a sibling
  directory named after the step and the time; returns it (None: nothing
  was later). Call it before a Checkpoints opens `directory`, on process 0.
  """
  directory = pathlib.Path(directory)
  later = sorted((d for d in directory.iterdir()
                  if d.name.isdigit() and int(d.name) > step),
                 key=lambda d: int(d.name)) if directory.is_dir() else []
  if not later:
    return None
  aside = directory.with_name(
      f'{directory.name}_after_{step}_{time.strftime("%Y%m%d-%H%M%S")}')
  aside.mkdir()
  for d in later:
    d.rename(aside / d.name)  # atomic per step
  return aside


def _path_str(path) -> str:
  return '/'.join(str(getattr(k, 'key', getattr(k, 'name', k))) for k in path)


def check_compatible(saved_metadata, abstract_state, where) -> None:
  """Raises CheckpointMismatchError naming every leaf whose shape differs."""
  def shape_of(leaf):
    if getattr(leaf, 'dtype', None) is not None and jax.dtypes.issubdtype(
        leaf.dtype, jax.dtypes.prng_key):  # stored as its raw uint32 data
      leaf = jax.eval_shape(jax.random.key_data, leaf)
    shape = getattr(leaf, 'shape', None)
    return None if shape is None else tuple(shape)

  saved = {_path_str(p): shape_of(v) for p, v in
           jax.tree_util.tree_flatten_with_path(saved_metadata)[0]}
  wanted = {_path_str(p): shape_of(v) for p, v in
            jax.tree_util.tree_flatten_with_path(abstract_state)[0]}
  problems = [f'{k}: checkpoint has {saved.get(k, "nothing")}, model expects '
              f'{wanted.get(k, "nothing")}'
              for k in sorted(set(saved) | set(wanted))
              if saved.get(k, -1) != wanted.get(k, -1)]
  if problems:
    shown = '; '.join(problems[:5])
    more = f' (and {len(problems) - 5} more)' if len(problems) > 5 else ''
    raise CheckpointMismatchError(
        f'Checkpoint {where} does not fit this config: {shown}{more}; '
        'check model.width, data.layout, data.use_bones, the head sizes and '
        'linear.standardize_features (feature_norm) against the config saved '
        'with the checkpoint.')


def abstract_like(tree, sharding):
  """ShapeDtypeStructs of `tree` with one sharding for every leaf."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sharding),
      tree)
