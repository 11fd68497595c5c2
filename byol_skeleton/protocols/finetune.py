"""Semi-supervised fine-tuning (section 4.4) on a class-balanced label subset.

Paper recipe (config.finetune, presets finetune_1pct/5pct/10pct): 1%, 5%, 10%
of the train labels for 100, 20, 10 epochs; batch 8, SGD momentum 0.9 without
weight decay, lr 10 with cosine decay to 0; the encoder is frozen for the
first third of the steps, then trains at 1e-3 times the head's rate.
Conservative augmentation. Each subset seed s (finetune.seed ..
+finetune.seeds-1) is one run in WORKDIR/finetune/seed_s with its subset.json;
WORKDIR/finetune/results.json holds their mean and std.
"""
import pathlib

import jax

from byol_skeleton.data import pipeline
from byol_skeleton.pretraining import pretrained
from byol_skeleton.protocols import classifier
from byol_skeleton.train import parallel

MODE = 'finetune'
PAPER_BATCH = 8  # finetune.lr is the rate at this batch.


def recipe(config, name: str, section: str = MODE) -> classifier.Recipe:
  """The recipe of config.<section>: finetune, or transfer (section 4.5)."""
  fc = config[section]
  return classifier.Recipe(
      name=name, epochs=fc.epochs, batch_size=fc.batch_size, lr=fc.lr,
      reference_batch=PAPER_BATCH, schedule=classifier.cosine,
      momentum=fc.momentum, weight_decay=fc.weight_decay,
      encoder_lr_scale=fc.encoder_lr_scale,
      freeze_fraction=fc.freeze_fraction)


def label_subset(config, fraction: float, seed: int, directory):
  """Train-split indices of a class-balanced `fraction` of the labels.

  Also written to DIRECTORY/subset.json; returns (indices, that path).
  """
  labels = pipeline.read_metadata(config.data, 'train').label
  indices = pipeline.class_balanced_subset(labels, fraction, seed)
  if jax.process_index() == 0:
    pipeline.save_subset(directory, indices, fraction=fraction,
                               seed=seed)
  return indices, str(pathlib.Path(directory) / 'subset.json')


def finetune(config, workdir, encoder_variables, info: dict,
             mode: str = MODE) -> dict:
  """Fine-tunes from `encoder_variables` once per subset seed; the summary.

  mode: 'finetune', or 'transfer', whose config section has the same fields.
  """
  fraction = config[mode].fraction
  per_seed = {}
  for seed in classifier.seeds(config, mode):
    r = recipe(config, classifier.seed_name(mode, seed), mode)
    indices, subset = label_subset(config, fraction, seed,
                                   classifier.run_dir(workdir, r))
    per_seed[seed] = classifier.train(
        config, workdir, r, encoder_variables=encoder_variables,
        indices=indices,
        info={**info, 'fraction': fraction, 'seed': seed,
              'subset': subset})
  return classifier.summarise(workdir, mode, per_seed, config)


def run(config, workdir, checkpoint_step=None):
  variables, checkpoint, _ = pretrained.restore_pretrained(
      config, pretrained.pretrained_workdir(config, workdir),
      parallel.make_mesh(), checkpoint_step)
  return finetune(config, workdir, variables,
                  {'pretrained_checkpoint': checkpoint})
