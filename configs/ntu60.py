"""NTU RGB+D 60 (paper section 4.1): `xsub` (cross-subject), `xview` (cross-view)."""
from configs import ablations
from configs import base
from configs import protocols


def xsub(c):
  c.data.split = 'xsub'


def xview(c):
  c.data.split = 'xview'


def cpu(c):
  """2-core CPU smoke scale: narrow encoder, 20 epochs."""
  base.cpu(c)
  c.pretrain.epochs = 20


PRESETS = {'xsub': xsub, 'xview': xview, 'cpu': cpu,
           **ablations.PRESETS, **protocols.PRESETS}


def get_config(arg='xsub'):
  c = base.get_config()
  c.data.dataset = 'ntu60'
  c.data.num_classes = 60
  return base.apply_presets(c, arg, PRESETS)
