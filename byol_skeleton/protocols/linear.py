"""Linear evaluation (section 4.3): a linear classifier on the frozen encoder.

Paper recipe (config.linear): 100 epochs, batch 256, SGD momentum 0.9 without
weight decay, lr 30 times 0.1 at epochs 60 and 80, conservative augmentation
(`linear.augment='none'` trains on the clean test-time views instead).
By default the features are standardised before the linear layer
(`linear.standardize_features`, see configs/base.py); False is the paper's
plain probe.
`linear.random_baseline=True` also trains the same probe on a randomly
initialised encoder (WORKDIR/linear_eval/random) and reports random_top1/5.
"""
from byol_skeleton.pretraining import pretrained
from byol_skeleton.protocols import classifier
from byol_skeleton.train import parallel

MODE = 'linear_eval'
PAPER_BATCH = 256  # linear.lr is the rate at this batch.


def recipe(config, name: str = MODE) -> classifier.Recipe:
  lc = config.linear
  return classifier.Recipe(
      name=name, epochs=lc.epochs, batch_size=lc.batch_size, lr=lc.lr,
      reference_batch=PAPER_BATCH,
      schedule=classifier.step_decay(lc.lr_decay_epochs),
      momentum=lc.momentum, weight_decay=lc.weight_decay, augment=lc.augment,
      standardize_features=lc.standardize_features)


def probe(config, workdir, encoder_variables, info: dict,
          name: str = MODE) -> dict:
  """The linear protocol on given encoder variables, in WORKDIR/<name>."""
  return classifier.train(config, workdir, recipe(config, name),
                          encoder_variables=encoder_variables, info=info)


def run(config, workdir, checkpoint_step=None):
  mesh = parallel.make_mesh()
  variables, checkpoint, _ = pretrained.restore_pretrained(
      config, pretrained.pretrained_workdir(config, workdir), mesh,
      checkpoint_step)
  results = probe(config, workdir, variables,
                  {'pretrained_checkpoint': checkpoint})
  if config.linear.random_baseline:
    # encoder_variables=None: the same init as every classifier's encoder.
    random = classifier.train(config, workdir, recipe(config, f'{MODE}/random'),
                              info={'encoder': 'random'})
    results = {**results, 'random_top1': random['top1'],
               'random_top5': random['top5']}
    classifier.write_results(workdir / MODE, results, config)
  return results
