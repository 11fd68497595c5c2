"""Effective rank against hand-derived values."""
import numpy as np
import pytest

from byol_skeleton.evaluation import spectrum


def test_equal_spread_along_k_directions_has_rank_k():
  rng = np.random.default_rng(0)
  basis = np.linalg.qr(rng.normal(size=(16, 16)))[0]
  for k in (1, 2, 5):
    # +-1 along each of k orthonormal directions, all sign patterns: unit-norm
    # rows after scaling by 1/sqrt(k), mean zero, equal variance per direction.
    signs = np.array(np.meshgrid(*[[-1.0, 1.0]] * k)).reshape(k, -1).T
    features = signs @ basis[:k] / np.sqrt(k)
    assert spectrum.effective_rank(features) == pytest.approx(k, rel=1e-9)


def test_unequal_spread_matches_the_entropy_by_hand():
  # Rows (+-c, +-s) with c^2 = 3/4, s^2 = 1/4: variance shares 3/4 and 1/4,
  # entropy 0.75 ln(4/3) + 0.25 ln 4 = 0.5623, effective rank e^0.5623.
  c, s = np.sqrt(0.75), np.sqrt(0.25)
  features = np.array([[c, s], [c, -s], [-c, s], [-c, -s]])
  assert spectrum.effective_rank(features) == pytest.approx(1.75476, abs=1e-5)


def test_rank_ignores_each_example_scale_and_parallel_features_have_none():
  rng = np.random.default_rng(1)
  features = rng.normal(size=(50, 8))
  scaled = features * rng.uniform(0.1, 10.0, size=(50, 1))
  assert spectrum.effective_rank(scaled) == pytest.approx(
      spectrum.effective_rank(features), rel=1e-9)
  assert spectrum.effective_rank(np.outer(rng.uniform(1, 2, 50),
                                          rng.normal(size=8))) == 0.0
