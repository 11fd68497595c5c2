"""Skeleton augmentations (paper sections 3.2, 3.3, 4.2) as pure JAX functions.

A view is made in two per-sample steps, vmapped over the batch inside the
jitted training step: `sample_params(key, spec)` draws the random parameters
(a `ViewParams`), `apply_view(params, skeleton, length, spec)` applies them.
Keeping them apart lets tests rebuild a view in numpy from the same parameters.
`make_view_fn(config, pipeline)` joins the two for a config.

Order inside a view, and why:
  1. Savitzky-Golay filter over the valid source frames. The noise it removes is
     the sensor's, per captured frame, so the window counts captured frames:
     it runs before resampling changes the frame rate.
  2. Resampling, crop/loop to `num_frames`, cyclic temporal shift. All three
     only move frames, so they are composed as index maps and done as one
     gather with linear interpolation, never building the resampled sequence
     (whose length varies). The shift acts on the `num_frames` window, so the
     paper's offsets 0..150 with 150 frames span one full turn.
  3. Shear, then left/right drop: per-frame linear maps that commute with the
     temporal ones, so they run on the short cropped sequence.
  4. Bones from the augmented joints, so the 6 channels are always joints +
     bones of one skeleton, computed as at test time. A dropped limb thus has
     zero joints and zero bones, except its root's bone, which is minus the
     (kept) parent joint.

2D layouts (`layout.coordinates == 2`, coco17): channels are x, y and the
detector's score. The filter and the shear (eq. 5's 2x2 form) act on x, y
only; the temporal maps and the drop move the score with its joint (a dropped
joint gets score 0, i.e. missing). A bone's third channel is the smaller score
of its two joints, not a difference (`add_bones`).

Edge handling (choices):
  - Filter: scipy's mode='interp'. Interior frames use the centred window; the
    first and last window//2 valid frames take the order-2 polynomial fitted to
    the first / last full window of valid frames. Sequences shorter than the
    window are left unfiltered (there is no full window to fit).
  - Resampling at rate r: L' = max(1, round(L / r)) frames (round half to even)
    at source positions j (L - 1) / (L' - 1), i.e. np.interp at
    np.linspace(0, L - 1, L'): first and last valid frames are kept exactly;
    r > 1 speeds the action up.
  - Temporal view 'resize' (data.temporal_view): the valid frames are first
    stretched so that a segment of a fraction s ~ U[segment_min, 1] of them
    fills the window, L' = max(1, round(num_frames / (s r))), before the same
    crop/loop. The test view (s = r = 1) is then every valid frame
    interpolated to num_frames; a training view is a random segment of s of
    them, played at rate r (looped where s r > 1, as a short recording in
    'crop'). 'crop' (the paper) is L' = round(L / r): num_frames consecutive
    frames of the recording at its own speed.
  - Crop/loop: L' >= num_frames -> num_frames consecutive frames starting at
    floor(crop (L' - num_frames + 1)), crop ~ U[0, 1) in augmented pipelines
    and 0.5 (centre) in 'none'; L' < num_frames -> frame i is frame i mod L'.
  - Only frames below `length` (clipped to [1, T_pad]) are ever read, so
    whatever the padding holds (even NaN) never reaches a view.
"""
import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy import signal

from byol_skeleton.data.skeletons import Layout, get_layout

PIPELINES = ('aggressive', 'conservative', 'none')
TEMPORAL_VIEWS = ('crop', 'resize')


@dataclasses.dataclass(frozen=True)
class ViewSpec:
  """Static description of one pipeline; None switches a transform off."""
  layout: Layout
  num_frames: int
  use_bones: bool
  random_crop: bool
  filter_window: int = 15
  filter_order: int = 2
  filter_prob: float | None = None
  resample_range: tuple[float, float] | None = None
  shift_max: int | None = None
  shear_range: float | None = None
  drop_prob: float | None = None
  # Temporal view 'resize': range of the segment fraction s; None is 'crop'.
  segment_range: tuple[float, float] | None = None


class ViewParams(NamedTuple):
  """Random parameters of one view; None: a transform statically off."""
  rate: jax.Array  # () float: resampling rate; > 1 is faster (fewer frames).
  crop: jax.Array  # () float in [0, 1): crop start as a fraction of the slack.
  shift: jax.Array  # () int: cyclic offset; output frame i is frame i - shift.
  smooth: jax.Array | None = None  # () bool: apply the Savitzky-Golay filter.
  shear: jax.Array | None = None  # (D, D), D spatial channels: S of eq. 5.
  keep: jax.Array | None = None  # (V,) 0/1 joint mask of left/right drop.
  segment: jax.Array | None = None  # () float: 'resize' segment fraction.


def view_spec(config, pipeline: str) -> ViewSpec:
  """The `ViewSpec` of `pipeline` ('aggressive', 'conservative', 'none')."""
  if pipeline not in PIPELINES:
    raise ValueError(
        f'Unknown augmentation pipeline {pipeline!r}; expected one of '
        f'{PIPELINES}')
  a, d = config.augment, config.data
  if a.filter_window % 2 != 1 or a.filter_window <= a.filter_order:
    raise ValueError(
        'config.augment.filter_window must be odd and > filter_order, got '
        f'window={a.filter_window}, order={a.filter_order}')
  if not 0 < a.resample_min <= a.resample_max:
    raise ValueError(
        'config.augment needs 0 < resample_min <= resample_max, got '
        f'[{a.resample_min}, {a.resample_max}]')
  if d.num_frames < 1:
    raise ValueError(f'config.data.num_frames must be >= 1, got {d.num_frames}')
  if d.temporal_view not in TEMPORAL_VIEWS:
    raise ValueError(
        f'config.data.temporal_view={d.temporal_view!r}; expected one of '
        f'{TEMPORAL_VIEWS}')
  if not 0 < a.segment_min <= 1:
    raise ValueError(
        f'config.augment.segment_min must be in (0, 1], got {a.segment_min}')
  segment_range = None
  if d.temporal_view == 'resize':
    segment_range = (1.0, 1.0) if pipeline == 'none' else (a.segment_min, 1.0)
  spec = ViewSpec(
      layout=get_layout(d.layout), num_frames=d.num_frames,
      use_bones=d.use_bones, random_crop=pipeline != 'none',
      filter_window=a.filter_window, filter_order=a.filter_order,
      segment_range=segment_range)
  if pipeline == 'none':
    return spec
  resample = (a.resample_min, a.resample_max) if a.resample else None
  if pipeline == 'conservative':
    return dataclasses.replace(spec, resample_range=resample)
  return dataclasses.replace(
      spec, resample_range=resample,
      filter_prob=a.filter_prob if a.filter else None,
      shift_max=a.shift_max if a.shift else None,
      shear_range=a.shear_range if a.shear else None,
      drop_prob=a.drop_prob if a.drop else None)


def sample_params(key, spec: ViewSpec) -> ViewParams:
  """Draws one view's parameters; each transform has its own subkey, so
  switching one off leaves the draws of the others unchanged."""
  k_rate, k_crop, k_shift, k_smooth, k_shear, k_drop, k_side = (
      jax.random.split(key, 7))
  # Its own fold, so 'crop' views keep the draws they had before 'resize'.
  k_segment = jax.random.fold_in(key, 7)
  rate = jnp.float32(1)
  if spec.resample_range is not None:
    lo, hi = spec.resample_range
    rate = jax.random.uniform(k_rate, minval=lo, maxval=hi)
  crop = jax.random.uniform(k_crop) if spec.random_crop else jnp.float32(0.5)
  shift = jnp.int32(0)
  if spec.shift_max is not None:
    shift = jax.random.randint(k_shift, (), 0, spec.shift_max + 1)
  smooth = None
  if spec.filter_prob is not None:
    smooth = jax.random.bernoulli(k_smooth, spec.filter_prob)
  shear_matrix = None
  if spec.shear_range is not None:
    d = spec.layout.coordinates
    factors = jax.random.uniform(
        k_shear, (d, d), minval=-spec.shear_range, maxval=spec.shear_range)
    shear_matrix = jnp.where(jnp.eye(d, dtype=bool), 1.0, factors)
  keep = None
  if spec.drop_prob is not None:
    left = np.isin(np.arange(spec.layout.num_joints), spec.layout.left)
    right = np.isin(np.arange(spec.layout.num_joints), spec.layout.right)
    side = jnp.where(jax.random.bernoulli(k_side, 0.5), left, right)
    dropped = side & jax.random.bernoulli(k_drop, spec.drop_prob)
    keep = (~dropped).astype(jnp.float32)
  segment = None
  if spec.segment_range is not None:
    lo, hi = spec.segment_range
    segment = jax.random.uniform(k_segment, minval=lo, maxval=hi)
  return ViewParams(rate=rate, crop=crop, shift=shift, smooth=smooth,
                    shear=shear_matrix, keep=keep, segment=segment)


def apply_view(params: ViewParams, skeleton, length, spec: ViewSpec):
  """(T_pad, M, V, 3) with `length` valid frames -> (num_frames, M, V, C)."""
  x = skeleton
  length = jnp.clip(length, 1, x.shape[0])
  if params.smooth is not None:
    smoothed = savgol_filter(x, length, spec.filter_window, spec.filter_order)
    # Only the coordinates: a score is the detector's, not a noisy position.
    spatial = np.arange(x.shape[-1]) < spec.layout.coordinates
    x = jnp.where(params.smooth & spatial, smoothed, x)
  n = spec.num_frames
  if params.segment is None:
    new_length = resampled_length(length, params.rate)
  else:
    new_length = resampled_length(n, params.segment * params.rate)
  j = _crop_or_loop_index(
      _shift_index(jnp.arange(n), params.shift, n), new_length, n, params.crop)
  x = _interpolate(x, *_resample_index(j, length, new_length))
  if params.shear is not None:
    x = shear(x, params.shear)
  if params.keep is not None:
    x = x * params.keep.astype(x.dtype)[:, None]
  if spec.use_bones:
    x = add_bones(x, spec.layout)
  return x


def make_view_fn(config, pipeline: str):
  """fn(key, skeleton (T_pad, M, V, 3), length) -> (num_frames, M, V, C)."""
  spec = view_spec(config, pipeline)

  def view_fn(key, skeleton, length):
    return apply_view(sample_params(key, spec), skeleton, length, spec)

  return view_fn


def augment_batch(view_fn, key, skeletons, lengths):
  """Applies a per-sample `view_fn` to a batch, one subkey per sample."""
  keys = jax.random.split(key, skeletons.shape[0])
  return jax.vmap(view_fn)(keys, skeletons, lengths)


# Single transforms, per sample on (T, M, V, 3).


@functools.lru_cache(maxsize=None)
def _savgol_table(window: int, order: int) -> np.ndarray:
  """Row p: weights of the polynomial fit over a window, evaluated at p."""
  return np.stack([
      signal.savgol_coeffs(window, order, pos=p, use='dot')
      for p in range(window)]).astype(np.float32)


def savgol_filter(x, length, window: int = 15, order: int = 2):
  """Savitzky-Golay smoothing over the first `length` frames, mode='interp'.

  Frame t uses the window starting at clip(t - window//2, 0, length - window)
  and the fit evaluated at t's offset in it, which is the centred filter inside
  and scipy's polynomial edge fit at both ends. Returns x unchanged when
  length < window. Frames from `length` on are unspecified.
  """
  table = jnp.asarray(_savgol_table(window, order), x.dtype)
  t = jnp.arange(x.shape[0])
  start = jnp.maximum(jnp.minimum(t - window // 2, length - window), 0)
  weights = table[jnp.minimum(t - start, window - 1)]  # (T, window)
  # A sum over taps fuses into one loop; an einsum over gathered windows
  # materialised them and took 3-4x longer on CPU.
  per_frame = (-1,) + (1,) * (x.ndim - 1)
  smoothed = sum(weights[:, k].reshape(per_frame) * x[start + k]
                 for k in range(window))
  return jnp.where(length >= window, smoothed, x)


def resampled_length(length, rate):
  """max(1, round(L / r)): valid frames after resampling L frames at rate r.

  For 'resize' views, L is num_frames and r the segment fraction times the
  rate: the recording stretched so that the segment fills the window."""
  return jnp.maximum(1, jnp.round(length / rate).astype(jnp.int32))


def resample(x, length, rate, num_out: int):
  """Linear-interpolation resampling: (frames (num_out, ...), new length).

  Frames from the new length on repeat the last resampled frame.
  """
  new_length = resampled_length(length, rate)
  return _interpolate(
      x, *_resample_index(jnp.arange(num_out), length, new_length)), new_length


def crop_or_loop(x, length, num_frames: int, crop=0.5):
  """Crops (start fraction `crop` of the slack) or loops the valid frames."""
  index = _crop_or_loop_index(jnp.arange(num_frames), length, num_frames, crop)
  return x[index]


def temporal_shift(x, offset):
  """Cyclic shift by `offset` frames (np.roll along time)."""
  n = x.shape[0]
  return x[_shift_index(jnp.arange(n), offset, n)]


def shear(x, matrix):
  """Each joint's D spatial channels p -> S p (eq. 5), S of shape (D, D).

  Channels from D on (a 2D layout's score) are returned unchanged.
  """
  # Broadcast multiply-adds: XLA's CPU dot for a 3-long contraction was ~2x
  # slower.
  d = matrix.shape[0]
  matrix = matrix.astype(x.dtype)
  sheared = sum(x[..., c, None] * matrix[:, c] for c in range(d))
  return jnp.concatenate([sheared, x[..., d:]], axis=-1)


def add_bones(x, layout: Layout):
  """Concatenates bones to the joints: C -> 2C channels.

  A bone's spatial channels are x[v] - x[parent(v)]. A score channel (2D
  layouts) is min(score[v], score[parent(v)]): a bone is as reliable as its
  less certain end, and 0 when either joint is missing (its difference is
  then meaningless); the centre's bone keeps the centre's score.
  """
  # As a (V, V) matrix product, not a gather over joints: with a gather, XLA's
  # CPU backend fused filter, interpolation and bones into one loop of scalar
  # gathers, 30x slower (50 ms for the paper's batch of 8). HIGHEST: no TF32,
  # so the one-hot product is exact.
  parent_of = np.zeros((layout.num_joints,) * 2, np.float32)
  for v, parent in layout.bone_pairs:
    parent_of[v, parent] = 1
  parents = jnp.einsum('uv,...vc->...uc', jnp.asarray(parent_of, x.dtype), x,
                       precision=jax.lax.Precision.HIGHEST)
  d = layout.coordinates
  bones = jnp.concatenate([x[..., :d] - parents[..., :d],
                           jnp.minimum(x[..., d:], parents[..., d:])], axis=-1)
  return jnp.concatenate([x, bones], axis=-1)


# Index maps: output frame index -> frame index of the stage before.


def _shift_index(i, offset, n: int):
  return (i - offset) % n


def _crop_or_loop_index(i, length, num_frames: int, crop):
  slack = length - num_frames
  start = jnp.floor(crop * (slack + 1)).astype(jnp.int32)
  start = jnp.clip(start, 0, jnp.maximum(slack, 0))
  return jnp.where(slack >= 0, start + i, i % length)


def _resample_index(j, length, new_length):
  """Resampled frame j as (lower source frame, upper source frame, weight).

  Exact integer arithmetic, so rate 1 is exactly the identity.
  """
  j = jnp.minimum(j, new_length - 1)
  num = j * (length - 1)
  den = jnp.maximum(new_length - 1, 1)
  lower = num // den
  upper = jnp.minimum(lower + 1, length - 1)
  return lower, upper, (num % den) / den


def _interpolate(x, lower, upper, weight):
  w = weight.astype(x.dtype).reshape(weight.shape + (1,) * (x.ndim - 1))
  return (1 - w) * x[lower] + w * x[upper]
