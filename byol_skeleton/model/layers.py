"""BatchNorm with PyTorch-style running statistics and exposed batch moments,
and a ReLU, both with hand-written gradients that keep few activations.

Why hand-written gradients: autodiff of the textbook BatchNorm keeps x**2 (from
the variance) beside x, and `jax.nn.relu` keeps a float mask per call. In an
ST-GCN block that is 4-5 extra activation-sized buffers of the ~11 the
backward pass keeps (measured with `jax.ad_checkpoint.print_saved_residuals`).
Here BatchNorm keeps only its input, and ReLU its output, which the next layer
keeps anyway.
"""
import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


@jax.custom_vjp
def relu(x):
  return jnp.maximum(x, 0)


def _relu_fwd(x):
  y = relu(x)
  return y, y


def _relu_bwd(y, g):
  return (jnp.where(y > 0, g, 0).astype(g.dtype),)


relu.defvjp(_relu_fwd, _relu_bwd)


def _moments(x32):
  axes = tuple(range(x32.ndim - 1))
  mean = jnp.mean(x32, axes)
  # One pass over x (E[x^2] - E[x]^2): activations are large, reads cost.
  var = jnp.maximum(jnp.mean(jnp.square(x32), axes) - jnp.square(mean), 0.0)
  return mean, var


def _normalise(x32, mean, var, scale, bias, epsilon, apply_relu):
  mul = scale * jax.lax.rsqrt(var + epsilon)
  y = x32 * mul + (bias - mean * mul)
  return jnp.maximum(y, 0) if apply_relu else y


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def batch_norm_train(x, scale, bias, epsilon, apply_relu, out_dtype):
  """Normalises x with its own batch moments over all axes but the last.

  Returns (y, mean, var): y (optionally followed by a ReLU) in `out_dtype`,
  and the float32 batch mean and biased variance. Differentiable in all three
  outputs.
  """
  x32 = x.astype(jnp.float32)
  mean, var = _moments(x32)
  y = _normalise(x32, mean, var, scale, bias, epsilon, apply_relu)
  return y.astype(out_dtype), mean, var


def _batch_norm_fwd(x, scale, bias, epsilon, apply_relu, out_dtype):
  y, mean, var = batch_norm_train(x, scale, bias, epsilon, apply_relu,
                                  out_dtype)
  return (y, mean, var), (x, scale, mean, var, y if apply_relu else None)


def _batch_norm_bwd(epsilon, apply_relu, out_dtype, res, cotangents):
  del out_dtype
  x, scale, mean, var, y = res
  g, g_mean, g_var = cotangents
  g = g.astype(jnp.float32)
  if apply_relu:
    g = jnp.where(y > 0, g, 0.0)
  axes = tuple(range(x.ndim - 1))
  n = x.size // x.shape[-1]
  rstd = jax.lax.rsqrt(var + epsilon)
  centred = x.astype(jnp.float32) - mean
  g_bias = jnp.sum(g, axes)
  g_scale = jnp.sum(g * centred, axes) * rstd
  # d/dx of scale * (x - mean) * rstd through x, mean and var, plus the direct
  # paths of the returned mean and var (mean: 1/n each, var: 2 (x - mean)/n).
  mul = scale * rstd
  g_x = (mul * g - (mul * g_bias - g_mean) / n
         + centred * ((2 * g_var - mul * rstd * g_scale) / n))
  return g_x.astype(x.dtype), g_scale, g_bias


batch_norm_train.defvjp(_batch_norm_fwd, _batch_norm_bwd)


def num_groups(batch: int, group_size: int) -> int:
  """Ghost-BN groups in a device's batch of `batch` sequences.

  group_size 0 means one group; a group larger than the batch is capped at
  the batch (model/build.py warns about it once per run).
  """
  if not group_size or group_size >= batch:
    return 1
  if batch % group_size:
    raise ValueError(f'A device batch of {batch} sequences does not split '
                     f'into BN groups of {group_size}.')
  return batch // group_size


def grouped_batch_norm_train(x, scale, bias, epsilon, apply_relu, out_dtype,
                             groups: int, batch_axis: int):
  """batch_norm_train over `groups` equal, contiguous slices of `batch_axis`.

  Each slice is normalised with its own moments (ghost BN); the returned
  moments are the groups' means of them, as devices average theirs.
  """
  shape = x.shape
  size = shape[batch_axis]
  grouped = x.reshape(shape[:batch_axis] + (groups, size // groups)
                      + shape[batch_axis + 1:])
  y, mean, var = jax.vmap(
      lambda g: batch_norm_train(g, scale, bias, epsilon, apply_relu,
                                 out_dtype),
      in_axes=batch_axis, out_axes=(batch_axis, 0, 0))(grouped)
  return y.reshape(shape), jnp.mean(mean, 0), jnp.mean(var, 0)


class BatchNorm(nn.Module):
  """Normalises over all axes but the last (features).

  Running update as PyTorch: new = momentum * old + (1 - momentum) * batch,
  with the biased batch variance. In train mode, when the 'batch_moments'
  collection is mutable, the batch mean and (biased) variance are also stored
  there under the same names as in 'batch_stats' ('mean', 'var'): the BYOL
  target's momentum BN (paper eq. 4) is fed from them. Nothing is written while
  initialising, so `init` returns 'params' and 'batch_stats' only.
  Statistics are float32 whatever the input dtype; no cross-device sync.
  `groups` > 1 splits `batch_axis` into that many contiguous groups, each
  normalised with its own moments; the moments stored and used for the
  running statistics are then the groups' means.
  `relu=True` applies a ReLU to the output (fused: one buffer kept for the
  backward pass instead of two). `scale_init` initialises the scale (gamma).
  """
  momentum: float = 0.9
  epsilon: float = 1e-5
  dtype: Any = None  # output dtype; None = the input's
  relu: bool = False
  scale_init: Callable[..., Any] = nn.initializers.ones
  groups: int = 1
  batch_axis: int = 0

  @nn.compact
  def __call__(self, x, use_running_average: bool):
    features = x.shape[-1]
    scale = self.param('scale', self.scale_init, (features,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (features,), jnp.float32)
    running_mean = self.variable('batch_stats', 'mean', jnp.zeros, (features,),
                                 jnp.float32)
    running_var = self.variable('batch_stats', 'var', jnp.ones, (features,),
                                jnp.float32)
    out_dtype = jnp.dtype(self.dtype or x.dtype)
    if use_running_average:
      y = _normalise(x.astype(jnp.float32), running_mean.value,
                     running_var.value, scale, bias, self.epsilon, self.relu)
      return y.astype(out_dtype)
    if self.groups > 1:
      y, mean, var = grouped_batch_norm_train(
          x, scale, bias, self.epsilon, self.relu, out_dtype, self.groups,
          self.batch_axis)
    else:
      y, mean, var = batch_norm_train(x, scale, bias, self.epsilon, self.relu,
                                      out_dtype)
    if not self.is_initializing():
      m = self.momentum
      running_mean.value = m * running_mean.value + (1 - m) * mean
      running_var.value = m * running_var.value + (1 - m) * var
      if self.is_mutable_collection('batch_moments'):
        self.put_variable('batch_moments', 'mean', mean)
        self.put_variable('batch_moments', 'var', var)
    return y
