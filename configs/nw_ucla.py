"""Northwestern-UCLA (not in the paper; same recipe): `xview` = views 1, 2 -> 3."""
from configs import ablations
from configs import base
from configs import protocols


def xview(c):
  c.data.split = 'xview'


def cpu(c):
  """2-core CPU scale for benchmarks/nw_ucla.py: narrow encoder, short runs.

  Sized so that the benchmark's three pretraining runs, five probes and the
  supervised baseline fit in 40 minutes on 2 cores (a pretraining step of
  batch 64 takes ~1.2 s there): 25 epochs = 400 steps per pretraining run.
  """
  base.cpu(c)
  c.data.num_frames = 52
  c.pretrain.epochs = 25
  c.supervised.epochs = 30  # batch 32: 960 steps
  c.supervised.batch_size = 32
  c.supervised.lr_decay_epochs = (21, 26)


PRESETS = {'xview': xview, 'cpu': cpu,
           **ablations.PRESETS, **protocols.PRESETS}


def get_config(arg='xview'):
  c = base.get_config()
  c.data.dataset = 'nw_ucla'
  c.data.layout = 'kinect_v1_20'
  c.data.num_classes = 10
  c.data.num_persons = 1
  c.data.max_frames = 208  # NW-UCLA's longest sequence has 201 frames.
  return base.apply_presets(c, arg, PRESETS)
