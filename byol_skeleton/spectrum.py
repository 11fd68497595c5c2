"""Effective rank of a set of representations: a collapse monitor.

exp of the Shannon entropy of the normalised squared singular values of the
centred, L2-normalised features (Roy & Vetterli 2007): 1 when the examples
differ along one direction only, d when they differ equally along d
orthogonal ones. Why monitor it: BYOL can fall onto one nuisance direction
(the presence of a second person, README), and its early training keeps few
directions, which a probe alone does not show.
"""
import numpy as np
from scipy import stats


def effective_rank(features) -> float:
  """Effective rank of (num_examples, dim) features; 0 if all are parallel."""
  z = np.asarray(features, np.float64)
  z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
  variances = np.linalg.svd(z - z.mean(axis=0), compute_uv=False) ** 2
  if variances.sum() <= 1e-12 * len(z):
    return 0.0
  return float(np.exp(stats.entropy(variances)))  # entropy() normalises
