"""Base config: the paper's recipe (sections 4.2-4.5) on the synthetic dataset.

Dataset files (`ntu60.py`, `nw_ucla.py`, ...) start from `get_config()` and add
named presets; `--config=configs/FILE.py:a,b` applies presets a then b.
"""
import ml_collections

# §4.2: the pretraining batch.
PAPER_BATCH = 512


def get_config():
  """The paper's recipe. Each field's comment gives where its value is from:

    # §4.2, # eq. 3, # Fig. 3   the paper (section, equation, figure);
    # ST-GCN reference          the reference ST-GCN code (Yan et al. 2018),
                                where the paper, which uses that network
                                (§4.2), is silent;
    # ours: why                 the paper is silent or we depart from it.

  `grep -n 'ours:' configs/base.py` lists every departure; 'ours:
  bookkeeping' marks the fields that do not change a result.
  """
  c = ml_collections.ConfigDict()
  c.seed = 0  # ours: the paper gives none

  c.data = ml_collections.ConfigDict()
  # ours: runs without data; the dataset files set §4.1's datasets.
  c.data.dataset = 'synthetic'
  c.data.split = 'xsub'  # §4.1 cross-subject (CS)
  c.data.data_dir = ''  # ours: bookkeeping; '' = TFDS default
  c.data.layout = 'ntu25'  # §4.1: NTU's 25-joint Kinect v2 skeleton
  c.data.num_classes = 10  # ours: the synthetic data's; dataset files: §4.1
  c.data.num_persons = 2  # ST-GCN reference (2 body slots)
  c.data.max_frames = 300  # ST-GCN reference pad length; longer are cropped
  c.data.num_frames = 150  # §4.2: crop to 150, loop shorter ones
  # §4.2 'crop' (150 consecutive frames); ours: the crop's offset is random in
  # training and centred at test. 'resize' (ours, an option): a random
  # augment.segment_min..1 of the recording interpolated to num_frames, the
  # whole recording at test time (augment.py).
  c.data.temporal_view = 'crop'
  c.data.multi_view = True  # §3.4 multi-viewpoint sampling
  c.data.use_bones = True  # §4.2 joints + bones, 6 input channels
  c.data.worker_count = 0  # ours: bookkeeping (grain input processes)
  # Preprocessing, in data_prep (not fields): §4.2 centres and rotates to a
  # canonical orientation in the first frame; ours: centred on frame 0's hip,
  # one rotation (frame 0's) for the whole sequence.

  c.augment = ml_collections.ConfigDict()
  c.augment.view1 = 'aggressive'  # §3.3 T1
  c.augment.view2 = 'conservative'  # §3.3 T2
  c.augment.shear = True  # §3.3 (T1)
  c.augment.shear_range = 1.0  # §4.2 factors ~ U[-1, 1]
  c.augment.filter = True  # §3.3 (T1)
  c.augment.filter_prob = 0.5  # §4.2
  c.augment.filter_window = 15  # §4.2 Savitzky-Golay
  c.augment.filter_order = 2  # §4.2
  c.augment.resample = True  # §3.3 (T1 and T2)
  # Rate ~ U[0.7, 1.3]: §4.2 for T1; T2's range is not given.
  c.augment.resample_min = 0.7  # §4.2 (T1); ours: T2 the same
  c.augment.resample_max = 1.3  # §4.2 (T1); ours: T2 the same
  c.augment.shift = True  # §3.3 (T1)
  c.augment.shift_max = 150  # §4.2 offset ~ U[0, 150]
  c.augment.drop = True  # §3.3 (T1)
  c.augment.drop_prob = 0.5  # §4.2, either side equally likely
  c.augment.segment_min = 0.5  # ours: data.temporal_view='resize' only

  c.model = ml_collections.ConfigDict()
  c.model.width = 1.0  # §4.2: 1x = the standard ST-GCN
  # ST-GCN reference spatial partition; 'corrected' (ours) is an option.
  c.model.partition = 'reference'
  # ST-GCN reference: mean over both person slots; 'present' (ours, an
  # option): over the persons whose input is not all zero (docs/design.md).
  c.model.person_pool = 'all'
  c.model.dropout = 0.0  # ours: paper silent; BYOL uses none (reference: 0.5)
  # ours: paper silent. 'he': He-normal kernels (each conv feeds BN + ReLU),
  # BN scale 1; 'reference': the ST-GCN reference's kernels ~ N(0, 0.02), BN
  # scale ~ N(1, 0.02). Biases 0 in both (model/stgcn.py).
  c.model.init = 'he'
  c.model.projector_hidden = 4096  # ours: paper silent; the BYOL paper's
  c.model.projector_dim = 256  # ours: paper silent; the BYOL paper's
  c.model.predictor_hidden = 4096  # ours: paper silent; the BYOL paper's
  c.model.dtype = 'float32'  # ours: numerics ('bfloat16' on accelerators)
  # §4.2: batch 512 on 4 GPUs, BN per GPU (no SyncBN), so moments over 128
  # sequences; here over groups of 128 inside each device, whatever the
  # device count (ghost BN). 0: over each device's whole batch. A device with
  # fewer sequences normalises over all of them (with a warning).
  c.model.bn_group_size = 128
  # Not fields: BN epsilon 1e-5, ST-GCN reference (model/layers.py).

  c.pretrain = ml_collections.ConfigDict()
  c.pretrain.batch_size = PAPER_BATCH  # §4.2; global, all devices and hosts
  # §4.2 (PKU-MMD II: 4800). Under data.multi_view an epoch is one pass over
  # the action sequences (§3.4), not the camera views: NTU-60 CS has about
  # 13,400 (26 steps of 512, 41,600 in all), CV about 18,950 (37; 59,200).
  c.pretrain.epochs = 1600
  # §4.2 at batch 512; ours: scaled linearly with batch_size.
  c.pretrain.base_lr = 0.2
  c.pretrain.warmup_epochs = 10  # §4.2, then cosine to 0
  c.pretrain.warmup_init_lr = 1e-6  # §4.2
  c.pretrain.weight_decay = 1e-4  # §4.2
  c.pretrain.momentum = 0.9  # §4.2
  c.pretrain.optimizer = 'sgd'  # §4.2 ('lars', ours, is an option)
  c.pretrain.tau_base = 0.99  # §4.2, eq. 3: target EMA, cosine to 1
  c.pretrain.predictor_lr_scale = 1.0  # §4.2: one rate for the network
  c.pretrain.bn_momentum = 0.99  # ours: eq. 4's alpha; the paper gives none
  # ours: bias-corrected start of eq. 4's statistics (schedules.momentum_bn,
  # docs/design.md); False starts them at 0/1.
  c.pretrain.bn_momentum_warmup = True
  c.pretrain.log_every_steps = 10  # ours: bookkeeping
  c.pretrain.checkpoint_every_steps = 500  # ours: bookkeeping
  c.pretrain.keep_checkpoints = 3  # ours: bookkeeping
  c.pretrain.keep_every_steps = 10000  # ours: bookkeeping
  c.pretrain.knn_every_epochs = 0  # ours: bookkeeping; 0 = no kNN monitor
  c.pretrain.steps_override = 0  # ours: >0: this many steps, not epochs
  # ours: >0: save and end at this step, the schedules unchanged; a later
  # run with 0 goes on to the end as if never stopped (job time limits).
  c.pretrain.stop_at_step = 0

  c.linear = ml_collections.ConfigDict()
  c.linear.epochs = 100  # §4.3
  c.linear.batch_size = 256  # §4.3
  # §4.3 at batch 256; ours: scaled linearly with batch_size (as every
  # protocol's lr and pretrain.base_lr).
  c.linear.lr = 30.0
  c.linear.lr_decay_epochs = (60, 80)  # §4.3, x0.1 at each
  c.linear.momentum = 0.9  # §4.3
  c.linear.weight_decay = 0.0  # §4.3
  c.linear.random_baseline = False  # ours: also probe a random encoder
  # ours: a BatchNorm without scale or shift between the frozen features and
  # the linear layer (still linear at test). The paper's lr of 30 made the
  # plain probe diverge on our features (loss > 1000 on NW-UCLA), and random
  # features are ~10x smaller than pretrained ones (docs/design.md). False
  # (preset paper_probe) is §4.3's plain probe.
  c.linear.standardize_features = True
  # §4.3 conservative training views; ours: 'none' (an option) trains on the
  # clean views, and test views are centre crops (the paper does not say).
  c.linear.augment = 'conservative'

  # Every evaluation protocol (byol_skeleton/classifier.py and the modes).
  c.eval = ml_collections.ConfigDict()
  c.eval.batch_size = 256  # ours: bookkeeping (inference: test, kNN, t-SNE)
  c.eval.pretrained_workdir = ''  # ours: bookkeeping; '' = --workdir
  c.eval.run = 'linear_eval'  # ours: bookkeeping (--mode=evaluate's run)
  c.eval.split = 'test'  # ours: bookkeeping (--mode=evaluate's split)
  c.eval.log_every_steps = 50  # ours: bookkeeping
  c.eval.checkpoint_every_steps = 1000  # ours: bookkeeping

  # ours: the paper has no kNN (--mode=knn, the pretraining monitor); Wu et
  # al. 2018's weighted kNN with its k and temperature.
  c.knn = ml_collections.ConfigDict()
  c.knn.k = 20  # ours: Wu et al. 2018
  c.knn.temperature = 0.1  # ours: Wu et al. 2018

  # Semi-supervised fine-tuning, §4.4 (presets finetune_1pct/5pct/10pct).
  c.finetune = ml_collections.ConfigDict()
  c.finetune.fraction = 0.01  # §4.4 class-balanced 1 % (5, 10: presets)
  c.finetune.seed = 0  # ours: first label-subset seed
  c.finetune.seeds = 1  # ours: one subset by default; §4.4 averages 5
  c.finetune.epochs = 100  # §4.4 at 1 % (20 at 5 %, 10 at 10 %)
  c.finetune.batch_size = 8  # §4.4
  c.finetune.lr = 10.0  # §4.4 head, cosine to 0; ours: linear batch scaling
  c.finetune.momentum = 0.9  # §4.4
  c.finetune.weight_decay = 0.0  # §4.4
  c.finetune.freeze_fraction = 1 / 3  # §4.4: encoder frozen this fraction,
  c.finetune.encoder_lr_scale = 1e-3  # §4.4: then at this x the head's lr

  # Knowledge distillation, §3.5 and §4.4 (eq. 6), no labels.
  c.distill = ml_collections.ConfigDict()
  c.distill.teacher_workdir = ''  # ours: bookkeeping (a finetune run)
  c.distill.teacher_width = 2.0  # §4.4, Table 5: 2x teachers
  c.distill.temperature = 1.0  # §4.4, eq. 6's tau
  c.distill.epochs = 100  # §4.4
  c.distill.batch_size = 256  # §4.4
  c.distill.lr = 0.2  # §4.4, cosine to 0; ours: linear batch scaling
  c.distill.momentum = 0.9  # §4.4
  c.distill.weight_decay = 1e-4  # §4.4

  # Fully supervised ST-GCN baseline, §4.2.
  c.supervised = ml_collections.ConfigDict()
  # §4.2 all labels; < 1 (Tables 3, 4): finetune.seed's class-balanced subset.
  c.supervised.fraction = 1.0
  c.supervised.epochs = 80  # §4.2
  c.supervised.batch_size = 8  # §4.2
  c.supervised.lr = 0.0125  # §4.2; ours: scaled linearly with the batch
  c.supervised.lr_decay_epochs = (56, 70)  # §4.2, x0.1 at each
  c.supervised.momentum = 0.9  # §4.2
  c.supervised.weight_decay = 3e-4  # §4.2

  # Transfer, §4.5: another dataset's pretrained encoder fine-tuned with a
  # linear layer. The paper gives no recipe; ours is §4.4's fine-tuning on
  # all the target's labels (Table 6 compares with the supervised ST-GCN on
  # all of them), for the epochs of its largest fraction (10 %: 10 epochs;
  # §4.4's fraction x epochs is 1 at every fraction).
  c.transfer = ml_collections.ConfigDict()
  c.transfer.source_workdir = ''  # ours: bookkeeping (a pretraining run)
  c.transfer.protocol = 'finetune'  # §4.5; 'linear' (ours): linear.*'s probe
  c.transfer.fraction = 1.0  # ours: all the target's labels (Table 6)
  c.transfer.seed = 0  # ours: label-subset seeds, as finetune.*
  c.transfer.seeds = 1  # ours: one run at fraction 1
  c.transfer.epochs = 10  # ours: §4.4's at 10 %
  c.transfer.batch_size = 8  # ours: §4.4's
  c.transfer.lr = 10.0  # ours: §4.4's head lr at batch 8, cosine to 0
  c.transfer.momentum = 0.9  # ours: §4.4's
  c.transfer.weight_decay = 0.0  # ours: §4.4's
  c.transfer.freeze_fraction = 1 / 3  # ours: §4.4's
  c.transfer.encoder_lr_scale = 1e-3  # ours: §4.4's

  c.tsne = ml_collections.ConfigDict()  # Fig. 3
  c.tsne.num_classes = 10  # Fig. 3: 10 random classes
  c.tsne.max_per_class = 200  # ours: paper silent; keeps t-SNE fast
  c.tsne.perplexity = 30.0  # ours: paper silent; t-SNE's usual default
  c.tsne.seed = 0  # ours: picks the classes and seeds t-SNE

  # ours: the paper has no prediction on new recordings (--mode=predict).
  c.predict = ml_collections.ConfigDict()
  # ours: bookkeeping; the classifier run under the workdir, as eval.run
  c.predict.run = 'linear_eval'
  # ours: bookkeeping; recording files or folders, comma-separated (.skeleton,
  # .json, .txt, .npy, .npz)
  c.predict.inputs = ''

  # ours: the paper has no feature export (--mode=embed).
  c.embed = ml_collections.ConfigDict()
  # ours: bookkeeping; 'pretrain' (the pretraining run's encoder) or a
  # classifier run under the workdir, as eval.run
  c.embed.run = 'pretrain'
  # ours: §4.3's protocols use the online encoder; 'target' (an option): the
  # EMA target's, with its momentum-BN statistics (eq. 3, 4)
  c.embed.encoder = 'online'
  c.embed.split = 'test'  # ours: bookkeeping
  # ours: bookkeeping; recording files or folders instead of embed.split, as
  # predict.inputs
  c.embed.inputs = ''

  # ours: --mode=visualize draws recordings as the clean test view and the
  # augment.view1 / view2 training views.
  c.visualize = ml_collections.ConfigDict()
  c.visualize.split = 'test'  # ours: bookkeeping (the recordings' split)
  c.visualize.num_examples = 4  # ours: bookkeeping; one per class drawn
  c.visualize.frames = 6  # ours: bookkeeping (frames in the PNG strip)
  c.visualize.fps = 30.0  # ours: bookkeeping; the Kinect's 30 frames/s
  c.visualize.seed = 0  # ours: picks the recordings, seeds their views
  # ours: bookkeeping; recording files or folders to draw instead of the
  # split's, as predict.inputs
  c.visualize.inputs = ''
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
  # A few frames cropped from a longer recording show part of the action;
  # resized, they show it whole (NW-UCLA: 5-6 points more margin over the
  # random encoder than crops, docs/results.md, "Temporal view").
  c.data.temporal_view = 'resize'
  c.pretrain.batch_size = 64
  c.model.bn_group_size = 64  # one group: the whole batch on one CPU device
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
