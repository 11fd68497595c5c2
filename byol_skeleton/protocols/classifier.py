"""The one classifier-training loop behind linear_eval, finetune, supervised,
distill and transfer: each of those is a `Recipe`.

A recipe says which parts train and from when (the head only; or everything
after a frozen period, the encoder at a fraction of the head's rate), the loss
(cross-entropy on labels, or a teacher's logits), the optimizer and schedule,
and the examples. The step is pretrain's: jit(shard_map) over the 'batch' mesh
axis, gradients and BN statistics averaged over devices, normalisation per
device. train/loop.py runs the steps; checkpoints go to
WORKDIR/<recipe.name>/checkpoints; rerunning resumes; a finished run is only
evaluated again.

"Frozen" is strict: the encoder runs in inference mode (BN with its running
statistics, no dropout) outside the differentiated function, so no gradient
reaches it and none of its variables change. Fine-tuning's frozen first third
is therefore a linear probe.
"""
import dataclasses
import json
import pathlib
from typing import Any, Callable

import flax
import jax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp
import numpy as np
import optax

from byol_skeleton import errors
from byol_skeleton.data import augment
from byol_skeleton.data import pipeline
from byol_skeleton.evaluation import inference
from byol_skeleton.model import build
from byol_skeleton.model import heads
from byol_skeleton.train import checkpoints
from byol_skeleton.train import loop
from byol_skeleton.train import metrics
from byol_skeleton.train import optimizers
from byol_skeleton.train import parallel
from byol_skeleton.train import schedules

PARTS = ('encoder', 'head')


@flax.struct.dataclass
class ClassifierState:
  step: jax.Array
  params: Any  # {'encoder': STGCN params, 'head': Dense params}
  batch_stats: Any  # {'encoder': STGCN running statistics}
  opt_state: Any  # {part: optimizer state}, for the parts that ever train
  rng: jax.Array  # Raw key data (uint32): checkpoints hold plain arrays.


def cross_entropy(logits, labels):
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), labels))


@dataclasses.dataclass(frozen=True)
class Recipe:
  """One classifier run of a protocol."""
  name: str  # Directory under the workdir: 'linear_eval', 'finetune/seed_0'.
  epochs: int
  batch_size: int  # Global.
  # Head's peak rate at reference_batch (the paper's batch); scaled linearly
  # with batch_size, as pretrain.base_lr.
  lr: float
  reference_batch: int
  # (peak rate, steps per epoch, total steps) -> schedule.
  schedule: Callable[[float, int, int], optax.Schedule]
  momentum: float
  weight_decay: float
  encoder_lr_scale: float | None = None  # None: the encoder never trains.
  freeze_fraction: float = 0.0  # Encoder frozen for this fraction of the steps.
  loss: Callable = cross_entropy  # (logits, targets) -> scalar
  width: float | None = None  # Encoder width; None = config.model.width.
  augment: str = 'conservative'  # Training views (sections 4.3, 4.4).
  optimizer: str = 'sgd'  # one of optimizers.OPTIMIZERS
  standardize_features: bool = False  # see heads.Classifier

  def freeze_steps(self, total_steps: int) -> int:
    if self.encoder_lr_scale is None:
      return total_steps
    return round(self.freeze_fraction * total_steps)

  def trains_encoder(self) -> bool:
    return self.encoder_lr_scale is not None and self.freeze_fraction < 1


def step_decay(decay_epochs):
  """Schedule factory: times 0.1 at each of `decay_epochs`."""
  return lambda peak, steps_per_epoch, _: schedules.step_decay(
      peak, steps_per_epoch, decay_epochs)


def cosine(peak, _, total_steps):
  """Schedule factory: cosine decay to 0 over the run."""
  return optax.cosine_decay_schedule(peak, total_steps)


def recipe_network(config, recipe: Recipe) -> heads.Classifier:
  """The network a recipe trains (and its checkpoints hold)."""
  return build.classifier(config, recipe.width, recipe.standardize_features)


def apply(net: heads.Classifier, variables, x, *, train: bool,
          train_encoder: bool = False, dropout_key=None):
  """(logits, batch_stats) of the classifier on network inputs x.

  train: a training step (the head's feature normalisation, if any, uses and
  updates batch statistics). With train_encoder=False the encoder is frozen:
  inference-mode BN, and its features are a constant of any gradient.
  """
  if train_encoder:
    logits, updates = net.apply(variables, x, True, mutable=['batch_stats'],
                                rngs={'dropout': dropout_key})
    return logits, updates['batch_stats']
  features = jax.lax.stop_gradient(
      net.apply(variables, x, False, method=heads.Classifier.features))
  logits, updates = net.apply(variables, features, train,
                              method=heads.Classifier.classify,
                              mutable=['batch_stats'])
  return logits, {**variables['batch_stats'], **updates['batch_stats']}


def variables_of(state: ClassifierState) -> dict:
  return {'params': state.params, 'batch_stats': state.batch_stats}


def make_optimizers(recipe: Recipe, steps_per_epoch: int, total_steps: int):
  """({part: optax transformation}, head learning-rate schedule)."""
  lr = recipe.schedule(recipe.lr * recipe.batch_size / recipe.reference_batch,
                       steps_per_epoch, total_steps)
  make = lambda rate: optimizers.make_optimizer(
      recipe.optimizer, rate, recipe.momentum, recipe.weight_decay)
  txs = {'head': make(lr)}
  if recipe.trains_encoder():
    # The encoder's optimizer counts from its unfreezing; its rate is the
    # head's at the same global step, scaled (section 4.4).
    frozen = recipe.freeze_steps(total_steps)
    txs['encoder'] = make(
        lambda count: recipe.encoder_lr_scale * lr(count + frozen))
  return txs, lr


def init_state(config, recipe: Recipe, txs, mesh, encoder_variables=None):
  """Replicated initial state; a random encoder when none is given."""
  net = recipe_network(config, recipe)

  def init(key, encoder_variables):
    k_init, k_state = jax.random.split(key)
    variables = net.init(k_init, build.sample_input(config), train=False)
    params, stats = variables['params'], variables['batch_stats']
    if encoder_variables is not None:
      params = {**params, 'encoder': encoder_variables['params']}
      stats = {**stats, 'encoder': encoder_variables['batch_stats']}
    return ClassifierState(
        step=jnp.zeros((), jnp.int32), params=params, batch_stats=stats,
        opt_state={part: tx.init(params[part]) for part, tx in txs.items()},
        rng=jax.random.key_data(k_state))

  return jax.jit(init, out_shardings=NamedSharding(mesh, P()))(
      jax.random.key(config.seed), encoder_variables)


def abstract_state(config, recipe: Recipe, mesh):
  """Shapes and shardings of a recipe's state, for restoring it."""
  txs, _ = make_optimizers(recipe, 1, 1)
  shapes = jax.eval_shape(lambda: init_state(config, recipe, txs, mesh))
  return checkpoints.abstract_like(shapes, NamedSharding(mesh, P()))


def make_train_step(config, recipe: Recipe, txs, mesh, train_encoder: bool,
                    teacher=None):
  """jit(shard_map(step)): f(state, batch, teacher_variables) -> (state, metrics).

  `teacher`: a classifier module evaluated frozen; its logits replace the
  labels as targets.
  """
  net = recipe_network(config, recipe)
  view = augment.make_view_fn(config, recipe.augment)
  dtype = jnp.dtype(config.model.dtype)
  trained = PARTS if train_encoder else ('head',)

  def per_device(state, batch, teacher_variables):
    key = jax.random.fold_in(
        jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step),
        jax.lax.axis_index(parallel.AXIS))
    k_view, k_dropout = jax.random.split(key)
    x = augment.augment_batch(view, k_view, batch['skeleton'],
                              batch['length']).astype(dtype)
    targets = (apply(teacher, teacher_variables, x, train=False)[0]
               if teacher else batch['label'])

    def objective(params):
      variables = {'params': {**state.params, **params},
                   'batch_stats': state.batch_stats}
      logits, stats = apply(net, variables, x, train=True,
                            train_encoder=train_encoder, dropout_key=k_dropout)
      return recipe.loss(logits, targets), stats

    (loss, stats), grads = jax.value_and_grad(objective, has_aux=True)(
        {part: state.params[part] for part in trained})
    grads, loss = jax.lax.pmean((grads, loss), parallel.AXIS)
    # A frozen encoder's statistics stay bit for bit.
    stats = {part: part_stats if part == 'encoder' and not train_encoder
             else jax.lax.pmean(part_stats, parallel.AXIS)
             for part, part_stats in stats.items()}
    params, opt_state = dict(state.params), dict(state.opt_state)
    for part in trained:
      updates, opt_state[part] = txs[part].update(
          grads[part], state.opt_state[part], state.params[part])
      params[part] = optax.apply_updates(state.params[part], updates)
    return state.replace(step=state.step + 1, params=params, batch_stats=stats,
                         opt_state=opt_state), {'loss': loss}

  # The teacher's variables are a replicated argument, not donated.
  mapped = parallel.data_parallel(per_device, mesh, num_replicated_args=1)
  return jax.jit(mapped, donate_argnums=0)


def logits_fn(config, recipe: Recipe, mesh):
  """A predict function (inference.make_predict_fn) of the classifier's
  logits on test-time views."""
  net = recipe_network(config, recipe)
  return inference.make_predict_fn(
      lambda v, x: apply(net, v, x, train=False)[0], config, mesh)


def evaluate(config, recipe: Recipe, variables, mesh, split: str = 'test'):
  """(logits, labels) of the classifier on every example of `split`."""
  data = pipeline.EvalData(config, split, config.eval.batch_size)
  return inference.predict(logits_fn(config, recipe, mesh), variables, data,
                           mesh, desc=split)


def run_dir(workdir, recipe: Recipe) -> pathlib.Path:
  return pathlib.Path(workdir) / recipe.name


def train(config, workdir, recipe: Recipe, *, encoder_variables=None,
          teacher=None, indices=None, info=None) -> dict:
  """Trains (or resumes) `recipe` in WORKDIR/<name>, then tests it.

  encoder_variables: the starting encoder (None: random). teacher:
  (classifier module, variables) of a frozen classifier whose logits are the
  targets. indices: train-split examples to use (None: all). info: extra
  entries for results.json (e.g. the checkpoint the encoder came from).
  Returns the results dictionary, also written to WORKDIR/<name>/results.json.
  """
  out = run_dir(workdir, recipe)
  mesh = parallel.make_mesh()
  field = recipe.name.split('/')[0]
  per_device = parallel.per_device_batch(recipe.batch_size,
                                        f'{field} batch_size')
  if recipe.trains_encoder():
    build.check_bn_groups(config, per_device, f'{field}.batch_size')
  data = pipeline.EvalData(
      config, 'train', recipe.batch_size, shuffle=True, repeat=True,
      drop_remainder=True, indices=indices)
  total = recipe.epochs * data.steps_per_epoch
  frozen_steps = recipe.freeze_steps(total)
  txs, lr = make_optimizers(recipe, data.steps_per_epoch, total)

  ckpts = checkpoints.Checkpoints(out / 'checkpoints', keep=2)
  check_same_run(out, config, info, resuming=ckpts.latest_step() is not None)
  state = loop.restore_or_init(
      ckpts, lambda: init_state(config, recipe, txs, mesh, encoder_variables),
      lambda: abstract_state(config, recipe, mesh), data)
  teacher_net, teacher_variables = teacher or (None, {})
  steps = {}  # compiled lazily: a linear probe never builds the full step

  def step_fn(state, batch, step):
    train_encoder = step >= frozen_steps
    if train_encoder not in steps:
      steps[train_encoder] = make_train_step(config, recipe, txs, mesh,
                                             train_encoder, teacher_net)
    return steps[train_encoder](state, batch, teacher_variables)

  log = metrics.MetricsLog(out, enabled=jax.process_index() == 0)
  outcome = loop.train(
      state, name=recipe.name, step_fn=step_fn, data=data, mesh=mesh,
      ckpts=ckpts, config=config, total_steps=total,
      log_every=config.eval.log_every_steps,
      save_every=config.eval.checkpoint_every_steps,
      scalars=lambda step, _, __: dict(lr=float(lr(step - 1)),
                                       epoch=step / data.steps_per_epoch),
      advice='lower the learning rate', log=log)
  state, step = outcome.state, outcome.step
  data.close()
  ckpts.close()

  logits, labels = evaluate(config, recipe, variables_of(state), mesh)
  results = {**inference.accuracies(logits, labels), **(info or {}),
             'checkpoint': str(ckpts.directory / str(step)), 'steps': step,
             'train_examples': len(data.indices)}
  log.write(step, test_top1=results['top1'], test_top5=results['top5'])
  write_results(out, results, config)
  return results


# Fields that do not change what a classifier run computes: how often it logs
# and saves, other modes' settings, where the data lives. Its source
# checkpoints are compared by path instead of by the settings that made them.
_IRRELEVANT = ('eval.log_every_steps', 'eval.checkpoint_every_steps',
               'eval.batch_size', 'eval.run', 'eval.split',
               'eval.pretrained_workdir', 'linear.random_baseline',
               'finetune.seeds', 'transfer.seeds', 'transfer.source_workdir',
               'distill.teacher_workdir', 'data.data_dir', 'pretrain', 'knn',
               'tsne', 'predict', 'embed')


def _flat(tree: dict, prefix: str = '') -> dict:
  out = {}
  for key, value in tree.items():
    name = f'{prefix}{key}'
    if name in _IRRELEVANT:
      continue
    out.update(_flat(value, f'{name}.') if isinstance(value, dict)
               else {name: value})
  return out


def check_same_run(directory, config, info: dict | None,
                   resuming: bool) -> None:
  """A classifier run resumes only what it would compute itself.

  DIRECTORY/run.json records the config and source checkpoints of the run
  that started there; a rerun with other settings or another source (e.g.
  after more pretraining) stops with one sentence instead of resuming, or
  reusing, the old classifier.
  """
  path = pathlib.Path(directory) / 'run.json'
  identity = {'config': _flat(json.loads(config.to_json_best_effort())),
              'sources': {k: v for k, v in (info or {}).items()
                          if k.endswith('checkpoint')}}
  if resuming and path.exists():
    saved = json.loads(path.read_text())
    changed = [f'{k}={saved["config"].get(k)!r} (now {v!r})'
               for k, v in identity['config'].items()
               if saved['config'].get(k) != v]
    changed += [f'{k} {saved["sources"].get(k)} (now {v})'
                for k, v in identity['sources'].items()
                if saved['sources'].get(k) != v]
    if changed:
      more = f' and {len(changed) - 3} more' if len(changed) > 3 else ''
      raise errors.UserError(
          f'{directory} holds a run with {"; ".join(changed[:3])}{more}, which '
          'this one would resume; use another --workdir, or --restart to set '
          'the earlier run aside and start over.')
  elif jax.process_index() == 0:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(identity, indent=1))


def write_results(directory, results: dict, config) -> None:
  """results.json, from the main process only."""
  if jax.process_index() == 0:
    metrics.write_results(directory, results, config)


def seeds(config, section: str = 'finetune') -> range:
  """The label-subset seeds of finetune (and of distill's teachers), or of
  transfer."""
  fc = config[section]
  if fc.seeds < 1:
    raise errors.UserError(f'{section}.seeds={fc.seeds}; expected >= 1.')
  return range(fc.seed, fc.seed + fc.seeds)


def seed_name(mode: str, seed: int) -> str:
  return f'{mode}/seed_{seed}'


def summarise(workdir, mode: str, per_seed: dict, config) -> dict:
  """WORKDIR/<mode>/results.json over seeds: top1/top5 mean and std (ddof 0).

  The paper's Tables 3-5 report the mean (and std) over five label subsets.
  """
  results = {}
  for key in ('top1', 'top5'):
    values = np.array([r[key] for r in per_seed.values()])
    results[key], results[f'{key}_std'] = float(values.mean()), float(
        values.std())
  results['seeds'] = list(per_seed)
  results['per_seed'] = {str(s): {k: r[k] for k in ('top1', 'top5',
                                                    'checkpoint')}
                         for s, r in per_seed.items()}
  log = metrics.MetricsLog(pathlib.Path(workdir) / mode,
                           enabled=jax.process_index() == 0)
  for seed, r in per_seed.items():
    log.write(r['steps'], seed=seed, top1=r['top1'], top5=r['top5'])
  write_results(pathlib.Path(workdir) / mode, results, config)
  return results


def restore(config, workdir, recipe: Recipe, step: int | None = None,
            mesh=None):
  """(state, checkpoint path) of a saved classifier run.

  Restored replicated on `mesh` (default: all devices), whatever device
  count saved it.
  """
  mesh = mesh or parallel.make_mesh()
  directory = run_dir(workdir, recipe) / 'checkpoints'
  if not directory.is_dir():
    raise errors.UserError(
        f'No classifier checkpoints in {directory}: expected a finished '
        f'`--mode={recipe.name.split("/")[0]}` run in this workdir.')
  ckpts = checkpoints.Checkpoints(directory, read_only=True)
  restored = ckpts.restore(abstract_state(config, recipe, mesh), step)
  ckpts.close()
  return restored.state, str(directory / str(restored.step))
