"""The encoder an evaluation starts from: a pretraining run's online encoder.

Paper section 4.3: protocols use the ONLINE encoder f_theta (--mode=embed can
take the target's instead). Its variables are `{'params': ...,
'batch_stats': ...}` of `stgcn.STGCN`, replicated on the mesh.
"""
import pathlib

import jax
import orbax.checkpoint as ocp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from byol_skeleton import errors
from byol_skeleton.model import build
from byol_skeleton.pretraining import byol
from byol_skeleton.train import checkpoints
from byol_skeleton.train import optimizers


def pretrained_workdir(config, workdir) -> pathlib.Path:
  """`eval.pretrained_workdir`, or the run's own workdir when it is ''."""
  return pathlib.Path(config.eval.pretrained_workdir or workdir).expanduser()


def abstract_pretrain_state(config, sharding):
  """Shapes and shardings of pretrain.run's TrainState, without computing it."""
  net = build.byol_network(config)
  # The optimizer state's structure does not depend on the schedule's values.
  tx = optimizers.byol_optimizer(config.pretrain, lambda step: 0.0)
  shapes = jax.eval_shape(
      lambda rng: byol.init_state(net, tx, rng, build.sample_input(config)),
      jax.random.key(0))
  # The PRNG key is stored as its raw data; an evaluation never uses it.
  shapes = shapes.replace(rng=jax.eval_shape(jax.random.key_data, shapes.rng))
  return checkpoints.abstract_like(shapes, sharding)


def _checkpoint_dir(source_workdir) -> pathlib.Path:
  directory = pathlib.Path(source_workdir) / 'checkpoints'
  if not directory.is_dir():
    raise errors.UserError(
        f'No pretraining checkpoints in {directory}: run --mode=pretrain with '
        'this --workdir first, or point --config.eval.pretrained_workdir at a '
        'pretraining run.')
  return directory


def saved_config(source_workdir, step: int | None = None) -> dict:
  """The config a pretraining checkpoint was saved with, without its state."""
  directory = _checkpoint_dir(source_workdir)
  with ocp.CheckpointManager(
      directory, item_names=('config',),
      options=checkpoints.read_only_options()) as manager:
    step = manager.latest_step() if step is None else step
    if step is None or step not in manager.all_steps():
      raise errors.UserError(
          f'No checkpoint at step {step} in {directory}; available steps: '
          f'{list(manager.all_steps()) or "none"}.')
    return manager.restore(step, args=ocp.args.Composite(
        config=ocp.args.JsonRestore()))['config']


ENCODERS = {'online': byol.online_encoder, 'target': byol.target_encoder}


def restore_pretrained(config, source_workdir, mesh, step: int | None = None,
                       encoder: str = 'online'):
  """(encoder variables, checkpoint path, saved config) of a pretraining run.

  The state is restored replicated on `mesh`, whatever device count saved it.
  encoder: 'online' or 'target'.
  """
  if encoder not in ENCODERS:
    raise errors.UserError(
        f'encoder {encoder!r}: expected one of {sorted(ENCODERS)}.')
  directory = _checkpoint_dir(source_workdir)
  ckpts = checkpoints.Checkpoints(directory, read_only=True)
  restored = ckpts.restore(
      abstract_pretrain_state(config, NamedSharding(mesh, P())), step)
  ckpts.close()
  return (ENCODERS[encoder](restored.state),
          str(directory / str(restored.step)), restored.config)
