"""Augmentations against independent numpy/scipy computations.

Tests that involve channels run on a 3D layout (x, y, z) and on coco17 (x, y,
score), whose score must move with its joint but never be sheared, filtered
or differenced.
"""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from byol_skeleton.data import augment
from byol_skeleton.data import skeletons
from configs import ablations
from configs import base

T_PAD, NUM_FRAMES = 48, 20
# One 3D and the 2D layout: channels run through every transform differently.
DIMENSIONS = ['ntu25', 'coco17']
LENGTHS = np.array([1, 7, 14, 15, 16, 20, 33, 48], np.int32)


def small_config(layout='ntu25', temporal_view='crop', **augment_fields):
  c = base.get_config()
  c.data.layout = layout
  c.data.temporal_view = temporal_view
  c.data.max_frames = T_PAD
  c.data.num_frames = NUM_FRAMES
  c.augment.update(augment_fields)
  return c


def padded_batch(rng, lengths, num_joints, pad_value=0.0, persons=2):
  x = rng.normal(size=(len(lengths), T_PAD, persons, num_joints, 3))
  for b, length in enumerate(lengths):
    x[b, length:] = pad_value
  return x.astype(np.float32)


@functools.lru_cache(maxsize=None)
def sample_and_apply(spec):
  """Jitted batched (params, views) for one spec: one compile per spec."""

  def one(key, x, length):
    params = augment.sample_params(key, spec)
    return params, augment.apply_view(params, x, length, spec)

  return jax.jit(jax.vmap(one))


sample_params_batch = jax.jit(
    jax.vmap(augment.sample_params, (0, None)), static_argnums=1)


def keys(n, seed=0):
  return jax.random.split(jax.random.key(seed), n)


def reference_view(params, x, length, spec):
  """The pipeline of augment.py's docstring in float64 numpy, one sample."""
  shape = x.shape[1:]
  d = spec.layout.coordinates
  x = x[:length].astype(np.float64)
  if params.smooth is not None and params.smooth and length >= spec.filter_window:
    x[..., :d] = signal.savgol_filter(
        x[..., :d], spec.filter_window, spec.filter_order, axis=0,
        mode='interp')
  n = spec.num_frames
  if params.segment is None:
    new_length = np.float32(length) / np.float32(params.rate)
  else:  # the recording stretched so that the segment fills n frames
    new_length = np.float32(n) / (np.float32(params.segment) *
                                  np.float32(params.rate))
  new_length = max(1, int(np.round(new_length)))
  positions = np.linspace(0, length - 1, new_length)
  flat = x.reshape(length, -1)
  x = np.stack([np.interp(positions, np.arange(length), flat[:, f])
                for f in range(flat.shape[1])], axis=1)
  x = x.reshape((new_length,) + shape)
  if new_length >= n:
    start = min(int(np.floor(params.crop * (new_length - n + 1))), new_length - n)
    x = x[start:start + n]
  else:
    x = np.concatenate([x] * math.ceil(n / new_length))[:n]
  x = np.roll(x, int(params.shift), axis=0)
  if params.shear is not None:
    x[..., :d] = np.einsum('dc,tmvc->tmvd', np.asarray(params.shear, np.float64),
                           x[..., :d])
  if params.keep is not None:
    x = x * np.asarray(params.keep)[:, None]
  if spec.use_bones:
    x = np.concatenate([x, python_loop_bones(x, spec.layout)], axis=-1)
  return x


def python_loop_bones(x, layout):
  """Differences of the coordinates; the smaller score of the two joints."""
  d = layout.coordinates
  bones = np.zeros_like(x)
  for v, parent in layout.bone_pairs:
    bones[..., v, :d] = x[..., v, :d] - x[..., parent, :d]
    bones[..., v, d:] = np.minimum(x[..., v, d:], x[..., parent, d:])
  return bones


def params_of(params, b):
  return jax.tree.map(lambda a: np.asarray(a[b]), params)


@pytest.mark.parametrize('layout,pipeline,temporal_view', [
    ('ntu25', 'aggressive', 'crop'), ('kinect_v1_20', 'aggressive', 'crop'),
    ('ntu25', 'conservative', 'crop'), ('ntu25', 'none', 'crop'),
    ('ntu25', 'aggressive', 'resize'), ('ntu25', 'conservative', 'resize'),
    ('ntu25', 'none', 'resize'), ('coco17', 'aggressive', 'crop'),
    ('coco17', 'aggressive', 'resize')])
def test_pipeline_matches_numpy_reference(layout, pipeline, temporal_view):
  # filter_prob=0.5 so both filtered and unfiltered samples are checked;
  # LENGTHS run from shorter than NUM_FRAMES to longer.
  spec = augment.view_spec(small_config(layout, temporal_view), pipeline)
  reps = 4
  lengths = np.tile(LENGTHS, reps)
  x = padded_batch(np.random.default_rng(0), lengths, spec.layout.num_joints)
  params, views = sample_and_apply(spec)(keys(len(lengths)), x, lengths)
  assert views.shape == (len(lengths), NUM_FRAMES, 2, spec.layout.num_joints, 6)
  for b, length in enumerate(lengths):
    expected = reference_view(params_of(params, b), x[b], length, spec)
    np.testing.assert_allclose(views[b], expected, rtol=1e-4, atol=1e-4)
  if pipeline == 'aggressive':
    assert 0 < np.mean(params.smooth) < 1 and 0 < np.mean(params.keep) < 1


def test_pipelines_switch_the_right_transforms():
  c = small_config()
  spec = augment.view_spec(c, 'conservative')
  assert spec.resample_range == (0.7, 1.3) and spec.random_crop
  assert (spec.filter_prob, spec.shift_max, spec.shear_range,
          spec.drop_prob) == (None,) * 4
  none = augment.view_spec(c, 'none')
  assert none.resample_range is None and not none.random_crop
  c.augment.shear = False
  c.augment.resample = False
  spec = augment.view_spec(c, 'aggressive')
  assert spec.shear_range is None and spec.resample_range is None
  assert (spec.filter_prob, spec.shift_max, spec.drop_prob) == (0.5, 150, 0.5)
  assert augment.view_spec(c, 'conservative').resample_range is None
  params = augment.sample_params(jax.random.key(0), spec)
  assert params.shear is None and float(params.rate) == 1.0


def test_bad_config_is_named():
  with pytest.raises(ValueError, match='pipeline'):
    augment.view_spec(small_config(), 'strong')
  with pytest.raises(ValueError, match='filter_window'):
    augment.view_spec(small_config(filter_window=14), 'aggressive')
  with pytest.raises(ValueError, match='resample_min'):
    augment.view_spec(small_config(resample_min=1.5), 'aggressive')


@pytest.mark.parametrize('layout', DIMENSIONS)
def test_shear_is_eq5_matrix_product(layout):
  spec = augment.view_spec(small_config(layout, shear_range=0.4), 'aggressive')
  d = spec.layout.coordinates
  s = np.asarray(sample_params_batch(keys(200), spec).shear)
  assert s.shape == (200, d, d)
  np.testing.assert_array_equal(s[:, range(d), range(d)], 1.0)
  off = s[:, ~np.eye(d, dtype=bool)]
  assert np.abs(off).max() <= 0.4 and np.abs(off).max() > 0.35
  x = np.random.default_rng(1).normal(size=(5, 2, 4, 3)).astype(np.float32)
  y = np.asarray(augment.shear(jnp.asarray(x), s[0]))
  np.testing.assert_allclose(y[..., :d], np.einsum('dc,tmvc->tmvd', s[0],
                                                   x[..., :d]),
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(y[..., d:], x[..., d:])  # the score


def test_savgol_filter_matches_scipy_interp():
  filt = jax.jit(jax.vmap(augment.savgol_filter, (0, 0, None, None)),
                 static_argnums=(2, 3))
  lengths = np.array([15, 16, 17, 30, 48, 14, 3], np.int32)
  x = padded_batch(np.random.default_rng(2), lengths, 3, pad_value=1e30)
  y = np.asarray(filt(x, lengths, 15, 2))
  for b, length in enumerate(lengths):
    if length >= 15:
      expected = signal.savgol_filter(x[b, :length].astype(np.float64), 15, 2,
                                      axis=0, mode='interp')
    else:  # Too short for one window: left as is.
      expected = x[b, :length]
    np.testing.assert_allclose(y[b, :length], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('layout', DIMENSIONS)
def test_filter_in_a_view_smooths_coordinates_only(layout):
  c = small_config(layout, filter_prob=1.0, resample=False, shift=False,
                   shear=False, drop=False)
  c.data.num_frames = T_PAD  # the whole recording: no crop
  c.data.use_bones = False
  view = jax.jit(augment.make_view_fn(c, 'aggressive'))
  d = skeletons.get_layout(layout).coordinates
  x = padded_batch(np.random.default_rng(2), [T_PAD],
                   skeletons.get_layout(layout).num_joints)[0]
  y = np.asarray(view(jax.random.key(0), x, T_PAD))
  np.testing.assert_allclose(
      y[..., :d], signal.savgol_filter(x[..., :d].astype(np.float64), 15, 2,
                                       axis=0, mode='interp'),
      rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(y[..., d:], x[..., d:])


def test_resample_rate_one_is_identity():
  x = padded_batch(np.random.default_rng(3), LENGTHS, 3, pad_value=1e30)
  resample = jax.vmap(augment.resample, (0, 0, None, None))
  y, new_lengths = resample(x, LENGTHS, 1.0, T_PAD)
  np.testing.assert_array_equal(new_lengths, LENGTHS)
  for b, length in enumerate(LENGTHS):
    np.testing.assert_array_equal(y[b, :length], x[b, :length])


def test_resample_hand_computed():
  # 4 frames at rate 0.75 -> round(5.33) = 5 frames at source positions
  # j * 3 / 4 = 0, 0.75, 1.5, 2.25, 3.
  x = np.zeros((6, 1, 1, 3), np.float32)
  x[:4, 0, 0, 0] = [0, 10, 20, 40]
  x[4:] = 1e30
  y, new_length = augment.resample(jnp.asarray(x), 4, 0.75, 6)
  assert int(new_length) == 5
  np.testing.assert_allclose(y[:5, 0, 0, 0], [0, 7.5, 15, 25, 40])
  # 5 frames at rate 2: round(2.5) = 2 (half to even): first and last frames.
  x[:, 0, 0, 0] = [0, 10, 20, 40, 50, 1e30]
  y, new_length = augment.resample(jnp.asarray(x), 5, 2.0, 6)
  assert int(new_length) == 2
  np.testing.assert_allclose(y[:2, 0, 0, 0], [0, 50])


@pytest.mark.parametrize('offset', [0, 1, 7, 19, 20])
def test_temporal_shift_is_roll(offset):
  x = np.random.default_rng(4).normal(size=(20, 2, 3, 3)).astype(np.float32)
  np.testing.assert_array_equal(augment.temporal_shift(jnp.asarray(x), offset),
                                np.roll(x, offset, axis=0))


@pytest.mark.parametrize('length,crop,expected_frames', [
    (7, 0.9, [0, 1, 2, 3, 4, 5, 6, 0, 1, 2]),  # Looped.
    (10, 0.3, list(range(10))),  # Exact fit.
    (16, 0.0, list(range(0, 10))),  # First window.
    (16, 0.5, list(range(3, 13))),  # floor(0.5 * 7) = 3, the centre.
    (16, 0.9999999, list(range(6, 16))),  # Last window.
])
def test_crop_or_loop(length, crop, expected_frames):
  x = np.arange(20, dtype=np.float32)[:, None, None, None]
  x[length:] = 1e30
  y = augment.crop_or_loop(jnp.asarray(x), length, 10, crop)
  np.testing.assert_array_equal(y[:, 0, 0, 0], expected_frames)


@pytest.mark.parametrize('layout', DIMENSIONS)
def test_none_pipeline_is_deterministic_centre_crop(layout):
  c = small_config(layout)
  c.data.use_bones = False
  view = jax.jit(augment.make_view_fn(c, 'none'))
  v = skeletons.get_layout(layout).num_joints
  x = np.random.default_rng(5).normal(size=(T_PAD, 2, v, 3)).astype(np.float32)
  a = view(jax.random.key(0), x, 33)
  np.testing.assert_array_equal(a, view(jax.random.key(1), x, 33))
  np.testing.assert_array_equal(a, x[7:27])  # floor(0.5 * 14) = 7.


@pytest.mark.parametrize('layout', DIMENSIONS)
@pytest.mark.parametrize('length', [7, 20, 33, 48])
def test_resize_test_view_is_the_whole_recording(length, layout):
  """Hand-derived: frame i of the view is source position i (L-1)/(n-1)."""
  c = small_config(layout, temporal_view='resize')
  c.data.use_bones = False
  view = jax.jit(augment.make_view_fn(c, 'none'))
  v = skeletons.get_layout(layout).num_joints
  x = np.random.default_rng(4).normal(size=(T_PAD, 2, v, 3)).astype(np.float32)
  positions = np.arange(NUM_FRAMES) * (length - 1) / (NUM_FRAMES - 1)
  lower = np.floor(positions).astype(int)
  upper = np.minimum(lower + 1, length - 1)
  w = (positions - lower)[:, None, None, None]
  expected = (1 - w) * x[lower] + w * x[upper]
  np.testing.assert_allclose(view(jax.random.key(0), x, length), expected,
                             rtol=1e-5, atol=1e-5)


def test_resize_segments_cover_their_range_and_crop_keeps_its_draws():
  crop = augment.view_spec(small_config(), 'aggressive')
  resize = augment.view_spec(small_config(temporal_view='resize',
                                          segment_min=0.6), 'aggressive')
  assert crop.segment_range is None and resize.segment_range == (0.6, 1.0)
  n = 2000
  a = sample_params_batch(keys(n, seed=12), crop)
  b = sample_params_batch(keys(n, seed=12), resize)
  for field in ('rate', 'crop', 'shift', 'smooth', 'shear', 'keep'):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  assert a.segment is None
  assert 0.6 <= b.segment.min() < 0.61 and 0.99 < b.segment.max() <= 1.0
  with pytest.raises(ValueError, match='temporal_view'):
    augment.view_spec(small_config(temporal_view='stretch'), 'none')
  with pytest.raises(ValueError, match='segment_min'):
    augment.view_spec(small_config(segment_min=0.0), 'none')


@pytest.mark.parametrize('layout', ['ntu25', 'kinect_v1_20', 'coco17'])
def test_drop_zeros_exactly_one_side(layout):
  c = small_config(layout, drop_prob=1.0, filter=False, resample=False,
                   shift=False, shear=False)
  c.data.use_bones = False
  spec = augment.view_spec(c, 'aggressive')
  lay = skeletons.get_layout(layout)
  n = 64
  x = padded_batch(np.random.default_rng(6), [T_PAD] * n, lay.num_joints) + 5
  _, views = sample_and_apply(spec)(keys(n), x, np.full(n, T_PAD))
  sides = []
  for b in range(n):
    zero = np.flatnonzero(np.all(np.asarray(views[b]) == 0, axis=(0, 1, 3)))
    assert tuple(zero) in (tuple(sorted(lay.left)), tuple(sorted(lay.right)))
    kept = np.setdiff1d(np.arange(lay.num_joints), zero)
    assert np.all(np.asarray(views[b])[:, :, kept] != 0)
    sides.append(zero[0] == min(lay.left))
  assert 0 < np.mean(sides) < 1


@pytest.mark.parametrize('layout', ['ntu25', 'kinect_v1_20', 'coco17'])
def test_bones_match_python_loop(layout):
  lay = skeletons.get_layout(layout)
  d = lay.coordinates
  x = np.random.default_rng(7).normal(size=(3, 2, lay.num_joints, 3))
  y = np.asarray(augment.add_bones(jnp.asarray(x, jnp.float32), lay))
  np.testing.assert_allclose(y[..., :3], x, rtol=1e-6)
  np.testing.assert_allclose(y[..., 3:], python_loop_bones(x, lay),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(y[..., lay.center, 3:3 + d], 0)
  np.testing.assert_allclose(y[..., lay.center, 3 + d:],
                             x[..., lay.center, d:], rtol=1e-6)


@pytest.mark.parametrize('layout', DIMENSIONS)
@pytest.mark.parametrize('pad_value', [1e30, np.nan])
def test_padding_never_leaks(pad_value, layout):
  spec = augment.view_spec(small_config(layout, filter_prob=1.0), 'aggressive')
  run = sample_and_apply(spec)
  k = keys(len(LENGTHS))
  x0 = padded_batch(np.random.default_rng(8), LENGTHS, spec.layout.num_joints)
  x1 = np.where(np.arange(T_PAD)[None, :, None, None, None]
                >= LENGTHS[:, None, None, None, None], pad_value, x0)
  _, clean = run(k, x0, LENGTHS)
  _, padded = run(k, x1.astype(np.float32), LENGTHS)
  np.testing.assert_array_equal(clean, padded)


def test_same_key_same_view_different_keys_differ():
  c = small_config()
  view = augment.make_view_fn(c, 'aggressive')
  batch = jax.jit(lambda key, x, l: augment.augment_batch(view, key, x, l))
  x = padded_batch(np.random.default_rng(9), LENGTHS, 25)
  a = batch(jax.random.key(3), x, LENGTHS)
  np.testing.assert_array_equal(a, batch(jax.random.key(3), x, LENGTHS))
  b = batch(jax.random.key(4), x, LENGTHS)
  assert all(not np.allclose(a[i], b[i]) for i in range(len(LENGTHS)))
  # Samples of one batch get different keys: same input, different views.
  n = len(LENGTHS)
  same = batch(jax.random.key(3), np.repeat(x[-1:], n, 0), np.full(n, T_PAD))
  assert not np.allclose(same[0], same[1])


def test_random_parameters_have_their_distributions():
  spec = augment.view_spec(small_config(), 'aggressive')
  n = 4000
  params = sample_params_batch(keys(n, seed=11), spec)
  sigma = math.sqrt(0.25 / n)
  filtered = np.mean(params.smooth)
  dropped = np.asarray(params.keep).min(axis=1) == 0
  assert abs(filtered - 0.5) < 4 * sigma
  assert abs(dropped.mean() - 0.5) < 4 * sigma
  left = np.asarray(params.keep)[dropped][:, spec.layout.left[0]] == 0
  assert abs(left.mean() - 0.5) < 4 * math.sqrt(0.25 / dropped.sum())
  shifts = np.asarray(params.shift)
  assert shifts.min() == 0 and shifts.max() == 150
  rates = np.asarray(params.rate)
  assert 0.7 <= rates.min() < 0.71 and 1.29 < rates.max() <= 1.3


@pytest.mark.parametrize('preset,multi_view,views,switched_off', [
    ('byol_conservative', False, ('conservative',) * 2, None),
    ('byol_aggressive', False, ('aggressive',) * 2, None),
    ('no_shear', True, ('aggressive', 'conservative'), 'shear'),
    ('no_filter', True, ('aggressive', 'conservative'), 'filter'),
    ('no_shift', True, ('aggressive', 'conservative'), 'shift'),
    ('no_resample', True, ('aggressive', 'conservative'), 'resample'),
    ('no_drop', True, ('aggressive', 'conservative'), 'drop'),
    ('no_mvs', False, ('aggressive', 'conservative'), None),
    ('mvs_aggressive', True, ('aggressive',) * 2, None),
    ('full', True, ('aggressive', 'conservative'), None),
])
def test_ablation_presets(preset, multi_view, views, switched_off):
  c = ablations.get_config(preset)
  assert c.data.multi_view == multi_view
  assert (c.augment.view1, c.augment.view2) == views
  for name in ('shear', 'filter', 'shift', 'resample', 'drop'):
    assert c.augment[name] == (name != switched_off)
  assert set(ablations.PRESETS) == {
      'byol_conservative', 'byol_aggressive', 'no_shear', 'no_filter',
      'no_shift', 'no_resample', 'no_drop', 'no_mvs', 'mvs_aggressive', 'full'}
