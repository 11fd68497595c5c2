"""Northwestern-UCLA Multiview Action 3D JSON files (`aAA_sSS_eEE_vVV.json`).

One file per view of a take:
{"file_name", "skeletons": [T][20][3], "label": 1..10}.
One person (M=1), Kinect v1 20-joint order (layout 'kinect_v1_20').
Standard cross-view protocol: train on views 1 and 2, test on view 3.
Every non-empty sequence is kept, however short (some have 1 frame), so the
counts match the usual 1,020 train / 464 test.
"""
import dataclasses
import json
import pathlib
import re

import numpy as np

from byol_skeleton.data import skeletons
from data_prep import preprocess
from data_prep import report

LAYOUT = skeletons.get_layout('kinect_v1_20')
# Labels 1..10 in the order of the action ids a01-a06, a08, a09, a11, a12
# (the dataset's own action list).
ACTION_NAMES = ('pick up with one hand', 'pick up with two hands',
                'drop trash', 'walk around', 'sit down', 'stand up',
                'donning', 'doffing', 'throw', 'carry')
NUM_CLASSES = len(ACTION_NAMES)
XVIEW_TRAIN_VIEWS = frozenset((1, 2))
MIN_FRAMES = 1

_NAME_RE = re.compile(r'a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})')


@dataclasses.dataclass(frozen=True)
class NwUclaName:
  action: int  # the id in the file name (a01..a12, with gaps), not the label
  subject: int
  execution: int
  view: int

  @property
  def name(self) -> str:
    return f'{self.sequence_key}_v{self.view:02d}'

  @property
  def sequence_key(self) -> str:
    return f'a{self.action:02d}_s{self.subject:02d}_e{self.execution:02d}'


def parse_name(path) -> NwUclaName:
  stem = pathlib.PurePath(path).name.removesuffix('.json')
  match = _NAME_RE.fullmatch(stem)
  if not match:
    raise ValueError(
        f'{path}: unknown NW-UCLA file name {stem!r}; expected '
        'aAA_sSS_eEE_vVV.json (action, subject, execution, view), e.g. '
        'a01_s01_e00_v01.json')
  return NwUclaName(*map(int, match.groups()))


def split_of(name: NwUclaName, protocol: str) -> str:
  if protocol != 'xview':
    raise ValueError(f'unknown protocol {protocol!r} for nw_ucla')
  return 'train' if name.view in XVIEW_TRAIN_VIEWS else 'test'


def split_rule(protocol: str, split: str) -> str:
  """Which recordings `split_of` puts into `split`, for an empty split."""
  if protocol != 'xview':
    raise ValueError(f'unknown protocol {protocol!r} for nw_ucla')
  train = ', '.join(map(str, sorted(XVIEW_TRAIN_VIEWS)))
  return (f'from views {train}' if split == 'train'
          else f'from views other than {train}')


def read_json(path) -> tuple[np.ndarray, int]:
  """(T, 1, 20, 3) float32 skeleton and 0-based label of one file."""
  with open(path) as f:
    try:
      record = json.load(f)
    except json.JSONDecodeError as e:
      raise report.MalformedFile(path, e.lineno, f'invalid JSON: {e.msg}')
  if not isinstance(record, dict) or not {'skeletons', 'label'} <= set(record):
    raise report.MalformedFile(
        path, None, 'expected a JSON object with "skeletons" and "label"')
  label = record['label']
  # bool is an int subclass in Python: `true` would pass as class 1.
  if (isinstance(label, bool) or not isinstance(label, int)
      or not 1 <= label <= NUM_CLASSES):
    raise report.MalformedFile(
        path, None, f'expected "label" an integer in 1..{NUM_CLASSES}, '
        f'got {label!r}')
  try:
    skeleton = np.array(record['skeletons'], np.float32)
  except (TypeError, ValueError):
    skeleton = None
  if skeleton is None or (skeleton.size and skeleton.shape[1:] != (
      LAYOUT.num_joints, 3)):
    raise report.MalformedFile(
        path, None, f'expected "skeletons" of shape [T][{LAYOUT.num_joints}]'
        f'[3], got {_shape_of(record["skeletons"])}')
  if not np.isfinite(skeleton).all():
    raise report.MalformedFile(path, None, 'non-finite joint coordinate')
  return skeleton.reshape(-1, 1, LAYOUT.num_joints, 3), label - 1


def _shape_of(nested) -> str:
  """Shape of a nested list as far as it is regular, for error messages."""
  try:
    return str(np.array(nested, dtype=object).shape)
  except ValueError:
    return 'a ragged nested list'


def load_example(path: str) -> report.Loaded:
  name = parse_name(path)
  skeleton, label = read_json(path)
  skeleton = preprocess.canonical_or_skip(skeleton, LAYOUT, MIN_FRAMES)
  return report.Loaded(examples=[(name.name, {
      'skeleton': skeleton,
      'label': label,
      'subject': name.subject,
      'view': name.view,
      'setup': 0,  # NW-UCLA has no setups
      'sequence_key': name.sequence_key,
      'sample_name': name.name,
  })])
