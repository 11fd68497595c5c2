"""BYOL core: loss (eqs. 1-2), EMA (eq. 3), momentum BN (eq. 4), device mapping."""
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import ml_collections
import numpy as np
import optax
import pytest

from byol_skeleton.model import build
from byol_skeleton.model import heads
from byol_skeleton.pretraining import byol
from byol_skeleton.train import optimizers
from byol_skeleton.train import parallel
from byol_skeleton.train import schedules
from configs import synthetic

T, M, V, C = 8, 2, 25, 6


@pytest.fixture(scope='module')
def setup():
  config = synthetic.get_config('tiny')
  net = build.byol_network(config)
  tx = optax.sgd(0.05, momentum=0.9)
  x = jnp.zeros((1, T, M, V, C))
  state = byol.init_state(net, tx, jax.random.key(0), x)
  return config, net, tx, state


def _views(seed, n):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(n, T, M, V, C)).astype(np.float32),
          rng.normal(size=(n, T, M, V, C)).astype(np.float32))


def _mapped_update(mesh, net, tx, tau_fn, bn_momentum):
  bn_momentum_fn = schedules.momentum_bn(bn_momentum, warmup=False)

  def step(state, v1, v2):
    return byol.byol_update(state, v1, v2, net=net, tx=tx, tau_fn=tau_fn,
                            bn_momentum_fn=bn_momentum_fn)
  return jax.jit(parallel.data_parallel(step, mesh, num_batch_args=2))


def test_regression_loss_matches_numpy():
  rng = np.random.default_rng(0)
  p, z = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
  cos = np.sum(p * z, -1) / np.linalg.norm(p, axis=-1) / np.linalg.norm(z, axis=-1)
  np.testing.assert_allclose(byol.regression_loss(p, z), 2 - 2 * cos,
                             rtol=1e-5, atol=1e-6)


def test_symmetric_loss_matches_independent_forward_passes(setup):
  _, net, _, state = setup
  v1, v2 = _views(1, 4)
  loss, _ = byol.byol_loss(state.online_params, state.online_batch_stats,
                           state.target_params, state.target_batch_stats,
                           v1, v2, net=net)

  def online(x, stats):
    return net.apply({'params': state.online_params, 'batch_stats': stats}, x,
                     True, mutable=['batch_stats'])

  def target(x):
    return np.asarray(net.apply(
        {'params': state.target_params,
         'batch_stats': state.target_batch_stats}, x, False,
        method=heads.BYOLNetwork.project))

  p1, upd = online(v1, state.online_batch_stats)
  p2, _ = online(v2, upd['batch_stats'])

  def eq1(p, z):
    p = np.asarray(p, np.float64)
    z = np.asarray(z, np.float64)
    p /= np.linalg.norm(p, axis=-1, keepdims=True)
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    return np.sum((p - z) ** 2, -1)

  expected = np.mean(eq1(p1, target(v2)) + eq1(p2, target(v1)))
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  assert 0 < expected < 8


def test_no_gradient_reaches_target(setup):
  _, net, _, state = setup
  v1, v2 = _views(2, 4)
  loss = lambda op, tp: byol.byol_loss(op, state.online_batch_stats, tp,
                                       state.target_batch_stats, v1, v2,
                                       net=net)[0]
  grad_online, grad_target = jax.jit(jax.grad(loss, argnums=(0, 1)))(
      state.online_params, state.target_params)
  for g in jax.tree.leaves(grad_target):
    assert not np.any(np.asarray(g))
  assert any(np.any(np.asarray(g)) for g in jax.tree.leaves(grad_online))


def test_one_step_ema_and_momentum_bn_by_hand(setup):
  config, net, tx, state = setup
  # Make target differ from online so the EMA is visible.
  state = state.replace(target_params=jax.tree.map(
      lambda p: p + 0.5, state.target_params))
  tau_fn = schedules.target_ema(0.9, 100)
  alpha = 0.7
  v1, v2 = _views(3, 4)
  mesh = parallel.make_mesh(jax.devices()[:1])
  update = _mapped_update(mesh, net, tx, tau_fn, alpha)
  new, out = update(state, v1, v2)

  np.testing.assert_allclose(out['tau'], 0.9, rtol=1e-6)
  tau = 0.9  # cosine schedule at step 0 starts at tau_base
  for old_t, new_o, new_t in zip(
      jax.tree.leaves(state.target_params),
      jax.tree.leaves({k: new.online_params[k] for k in byol.TARGET_MODULES}),
      jax.tree.leaves(new.target_params)):
    np.testing.assert_allclose(new_t, tau * old_t + (1 - tau) * new_o,
                               rtol=1e-5, atol=1e-6)

  # The input BN normalises V*C channels over persons, frames and batch: its
  # batch moments are plain numpy statistics of the inputs.
  def channel_moments(x):
    flat = np.moveaxis(np.asarray(x, np.float64), 2, 1).reshape(-1, V * C)
    return flat.mean(0), flat.var(0)

  (m1, s1), (m2, s2) = channel_moments(v1), channel_moments(v2)
  batch_mean, batch_var = (m1 + m2) / 2, (s1 + s2) / 2
  old = state.target_batch_stats['encoder']['data_bn']
  got = new.target_batch_stats['encoder']['data_bn']
  np.testing.assert_allclose(
      np.ravel(got['mean']),
      alpha * np.ravel(old['mean']) + (1 - alpha) * batch_mean,
      rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(
      np.ravel(got['var']),
      alpha * np.ravel(old['var']) + (1 - alpha) * batch_var,
      rtol=1e-4, atol=1e-5)
  # The online network keeps its own running statistics.
  assert new.step == 1
  assert not np.allclose(new.online_batch_stats['encoder']['data_bn']['mean'],
                         got['mean'])


def test_update_steps_along_the_gradient_of_the_symmetric_loss(setup):
  """The update takes the two views' gradients one after the other; their sum
  must be the gradient of eq. 2, and the online BN stats must chain."""
  _, net, _, state = setup
  tx = optax.sgd(0.1)
  state = state.replace(opt_state=tx.init(state.online_params))
  v1, v2 = _views(4, 4)
  mesh = parallel.make_mesh(jax.devices()[:1])
  new, out = _mapped_update(mesh, net, tx, schedules.target_ema(0.9, 100),
                            0.9)(state, v1, v2)
  (loss, (stats, _)), grads = jax.jit(jax.value_and_grad(
      lambda p: byol.byol_loss(p, state.online_batch_stats,
                               state.target_params, state.target_batch_stats,
                               v1, v2, net=net), has_aux=True))(
                                   state.online_params)
  np.testing.assert_allclose(out['loss'], loss, rtol=1e-5)
  # float32 through a narrow net and BN on 4 examples: gradients near the
  # input differ by up to ~0.5 % of their leaf's largest entry between any two
  # XLA programs (the same before the views' gradients were split); biases that
  # feed a BN have zero gradient up to rounding, hence the global term.
  scale = max(float(np.abs(g).max()) for g in jax.tree.leaves(grads))
  for old, g, got in zip(jax.tree.leaves(state.online_params),
                         jax.tree.leaves(grads),
                         jax.tree.leaves(new.online_params)):
    g = np.asarray(g)
    np.testing.assert_allclose((old - got) / 0.1, g, rtol=1e-3,
                               atol=2e-2 * np.abs(g).max() + 1e-5 * scale)
  # The running means carry the same rounding, and some are near zero (the
  # mean of a BN's input over channels that cancel): compare each leaf at its
  # own scale. Not chaining view 1's statistics into view 2's pass would be off
  # by ~10 % of that scale.
  for want, got in zip(jax.tree.leaves(stats),
                       jax.tree.leaves(new.online_batch_stats)):
    want = np.asarray(want)
    np.testing.assert_allclose(got, want, rtol=1e-3,
                               atol=1e-3 * np.abs(want).max() + 1e-6)


def _mapped_step(state, views, net, tx, devices):
  """One byol_update of `state` on `views`, data-parallel over `devices`."""
  mesh = parallel.make_mesh(jax.devices()[:devices])
  s = jax.device_put(state, NamedSharding(mesh, P()))
  s, out = _mapped_update(mesh, net, tx, schedules.target_ema(0.99, 10),
                          0.9)(s, *views)
  return jax.device_get(s), float(out['loss'])


def _assert_same_step(a_result, b_result, before):
  """Two steps from `before` agree in loss, values and the change itself."""
  (sa, loss_a), (sb, loss_b) = a_result, b_result
  np.testing.assert_allclose(loss_a, loss_b, rtol=1e-4)
  changed = 0
  for (path, a), b, start in zip(
      jax.tree_util.tree_flatten_with_path(sa)[0], jax.tree.leaves(sb),
      jax.tree.leaves(jax.device_get(before))):
    if not jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating):
      continue
    # Float32 BN on a tiny batch amplifies summation-order noise to ~1e-3.
    assert np.linalg.norm(a - b) <= 5e-3 * np.linalg.norm(b) + 1e-4, (
        jax.tree_util.keystr(path))
    # The step's change itself agrees, not just the values it was added to
    # (a gradient summed instead of averaged over devices fails here).
    da, db = np.ravel(a - start), np.ravel(b - start)
    if np.linalg.norm(db) > 1e-4:  # above float32 rounding of the values
      changed += 1
      assert np.linalg.norm(da - db) <= 2e-2 * np.linalg.norm(db), (
          jax.tree_util.keystr(path))
  assert changed > 10  # the step really moved the parameters and statistics


def test_eight_devices_equal_one_device_on_the_same_global_batch(setup):
  _, net, tx, state = setup
  assert jax.device_count() == 8
  # Each device sees the same 4 examples, so per-device BN statistics equal
  # those of the whole global batch on one device.
  local1, local2 = _views(4, 4)
  views = (np.tile(local1, (8, 1, 1, 1, 1)), np.tile(local2, (8, 1, 1, 1, 1)))
  _assert_same_step(_mapped_step(state, views, net, tx, 8),
                    _mapped_step(state, views, net, tx, 1), state)


def test_bn_groups_on_one_device_equal_per_device_bn_on_four(setup):
  """Ghost BN: groups of 16 in one device's 64 sequences normalise as 4
  devices of 16 each do with their own BN, and the target's momentum-BN
  statistics are the same average over groups as over devices."""
  config, net, tx, state = setup
  assert config.model.bn_group_size == 0
  grouped_config = config.copy_and_resolve_references()
  grouped_config.model.bn_group_size = 16
  grouped_net = build.byol_network(grouped_config)
  views = _views(7, 64)
  four = _mapped_step(state, views, net, tx, 4)
  _assert_same_step(_mapped_step(state, views, grouped_net, tx, 1), four,
                    state)
  # Without groups one device normalises over all 64: a different step.
  whole_state, _ = _mapped_step(state, views, net, tx, 1)
  moments = lambda s: np.concatenate([np.ravel(v) for v in jax.tree.leaves(
      s.target_batch_stats)])
  assert np.abs(moments(whole_state) - moments(four[0])).max() > 1e-3


def test_schedules():
  lr = schedules.pretrain_lr(0.2, 512, 1e-6, 10, 110)
  np.testing.assert_allclose(lr(0), 1e-6, atol=1e-8)
  np.testing.assert_allclose(lr(10), 0.2, rtol=1e-6)
  np.testing.assert_allclose(lr(60), 0.1, rtol=1e-5)  # half-way down the cosine
  np.testing.assert_allclose(lr(110), 0.0, atol=1e-9)
  np.testing.assert_allclose(schedules.pretrain_lr(0.2, 64, 1e-6, 1, 10)(1),
                             0.025, rtol=1e-6)
  tau = schedules.target_ema(0.99, 100)
  np.testing.assert_allclose([tau(0), tau(50), tau(100)],
                             [0.99, 0.995, 1.0], rtol=1e-6)
  # Momentum BN with the bias-corrected start: an EMA from the first batch.
  alpha = schedules.momentum_bn(0.9)
  np.testing.assert_allclose([alpha(s) for s in (0, 1, 3, 8, 9, 50)],
                             [0.0, 0.5, 0.75, 8 / 9, 0.9, 0.9], rtol=1e-6)
  stats, batches = 0.0, np.random.default_rng(0).normal(size=5)
  for step, b in enumerate(batches):  # eq. 4 with that alpha = the running mean
    stats = alpha(step) * stats + (1 - alpha(step)) * b
  np.testing.assert_allclose(stats, batches.mean(), rtol=1e-6)
  np.testing.assert_allclose(schedules.momentum_bn(0.9, warmup=False)(0), 0.9)


@pytest.mark.parametrize('optimizer', ['sgd', 'lars'])
def test_predictor_lr_scale_multiplies_only_the_predictors_steps(setup,
                                                                 optimizer):
  """Two steps against PyTorch-style SGD by hand (decay joins the gradient,
  then momentum); LARS, not written out here, must scale the same way."""
  _, _, _, state = setup
  params = state.online_params
  rng = np.random.default_rng(8)
  grads = [jax.tree.map(lambda p: rng.normal(size=p.shape).astype(np.float32),
                        params) for _ in range(2)]
  pc = ml_collections.ConfigDict(dict(optimizer=optimizer, weight_decay=1e-2,
                                      momentum=0.9, predictor_lr_scale=1.0))
  lr = lambda count: 0.1 / (1 + count)

  def two_steps(scale):
    pc.predictor_lr_scale = scale
    tx = optimizers.byol_optimizer(pc, lr)
    opt_state, p, steps = tx.init(params), params, []
    for g in grads:
      update, opt_state = tx.update(g, opt_state, p)
      p = optax.apply_updates(p, update)
      steps.append(update)
    return steps

  paper, scaled = two_steps(1.0), two_steps(10.0)
  for part in params:
    factor = 10.0 if part == 'predictor' else 1.0
    # The first step from the same parameters is 10x for the predictor only;
    # the second is identical for the parts whose parameters still agree.
    jax.tree.map(lambda w, g, f=factor: np.testing.assert_allclose(
        g, f * w, rtol=1e-5, atol=1e-9), paper[0][part], scaled[0][part])
    if part != 'predictor':
      jax.tree.map(np.testing.assert_array_equal, paper[1][part],
                   scaled[1][part])
    if optimizer == 'sgd':
      # Each leaf's momentum buffer sees its own parameter's decay, and the
      # predictor's parameters move 10x as far between the two steps.
      def by_hand(p0, g0, g1, f=factor):
        buf = g0 + 1e-2 * p0
        p1 = p0 - f * lr(0) * buf
        buf = 0.9 * buf + g1 + 1e-2 * p1
        return [-f * lr(0) * (g0 + 1e-2 * p0), -f * lr(1) * buf]

      hand = jax.tree.map(by_hand, params[part], grads[0][part],
                          grads[1][part])
      jax.tree.map(lambda h, s0, s1: np.testing.assert_allclose(
          [s0, s1], h, rtol=2e-5, atol=1e-7), hand, scaled[0][part],
          scaled[1][part], is_leaf=lambda x: isinstance(x, list))
