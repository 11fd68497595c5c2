"""Base config: the paper's recipe (sections 4.2-4.5) on the synthetic dataset.

Dataset files (`ntu60.py`, `nw_ucla.py`, ...) start from `get_config()` and add
named presets; `--config=configs/FILE.py:a,b` applies presets a then b.
"""
import ml_collections

# Pretraining recipe, paper section 4.2.
PAPER_BATCH = 512


def get_config():
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.dataset = 'synthetic'
  c.data.split = 'xsub'
  c.data.data_dir = ''  # '' = TFDS default (TFDS_DATA_DIR or ~/tensorflow_datasets).
  c.data.layout = 'ntu25'
  c.data.num_classes = 10
  c.data.num_persons = 2
  c.data.max_frames = 300  # Host-side static pad length; longer sequences are cropped.
  c.data.num_frames = 150  # Frames the network sees (crop or loop), section 4.2.
  c.data.multi_view = True  # Multi-viewpoint sampling, section 3.4.
  c.data.use_bones = True  # Joints + bones, 6 input channels, section 4.2.
  c.data.worker_count = 0  # grain worker processes; 0 = read in the main process.

  c.augment = ml_collections.ConfigDict()
  c.augment.view1 = 'aggressive'  # T1, section 3.3.
  c.augment.view2 = 'conservative'  # T2.
  c.augment.shear = True
  c.augment.shear_range = 1.0
  c.augment.filter = True
  c.augment.filter_prob = 0.5
  c.augment.filter_window = 15
  c.augment.filter_order = 2
  c.augment.resample = True
  c.augment.resample_min = 0.7
  c.augment.resample_max = 1.3
  c.augment.shift = True
  c.augment.shift_max = 150
  c.augment.drop = True
  c.augment.drop_prob = 0.5

  c.model = ml_collections.ConfigDict()
  c.model.width = 1.0
  c.model.partition = 'reference'  # or 'corrected'
  c.model.dropout = 0.0
  c.model.projector_hidden = 4096
  c.model.projector_dim = 256
  c.model.predictor_hidden = 4096
  c.model.dtype = 'float32'  # compute dtype; 'bfloat16' on accelerators.

  c.pretrain = ml_collections.ConfigDict()
  c.pretrain.batch_size = PAPER_BATCH  # Global, over all devices and hosts.
  c.pretrain.epochs = 1600
  c.pretrain.base_lr = 0.2  # At batch 512; scaled linearly with batch_size.
  c.pretrain.warmup_epochs = 10
  c.pretrain.warmup_init_lr = 1e-6
  c.pretrain.weight_decay = 1e-4
  c.pretrain.momentum = 0.9
  c.pretrain.optimizer = 'sgd'  # or 'lars'
  c.pretrain.tau_base = 0.99  # BYOL target EMA, cosine to 1 (eq. 3).
  c.pretrain.bn_momentum = 0.99  # Momentum-BN alpha of the target (eq. 4).
  c.pretrain.log_every_steps = 10
  c.pretrain.checkpoint_every_steps = 500
  c.pretrain.keep_checkpoints = 3
  c.pretrain.keep_every_steps = 10000
  c.pretrain.knn_every_epochs = 0  # 0 = no kNN monitor.
  c.pretrain.steps_override = 0  # >0: stop after this many steps (smoke tests).
  c.pretrain.debug_nan_at_step = 0  # test hook: >0 feeds a NaN batch at that step.

  c.linear = ml_collections.ConfigDict()
  c.linear.epochs = 100
  c.linear.batch_size = 256
  c.linear.lr = 30.0
  c.linear.lr_decay_epochs = (60, 80)
  c.linear.momentum = 0.9
  c.linear.weight_decay = 0.0
  return c


def apply_presets(config, arg, presets):
  """Applies the comma-separated presets in `arg` in order; names unknown ones."""
  for name in filter(None, (arg or '').split(',')):
    if name not in presets:
      raise ValueError(
          f'Unknown preset {name!r}; this config file has: {sorted(presets)}')
    presets[name](config)
  return config


def cpu(c):
  """A narrow, short run that fits this project's 2-core CPU machines."""
  c.model.width = 0.25
  c.model.projector_hidden = 1024
  c.model.predictor_hidden = 1024
  c.data.num_frames = 64
  c.pretrain.batch_size = 64
  c.pretrain.warmup_epochs = 2
  c.pretrain.checkpoint_every_steps = 200
  c.linear.epochs = 30
  c.linear.batch_size = 64
  c.linear.lr_decay_epochs = (18, 24)
