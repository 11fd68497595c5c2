"""Presets for the rows of the paper's ablation study (Table 2).

Each preset mutates a ConfigDict. Dataset config files merge `PRESETS` into
their own, so `--config=configs/ntu60.py:xsub,no_shear` works; this file alone
gives the base config: `--config=configs/ablations.py:no_mvs`.
"""
from configs import base


def _views(view1, view2):
  def apply(config):
    config.augment.view1 = view1
    config.augment.view2 = view2
  return apply


def _without(transform):
  def apply(config):
    config.augment[transform] = False
  return apply


def _baseline_byol(pipeline):
  """Classical BYOL: one viewpoint, both views from one pipeline."""
  def apply(config):
    config.data.multi_view = False
    _views(pipeline, pipeline)(config)
  return apply


def _no_mvs(config):
  config.data.multi_view = False


def _full(config):
  """The method as is: multi-view, asymmetric pipelines, all transforms."""
  del config


PRESETS = {
    'byol_conservative': _baseline_byol('conservative'),
    'byol_aggressive': _baseline_byol('aggressive'),
    'no_shear': _without('shear'),
    'no_filter': _without('filter'),
    'no_shift': _without('shift'),
    'no_resample': _without('resample'),  # Both pipelines.
    'no_drop': _without('drop'),
    'no_mvs': _no_mvs,
    'mvs_aggressive': _views('aggressive', 'aggressive'),
    'full': _full,
}


def get_config(arg=None):
  return base.apply_presets(base.get_config(), arg, PRESETS)
