"""BatchNorm with PyTorch-style running statistics and exposed batch moments."""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class BatchNorm(nn.Module):
  """Normalises over all axes but the last (features).

  Running update as PyTorch: new = momentum * old + (1 - momentum) * batch,
  with the biased batch variance. In train mode, when the 'batch_moments'
  collection is mutable, the batch mean and (biased) variance are also stored
  there under the same names as in 'batch_stats' ('mean', 'var'): the BYOL
  target's momentum BN (paper eq. 4) is fed from them. Nothing is written while
  initialising, so `init` returns 'params' and 'batch_stats' only.
  Statistics are float32 whatever the input dtype; no cross-device sync.
  """
  momentum: float = 0.9
  epsilon: float = 1e-5
  dtype: Any = None  # output dtype; None = the input's

  @nn.compact
  def __call__(self, x, use_running_average: bool):
    features = x.shape[-1]
    scale = self.param('scale', nn.initializers.ones, (features,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (features,), jnp.float32)
    running_mean = self.variable('batch_stats', 'mean', jnp.zeros, (features,),
                                 jnp.float32)
    running_var = self.variable('batch_stats', 'var', jnp.ones, (features,),
                                jnp.float32)
    x32 = x.astype(jnp.float32)
    if use_running_average:
      mean, var = running_mean.value, running_var.value
    else:
      axes = tuple(range(x.ndim - 1))
      mean = jnp.mean(x32, axes)
      # One pass over x (E[x^2] - E[x]^2): activations are large, reads cost.
      var = jnp.maximum(jnp.mean(jnp.square(x32), axes) - jnp.square(mean), 0.0)
      if not self.is_initializing():
        m = self.momentum
        running_mean.value = m * running_mean.value + (1 - m) * mean
        running_var.value = m * running_var.value + (1 - m) * var
        if self.is_mutable_collection('batch_moments'):
          self.put_variable('batch_moments', 'mean', mean)
          self.put_variable('batch_moments', 'var', var)
    mul = scale * jax.lax.rsqrt(var + self.epsilon)
    y = x32 * mul + (bias - mean * mul)
    return y.astype(self.dtype or x.dtype)
