"""Weighted kNN accuracy of an encoder (Wu et al. 2018), for the mode and the monitor.

Train features vote for each test feature: its k most cosine-similar train
features each give weight exp(similarity / T) to their class; the classes
are ranked by total weight. Features are L2-normalised encoder outputs of
un-augmented views (centre crop/loop). The similarity matrix is computed one
block of test rows at a time, so memory stays (block, num_train).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from byol_skeleton.data import pipeline
from byol_skeleton.evaluation import inference
from byol_skeleton.evaluation import spectrum
from byol_skeleton.model import build
from byol_skeleton.train import parallel

BLOCK = 256  # Test rows per similarity block.


@functools.partial(jax.jit, static_argnames=('num_classes', 'k'))
def _block_votes(queries, keys, key_labels, temperature, *, num_classes, k):
  top, index = jax.lax.top_k(queries @ keys.T, k)
  weights = jnp.exp(top / temperature)
  return jnp.einsum('nk,nkc->nc', weights,
                    jax.nn.one_hot(key_labels[index], num_classes))


def knn_votes(train_features, train_labels, test_features, num_classes: int,
              k: int, temperature: float) -> np.ndarray:
  """(num_test, num_classes) class weights from normalised features."""
  k = min(k, len(train_features))
  n = len(test_features)
  # Pad to whole blocks: one compiled shape for every block.
  padded = np.zeros((-(-n // BLOCK) * BLOCK, test_features.shape[1]),
                    np.float32)
  padded[:n] = test_features
  keys = jnp.asarray(train_features, jnp.float32)
  labels = jnp.asarray(train_labels, jnp.int32)
  votes = [np.asarray(_block_votes(jnp.asarray(padded[i:i + BLOCK]), keys,
                                   labels, temperature,
                                   num_classes=num_classes, k=k))
           for i in range(0, len(padded), BLOCK)]
  return np.concatenate(votes)[:n]


def feature_fn(config, mesh, width: float | None = None):
  """A predict function of the encoder's features on test-time views
  (an encoder of `width`; None: config.model.width)."""
  encoder = build.encoder(config, width)
  return inference.make_predict_fn(lambda v, x: encoder.apply(v, x, False),
                                   config, mesh)


class KnnMonitor:
  """kNN top-1/top-5 of encoder variables; build once, call every N epochs.

  Building compiles nothing; the first call compiles feature extraction for
  the eval batch shape, later calls reuse it.
  """

  def __init__(self, config, mesh, progress: bool = False):
    self.config, self.mesh, self.progress = config, mesh, progress
    self.features = feature_fn(config, mesh)
    self.train_data = pipeline.EvalData(config, 'train',
                                              config.eval.batch_size)
    self.test_data = pipeline.EvalData(config, 'test',
                                             config.eval.batch_size)

  def __call__(self, encoder_variables) -> dict:
    """{'knn_top1', 'knn_top5', 'feature_rank'} of {'params', 'batch_stats'}
    of stgcn.STGCN; feature_rank: spectrum.effective_rank of the test
    features."""
    train_f, train_y = inference.predict(self.features, encoder_variables,
                                         self.train_data, self.mesh,
                                         self.progress and 'knn train')
    test_f, test_y = inference.predict(self.features, encoder_variables,
                                       self.test_data, self.mesh,
                                       self.progress and 'knn test')
    test_f = spectrum.normalise(test_f)
    votes = knn_votes(spectrum.normalise(train_f), train_y, test_f,
                      self.config.data.num_classes, self.config.knn.k,
                      self.config.knn.temperature)
    return {'knn_top1': inference.topk_accuracy(votes, test_y, 1),
            'knn_top5': inference.topk_accuracy(votes, test_y, 5),
            'feature_rank': spectrum.effective_rank(test_f)}


def knn_accuracy(config, encoder_variables, mesh=None, progress=False) -> dict:
  """One-off KnnMonitor call (a monitor reuses its KnnMonitor instead)."""
  return KnnMonitor(config, mesh or parallel.make_mesh(),
                    progress)(encoder_variables)
