"""PKU-MMD II (paper section 4.1): `xsub`; 4800 pretraining epochs (section 4.2)."""
from configs import ablations
from configs import base
from configs import protocols


def xsub(c):
  c.data.split = 'xsub'


def cpu(c):
  """2-core CPU smoke scale: narrow encoder, 100 epochs."""
  base.cpu(c)
  c.pretrain.epochs = 100


PRESETS = {'xsub': xsub, 'cpu': cpu,
           **ablations.PRESETS, **protocols.PRESETS}


def get_config(arg='xsub'):
  c = base.get_config()
  c.data.dataset = 'pku_mmd2'
  c.data.num_classes = 41
  c.pretrain.epochs = 4800
  return base.apply_presets(c, arg, PRESETS)
