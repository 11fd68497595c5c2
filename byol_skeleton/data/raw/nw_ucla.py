"""Northwestern-UCLA Multiview Action 3D JSON files (`aAA_sSS_eEE_vVV.json`).

One file per view of a take: {"file_name", "skeletons": [T][20][3],
"label": 1..10}; one person, Kinect v1 20-joint order (layout
'kinect_v1_20'). Shared by data_prep's nw_ucla builder and --mode=predict.
"""
import json

import numpy as np

from byol_skeleton.data import skeletons
from byol_skeleton.data.raw import problems

LAYOUT = skeletons.get_layout('kinect_v1_20')
NUM_CLASSES = 10
# Every non-empty sequence is kept, however short (some have 1 frame), so the
# counts match the usual 1,020 train / 464 test.
MIN_FRAMES = 1


def read_json(path) -> tuple[np.ndarray, int]:
  """(T, 1, 20, 3) float32 skeleton and 0-based label of one file."""
  with open(path) as f:
    try:
      record = json.load(f)
    except json.JSONDecodeError as e:
      raise problems.MalformedFile(path, e.lineno, f'invalid JSON: {e.msg}')
  if not isinstance(record, dict) or not {'skeletons', 'label'} <= set(record):
    raise problems.MalformedFile(
        path, None, 'expected a JSON object with "skeletons" and "label"')
  label = record['label']
  # bool is an int subclass in Python: `true` would pass as class 1.
  if (isinstance(label, bool) or not isinstance(label, int)
      or not 1 <= label <= NUM_CLASSES):
    raise problems.MalformedFile(
        path, None, f'expected "label" an integer in 1..{NUM_CLASSES}, '
        f'got {label!r}')
  try:
    skeleton = np.array(record['skeletons'], np.float32)
  except (TypeError, ValueError):
    skeleton = None
  if skeleton is None or (skeleton.size and skeleton.shape[1:] != (
      LAYOUT.num_joints, 3)):
    raise problems.MalformedFile(
        path, None, f'expected "skeletons" of shape [T][{LAYOUT.num_joints}]'
        f'[3], got {_shape_of(record["skeletons"])}')
  if not np.isfinite(skeleton).all():
    raise problems.MalformedFile(path, None, 'non-finite joint coordinate')
  return skeleton.reshape(-1, 1, LAYOUT.num_joints, 3), label - 1


def _shape_of(nested) -> str:
  """Shape of a nested list as far as it is regular, for error messages."""
  try:
    return str(np.array(nested, dtype=object).shape)
  except ValueError:
    return 'a ragged nested list'
