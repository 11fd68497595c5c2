"""Top-1/top-5 of a saved classifier run on a split, and its confusion matrix.

eval.run names the run under the workdir: 'linear_eval', 'linear_eval/random',
'finetune/seed_N', 'supervised', 'distill/seed_N', 'transfer' or
'transfer/seed_N'; eval.split the split; --checkpoint_step the checkpoint
(default: latest). The config must describe the run (same presets), since the
state is restored into its shapes. Writes WORKDIR/evaluate/confusion.png.
"""
import pathlib

import jax
import numpy as np

from byol_skeleton import errors
from byol_skeleton.data import pipeline
from byol_skeleton.evaluation import inference
from byol_skeleton.protocols import classifier
from byol_skeleton.protocols import distill
from byol_skeleton.protocols import finetune
from byol_skeleton.protocols import linear
from byol_skeleton.protocols import supervised
from byol_skeleton.protocols import transfer
from byol_skeleton.train import metrics
from byol_skeleton.train import parallel

MODE = 'evaluate'
RECIPES = {linear.MODE: linear.recipe, finetune.MODE: finetune.recipe,
           supervised.MODE: supervised.recipe, distill.MODE: distill.recipe,
           transfer.MODE: transfer.recipe}


def recipe_for(config, run: str, field: str = 'eval.run'
               ) -> classifier.Recipe:
  """The recipe of classifier run `run`, named by config field `field`."""
  mode = run.split('/')[0]
  if mode not in RECIPES:
    raise errors.UserError(
        f'{field}={run!r}: expected a classifier run under the workdir, one '
        f'of {sorted(RECIPES)}, followed by /seed_N for finetune, distill and '
        'fine-tuning transfer runs (or /random for the random linear probe).')
  return RECIPES[mode](config, run)


def plot_confusion(matrix, path, title: str, class_names):
  """Row-normalised confusion matrix (each true class sums to 1), its axes
  labelled with the class names."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
  size = min(4 + 0.12 * len(matrix), 16)
  fig, ax = plt.subplots(figsize=(size, size))
  image = ax.imshow(rows, cmap='Blues', vmin=0, vmax=1)
  ticks = np.arange(len(matrix))
  fontsize = max(4, min(8, 400 / len(matrix)))
  ax.set_xticks(ticks, class_names, rotation=90, fontsize=fontsize)
  ax.set_yticks(ticks, class_names, fontsize=fontsize)
  ax.set_xlabel('predicted class')
  ax.set_ylabel('true class')
  ax.set_title(title)
  fig.colorbar(image, ax=ax, fraction=0.046)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def run(config, workdir, checkpoint_step=None):
  ec = config.eval
  recipe = recipe_for(config, ec.run)
  state, checkpoint = classifier.restore(config, workdir, recipe,
                                         checkpoint_step)
  logits, labels = classifier.evaluate(config, recipe,
                                       classifier.variables_of(state),
                                       parallel.make_mesh(), ec.split)
  matrix = inference.confusion_matrix(logits, labels,
                                      config.data.num_classes)
  names = pipeline.class_names(config.data)
  out = pathlib.Path(workdir) / MODE
  results = {**inference.accuracies(logits, labels), 'run': ec.run,
             'split': ec.split, 'checkpoint': checkpoint,
             'plot': str(out / 'confusion.png'), 'confusion_matrix': matrix,
             'class_names': names}
  if jax.process_index() == 0:
    out.mkdir(parents=True, exist_ok=True)
    plot_confusion(matrix, out / 'confusion.png',
                   f'{ec.run} on {config.data.dataset}/{config.data.split} '
                   f'{ec.split}: top-1 {results["top1"]:.3f}', names)
    metrics.MetricsLog(out).write(int(state.step), top1=results['top1'],
                                  top5=results['top5'])
  classifier.write_results(out, results, config)
  return results
