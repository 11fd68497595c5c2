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
  # 'crop': num_frames consecutive frames (section 4.2). 'resize': a random
  # segment of augment.segment_min..1 of the recording interpolated to
  # num_frames, the whole recording at test time (augment.py).
  c.data.temporal_view = 'crop'
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
  c.augment.segment_min = 0.5  # data.temporal_view='resize' only.

  c.model = ml_collections.ConfigDict()
  c.model.width = 1.0
  c.model.partition = 'reference'  # or 'corrected'
  # 'all': mean over both person slots, as the reference ST-GCN; 'present':
  # over the persons whose input is not all zero (README, design notes).
  c.model.person_pool = 'all'
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
  c.pretrain.predictor_lr_scale = 1.0  # The predictor's rate / the rest's.
  c.pretrain.bn_momentum = 0.99  # Momentum-BN alpha of the target (eq. 4).
  # Bias-corrected start of those statistics (schedules.momentum_bn).
  c.pretrain.bn_momentum_warmup = True
  c.pretrain.log_every_steps = 10
  c.pretrain.checkpoint_every_steps = 500
  c.pretrain.keep_checkpoints = 3
  c.pretrain.keep_every_steps = 10000
  c.pretrain.knn_every_epochs = 0  # 0 = no kNN monitor.
  c.pretrain.steps_override = 0  # >0: run this many steps instead of epochs.

  c.linear = ml_collections.ConfigDict()
  c.linear.epochs = 100
  c.linear.batch_size = 256
  c.linear.lr = 30.0
  c.linear.lr_decay_epochs = (60, 80)
  c.linear.momentum = 0.9
  c.linear.weight_decay = 0.0
  # linear.lr, like every protocol's lr, is the paper's rate at its batch and
  # scales linearly with batch_size (as pretrain.base_lr).
  c.linear.random_baseline = False  # Also probe a random encoder: random_top1/5.
  # A BatchNorm without scale or shift between the frozen features and the
  # linear layer (still a linear classifier at test time). Not in the paper:
  # its lr of 30 made the probe diverge on our encoders' features (loss > 1000
  # in the first epochs on NW-UCLA), and a random encoder's features are ~10x
  # smaller than a pretrained one's, so a fixed rate suits neither. False is
  # the paper's plain probe.
  c.linear.standardize_features = True
  # The probe's training views: the paper's 'conservative' (random crop and
  # resampling), or 'none', the clean centre views it is tested on.
  c.linear.augment = 'conservative'

  # Every evaluation protocol (byol_skeleton/classifier.py and the modes).
  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 256  # Global batch of inference passes (test, kNN, t-SNE).
  c.eval.pretrained_workdir = ''  # Pretraining run to start from; '' = --workdir.
  c.eval.run = 'linear_eval'  # --mode=evaluate: run under the workdir to test.
  c.eval.split = 'test'  # --mode=evaluate: split to test on.
  c.eval.log_every_steps = 50
  c.eval.checkpoint_every_steps = 1000

  c.knn = ml_collections.ConfigDict()  # Weighted kNN (Wu et al. 2018).
  c.knn.k = 20
  c.knn.temperature = 0.1

  # Semi-supervised fine-tuning, section 4.4 (presets finetune_1pct/5pct/10pct).
  c.finetune = ml_collections.ConfigDict()
  c.finetune.fraction = 0.01  # Class-balanced fraction of the train labels.
  c.finetune.seed = 0  # First label-subset seed;
  c.finetune.seeds = 1  # runs seeds seed..seed+seeds-1 (the paper: 5).
  c.finetune.epochs = 100
  c.finetune.batch_size = 8
  c.finetune.lr = 10.0  # Head, at batch 8 (scaled linearly); cosine to 0.
  c.finetune.momentum = 0.9
  c.finetune.weight_decay = 0.0
  c.finetune.freeze_fraction = 1 / 3  # Encoder frozen for this part of the steps,
  c.finetune.encoder_lr_scale = 1e-3  # then trained at this times the head's lr.

  # Knowledge distillation, sections 3.5 and 4.4 (eq. 6), no labels.
  c.distill = ml_collections.ConfigDict()
  c.distill.teacher_workdir = ''  # A finetune run's workdir (seeds as finetune.*).
  c.distill.teacher_width = 2.0
  c.distill.temperature = 1.0
  c.distill.epochs = 100
  c.distill.batch_size = 256
  c.distill.lr = 0.2  # At batch 256 (scaled linearly); cosine to 0.
  c.distill.momentum = 0.9
  c.distill.weight_decay = 1e-4

  # Fully supervised ST-GCN baseline, section 4.2.
  c.supervised = ml_collections.ConfigDict()
  c.supervised.fraction = 1.0  # < 1: the class-balanced subset of finetune.seed.
  c.supervised.epochs = 80
  c.supervised.batch_size = 8
  c.supervised.lr = 0.0125  # At batch 8, scaled linearly with the batch.
  c.supervised.lr_decay_epochs = (56, 70)
  c.supervised.momentum = 0.9
  c.supervised.weight_decay = 3e-4

  # Transfer, section 4.5: the encoder of another dataset's pretraining run,
  # fine-tuned with a linear layer on all the target's labels (Table 6
  # compares with the supervised ST-GCN on all of them). The paper gives no
  # recipe for it; ours is section 4.4's fine-tuning at fraction 1, for the
  # epochs of its largest fraction (10 %: 10 epochs; the paper's fraction x
  # epochs is 1 at every fraction, so more labels get fewer epochs).
  c.transfer = ml_collections.ConfigDict()
  c.transfer.source_workdir = ''
  c.transfer.protocol = 'finetune'  # or 'linear' (config.linear's probe)
  c.transfer.fraction = 1.0  # all of the target's training labels
  c.transfer.seed = 0  # label-subset seeds, as finetune.* (one run at 1.0)
  c.transfer.seeds = 1
  c.transfer.epochs = 10
  c.transfer.batch_size = 8  # as section 4.4
  c.transfer.lr = 10.0  # head, at batch 8; cosine to 0 (section 4.4)
  c.transfer.momentum = 0.9
  c.transfer.weight_decay = 0.0
  c.transfer.freeze_fraction = 1 / 3  # as section 4.4
  c.transfer.encoder_lr_scale = 1e-3  # as section 4.4

  c.tsne = ml_collections.ConfigDict()  # Paper Fig. 3.
  c.tsne.num_classes = 10
  c.tsne.max_per_class = 200
  c.tsne.perplexity = 30.0
  c.tsne.seed = 0  # Picks the classes and seeds t-SNE.
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


def short_schedule(c):
  """On top of `cpu`: what a pretraining of ~2,000 steps needs on a CPU.

  The paper trains for tens of thousands of steps. In 1,600-2,000, with the
  learning rate 10x its linear scaling (0.25 at batch 64, not 0.025) and the
  predictor at 10x that, BYOL passes its random encoder on every seed tried
  (4 on synthetic data, 3 on NW-UCLA): its features lose most directions in
  the first few hundred steps and then regain them. With one rate for the
  whole network and a target EMA of 0.9, most seeds stayed in that
  few-direction phase. The target EMA is the paper's. Heads of 512 keep the
  step cheap. Measurements: docs/design.md, "short_schedule".
  """
  c.model.projector_hidden = 512
  c.model.predictor_hidden = 512
  c.pretrain.base_lr = 2.0  # paper 0.2
  c.pretrain.predictor_lr_scale = 10.0  # paper 1
