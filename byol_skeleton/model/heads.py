"""Heads on the ST-GCN encoder: BYOL's projector/predictor and the classifier.

`BYOLNetwork` is the online network of paper section 3.1, `Classifier` the
network of every evaluation protocol. Both keep the encoder's variables under
'encoder', exactly an STGCN's tree, so pretrained variables drop in.
"""
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from byol_skeleton.model import layers
from byol_skeleton.model import stgcn

FEATURE_NORM_MOMENTUM = 0.9  # the running statistics' momentum, as the encoder's BN


class MLPHead(nn.Module):
  """Dense -> BN -> ReLU -> Dense: BYOL's projector and predictor."""
  hidden: int
  out: int
  dtype: Any = jnp.float32
  bn_momentum: float = 0.9
  bn_group_size: int = 0  # as stgcn.STGCN's

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.Dense(self.hidden, dtype=self.dtype)(x)
    groups = layers.num_groups(x.shape[0], self.bn_group_size)
    x = layers.BatchNorm(self.bn_momentum, dtype=self.dtype, groups=groups)(
        x, not train)
    return nn.Dense(self.out, dtype=self.dtype)(nn.relu(x))


class Classifier(nn.Module):
  """STGCN encoder + Dense(num_classes).

  Parameters live under 'encoder' (exactly an STGCN's tree, so pretrained
  encoder variables drop in) and 'head'. `__call__` returns logits;
  `model.apply(variables, x, train, method=Classifier.features)` returns the
  encoder's features (N, block_channels(width)[-1]) and
  `method=Classifier.classify` the logits of given features.

  standardize_features: the head sees the features through a BatchNorm
  without scale or shift (batch statistics in training, running ones at test;
  statistics under 'feature_norm'). At test time that is a fixed affine map,
  so the head stays a linear classifier of the features, but its learning
  rate no longer depends on the encoder's feature scale.
  """
  num_classes: int
  encoder_kwargs: dict  # keyword arguments of stgcn.STGCN
  standardize_features: bool = False

  def setup(self):
    self.encoder = stgcn.STGCN(**self.encoder_kwargs)
    if self.standardize_features:
      self.feature_norm = nn.BatchNorm(momentum=FEATURE_NORM_MOMENTUM,
                                       use_scale=False, use_bias=False)
    self.head = nn.Dense(self.num_classes)

  def features(self, x, train: bool):
    return self.encoder(x, train)

  def classify(self, features, train: bool):
    if self.standardize_features:
      features = self.feature_norm(features.astype(jnp.float32),
                                   use_running_average=not train)
    return self.head(features)

  def __call__(self, x, train: bool):
    return self.classify(self.features(x, train), train)


class BYOLNetwork(nn.Module):
  """Encoder f, projector g and predictor q of the online network."""
  encoder_kwargs: dict  # keyword arguments of stgcn.STGCN
  projector_hidden: int = 4096
  projector_dim: int = 256
  predictor_hidden: int = 4096

  def setup(self):
    self.encoder = stgcn.STGCN(**self.encoder_kwargs)
    group_size = self.encoder_kwargs.get('bn_group_size', 0)
    self.projector = MLPHead(self.projector_hidden, self.projector_dim,
                             bn_group_size=group_size)
    self.predictor = MLPHead(self.predictor_hidden, self.projector_dim,
                             bn_group_size=group_size)

  def project(self, x, train: bool):
    """z = g(f(x)): what the target network computes."""
    return self.projector(self.encoder(x, train), train)

  def __call__(self, x, train: bool):
    """q(g(f(x))): the online prediction."""
    return self.predictor(self.project(x, train), train)
