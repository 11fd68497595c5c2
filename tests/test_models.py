"""ST-GCN, BatchNorm, heads vs. numpy re-implementations and known counts."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from byol_skeleton import errors
from byol_skeleton.data import skeletons
from byol_skeleton.model import build
from byol_skeleton.model import graph
from byol_skeleton.model import heads
from byol_skeleton.model import layers
from byol_skeleton.model import stgcn
from configs import base

EPS = 1e-5


def count_params(layout, channels, width=1.0):
  model = stgcn.STGCN(layout, width)
  x = jax.ShapeDtypeStruct((2, 16, 2, 25, channels), jnp.float32)
  variables = jax.eval_shape(
      lambda x: model.init(jax.random.key(0), x, False), x)
  return sum(p.size for p in jax.tree.leaves(variables['params']))


@pytest.mark.parametrize('channels, expected', [(6, 3_084_138), (3, 3_083_412)])
def test_parameter_count_matches_reference_stgcn(channels, expected):
  assert count_params('ntu25', channels) == expected


def test_bad_input_shape():
  model = stgcn.STGCN('ntu25', 0.125)
  with pytest.raises(ValueError, match='V=25'):
    model.init(jax.random.key(0), jnp.zeros((2, 8, 2, 20, 3)), False)


# ---- Initialisation (model.init) ---------------------------------------------

def init_params(seed=0, **kwargs):
  """Parameters of a 1x NTU encoder as `init` draws them."""
  model = stgcn.STGCN('ntu25', 1.0, **kwargs)
  return jax.jit(lambda: model.init(
      jax.random.key(seed), jnp.zeros((2, 16, 2, 25, 6)), False))()['params']


def leaves(params, suffix):
  """{path: array} of the parameters whose name ends with `suffix`."""
  return {jax.tree_util.keystr(p): np.asarray(a)
          for p, a in jax.tree_util.tree_leaves_with_path(params)
          if p[-1].key.endswith(suffix)}


def check_constant_parts(params):
  """What both inits share: biases 0, BN shifts 0, edge importances 1."""
  for path, a in leaves(params, 'bias').items():
    assert not a.any(), path
  for path, a in leaves(params, 'edge_importance').items():
    assert (a == 1).all(), path


def test_he_init_is_the_default_and_unchanged():
  params = init_params()
  explicit = init_params(weight_init='he')
  for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(explicit)):
    np.testing.assert_array_equal(a, b)
  kernels = leaves(params, 'kernel')
  assert len(kernels) == 10 * 2 + 2  # gcn, tcn; residuals of blocks 5, 8
  for path, a in kernels.items():
    want = np.sqrt(2 / np.prod(a.shape[:-1]))  # He-normal, fan-in
    if a.size >= 10_000:
      assert abs(a.std() / want - 1) < 0.05, (path, a.std(), want)
      assert abs(a.mean()) < 0.05 * want, path
  for path, a in leaves(params, 'scale').items():
    assert (a == 1).all(), path
  check_constant_parts(params)


def test_reference_init_is_the_reference_stgcn_weights_init():
  """Kernels ~ N(0, 0.02) (not truncated), BN scales ~ N(1, 0.02)."""
  params = init_params(weight_init='reference')
  kernels = leaves(params, 'kernel')
  everything = np.concatenate([a.ravel() for a in kernels.values()])
  assert everything.size > 3_000_000
  assert abs(everything.std() - 0.02) < 0.0002
  assert abs(everything.mean()) < 0.0002
  assert np.abs(everything).max() > 4 * 0.02  # a plain normal, untruncated
  for path, a in kernels.items():  # whatever the fan-in
    if a.size >= 10_000:
      assert abs(a.std() - 0.02) < 0.001, (path, a.std())
  scales = leaves(params, 'scale')
  assert 'data_bn' in ''.join(scales)  # the input BN too, as the reference
  scale = np.concatenate(list(scales.values()))
  assert scale.size > 3_000
  assert abs(scale.mean() - 1) < 0.002
  assert abs(scale.std() - 0.02) < 0.002
  check_constant_parts(params)
  # Another seed draws other values.
  other = leaves(init_params(seed=1, weight_init='reference'), 'scale')
  assert not np.array_equal(scale, np.concatenate(list(other.values())))


def test_init_is_threaded_from_the_config_and_checked():
  c = base.get_config()
  assert c.model.init == 'he'
  assert build.encoder_kwargs(c)['weight_init'] == 'he'
  c.model.init = 'reference'
  assert build.encoder(c).weight_init == 'reference'
  assert build.byol_network(c).encoder_kwargs['weight_init'] == 'reference'
  assert build.classifier(c, 0.5).encoder_kwargs['weight_init'] == 'reference'
  c.model.init = 'xavier'
  with pytest.raises(errors.UserError,
                     match=r"model\.init='xavier'.*'he', 'reference'"):
    build.encoder_kwargs(c)
  with pytest.raises(ValueError, match=r"'xavier'.*'he', 'reference'"):
    stgcn.STGCN('ntu25', 0.125, weight_init='xavier').init(
        jax.random.key(0), jnp.zeros((1, 4, 1, 25, 6)), False)


# ---- Graph convolution: fast formulation == reference formulation ----------

def test_graph_conv_equals_reference_formulation():
  rng = np.random.default_rng(0)
  v, b, t, c_in, c_out, k = 7, 3, 5, 4, 6, 3
  x = rng.normal(size=(v, b, t, c_in)).astype(np.float32)
  kernel = rng.normal(size=(k, c_in, c_out)).astype(np.float32)
  bias = rng.normal(size=(k, c_out)).astype(np.float32)
  adjacency = rng.uniform(size=(k, v, v)).astype(np.float32)
  got = stgcn._graph_conv(jnp.asarray(x), kernel, bias, adjacency)
  # Reference: 1x1 conv to K*C_out, split K, aggregate over joints.
  y = x @ kernel.transpose(1, 0, 2).reshape(c_in, k * c_out) + bias.reshape(-1)
  y = y.reshape(v, b, t, k, c_out)
  want = np.einsum('vbtko,kvw->wbto', y, adjacency)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ---- Whole encoder vs. a numpy ST-GCN in PyTorch's (N*M, C, T, V) layout ----

def np_bn(x, p, stats, train, axis=1):
  """BatchNorm over `axis` as channels; train: batch stats, else running."""
  other = tuple(i for i in range(x.ndim) if i != axis)
  shape = [1] * x.ndim
  shape[axis] = -1
  if train:
    mean, var = x.mean(other), x.var(other)
  else:
    mean, var = stats['mean'], stats['var']
  x = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + EPS)
  return x * p['scale'].reshape(shape) + p['bias'].reshape(shape)


def np_temporal_conv(x, kernel, bias, stride):
  """'same'-padded conv over axis 2 of (V, B, T, C), as a sum over taps."""
  size = kernel.shape[0]
  t_out = (x.shape[2] - 1) // stride + 1
  padded = np.pad(x, ((0, 0), (0, 0), ((size - 1) // 2,) * 2, (0, 0)))
  return bias + sum(
      np.einsum('vbtc,co->vbto',
                padded[:, :, tap:tap + stride * (t_out - 1) + 1:stride],
                kernel[tap]) for tap in range(size))


def np_block(x, p, s, adjacency, stride, residual, train):
  """One ST-GCN block on x (B, C, T, V), written as in the reference."""
  k, c_in, c_out = p['gcn_kernel'].shape
  y = np.einsum('bctv,kco->bkotv', x, p['gcn_kernel'])
  y = y + p['gcn_bias'][None, :, :, None, None]
  y = np.einsum('bkotv,kvw->botw', y, adjacency * p['edge_importance'])
  y = np.maximum(np_bn(y, p['gcn_bn'], s['gcn_bn'], train), 0)
  z = np_temporal_conv(y.transpose(3, 0, 2, 1), p['tcn_kernel'],
                       p['tcn_bias'], stride).transpose(1, 3, 2, 0)
  z = np_bn(z, p['tcn_bn'], s['tcn_bn'], train)
  if not residual:
    return np.maximum(z, 0)
  if 'residual_conv' in p:
    r = np.einsum('bctv,co->botv', x[:, :, ::stride],
                  p['residual_conv']['kernel'])
    r = r + p['residual_conv']['bias'][None, :, None, None]
    r = np_bn(r, p['residual_bn'], s['residual_bn'], train)
  else:
    r = x
  return np.maximum(z + r, 0)


def np_stgcn(x, params, stats, layout, partition, train, person_pool='all'):
  n, t, m, v, c = x.shape
  present = np.abs(x).sum(axis=(1, 3, 4)) > 0  # (N, M)
  # Reference: (N, M, V, C, T) -> (N*M, V*C, T) for the data BN.
  h = x.transpose(0, 2, 3, 4, 1).reshape(n * m, v * c, t)
  h = np_bn(h, params['data_bn'], stats['data_bn'], train)
  h = h.reshape(n * m, v, c, t).transpose(0, 2, 3, 1)  # (N*M, C, T, V)
  adjacency = graph.spatial_partition(skeletons.get_layout(layout), partition)
  for i, (_, stride) in enumerate(stgcn.BLOCKS):
    name = f'block{i + 1}'
    h = np_block(h, params[name], stats[name], adjacency, stride, i > 0, train)
  per_person = h.mean(axis=(2, 3)).reshape(n, m, -1)
  if person_pool == 'all':
    return per_person.mean(axis=1)
  return np.stack([per_person[i, present[i]].mean(axis=0) for i in range(n)])


def random_variables(model, x_shape, seed):
  """Variables of `model` filled with random values (no compiled init).

  Kernels ~ He-normal, biases and BN shifts ~ 0.1 N(0, 1), scales and edge
  importances ~ 1 + 0.1 N(0, 1), running variances in [0.5, 1.5).
  """
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(
      lambda: model.init(jax.random.key(0), jnp.zeros(x_shape), False))
  def fill(path, leaf):
    name = path[-1].key
    if name == 'var':
      return rng.uniform(0.5, 1.5, leaf.shape)
    if name in ('scale', 'edge_importance'):
      return 1 + 0.1 * rng.normal(size=leaf.shape)
    if name.endswith('kernel'):
      fan_in = np.prod(leaf.shape[:-1])
      return rng.normal(size=leaf.shape) * np.sqrt(2 / fan_in)
    return 0.1 * rng.normal(size=leaf.shape)  # biases, running means
  return jax.tree_util.tree_map_with_path(fill, shapes)


def f32(tree):
  return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), tree)


@pytest.mark.parametrize('partition', graph.PARTITIONS)
def test_encoder_matches_numpy_reference(partition):
  layout, shape = 'ntu25', (2, 12, 2, 25, 6)
  model = stgcn.STGCN(layout, width=0.125, partition=partition)
  variables = random_variables(model, shape, seed=1)
  x = np.random.default_rng(2).normal(size=shape)
  got_eval, (got_train, _) = jax.jit(lambda v, x: (
      model.apply(v, x, False),
      model.apply(v, x, True, mutable=['batch_stats'])))(f32(variables), x)
  for train, got in ((False, got_eval), (True, got_train)):
    want = np_stgcn(x, variables['params'], variables['batch_stats'], layout,
                    partition, train)
    assert got.shape == (2, 32)
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


def test_present_person_pool_matches_numpy_and_ignores_absent_persons():
  layout, shape = 'ntu25', (3, 12, 2, 25, 6)
  model = stgcn.STGCN(layout, width=0.125, person_pool='present')
  variables = f32(random_variables(model, shape, seed=5))
  x = np.random.default_rng(6).normal(size=shape)
  x[0, :, 1] = 0.0  # sample 0: one person; samples 1, 2: two
  x[2, :5, 1] = 0.0  # a partner missing in some frames is still present
  for train in (False, True):
    got = model.apply(variables, x, train, mutable=['batch_stats'])[0]
    want = np_stgcn(x, variables['params'], variables['batch_stats'], layout,
                    'reference', train, person_pool='present')
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
  # With running statistics the one-person example's features are those of
  # its person alone, as if the second slot did not exist.
  alone = model.apply(variables, x[:1, :, :1], False)
  np.testing.assert_allclose(model.apply(variables, x, False)[:1], alone,
                             rtol=1e-5, atol=1e-5)
  reference = stgcn.STGCN(layout, width=0.125, person_pool='all')
  assert not np.allclose(reference.apply(variables, x, False)[:1], alone,
                         atol=1e-3)
  with pytest.raises(ValueError, match='person_pool'):
    stgcn.STGCN(layout, person_pool='max').init(
        jax.random.key(0), jnp.zeros((1, 4, 1, 25, 6)), False)


def test_bfloat16_compute_close_to_float32():
  shape = (2, 12, 2, 25, 6)
  model = stgcn.STGCN('ntu25', width=0.125, dtype=jnp.bfloat16)
  variables = random_variables(model, shape, seed=3)
  x = np.random.default_rng(4).normal(size=shape)
  out, updates = jax.jit(lambda v, x: model.apply(
      v, x, True, mutable=['batch_stats']))(f32(variables), x)
  assert all(a.dtype == jnp.float32 for a in jax.tree.leaves(updates))
  want = np_stgcn(x, variables['params'], variables['batch_stats'], 'ntu25',
                  'reference', True)
  np.testing.assert_allclose(out, want, rtol=0.1, atol=0.1)


@pytest.mark.parametrize('layout, v', [('ntu25', 25), ('kinect_v1_20', 20)])
@pytest.mark.parametrize('m', [1, 2])
@pytest.mark.parametrize('width', [0.25, 1.0, 2.0])
def test_output_shapes(layout, v, m, width):
  model = stgcn.STGCN(layout, width)
  x = jax.ShapeDtypeStruct((3, 20, m, v, 6), jnp.float32)
  out = jax.eval_shape(
      lambda x: model.init_with_output(jax.random.key(0), x, True)[0], x)
  assert out.shape == (3, round(256 * width))
  assert stgcn.block_channels(width)[-1] == round(256 * width)


# ---- Classifier and MLP head ------------------------------------------------

def test_classifier_features_are_the_encoder():
  shape = (2, 10, 2, 25, 3)
  clf = heads.Classifier(7, dict(layout='ntu25', width=0.125))
  encoder = stgcn.STGCN('ntu25', width=0.125)
  variables = f32(random_variables(clf, shape, seed=5))
  enc_vars = {c: v['encoder'] for c, v in variables.items()}
  assert (jax.tree.structure(enc_vars) ==
          jax.tree.structure(random_variables(encoder, shape, seed=5)))
  x = np.random.default_rng(6).normal(size=shape)
  logits, feats, enc = jax.jit(lambda v, e, x: (
      clf.apply(v, x, False),
      clf.apply(v, x, False, method=heads.Classifier.features),
      encoder.apply(e, x, False)))(variables, enc_vars, x)
  np.testing.assert_allclose(feats, enc, rtol=1e-6)
  head = variables['params']['head']
  np.testing.assert_allclose(logits, feats @ head['kernel'] + head['bias'],
                             rtol=1e-5, atol=1e-5)
  assert logits.shape == (2, 7)


def test_mlp_head_matches_numpy():
  x = np.random.default_rng(2).normal(size=(5, 6)).astype(np.float32)
  head = heads.MLPHead(hidden=8, out=3)
  variables = head.init(jax.random.key(0), x, False)
  out, _ = head.apply(variables, x, True, mutable=['batch_stats'])
  p = variables['params']
  h = x @ p['Dense_0']['kernel'] + p['Dense_0']['bias']
  h = (h - h.mean(0)) / np.sqrt(h.var(0) + EPS)
  h = np.maximum(h * p['BatchNorm_0']['scale'] + p['BatchNorm_0']['bias'], 0)
  want = h @ p['Dense_1']['kernel'] + p['Dense_1']['bias']
  np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


# ---- BatchNorm ---------------------------------------------------------------

def test_batchnorm_train_eval_and_moments():
  rng = np.random.default_rng(3)
  x = (rng.normal(size=(4, 5, 3)) * [1.0, 2.0, 0.5] + [0.0, 3.0, -1.0]
       ).astype(np.float32)
  bn = layers.BatchNorm(momentum=0.8)
  variables = bn.init(jax.random.key(0), x, True)
  assert set(variables) == {'params', 'batch_stats'}  # no moments at init
  params = {'scale': np.array([1.0, 2.0, 0.5], np.float32),
            'bias': np.array([0.1, -0.2, 0.3], np.float32)}
  old = {'mean': np.array([0.5, 0.0, 1.0], np.float32),
         'var': np.array([2.0, 1.0, 4.0], np.float32)}
  out, updates = bn.apply({'params': params, 'batch_stats': old}, x, False,
                          mutable=['batch_stats', 'batch_moments'])
  mean, var = x.mean((0, 1)), x.var((0, 1))
  want = (x - mean) / np.sqrt(var + EPS) * params['scale'] + params['bias']
  np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(updates['batch_moments']['mean'], mean, rtol=1e-5)
  np.testing.assert_allclose(updates['batch_moments']['var'], var, rtol=1e-5)
  np.testing.assert_allclose(updates['batch_stats']['mean'],
                             0.8 * old['mean'] + 0.2 * mean, rtol=1e-5)
  np.testing.assert_allclose(updates['batch_stats']['var'],
                             0.8 * old['var'] + 0.2 * var, rtol=1e-5)
  # Without 'batch_moments' mutable only the running stats are updated.
  _, updates = bn.apply({'params': params, 'batch_stats': old}, x, False,
                        mutable=['batch_stats'])
  assert set(updates) == {'batch_stats'}
  # Eval mode normalises with the running statistics and writes nothing.
  out = bn.apply({'params': params, 'batch_stats': old}, x, True)
  want = ((x - old['mean']) / np.sqrt(old['var'] + EPS) * params['scale']
          + params['bias'])
  np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('shape,batch_axis', [((12, 5, 3), 0),
                                               ((2, 12, 5, 3), 1)])
@pytest.mark.parametrize('relu', [False, True])
def test_grouped_batchnorm_normalises_each_group_and_averages_moments(
    shape, batch_axis, relu):
  rng = np.random.default_rng(6)
  x = (rng.normal(size=shape) * [1.0, 2.0, 0.5] + [0.0, 3.0, -1.0]).astype(
      np.float32)
  params = {'scale': np.array([1.0, 2.0, 0.5], np.float32),
            'bias': np.array([0.1, -0.2, 0.3], np.float32)}
  old = {'mean': np.zeros(3, np.float32), 'var': np.ones(3, np.float32)}
  bn = layers.BatchNorm(momentum=0.8, relu=relu, groups=3,
                        batch_axis=batch_axis)
  out, updates = bn.apply({'params': params, 'batch_stats': old}, x, False,
                          mutable=['batch_stats', 'batch_moments'])
  # numpy: three groups of 4 along the batch axis, each with its own moments.
  want, means, variances = [], [], []
  for group in np.split(x, 3, axis=batch_axis):
    axes = tuple(range(group.ndim - 1))
    mean, var = group.mean(axes), group.var(axes)
    y = (group - mean) / np.sqrt(var + EPS) * params['scale'] + params['bias']
    want.append(np.maximum(y, 0) if relu else y)
    means.append(mean)
    variances.append(var)
  np.testing.assert_allclose(out, np.concatenate(want, batch_axis), rtol=1e-5,
                             atol=1e-5)
  mean, var = np.mean(means, 0), np.mean(variances, 0)
  np.testing.assert_allclose(updates['batch_moments']['mean'], mean,
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(updates['batch_moments']['var'], var, rtol=1e-5)
  np.testing.assert_allclose(updates['batch_stats']['var'],
                             0.8 * old['var'] + 0.2 * var, rtol=1e-5)
  assert not np.allclose(var, x.var(tuple(range(x.ndim - 1))), rtol=1e-2)

  # Gradients through all three outputs equal autodiff of the plain formula.
  weights = [jnp.asarray(rng.normal(size=s), jnp.float32)
             for s in (x.shape, (3,), (3,))]

  def objective(bn_fn, x, scale, bias):
    y, m, v = bn_fn(x, scale, bias)
    return (jnp.sum(weights[0] * y) + jnp.sum(weights[1] * m)
            + jnp.sum(weights[2] * v))

  def plain(x, scale, bias):
    groups = jnp.split(x, 3, axis=batch_axis)
    axes = tuple(range(x.ndim - 1))
    ms = [g.mean(axes) for g in groups]
    vs = [jnp.mean(jnp.square(g - m), axes) for g, m in zip(groups, ms)]
    ys = [(g - m) / jnp.sqrt(v + EPS) * scale + bias
          for g, m, v in zip(groups, ms, vs)]
    y = jnp.concatenate(ys, batch_axis)
    return (jnp.maximum(y, 0) if relu else y), sum(ms) / 3, sum(vs) / 3

  grouped = lambda x, scale, bias: layers.grouped_batch_norm_train(
      x, scale, bias, EPS, relu, jnp.float32, 3, batch_axis)
  args = (jnp.asarray(x), jnp.asarray(params['scale']),
          jnp.asarray(params['bias']))
  for got, want in zip(
      jax.grad(lambda *a: objective(grouped, *a), argnums=(0, 1, 2))(*args),
      jax.grad(lambda *a: objective(plain, *a), argnums=(0, 1, 2))(*args)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_bn_groups_split_whole_groups_or_cap():
  assert layers.num_groups(64, 16) == 4
  assert layers.num_groups(64, 0) == 1
  assert layers.num_groups(8, 128) == 1  # capped at the device's batch
  with pytest.raises(ValueError, match='groups of 24'):
    layers.num_groups(64, 24)


def test_bn_group_size_is_checked_against_each_devices_batch(caplog):
  config = base.get_config()
  assert config.model.bn_group_size == 128  # the paper's per-GPU batch
  with pytest.raises(errors.UserError, match='do not split into BN groups'):
    build.check_bn_groups(config, 192, 'pretrain.batch_size')
  build.check_bn_groups(config, 256, 'pretrain.batch_size')
  assert not caplog.records
  with caplog.at_level('WARNING'):
    build.check_bn_groups(config, 64, 'pretrain.batch_size')
  assert "normalises over each device's 64" in caplog.text
  config.model.bn_group_size = -1
  with pytest.raises(errors.UserError, match='bn_group_size=-1'):
    build.encoder_kwargs(config)


def test_batchnorm_bfloat16_input_float32_stats():
  x = jnp.asarray(np.random.default_rng(4).normal(size=(64, 2)) + 100.0,
                  jnp.bfloat16)
  bn = layers.BatchNorm()
  variables = bn.init(jax.random.key(0), x, True)
  out, updates = bn.apply(variables, x, False, mutable=['batch_moments',
                                                        'batch_stats'])
  assert out.dtype == jnp.bfloat16
  x32 = np.asarray(x, np.float32)
  assert updates['batch_moments']['var'].dtype == jnp.float32
  np.testing.assert_allclose(updates['batch_moments']['mean'], x32.mean(0),
                             rtol=1e-6)
  np.testing.assert_allclose(updates['batch_moments']['var'], x32.var(0),
                             rtol=1e-2)


def _numpy_batchnorm_objective(x, scale, bias, weights, relu):
  """float64 objective of BN's three outputs, for finite differences."""
  mean = x.mean((0, 1))
  var = x.var((0, 1))
  y = (x - mean) / np.sqrt(var + EPS) * scale + bias
  if relu:
    y = np.maximum(y, 0)
  w_y, w_mean, w_var = weights
  return np.sum(w_y * y) + np.sum(w_mean * mean) + np.sum(w_var * var)


@pytest.mark.parametrize('relu', [False, True])
def test_batchnorm_hand_written_gradient_matches_finite_differences(relu):
  rng = np.random.default_rng(5)
  x = rng.normal(size=(3, 4, 2)) * [1.0, 3.0] + [0.5, -2.0]
  scale, bias = np.array([1.5, -0.7]), np.array([0.2, 0.1])
  weights = (rng.normal(size=x.shape), rng.normal(size=2), rng.normal(size=2))

  def objective(x, scale, bias):
    y, mean, var = layers.batch_norm_train(x, scale, bias, EPS, relu,
                                           jnp.float32)
    return (jnp.sum(weights[0] * y) + jnp.sum(weights[1] * mean)
            + jnp.sum(weights[2] * var))

  got = jax.grad(objective, argnums=(0, 1, 2))(
      *(jnp.asarray(a, jnp.float32) for a in (x, scale, bias)))
  args, step = [x, scale, bias], 1e-6
  for i, g in enumerate(got):
    want = np.zeros_like(args[i])
    for idx in np.ndindex(args[i].shape):
      shifted = [a.copy() for a in args]
      shifted[i][idx] += step
      up = _numpy_batchnorm_objective(*shifted, weights, relu)
      shifted[i][idx] -= 2 * step
      down = _numpy_batchnorm_objective(*shifted, weights, relu)
      want[idx] = (up - down) / (2 * step)
    np.testing.assert_allclose(g, want, rtol=2e-3, atol=2e-4)


def test_relu_gradient_is_the_output_mask():
  x = jnp.array([-2.0, -0.0, 0.5, 3.0])
  g = jnp.array([1.0, 2.0, 3.0, 4.0])
  _, vjp = jax.vjp(layers.relu, x)
  np.testing.assert_array_equal(vjp(g)[0], [0.0, 0.0, 3.0, 4.0])
  np.testing.assert_array_equal(layers.relu(x), [0.0, 0.0, 0.5, 3.0])


def test_graph_conv_hand_written_gradient_matches_einsum_autodiff():
  rng = np.random.default_rng(6)
  v, b, t, c, k, o = 5, 2, 3, 4, 3, 6
  x, kernel, bias, adjacency, g = (
      jnp.asarray(rng.normal(size=s), jnp.float32) for s in
      ((v, b, t, c), (k, c, o), (k, o), (k, v, v), (v, b, t, o)))

  def reference(x, kernel, bias, adjacency):
    return (jnp.einsum('kvw,vbtc,kco->wbto', adjacency, x, kernel)
            + jnp.einsum('kvw,ko->wo', adjacency, bias)[:, None, None])

  np.testing.assert_allclose(stgcn._graph_conv(x, kernel, bias, adjacency),
                             reference(x, kernel, bias, adjacency),
                             rtol=1e-5, atol=1e-5)
  args = (x, kernel, bias, adjacency)
  got = jax.grad(lambda *a: jnp.sum(g * stgcn._graph_conv(*a)),
                 argnums=(0, 1, 2, 3))(*args)
  want = jax.grad(lambda *a: jnp.sum(g * reference(*a)),
                  argnums=(0, 1, 2, 3))(*args)
  for name, u, w in zip(('x', 'kernel', 'bias', 'adjacency'), got, want):
    np.testing.assert_allclose(u, w, rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize('t,stride', [(3, 1), (8, 1), (9, 1), (16, 2),
                                      (17, 2), (20, 1), (20, 2)])
def test_temporal_conv_both_implementations_match_numpy(t, stride):
  """The banded matmul (outputs shorter than the kernel) and XLA's conv
  compute the same function and gradients, at lengths on both sides of the
  switch."""
  rng = np.random.default_rng(t + stride)
  x, kernel, bias = (rng.normal(size=s).astype(np.float32)
                     for s in ((3, 2, t, 4), (9, 4, 5), (5,)))
  want = np_temporal_conv(x, kernel, bias, stride)
  implementations = (stgcn._temporal_conv_xla, stgcn._temporal_conv_banded)
  for conv in implementations + (stgcn._temporal_conv,):
    np.testing.assert_allclose(conv(x, kernel, bias, stride), want,
                               rtol=1e-4, atol=1e-4, err_msg=conv.__name__)
  g = rng.normal(size=want.shape).astype(np.float32)
  xla_grad, banded_grad = (
      jax.grad(lambda *a, conv=conv: jnp.sum(g * conv(*a, stride)),
               argnums=(0, 1, 2))(x, kernel, bias)
      for conv in implementations)
  for name, u, w in zip(('x', 'kernel', 'bias'), banded_grad, xla_grad):
    np.testing.assert_allclose(u, w, rtol=1e-4, atol=1e-4, err_msg=name)
