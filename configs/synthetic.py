"""The embedded procedurally generated dataset (data_prep/synthetic.py).

`demo` is what `./run.sh` runs; `tiny` is the scale of the end-to-end tests;
`cpu` is `base.cpu` for 30 epochs, with the paper's rates.
"""
from configs import ablations
from configs import base
from configs import protocols


def xsub(c):
  c.data.split = 'xsub'


def cpu(c):
  base.cpu(c)
  c.pretrain.epochs = 30


def demo(c):
  """What `./run.sh` runs on a 2-core CPU within 10 minutes.

  BYOL learns the first few directions of its representation one after
  another, and needs hundreds to thousands of steps before its encoder beats
  a random one (docs/design.md, "Budgets"); every choice below buys steps. A
  narrow encoder (0.125x) sees whole recordings (16 frames, 0.7-1.3x
  resampled, at 10 frames/s) of the actor alone: without the partner of kick
  and punch a step costs half, and BYOL no longer settles first on the
  partner's presence, a direction that needs no learning. The rates depart
  from the paper's as `base.short_schedule` says; with them seeds 0-3 all
  end above their random encoders (docs/results.md, "Across seeds").
  """
  base.cpu(c)
  base.short_schedule(c)
  c.model.width = 0.125
  c.data.num_persons = 1
  c.data.num_frames = 16
  c.data.temporal_view = 'crop'  # its measured results are with crops
  c.pretrain.batch_size = 64
  c.pretrain.epochs = 400  # 2,000 steps of 64 of the 350 train recordings
  c.pretrain.knn_every_epochs = 40  # kNN every 200 steps
  c.linear.epochs = 8
  c.linear.batch_size = 64
  c.linear.lr_decay_epochs = (5, 7)


def tiny(c):
  """Seconds per phase: the end-to-end tests' scale."""
  base.cpu(c)
  c.model.width = 0.125
  c.model.projector_hidden = 64
  c.model.predictor_hidden = 64
  c.model.projector_dim = 32
  c.data.num_frames = 16
  c.pretrain.batch_size = 16
  c.model.bn_group_size = 0  # each device's whole batch, on any device count
  c.pretrain.epochs = 1
  c.pretrain.warmup_epochs = 0
  c.pretrain.log_every_steps = 2
  c.pretrain.checkpoint_every_steps = 4
  c.linear.epochs = 2
  c.linear.batch_size = 16


PRESETS = {'xsub': xsub, 'cpu': cpu, 'demo': demo, 'tiny': tiny,
           **ablations.PRESETS, **protocols.PRESETS}


def get_config(arg='xsub'):
  c = base.get_config()
  # Recordings are at most 40 frames (data_prep/synthetic.py).
  c.data.max_frames = 48
  c.visualize.fps = 10.0  # the recordings' rate (data_prep/synthetic.py)
  return base.apply_presets(c, arg, PRESETS)
