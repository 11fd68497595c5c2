"""Knowledge distillation (sections 3.5 and 4.4, eq. 6), without labels.

A fine-tuned teacher (a finetune run in distill.teacher_workdir, typically 2x
wide) teaches a randomly initialised student of config.model.width on the
whole train split: L = H(softmax(z_t / tau), softmax(z_s / tau)). Paper recipe
(config.distill): tau 1, 100 epochs, batch 256, SGD momentum 0.9, weight
decay 1e-4, lr 0.2 with cosine decay to 0. Both networks see the same
conservative view; the teacher is frozen (inference mode). One student per
teacher seed (finetune.seed .. +finetune.seeds-1), in WORKDIR/distill/seed_s.
"""
import dataclasses
import functools
import pathlib

import jax
import optax

from byol_skeleton import errors
from byol_skeleton.protocols import classifier
from byol_skeleton.protocols import finetune

MODE = 'distill'
PAPER_BATCH = 256  # distill.lr is the rate at this batch.


def distillation_loss(student_logits, teacher_logits, temperature: float):
  """Eq. 6, averaged over the batch."""
  soft_targets = jax.nn.softmax(teacher_logits / temperature)
  return optax.softmax_cross_entropy(student_logits / temperature,
                                     soft_targets).mean()


def recipe(config, name: str) -> classifier.Recipe:
  dc = config.distill
  return classifier.Recipe(
      name=name, epochs=dc.epochs, batch_size=dc.batch_size, lr=dc.lr,
      reference_batch=PAPER_BATCH, schedule=classifier.cosine,
      momentum=dc.momentum, weight_decay=dc.weight_decay, encoder_lr_scale=1.0,
      loss=functools.partial(distillation_loss, temperature=dc.temperature))


def teacher_recipe(config, seed: int) -> classifier.Recipe:
  """The finetune run a teacher was saved by (its state's structure)."""
  return dataclasses.replace(
      finetune.recipe(config, classifier.seed_name(finetune.MODE, seed)),
      width=config.distill.teacher_width)


def run(config, workdir, checkpoint_step=None):
  """checkpoint_step picks the teachers' checkpoint (default: latest)."""
  teacher_workdir = config.distill.teacher_workdir
  if not teacher_workdir:
    raise errors.UserError(
        'distill needs a fine-tuned teacher: set '
        '--config.distill.teacher_workdir to the workdir of a finetune run.')
  per_seed = {}
  for seed in classifier.seeds(config):
    teacher = teacher_recipe(config, seed)
    state, checkpoint = classifier.restore(
        config, pathlib.Path(teacher_workdir), teacher, checkpoint_step)
    per_seed[seed] = classifier.train(
        config, workdir, recipe(config, classifier.seed_name(MODE, seed)),
        teacher=(classifier.recipe_network(config, teacher),
                 classifier.variables_of(state)),
        info={'teacher_checkpoint': checkpoint, 'seed': seed})
  return classifier.summarise(workdir, MODE, per_seed, config)
