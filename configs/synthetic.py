"""The embedded procedurally generated dataset (data_prep/synthetic.py).

`demo` is what `./run.sh` runs; `tiny` is the scale of the end-to-end tests.
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

  A narrow encoder (0.125x) sees whole recordings (32 frames at 10 frames/s)
  for 160 steps. Two departures from the paper's recipe, both because the run
  is a few hundred steps instead of tens of thousands (README, "Synthetic
  data (session 6)"): the learning rate is 10x its linear scaling (0.25 at
  batch 64, not 0.025; at 1x and at 20x the features collapsed onto one
  direction), and the target EMA starts at 0.9, not 0.99 (a target that
  remembers ~10 steps, not ~100 of 160). It does not beat random features:
  session 7 measured 3 min 43 s and linear top-1 43.3 % pretrained vs
  74.2 % random, and seeds 1-3 lose by 9-17 points (README, "Synthetic data
  (session 7)"); session 6's 78.9 % vs 74.9 % was one lucky trajectory.
  """
  base.cpu(c)
  c.model.width = 0.125
  c.model.projector_hidden = 512
  c.model.predictor_hidden = 512
  c.data.num_frames = 32
  c.pretrain.batch_size = 64
  c.pretrain.base_lr = 2.0  # paper 0.2
  c.pretrain.tau_base = 0.9  # paper 0.99
  c.pretrain.epochs = 32  # 160 steps of 64 of the 350 train recordings
  c.pretrain.knn_every_epochs = 8  # kNN at steps 0, 40, 80, 120, 160
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
  return base.apply_presets(c, arg, PRESETS)
