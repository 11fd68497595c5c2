"""The ST-GCN encoder (Yan et al. 2018).

Internal activation layout: (V, B, T, C) with B = N * M (persons folded into
the batch), joints outermost. Why: the hot ops become plain matmuls/convs on
free reshapes:
  * graph aggregation over joints is ONE matmul (K*V, V) @ (V, B*T*C), and
    the 1x1 conv is one matmul (V*B*T, K*C_in) @ (K*C_in, C_out) after moving
    K next to C_in (the only transpose inside a block);
  * the temporal conv is a 1-D conv on (V*B, T, C) ('NWC'), which XLA:CPU runs
    near matmul peak forward and backward (a (9,1) 2-D conv's backward runs at
    about half); outputs shorter than the kernel use a banded matmul instead
    (`_temporal_conv`);
  * BN is a reduction over all axes but the last.
See `_graph_conv` for the timings that chose this over other orders.

Init (`weight_init`, config model.init): 'he' (default): conv/dense kernels
He-normal (fan-in: every conv is followed by BN and ReLU), BN scale 1;
'reference' is the reference ST-GCN's weights_init: kernels N(0, 0.02), BN
scale N(1, 0.02). Both: biases 0, BN bias 0, edge importance 1 (as the
reference). The paper does not say which it used.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from byol_skeleton.data import skeletons
from byol_skeleton.model import graph
from byol_skeleton.model import layers

# (output channels at width 1, temporal stride) of the 10 ST-GCN blocks.
BLOCKS = ((64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1),
          (256, 2), (256, 1), (256, 1))
TEMPORAL_KERNEL = 9
# How the per-person features of a sequence become one: 'all' averages every
# person slot, as the reference ST-GCN (an absent person is an all-zero slot);
# 'present' averages only the persons whose input is not all zero.
PERSON_POOLS = ('all', 'present')

_kernel_init = nn.initializers.variance_scaling(2.0, 'fan_in', 'normal')
# Initialisations (STGCN.weight_init; not `init`, which is Module.init): 'he'
# above, or the reference ST-GCN's.
INITS = ('he', 'reference')
REFERENCE_STD = 0.02


def _reference_scale_init(key, shape, dtype=jnp.float32):
  """BN scale ~ N(1, 0.02), as the reference ST-GCN's weights_init."""
  return 1 + nn.initializers.normal(REFERENCE_STD)(key, shape, dtype)


def initializers(init: str):
  """(kernel initializer, BN scale initializer) of an `INITS` name."""
  if init == 'he':
    return _kernel_init, nn.initializers.ones
  if init == 'reference':
    return nn.initializers.normal(REFERENCE_STD), _reference_scale_init
  raise ValueError(f'Unknown weight_init {init!r}; expected one of {INITS}')


def block_channels(width: float) -> tuple[int, ...]:
  """Output channels of every block; the last is the feature dimension."""
  if width <= 0:
    raise ValueError(f'model width must be positive, got {width}')
  return tuple(max(1, round(c * width)) for c, _ in BLOCKS)


@jax.custom_vjp
def _graph_conv(x, kernel, bias, adjacency):
  """sum_k A_k^T (x W_k + b_k) over joints, in the (V, B, T, C) layout.

  Equal to the reference 1x1 conv to K*C_out followed by
  einsum('nkctv,kvw->nctw'), reordered: aggregate the C_in input channels over
  joints first (one (K*V, V) matmul), move K next to C_in, then one matmul
  K*C_in -> C_out. The conv bias goes through the aggregation as b_k times the
  column sums of A_k.

  Why this order, fwd+bwd of the whole encoder on the 'paper' shape
  (N=8, T=150, M=2, width 1), best wall / best CPU seconds on the shared
  2-core machine (other jobs running, so +-15%):
    this (one K*C_in matmul after a transpose of the aggregate): 3.7 s / 6.7
    K separate (rows, C_in) @ W_k matmuls summed, no transpose:  3.9 s / 7.4
    the reference order (conv to K*C_out, then contract (k, v)): graph conv
      alone 1.5x slower than either of the above.
  Also tried, no gain: a custom kernel gradient for the temporal conv (one
  matmul per tap, to avoid XLA's transposed copies): 4.1 s.

  The gradient is written by hand so that the aggregate z (K times the size
  of x) is not kept for the backward pass: the kernel gradient z^T g is
  computed as x^T (A g), aggregating the output gradient instead. Autodiff
  kept z (XLA merges a rematerialised z back into the forward one): 3 of the
  ~7 activation-sized buffers a block keeps.

  x: (V, B, T, C_in); kernel: (K, C_in, C_out); bias: (K, C_out);
  adjacency: (K, V, V), [k, v, w] = weight of joint v's message to joint w.
  """
  v, b, t, c = x.shape
  k, _, out = kernel.shape
  a_t = jnp.swapaxes(adjacency, 1, 2).reshape(k * v, v).astype(x.dtype)
  z = (a_t @ x.reshape(v, b * t * c)).reshape(k, v * b * t, c)
  z = jnp.swapaxes(z, 0, 1).reshape(v * b * t, k * c)
  y = z @ kernel.reshape(k * c, out)
  joint_bias = jnp.einsum('kvw,ko->wo', adjacency, bias)
  return y.reshape(v, b, t, out) + joint_bias[:, None, None, :].astype(y.dtype)


def _graph_conv_fwd(x, kernel, bias, adjacency):
  return _graph_conv(x, kernel, bias, adjacency), (x, kernel, bias, adjacency)


def _graph_conv_bwd(res, g):
  x, kernel, bias, adjacency = res
  v, b, t, c = x.shape
  k, _, out = kernel.shape
  a = adjacency.astype(g.dtype)
  # A g: the output gradient aggregated back to the sending joints, (v, k*out).
  ag = (a.reshape(k * v, v) @ g.reshape(v, b * t * out)).reshape(
      k, v * b * t, out)
  ag = jnp.swapaxes(ag, 0, 1).reshape(v * b * t, k * out)
  x_rows = x.reshape(v * b * t, c)
  g_kernel = jnp.swapaxes((x_rows.T @ ag).reshape(c, k, out), 0, 1)
  # q_k = g W_k^T, the gradient of z; x and A get theirs through it.
  q = g.reshape(v * b * t, out) @ jnp.transpose(kernel, (2, 0, 1)).reshape(
      out, k * c)
  q = jnp.transpose(q.reshape(v, b * t, k, c), (2, 0, 1, 3)).reshape(
      k * v, b * t * c)
  g_x = jnp.transpose(a, (1, 0, 2)).reshape(v, k * v) @ q
  g_adjacency = (x.reshape(v, b * t * c) @ q.T).reshape(v, k, v)
  g_sum = jnp.sum(g.astype(jnp.float32), axis=(1, 2))  # (w, out)
  g_bias = jnp.einsum('kvw,wo->ko', adjacency, g_sum)
  g_adjacency = (jnp.transpose(g_adjacency, (1, 0, 2)).astype(jnp.float32)
                 + jnp.einsum('ko,wo->kw', bias.astype(jnp.float32),
                              g_sum)[:, None, :])
  return (g_x.reshape(x.shape).astype(x.dtype), g_kernel.astype(kernel.dtype),
          g_bias.astype(bias.dtype), g_adjacency.astype(adjacency.dtype))


_graph_conv.defvjp(_graph_conv_fwd, _graph_conv_bwd)


def _temporal_output_length(t: int, stride: int) -> int:
  return (t - 1) // stride + 1  # with 'same' padding


def _temporal_conv(x, kernel, bias, stride):
  """(9, 1) conv over time with 'same' padding: (V, B, T, C) -> (V, B, T', O).

  A 1-D convolution, except when the output is shorter than the kernel: then
  one matmul with a banded weight. Why: XLA swaps the operands of a
  convolution whose window is longer than its input, and the swapped
  convolution is slow on CPU. At width 0.125 and 8 frames (blocks 8-10 of a
  32-frame input, batch 128): 72 ms forward and 145 ms with gradients,
  against 2.4 and 8 ms as a banded matmul; it was 57 % of the demo's step.
  With longer outputs the banded matmul does T/9 times the work and loses.
  """
  if _temporal_output_length(x.shape[2], stride) < kernel.shape[0]:
    return _temporal_conv_banded(x, kernel, bias, stride)
  return _temporal_conv_xla(x, kernel, bias, stride)


def _temporal_conv_xla(x, kernel, bias, stride):
  """As a 1-D conv on (V*B, T, C) ('NWC')."""
  v, b, t, c = x.shape
  pad = (kernel.shape[0] - 1) // 2
  y = jax.lax.conv_general_dilated(
      x.reshape(v * b, t, c), kernel, (stride,), [(pad, pad)],
      dimension_numbers=('NWC', 'WIO', 'NWC'))
  return (y + bias).reshape(v, b, y.shape[1], kernel.shape[-1])


def _temporal_conv_banded(x, kernel, bias, stride):
  """As (V*B, T*C) @ (T*C, T'*O): the weight holds tap s - stride*t + pad
  of the kernel at block (s, t), and zeros where that tap does not exist."""
  v, b, t, c = x.shape
  size, _, out = kernel.shape
  t_out = _temporal_output_length(t, stride)
  tap = (np.arange(t)[:, None] - stride * np.arange(t_out)[None, :]
         + (size - 1) // 2)  # (T, T')
  exists = (tap >= 0) & (tap < size)
  weight = jnp.where(exists[:, :, None, None],
                     kernel[np.clip(tap, 0, size - 1)], 0)  # (T, T', C, O)
  weight = jnp.swapaxes(weight, 1, 2).reshape(t * c, t_out * out)
  y = x.reshape(v * b, t * c) @ weight.astype(x.dtype)
  return y.reshape(v, b, t_out, out) + bias


class STGCNBlock(nn.Module):
  """GCN -> BN -> ReLU -> TCN -> BN -> dropout -> + residual -> ReLU."""
  features: int
  stride: int = 1
  residual: bool = True
  dropout: float = 0.0
  dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  weight_init: str = 'he'  # one of INITS
  bn_groups: int = 1  # ghost-BN groups along the batch axis (layers.BatchNorm)

  @nn.compact
  def __call__(self, x, adjacency, train: bool):
    """x: (V, B, T, C_in) -> (V, B, ceil(T / stride), features)."""
    c_in, out, dtype = x.shape[-1], self.features, self.dtype
    k = adjacency.shape[0]
    kernel_init, scale_init = initializers(self.weight_init)
    importance = self.param('edge_importance', nn.initializers.ones,
                            adjacency.shape, jnp.float32)
    gcn_kernel = self.param('gcn_kernel', kernel_init, (k, c_in, out),
                            jnp.float32)
    gcn_bias = self.param('gcn_bias', nn.initializers.zeros, (k, out),
                          jnp.float32)
    tcn_kernel = self.param('tcn_kernel', kernel_init,
                            (TEMPORAL_KERNEL, out, out), jnp.float32)
    tcn_bias = self.param('tcn_bias', nn.initializers.zeros, (out,),
                          jnp.float32)
    bn = lambda name, relu=False: layers.BatchNorm(
        self.bn_momentum, dtype=dtype, relu=relu, scale_init=scale_init,
        groups=self.bn_groups, batch_axis=1, name=name)

    h = _graph_conv(x.astype(dtype), gcn_kernel.astype(dtype),
                    gcn_bias.astype(dtype), adjacency * importance)
    h = bn('gcn_bn', relu=True)(h, not train)
    h = _temporal_conv(h, tcn_kernel.astype(dtype), tcn_bias.astype(dtype),
                       self.stride)
    h = bn('tcn_bn')(h, not train)
    h = nn.Dropout(self.dropout)(h, deterministic=not train)
    if not self.residual:
      return layers.relu(h)
    if c_in == out and self.stride == 1:
      res = x
    else:
      res = nn.Dense(out, dtype=dtype, kernel_init=kernel_init,
                     name='residual_conv')(x[:, :, ::self.stride])
      res = bn('residual_bn')(res, not train)
    return layers.relu(h + res.astype(h.dtype))


class STGCN(nn.Module):
  """ST-GCN encoder: (N, T, M, V, C) skeletons -> (N, block_channels[-1])."""
  layout: str
  width: float = 1.0
  partition: str = 'reference'
  dropout: float = 0.0
  dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  person_pool: str = 'all'
  weight_init: str = 'he'  # one of INITS
  # BN moments over groups of this many sequences of a device's batch (ghost
  # BN); 0: over the device's whole batch. See layers.num_groups.
  bn_group_size: int = 0

  @nn.compact
  def __call__(self, x, train: bool):
    layout = skeletons.get_layout(self.layout)
    if self.person_pool not in PERSON_POOLS:
      raise ValueError(f'Unknown person_pool {self.person_pool!r}; expected '
                       f'one of {PERSON_POOLS}')
    _, scale_init = initializers(self.weight_init)  # also checks the name
    if x.ndim != 5 or x.shape[3] != layout.num_joints:
      raise ValueError(
          f'STGCN expects (N, T, M, V={layout.num_joints}, C) input for layout '
          f'{self.layout!r}, got shape {x.shape}')
    n, t, m, v, c = x.shape
    groups = layers.num_groups(n, self.bn_group_size)
    # Read before the input BN, which maps an absent person's zeros to a
    # constant: (N, M) weights of the persons in the final mean.
    weights = (jnp.any(x != 0, axis=(1, 3, 4)).astype(jnp.float32)
               if self.person_pool == 'present' else jnp.ones((n, m)))
    adjacency = jnp.asarray(graph.spatial_partition(layout, self.partition))
    # Input BN over the V*C channels, persons folded into the batch.
    x = layers.BatchNorm(self.bn_momentum, dtype=self.dtype,
                         scale_init=scale_init, groups=groups, name='data_bn')(
        x.reshape(n, t, m, v * c), not train)
    # Sequence-major (n, m) rows: BN groups of sequences stay contiguous.
    h = x.reshape(n, t, m, v, c).transpose(3, 0, 2, 1, 4).reshape(
        v, n * m, t, c)
    for i, (features, (_, stride)) in enumerate(
        zip(block_channels(self.width), BLOCKS)):
      h = STGCNBlock(features, stride, residual=i > 0, dropout=self.dropout,
                     dtype=self.dtype, bn_momentum=self.bn_momentum,
                     weight_init=self.weight_init, bn_groups=groups,
                     name=f'block{i + 1}')(h, adjacency, train)
    # Global average pool over joints and time, then mean over persons.
    h = jnp.mean(h.astype(jnp.float32), axis=(0, 2)).reshape(n, m, -1)
    return (jnp.einsum('nmc,nm->nc', h, weights)
            / jnp.maximum(weights.sum(axis=1), 1.0)[:, None])
