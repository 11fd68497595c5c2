"""Geometry of a set of representations: L2 normalisation, effective rank.

Effective rank, a collapse monitor: exp of the Shannon entropy of the
normalised squared singular values of the centred, L2-normalised features
(Roy & Vetterli 2007): 1 when the examples differ along one direction only,
d when they differ equally along d orthogonal ones. Why monitor it: BYOL can
fall onto one nuisance direction (the presence of a second person, README),
and its early training keeps few directions, which a probe alone does not
show.
"""
import numpy as np
from scipy import stats


def normalise(features):
  """Each row divided by its L2 norm (a zero row stays zero)."""
  norm = np.linalg.norm(features, axis=-1, keepdims=True)
  return features / np.maximum(norm, 1e-12)


def effective_rank(features) -> float:
  """Effective rank of (num_examples, dim) features; 0 if all are parallel."""
  z = normalise(np.asarray(features, np.float64))
  variances = np.linalg.svd(z - z.mean(axis=0), compute_uv=False) ** 2
  if variances.sum() <= 1e-12 * len(z):
    return 0.0
  return float(np.exp(stats.entropy(variances)))  # entropy() normalises
