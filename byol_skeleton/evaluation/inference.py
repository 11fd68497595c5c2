"""Inference over a whole split, and the accuracy every protocol reports.

One function serves every evaluation: `make_predict_fn` maps a network over
the device mesh on un-augmented views (centre crop/loop, the 'none' pipeline),
`predict` runs it over a split and keeps the real examples (the `mask` drops
a last partial batch's padding). Classifiers take top-1/top-5 of its logits;
kNN and t-SNE take its features.
"""
from typing import Callable, Iterable

import jax
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec as P
import jax.numpy as jnp
import numpy as np
import tqdm

from byol_skeleton.data import augment
from byol_skeleton.train import parallel


def make_predict_fn(apply_fn: Callable, config, mesh):
  """jit(shard_map) of `apply_fn(variables, x)` on test-time views.

  Returns f(variables, device_batch) -> (outputs, labels, mask), all sharded
  over the batch; labels and mask go through the devices too, so gathering
  them is the same step as gathering the outputs on any number of hosts.
  """
  view = augment.make_view_fn(config, 'none')
  dtype = jnp.dtype(config.model.dtype)

  def per_device(variables, batch):
    # The 'none' pipeline draws nothing: any key gives the same view.
    x = augment.augment_batch(view, jax.random.key(0), batch['skeleton'],
                              batch['length'])
    return apply_fn(variables, x.astype(dtype)), batch['label'], batch['mask']

  return jax.jit(jax.shard_map(per_device, mesh=mesh,
                               in_specs=(P(), P(parallel.AXIS)),
                               out_specs=P(parallel.AXIS)))


def predict(predict_fn, variables, batches: Iterable[dict], mesh,
            desc: str | None = None):
  """(outputs, labels) of every real example of `batches`, in order, on host.

  desc: a progress bar's label (None: no bar).
  """
  outputs, labels = [], []
  for batch in tqdm.tqdm(batches, desc=desc, unit='batch', leave=False,
                         disable=not desc or jax.process_index() != 0):
    out, label, mask = multihost_utils.process_allgather(
        predict_fn(variables, parallel.to_device(batch, mesh)),
        tiled=True)
    mask = mask.astype(bool)
    outputs.append(np.asarray(out, np.float32)[mask])
    labels.append(np.asarray(label)[mask])
  if not outputs:
    raise ValueError('predict: the split produced no batches.')
  return np.concatenate(outputs), np.concatenate(labels)


def top_classes(scores, k: int) -> np.ndarray:
  """(N, k) class indices of the k highest scores, highest first.

  Ties rank the lower class index first (as argmax), so a constant output
  scores chance, not 100%.
  """
  return np.argsort(-np.asarray(scores), axis=1, kind='stable')[:, :k]


def topk_accuracy(scores, labels, k: int) -> float:
  """Fraction of examples whose label is among the k highest scores."""
  top = top_classes(scores, k)
  return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=1)))


def accuracies(scores, labels) -> dict:
  return {'top1': topk_accuracy(scores, labels, 1),
          'top5': topk_accuracy(scores, labels, 5),
          'num_examples': int(len(labels))}


def confusion_matrix(scores, labels, num_classes: int) -> np.ndarray:
  """[true class, predicted class] counts."""
  matrix = np.zeros((num_classes, num_classes), np.int64)
  np.add.at(matrix, (np.asarray(labels), np.argmax(scores, axis=1)), 1)
  return matrix
