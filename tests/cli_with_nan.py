"""The CLI, with a NaN batch fed at step $NAN_AT_STEP of pretraining.

A test harness for tests/test_faults.py, not part of the package: the
fault is injected from outside, as a corrupt input would arrive.
"""
import os

import numpy as np

from byol_skeleton import main
from byol_skeleton.data import pipeline

NAN_AT_STEP = int(os.environ['NAN_AT_STEP'])
_fetch = pipeline.PretrainData.next_batch


def _next_batch(data):
  poison = data.get_state()['step'] == NAN_AT_STEP  # batches fetched so far
  batch = _fetch(data)
  return {**batch, 'skeleton_1': batch['skeleton_1'] * np.nan} if poison else batch


pipeline.PretrainData.next_batch = _next_batch

if __name__ == '__main__':
  main.run()
