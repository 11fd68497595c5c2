"""NTU RGB+D 120 (paper section 4.1): `xsub` (cross-subject), `xset` (cross-setup)."""
from configs import ablations
from configs import base
from configs import protocols


def xsub(c):
  c.data.split = 'xsub'


def xset(c):
  c.data.split = 'xset'


def cpu(c):
  """2-core CPU smoke scale: narrow encoder, 10 epochs."""
  base.cpu(c)
  c.pretrain.epochs = 10


PRESETS = {'xsub': xsub, 'xset': xset, 'cpu': cpu,
           **ablations.PRESETS, **protocols.PRESETS}


def get_config(arg='xsub'):
  c = base.get_config()
  c.data.dataset = 'ntu120'
  c.data.num_classes = 120
  return base.apply_presets(c, arg, PRESETS)
