"""Self-supervised BYOL pretraining: one jitted step mapped over all devices.

The loop is linear on purpose: get a host batch, put it on the devices, step,
log, checkpoint. Everything random comes from the state's rng and step, so a
resumed run continues bit for bit. With `pretrain.knn_every_epochs` > 0 the
online encoder's kNN accuracy (byol_skeleton/knn.py) and the effective rank of
its test features (byol_skeleton/spectrum.py) are logged every that many
epochs and at the end; their time is left out of pairs/s and wall seconds.
"""
import hashlib
import signal
import time

from absl import logging
import jax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import tqdm

from byol_skeleton import augment
from byol_skeleton import byol
from byol_skeleton import checkpoints
from byol_skeleton import encoders
from byol_skeleton import errors
from byol_skeleton import input_pipeline
from byol_skeleton import knn
from byol_skeleton import metrics
from byol_skeleton import parallel
from byol_skeleton import schedules
from byol_skeleton import skeletons

MODE = 'pretrain'


def check_batch_size(batch_size: int, field: str) -> int:
  """The per-device batch; a global batch must split evenly over devices."""
  n = jax.device_count()
  if batch_size % n:
    raise errors.UserError(
        f'{field}={batch_size} is not divisible by the {n} devices; '
        f'use a multiple of {n}.')
  return batch_size // n


def input_channels(config) -> int:
  return 6 if config.data.use_bones else 3


def sample_input(config):
  """A one-example batch of the network's input shape, for initialisation."""
  layout = skeletons.get_layout(config.data.layout)
  return jnp.zeros((1, config.data.num_frames, config.data.num_persons,
                    layout.num_joints, input_channels(config)),
                   jnp.dtype(config.model.dtype))


def init_fn(config, net, tx):
  """rng -> the BYOL train state at step 0 (target = online)."""
  return lambda rng: byol.init_state(net, tx, rng, sample_input(config))


def make_optimizer(pc, lr_fn) -> optax.GradientTransformation:
  if pc.optimizer == 'sgd':
    # PyTorch-style SGD: weight decay joins the gradient before momentum.
    return optax.chain(optax.add_decayed_weights(pc.weight_decay),
                       optax.sgd(lr_fn, momentum=pc.momentum))
  if pc.optimizer == 'lars':
    # As BYOL: no decay or trust-ratio scaling on biases and BN parameters.
    matrices = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
    return optax.lars(lr_fn, weight_decay=pc.weight_decay,
                      weight_decay_mask=matrices, trust_ratio_mask=matrices,
                      momentum=pc.momentum)
  raise errors.UserError(
      f"pretrain.optimizer={pc.optimizer!r}; expected 'sgd' or 'lars'.")


def byol_optimizer(pc, lr_fn) -> optax.GradientTransformation:
  """Pretraining's optimizer: the predictor's rate is pc.predictor_lr_scale
  times the encoder's and projector's.

  SGD's and LARS's updates are linear in the rate, so scaling the predictor's
  updates scales its rate, weight decay and momentum included. At scale 1 (the
  paper) the optimizer and its state are make_optimizer's.
  """
  tx = make_optimizer(pc, lr_fn)
  if pc.predictor_lr_scale == 1:
    return tx
  predictor_only = lambda params: {
      part: jax.tree.map(lambda _: part == 'predictor', tree)
      for part, tree in params.items()}
  return optax.chain(
      tx, optax.masked(optax.scale(pc.predictor_lr_scale), predictor_only))


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


def sync_processes(key: str, timeout_s: int = 3600) -> None:
  """Returns once every process got here (at once with one process).

  Processes that compile a program at different speeds must meet before
  their next collective: Gloo gives a late process 30 s, and only process 0
  writes the compilation cache, so others may compile what it loads. The
  barrier of JAX's coordination service waits as long as compiling takes.
  """
  ocp.multihost.get_barrier_sync_fn()(key=key, timeout_ms=timeout_s * 1000)


def compiled_everywhere(step_fn):
  """`step_fn`, compiled at its first call, which returns once all processes
  have compiled it (see `sync_processes`)."""
  compiled = None

  def call(*args):
    nonlocal compiled
    if compiled is None:
      compiled = step_fn.lower(*args).compile()
      sync_processes('pretrain_step_compiled')
    return compiled(*args)

  return call


def replica_digests(tree) -> list[str]:
  """SHA-256 of each device's copy of a replicated pytree, all processes.

  One hex digest per device (process by process): all equal means every
  replica of the state, on every host, is bit-identical.
  """
  local = {}
  for leaf in jax.tree.leaves(tree):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    for shard in leaf.addressable_shards:
      local.setdefault(shard.device.id, hashlib.sha256()).update(
          np.asarray(shard.data).tobytes())
  mine = np.stack([np.frombuffer(local[d].digest(), np.uint8)
                   for d in sorted(local)])
  everyone = multihost_utils.process_allgather(mine)
  return [bytes(d).hex() for d in np.asarray(everyone).reshape(-1, 32)]


class _StopRequest:
  """Turns SIGTERM/SIGINT into a flag the loop checks, to save before exiting."""

  def __init__(self):
    self.signal = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal = signal.Signals(signum).name

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


def run(config, workdir, checkpoint_step=None):
  """Pretrains (or resumes) in `workdir`; returns the results dictionary."""
  pc = config.pretrain
  mesh = parallel.make_mesh()
  replicated = NamedSharding(mesh, P())
  check_batch_size(pc.batch_size, 'pretrain.batch_size')
  data = input_pipeline.PretrainData(config)
  steps_per_epoch = data.steps_per_epoch
  total_steps = pc.steps_override or pc.epochs * steps_per_epoch

  lr_fn = schedules.pretrain_lr(pc.base_lr, pc.batch_size, pc.warmup_init_lr,
                                pc.warmup_epochs * steps_per_epoch, total_steps)
  tau_fn = schedules.target_ema(pc.tau_base, total_steps)
  net = byol.network_from_config(config)
  tx = byol_optimizer(pc, lr_fn)
  state = jax.jit(init_fn(config, net, tx),
                  out_shardings=replicated)(jax.random.key(config.seed))
  sync_processes('pretrain_state_initialised')  # Orbax's barriers are Gloo's

  ckpts = checkpoints.Checkpoints(workdir / 'checkpoints', pc.keep_checkpoints,
                                  pc.keep_every_steps)
  start = checkpoint_step if checkpoint_step is not None else ckpts.latest_step()
  if start is not None:
    state, data_state, _ = ckpts.restore(
        checkpoints.abstract_like(state, replicated), start)
    data.set_state(data_state)
    logging.info('Resumed from %s at step %d.', ckpts.directory, start)
  step = int(state.step)
  train_step = compiled_everywhere(
      make_train_step(config, net, tx, tau_fn, mesh))
  log = metrics.MetricsLog(workdir / MODE, enabled=jax.process_index() == 0)
  monitor = (knn.KnnMonitor(config, mesh) if pc.knn_every_epochs > 0
             else None)
  knn_steps = pc.knn_every_epochs * steps_per_epoch

  last_saved = start

  def save(step):
    nonlocal last_saved
    ckpts.save(step, state, config, data.get_state())
    last_saved = step

  bar = tqdm.tqdm(total=total_steps, initial=step, desc=MODE, unit='step',
                  disable=jax.process_index() != 0, dynamic_ncols=True)
  postfix = {}

  def log_knn(step):
    accuracy = monitor(encoders.online_encoder(state))
    log.write(step, **accuracy, epoch=step / steps_per_epoch)
    postfix['knn'] = f'{accuracy["knn_top1"]:.3f}'
    bar.set_postfix(postfix)

  if monitor and step == 0:
    log_knn(0)  # the random encoder: the reference the curve must beat
  tic, pairs, wall, last = time.perf_counter(), 0, 0.0, {}
  first_step = step
  with _StopRequest() as stop:
    while step < total_steps and not stop.signal:
      batch = data.next_batch()
      if step == pc.debug_nan_at_step > 0:  # test hook: poison this batch
        batch = {**batch, 'skeleton_1': batch['skeleton_1'] * np.nan}
      state, step_metrics = train_step(state, input_pipeline.to_device(batch,
                                                                       mesh))
      step += 1
      pairs += pc.batch_size
      at_log = step % pc.log_every_steps == 0 or step == total_steps
      at_save = step % pc.checkpoint_every_steps == 0 or step == total_steps
      if at_log or at_save:
        loss = float(step_metrics['loss'])
        if not step_metrics['finite']:
          ckpts.wait()
          bar.close()  # before the message, which must be the last line
          raise errors.UserError(
              f'the loss or the parameters became NaN or infinite (loss '
              f'{loss}) at step {step}, so the run stopped without saving '
              f'it; the last good checkpoint is step '
              f'{ckpts.latest_step()} in {ckpts.directory} (lower '
              'pretrain.base_lr or check the data).')
        elapsed = time.perf_counter() - tic
        wall += elapsed
        last = dict(loss=loss, lr=float(lr_fn(step - 1)),
                    tau=float(step_metrics['tau']),
                    pairs_per_s=pairs / elapsed,
                    epoch=step / steps_per_epoch)
        log.write(step, **last)
        postfix.update(loss=f'{loss:.4f}', lr=f'{last["lr"]:.3g}',
                       tau=f'{last["tau"]:.4f}',
                       pairs_s=f'{last["pairs_per_s"]:.1f}')
        bar.set_postfix(postfix)
        tic, pairs = time.perf_counter(), 0
      if monitor and (step % knn_steps == 0 or step == total_steps):
        knn_tic = time.perf_counter()
        log_knn(step)
        tic += time.perf_counter() - knn_tic  # not training time
      if at_save:
        save(step)
      bar.update(1)
    if stop.signal:
      if step != last_saved:  # a signal right after a save: nothing new
        save(step)
      ckpts.wait()
      bar.close()
      logging.warning('%s received: saved step %d, exiting.', stop.signal, step)
      return None
  bar.close()
  ckpts.wait()
  results = dict(final_loss=last.get('loss'), steps=step,
                 total_steps=total_steps, wall_seconds=wall,
                 pairs_per_s=(step - first_step) * pc.batch_size / wall
                 if wall else None, checkpoint=str(ckpts.directory / str(step)),
                 state_digests=replica_digests(state))
  if jax.process_index() == 0:
    metrics.write_results(workdir / MODE, results, config)
    metrics.plot_curves(log.read(),
                        ('loss', 'lr', 'tau', 'knn_top1', 'feature_rank'),
                        workdir / MODE / 'curves.png')
  return results
