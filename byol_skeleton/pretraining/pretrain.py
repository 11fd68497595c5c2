"""`--mode=pretrain`: self-supervised BYOL, one jitted step mapped over all devices.

train/loop.py runs the steps. Everything random comes from the state's rng
and step, so a resumed run continues bit for bit. With
`pretrain.knn_every_epochs` > 0 the online encoder's kNN accuracy
(evaluation/knn.py) and the effective rank of its test features
(evaluation/spectrum.py) are logged every that many epochs and at the end;
their time is left out of pairs/s and wall seconds.
"""
from absl import logging
import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp

from byol_skeleton import errors
from byol_skeleton.data import augment
from byol_skeleton.data import pipeline
from byol_skeleton.evaluation import knn
from byol_skeleton.model import build
from byol_skeleton.pretraining import byol
from byol_skeleton.train import checkpoints
from byol_skeleton.train import loop
from byol_skeleton.train import metrics
from byol_skeleton.train import optimizers
from byol_skeleton.train import parallel
from byol_skeleton.train import schedules

MODE = 'pretrain'


def make_train_step(config, net, tx, tau_fn, mesh):
  """jit(shard_map(step)): augment both views on device, then a BYOL update."""
  view1 = augment.make_view_fn(config, config.augment.view1)
  view2 = augment.make_view_fn(config, config.augment.view2)
  dtype = jnp.dtype(config.model.dtype)
  bn_momentum_fn = schedules.momentum_bn(config.pretrain.bn_momentum,
                                         config.pretrain.bn_momentum_warmup)

  def per_device(state, batch):
    key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step),
                             jax.lax.axis_index(parallel.AXIS))
    key1, key2 = jax.random.split(key)
    x1 = augment.augment_batch(view1, key1, batch['skeleton_1'],
                               batch['length_1'])
    x2 = augment.augment_batch(view2, key2, batch['skeleton_2'],
                               batch['length_2'])
    state, metrics = byol.byol_update(state, x1.astype(dtype),
                                      x2.astype(dtype), net=net, tx=tx,
                                      tau_fn=tau_fn,
                                      bn_momentum_fn=bn_momentum_fn)
    # XLA on CPU can turn NaN activations into zeros (fused max), so NaN
    # parameters may still give a finite loss: check them as well.
    finite = jnp.all(jnp.stack([jnp.isfinite(p).all() for p in
                                jax.tree.leaves(state.online_params)]))
    return state, {**metrics, 'finite': finite & jnp.isfinite(metrics['loss'])}

  return jax.jit(parallel.data_parallel(per_device, mesh), donate_argnums=0)


def _training_seconds(records: list[dict], batch_size: int) -> float:
  """The training time of a run's logged steps, from its metrics log.

  Every call that trained the run counts (a resumed run's log continues the
  first's), so a finished run run again reports its own time, not zero.
  Each training record's `pairs_per_s` is the rate since the record before
  (steps saved on a signal between two records are timed at the next rate).
  """
  seconds, previous = 0.0, 0
  for record in records:
    if 'pairs_per_s' in record:
      pairs = (record['step'] - previous) * batch_size
      seconds += pairs / record['pairs_per_s']
      previous = record['step']
  return seconds


def run(config, workdir, checkpoint_step=None):
  """Pretrains (or resumes) in `workdir`; returns the results dictionary."""
  pc = config.pretrain
  mesh = parallel.make_mesh()
  replicated = NamedSharding(mesh, P())
  build.check_bn_groups(
      config, parallel.per_device_batch(pc.batch_size, 'pretrain.batch_size'),
      'pretrain.batch_size')
  data = pipeline.PretrainData(config)
  steps_per_epoch = data.steps_per_epoch
  if pc.stop_at_step < 0:
    raise errors.UserError(
        f'pretrain.stop_at_step={pc.stop_at_step}: expected 0 (run to the '
        'end) or the step at which to stop.')
  if pc.steps_override < 0 or (pc.steps_override == 0 and pc.epochs <= 0):
    raise errors.UserError(
        f'pretrain.steps_override={pc.steps_override}, pretrain.epochs='
        f'{pc.epochs}: expected a positive step count, or steps_override=0 '
        'and positive epochs.')
  total_steps = pc.steps_override or pc.epochs * steps_per_epoch

  lr_fn = schedules.pretrain_lr(pc.base_lr, pc.batch_size, pc.warmup_init_lr,
                                pc.warmup_epochs * steps_per_epoch, total_steps)
  tau_fn = schedules.target_ema(pc.tau_base, total_steps)
  net = build.byol_network(config)
  tx = optimizers.byol_optimizer(pc, lr_fn)
  init = jax.jit(lambda rng: byol.init_state(net, tx, rng,
                                             build.sample_input(config)),
                 out_shardings=replicated)
  state = init(jax.random.key(config.seed))
  loop.sync_processes('pretrain_state_initialised')  # Orbax's are Gloo's

  if checkpoint_step is not None and jax.process_index() == 0:
    aside = checkpoints.set_aside_after(workdir / 'checkpoints',
                                        checkpoint_step)
    if aside:
      logging.warning('Restarting from step %d: the later checkpoints were '
                      'moved to %s.', checkpoint_step, aside)
  loop.sync_processes('pretrain_checkpoints_set_aside')
  ckpts = checkpoints.Checkpoints(workdir / 'checkpoints', pc.keep_checkpoints,
                                  pc.keep_every_steps)
  state = loop.restore_or_init(
      ckpts, lambda: state,
      lambda: checkpoints.abstract_like(state, replicated), data,
      checkpoint_step)
  train_step = loop.compiled_everywhere(
      make_train_step(config, net, tx, tau_fn, mesh), MODE)
  log = metrics.MetricsLog(workdir / MODE, enabled=jax.process_index() == 0)
  monitor = None
  if pc.knn_every_epochs > 0:
    knn_monitor = knn.KnnMonitor(config, mesh)
    monitor = loop.Monitor(pc.knn_every_epochs * steps_per_epoch,
                           lambda s: {**knn_monitor(byol.online_encoder(s)),
                                      'epoch': int(s.step) / steps_per_epoch})

  def scalars(step, step_metrics, steps_per_s):
    return dict(lr=float(lr_fn(step - 1)), tau=float(step_metrics['tau']),
                pairs_per_s=steps_per_s * pc.batch_size,
                epoch=step / steps_per_epoch)

  outcome = loop.train(
      state, name=MODE, step_fn=lambda state, batch, _: train_step(state,
                                                                   batch),
      data=data, mesh=mesh, ckpts=ckpts, config=config,
      total_steps=total_steps, log_every=pc.log_every_steps,
      save_every=pc.checkpoint_every_steps, scalars=scalars,
      advice='lower pretrain.base_lr or check the data', monitor=monitor,
      log=log, stop_at=pc.stop_at_step)
  records = log.read()
  losses = [r['loss'] for r in records if 'loss' in r]
  seconds = _training_seconds(records, pc.batch_size)
  results = dict(final_loss=losses[-1] if losses else None, steps=outcome.step,
                 total_steps=total_steps, wall_seconds=seconds,
                 pairs_per_s=outcome.step * pc.batch_size / seconds
                 if seconds else None,
                 checkpoint=str(ckpts.directory / str(outcome.step)),
                 state_digests=loop.replica_digests(outcome.state))
  if jax.process_index() == 0:
    metrics.write_results(workdir / MODE, results, config)
    metrics.plot_curves(records,
                        ('loss', 'lr', 'tau', 'knn_top1', 'feature_rank'),
                        workdir / MODE / 'curves.png')
  return results
