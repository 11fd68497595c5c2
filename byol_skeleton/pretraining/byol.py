"""BYOL for skeleton sequences: train state, loss and the update step.

Paper section 3.1: an online network (encoder, projector, predictor) learns to
predict a target network's projection of another view; the target follows the
online weights by EMA (eq. 3) and normalises with momentum-BN statistics that
track the online network's batch statistics (eq. 4).
"""
import functools
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax

from byol_skeleton.model import heads
from byol_skeleton.train import parallel

TARGET_MODULES = ('encoder', 'projector')  # The target has no predictor.


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  online_params: Any
  online_batch_stats: Any
  target_params: Any
  target_batch_stats: Any  # momentum-BN statistics of the target
  opt_state: Any
  rng: jax.Array


def _target_part(tree):
  return {k: tree[k] for k in TARGET_MODULES}


def init_state(net: heads.BYOLNetwork, tx: optax.GradientTransformation, rng,
               sample_input) -> TrainState:
  """Online and target start equal (BYOL's initialisation)."""
  init_rng, state_rng = jax.random.split(rng)
  variables = net.init(init_rng, sample_input, train=False)
  params, stats = variables['params'], variables['batch_stats']
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      online_params=params,
      online_batch_stats=stats,
      target_params=_target_part(params),
      target_batch_stats=_target_part(stats),
      opt_state=tx.init(params),
      rng=state_rng)


def regression_loss(prediction, target):
  """Eq. 1 per example: squared distance of the L2-normalised vectors."""
  def normalise(u):
    u = u.astype(jnp.float32)
    return u / jnp.maximum(jnp.linalg.norm(u, axis=-1, keepdims=True), 1e-12)
  return jnp.sum((normalise(prediction) - normalise(target)) ** 2, axis=-1)


def ema(old, new, decay):
  """decay * old + (1 - decay) * new, leaf by leaf (eqs. 3 and 4)."""
  return jax.tree.map(lambda o, n: decay * o + (1.0 - decay) * n, old, new)


def target_projections(target_params, target_batch_stats, view1, view2, *,
                       net: heads.BYOLNetwork):
  """The target's projections of both views, as constants.

  One forward pass over both views together: the target normalises with its
  momentum-BN statistics, so each example's output is independent of the rest
  of the batch.
  """
  z = net.apply({'params': target_params, 'batch_stats': target_batch_stats},
                jnp.concatenate([view1, view2]), False,
                method=heads.BYOLNetwork.project)
  z1, z2 = jnp.split(jax.lax.stop_gradient(z), 2)
  return z1, z2


def online_loss(online_params, online_batch_stats, view, target, *,
                net: heads.BYOLNetwork):
  """One view's half of eq. 2: mean regression loss of q(g(f(view))) onto the
  target's projection of the other view; aux = (batch_stats, batch moments)."""
  pred, updates = net.apply(
      {'params': online_params, 'batch_stats': online_batch_stats}, view, True,
      mutable=['batch_stats', 'batch_moments'])
  loss = jnp.mean(regression_loss(pred, target))
  return loss, (updates['batch_stats'], updates['batch_moments'])


def byol_loss(online_params, online_batch_stats, target_params,
              target_batch_stats, view1, view2, *, net: heads.BYOLNetwork):
  """Eq. 2 on one device; returns (loss, (online batch_stats, batch moments)).

  The target's outputs are constants (stop_gradient): differentiating with
  respect to the target's parameters gives zero. The batch moments are eq. 4's
  batch statistics: the average over the two online passes.
  """
  target1, target2 = target_projections(target_params, target_batch_stats,
                                        view1, view2, net=net)
  loss1, (stats, moments1) = online_loss(online_params, online_batch_stats,
                                         view1, target2, net=net)
  loss2, (stats, moments2) = online_loss(online_params, stats, view2, target1,
                                         net=net)
  return loss1 + loss2, (stats, _average(moments1, moments2))


def _average(a, b):
  return jax.tree.map(lambda u, v: (u + v) / 2, a, b)


def byol_update(state: TrainState, view1, view2, *, net: heads.BYOLNetwork,
                tx: optax.GradientTransformation, tau_fn: Callable,
                bn_momentum_fn: Callable, axis_name=parallel.AXIS):
  """One BYOL step on already-augmented views; runs on one device.

  Gradients, the loss and the BN statistics are averaged over `axis_name`, so
  every replica of the state stays identical; normalisation itself uses each
  device's own batch (no SyncBN, as the paper).

  The gradient of eq. 2 is the sum of the two views' gradients, taken one view
  after the other: only one view's activations are alive at a time. On the
  'paper' benchmark shape this took XLA:CPU's temporary memory for the step
  from 2.95 GB to 1.30 GB at the same speed.
  """
  target1, target2 = target_projections(state.target_params,
                                        state.target_batch_stats, view1, view2,
                                        net=net)
  grad_fn = jax.value_and_grad(functools.partial(online_loss, net=net),
                               has_aux=True)
  (loss1, (stats, moments1)), grads1 = grad_fn(
      state.online_params, state.online_batch_stats, view1, target2)
  # A zero that XLA cannot fold (0 * x is NaN for infinite x) makes view 2's
  # passes depend on all of view 1's gradient, so they run strictly after it
  # and reuse its activation memory (an optimization_barrier is expanded away
  # before XLA:CPU schedules).
  view2 = view2 + 0 * sum(jnp.sum(g) for g in jax.tree.leaves(grads1)).astype(
      view2.dtype)
  (loss2, (stats, moments2)), grads2 = grad_fn(state.online_params, stats,
                                               view2, target1)
  grads = jax.tree.map(jnp.add, grads1, grads2)
  loss, moments = loss1 + loss2, _average(moments1, moments2)
  grads, loss, stats, moments = jax.lax.pmean(
      (grads, loss, stats, moments), axis_name)

  updates, opt_state = tx.update(grads, state.opt_state, state.online_params)
  params = optax.apply_updates(state.online_params, updates)
  tau = tau_fn(state.step)
  new_state = state.replace(
      step=state.step + 1,
      online_params=params,
      online_batch_stats=stats,
      target_params=ema(state.target_params, _target_part(params), tau),
      target_batch_stats=ema(state.target_batch_stats, _target_part(moments),
                             bn_momentum_fn(state.step)),
      opt_state=opt_state)
  return new_state, {'loss': loss, 'tau': tau}


def online_encoder(state: TrainState) -> dict:
  """Variables of the online encoder f_theta of a pretraining state."""
  return {'params': state.online_params['encoder'],
          'batch_stats': state.online_batch_stats['encoder']}


def target_encoder(state: TrainState) -> dict:
  """Variables of the target encoder f_xi (eq. 3's EMA, with its momentum
  BN statistics, eq. 4) of a pretraining state."""
  return {'params': state.target_params['encoder'],
          'batch_stats': state.target_batch_stats['encoder']}
