"""t-SNE of the encoder's test-split features for a few classes (paper Fig. 3).

Features are the L2-normalised online-encoder outputs of un-augmented views
(as kNN uses them); tsne.num_classes classes are drawn with tsne.seed, at most
tsne.max_per_class examples each. Writes WORKDIR/tsne/tsne.png.
"""
import pathlib

import jax
import numpy as np
from sklearn import manifold

from byol_skeleton.data import pipeline
from byol_skeleton.evaluation import inference
from byol_skeleton.evaluation import knn
from byol_skeleton.evaluation import spectrum
from byol_skeleton.pretraining import pretrained
from byol_skeleton.protocols import classifier
from byol_skeleton.train import metrics
from byol_skeleton.train import parallel

MODE = 'tsne'


def pick_examples(labels, num_classes: int, max_per_class: int, seed: int):
  """(sorted classes, example indices): random classes, capped per class."""
  rng = np.random.default_rng(seed)
  present = np.unique(labels)
  classes = np.sort(rng.choice(present, min(num_classes, len(present)),
                               replace=False))
  picked = [rng.permutation(np.flatnonzero(labels == c))[:max_per_class]
            for c in classes]
  return classes, np.sort(np.concatenate(picked))


def plot(embedding, labels, classes, class_names, path, title: str):
  """The points of each of `classes`, in the legend by their names."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(6, 6))
  colours = plt.get_cmap('tab10' if len(classes) <= 10 else 'tab20')
  for i, c in enumerate(classes):
    points = embedding[labels == c]
    ax.scatter(points[:, 0], points[:, 1], s=6, color=colours(i % colours.N),
               label=class_names[c])
  ax.legend(title='class', fontsize=7, markerscale=2, loc='best')
  ax.set_xticks([])
  ax.set_yticks([])
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def run(config, workdir, checkpoint_step=None):
  tc = config.tsne
  mesh = parallel.make_mesh()
  variables, checkpoint, _ = pretrained.restore_pretrained(
      config, pretrained.pretrained_workdir(config, workdir), mesh,
      checkpoint_step)
  features, labels = inference.predict(
      knn.feature_fn(config, mesh), variables,
      pipeline.EvalData(config, 'test', config.eval.batch_size), mesh,
      desc='features')
  classes, keep = pick_examples(labels, tc.num_classes, tc.max_per_class,
                                tc.seed)
  tsne = manifold.TSNE(n_components=2, perplexity=min(tc.perplexity,
                                                      len(keep) - 1),
                       init='pca', random_state=tc.seed)
  embedding = tsne.fit_transform(spectrum.normalise(features[keep]))
  out = pathlib.Path(workdir) / MODE
  names = pipeline.class_names(config.data)
  results = {'classes': classes, 'class_names': [names[c] for c in classes],
             'num_points': len(keep),
             'kl_divergence': float(tsne.kl_divergence_),
             'plot': str(out / 'tsne.png'),
             'pretrained_checkpoint': checkpoint}
  if jax.process_index() == 0:
    out.mkdir(parents=True, exist_ok=True)
    plot(embedding, labels[keep], classes, names, out / 'tsne.png',
         f'{config.data.dataset}/{config.data.split} test, step '
         f'{pathlib.Path(checkpoint).name}')
    metrics.MetricsLog(out).write(int(pathlib.Path(checkpoint).name),
                                  kl_divergence=results['kl_divergence'],
                                  num_points=len(keep))
  classifier.write_results(out, results, config)
  return results
