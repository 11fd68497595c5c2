"""The fully supervised ST-GCN baseline (section 4.2), from a random init.

Paper recipe (config.supervised): 80 epochs, batch 8, SGD momentum 0.9 and
weight decay 3e-4, lr 0.0125 times 0.1 at epochs 56 and 70, conservative
augmentation. supervised.fraction < 1 trains on the class-balanced label
subset of finetune.seed (the baseline rows of Tables 3-4).
"""
from byol_skeleton.protocols import classifier
from byol_skeleton.protocols import finetune

MODE = 'supervised'
PAPER_BATCH = 8  # supervised.lr is the rate at this batch.


def recipe(config, name: str = MODE) -> classifier.Recipe:
  sc = config.supervised
  return classifier.Recipe(
      name=name, epochs=sc.epochs, batch_size=sc.batch_size, lr=sc.lr,
      reference_batch=PAPER_BATCH,
      schedule=classifier.step_decay(sc.lr_decay_epochs),
      momentum=sc.momentum, weight_decay=sc.weight_decay, encoder_lr_scale=1.0)


def run(config, workdir, checkpoint_step=None):
  del checkpoint_step  # Starts from a random init; reruns resume.
  fraction = config.supervised.fraction
  r = recipe(config)
  indices, info = None, {'encoder': 'random', 'fraction': fraction}
  if fraction < 1:
    seed = config.finetune.seed
    indices, info['subset'] = finetune.label_subset(
        config, fraction, seed, classifier.run_dir(workdir, r))
    info['seed'] = seed
  return classifier.train(config, workdir, r, indices=indices, info=info)
