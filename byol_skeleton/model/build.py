"""Every network of the project, built from a config in this one place."""
from absl import logging
import jax.numpy as jnp

from byol_skeleton import errors
from byol_skeleton.data import skeletons
from byol_skeleton.model import heads
from byol_skeleton.model import layers
from byol_skeleton.model import stgcn


def encoder_kwargs(config, width: float | None = None) -> dict:
  """stgcn.STGCN's arguments for the config, optionally at another width."""
  m = config.model
  if m.init not in stgcn.INITS:
    raise errors.UserError(
        f'config.model.init={m.init!r}; expected one of {stgcn.INITS} (he: '
        "He-normal kernels; reference: the reference ST-GCN's N(0, 0.02))")
  if not isinstance(m.bn_group_size, int) or m.bn_group_size < 0:
    raise errors.UserError(
        f'config.model.bn_group_size={m.bn_group_size!r}; expected a number of '
        "sequences >= 1, or 0 for BN over each device's whole batch")
  return dict(layout=config.data.layout,
              width=m.width if width is None else width,
              partition=m.partition, dropout=m.dropout,
              dtype=jnp.dtype(m.dtype), person_pool=m.person_pool,
              weight_init=m.init, bn_group_size=m.bn_group_size)


def check_bn_groups(config, per_device_batch: int, field: str):
  """A training batch's BN groups (layers.num_groups): an error unless whole
  groups fit a device; a warning where one group is capped at a device's
  smaller batch."""
  group = config.model.bn_group_size
  if group > per_device_batch:
    logging.warning(
        'model.bn_group_size=%d is more than the %d sequences each device gets '
        "from %s: BN normalises over each device's %d.", group,
        per_device_batch, field, per_device_batch)
  try:
    layers.num_groups(per_device_batch, group)
  except ValueError as e:
    raise errors.UserError(
        f"{field} gives each device {per_device_batch} sequences, which do not "
        f'split into BN groups of model.bn_group_size={group}; choose a batch '
        f'whose per-device share is a multiple of {group}, or another group '
        'size (0: each device\'s whole batch).') from e


def encoder(config, width: float | None = None) -> stgcn.STGCN:
  return stgcn.STGCN(**encoder_kwargs(config, width))


def byol_network(config) -> heads.BYOLNetwork:
  m = config.model
  return heads.BYOLNetwork(
      encoder_kwargs=encoder_kwargs(config),
      projector_hidden=m.projector_hidden, projector_dim=m.projector_dim,
      predictor_hidden=m.predictor_hidden)


def classifier(config, width: float | None = None,
               standardize_features: bool = False) -> heads.Classifier:
  """The config's classifier: STGCN ('encoder') + Dense ('head')."""
  return heads.Classifier(num_classes=config.data.num_classes,
                          encoder_kwargs=encoder_kwargs(config, width),
                          standardize_features=standardize_features)


def input_channels(config) -> int:
  return 6 if config.data.use_bones else 3


def sample_input(config):
  """A one-example batch of the network's input shape, for initialisation."""
  layout = skeletons.get_layout(config.data.layout)
  return jnp.zeros((1, config.data.num_frames, config.data.num_persons,
                    layout.num_joints, input_channels(config)),
                   jnp.dtype(config.model.dtype))
