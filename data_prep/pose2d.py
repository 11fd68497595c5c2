"""2D skeleton annotation pickles of mmaction2 / PYSKL (COCO-17 keypoints).

One pickle holds a dict:
  'split': {split name: [frame_dir, ...]}, e.g. xsub_train, xsub_val;
  'annotations': [record, ...], one per video, each a dict with
    'frame_dir' (str, the id), 'label' (int, 0-based),
    'keypoint' (M, T, V, 2) float pixels, 'keypoint_score' (M, T, V),
    'total_frames' (T), 'img_shape' (h, w) and optionally 'original_shape'.
M may be 0 (nobody detected). This is the format of the public HRNet 2D
releases of NTU-60/120, FineGYM, UCF101 and HMDB51 (PYSKL's data README).
Kinetics-400's release keeps its keypoints in separate files and is not read.

Split names pair into protocols (one TFDS config each, `split_pairs`):
`P_train` with `P_val` or `P_test` -> P; `trainN` with `testN` -> splitN;
`train` with `val` or `test` -> default.

A file that breaks the format (not a pickle, keys missing, no record of
COCO-17 2D keypoints, a split naming an unknown id) is a `MalformedFile`
naming the file. A record that cannot become an example is skipped and
counted: no person, NaN, shape mismatch, label out of range.
"""
import collections
import dataclasses
import pathlib
import re

import numpy as np

from byol_skeleton.data.raw import pose2d as raw_pose2d
from data_prep import ntu
from data_prep import report

LAYOUT = raw_pose2d.LAYOUT
NUM_PERSONS = raw_pose2d.NUM_PERSONS
DROP_SURPLUS = f'surplus: beyond the {NUM_PERSONS} most confident persons'
RECORD_KEYS = ('frame_dir', 'label', 'total_frames', *raw_pose2d.KEYPOINT_KEYS)
_PAIRS = (
    (re.compile(r'(.+)_train'), ('{}_val', '{}_test'), '{}'),
    (re.compile(r'train(\d+)'), ('test{}', 'val{}'), 'split{}'),
    (re.compile(r'train()'), ('val', 'test'), 'default'),
)


@dataclasses.dataclass(frozen=True)
class Annotations:
  """A read pickle: records by frame_dir, in file order, and its splits."""
  records: dict[str, dict]
  split: dict[str, list[str]]
  # frame_dirs of records after the first with the same id (not read).
  duplicates: list[str]


def read_pickle(path) -> Annotations:
  """Reads and checks one annotation pickle; MalformedFile names the fault.

  Only open pickles you trust: unpickling runs code the file names.
  """
  content = raw_pose2d.unpickle(path)
  if not isinstance(content, dict) or not {'split', 'annotations'} <= set(
      content):
    found = sorted(content) if isinstance(content, dict) else type(
        content).__name__
    raise report.MalformedFile(
        path, None, 'expected a dict with keys "split" and "annotations" '
        f'(mmaction2 / PYSKL format), got {found}')
  split, annotations = content['split'], content['annotations']
  if not isinstance(split, dict) or not isinstance(annotations, list):
    raise report.MalformedFile(
        path, None, 'expected "split" a dict of lists of frame_dir and '
        '"annotations" a list of dicts')
  records, duplicates = {}, []
  for i, record in enumerate(annotations):
    raw_pose2d.check_keys(path, i, record, RECORD_KEYS)
    frame_dir = str(record['frame_dir'])
    if frame_dir in records:
      duplicates.append(frame_dir)
    else:
      records[frame_dir] = record
  shapes = {np.shape(r['keypoint'])[2:] for r in records.values()}
  if records and raw_pose2d.KEYPOINT_SHAPE not in shapes:
    raise report.MalformedFile(
        path, None, 'expected "keypoint" of shape (M, T, '
        f'{", ".join(map(str, raw_pose2d.KEYPOINT_SHAPE))}) (COCO-17, 2D '
        'pixels) in '
        f'some annotation, found only (M, T, *{sorted(shapes)})')
  for name, ids in split.items():
    unknown = [i for i in ids if str(i) not in records]
    if unknown:
      raise report.MalformedFile(
          path, None, f'split {name!r} names {len(unknown)} frame_dir '
          f'without annotation, e.g. {unknown[:3]}')
  return Annotations(records, {k: [str(i) for i in v]
                               for k, v in split.items()}, duplicates)


def default_name(pickle_path) -> str:
  """The dataset name of a pickle: pose2d_ + its stem in snake_case."""
  stem = re.sub(r'[^a-z0-9]+', '_', pathlib.Path(pickle_path).stem.lower())
  return 'pose2d_' + stem.strip('_')


def split_pairs(names) -> dict[str, tuple[str, str]]:
  """{protocol: (train split, test split)} of the split names that pair."""
  pairs = {}
  for name in sorted(names):
    for train, tests, protocol in _PAIRS:
      match = train.fullmatch(name)
      if not match:
        continue
      found = [t.format(*match.groups()) for t in tests]
      found = [t for t in found if t in names]
      if found:
        pairs.setdefault(protocol.format(*match.groups()), (name, found[0]))
      break
  return pairs


def num_classes(annotations: Annotations) -> int:
  """1 + the largest integer label: the class count the pickle implies."""
  labels = [r['label'] for r in annotations.records.values()
            if _is_label(r['label'])]
  return 1 + max(labels, default=0)


def class_names(annotations: Annotations, classes: int):
  """NTU's action names where the pickle is an NTU release (60 or 120
  classes, every id NTU's SsssCcccPpppRrrrAaaa with label = action - 1, as
  PYSKL's); None elsewhere: the pickle format carries no names."""
  if classes not in (60, 120) or not annotations.records:
    return None
  for frame_dir, record in annotations.records.items():
    try:
      if ntu.parse_name(frame_dir).action - 1 != record['label']:
        return None
    except ValueError:
      return None
  return tuple(ntu.ACTION_NAMES[:classes])


def _is_label(label) -> bool:
  # bool is an int subclass: True would pass as class 1.
  return isinstance(label, (int, np.integer)) and not isinstance(
      label, (bool, np.bool_)) and label >= 0


def _ids(frame_dir: str) -> dict:
  """Subject, view, setup and sequence key: NTU's when the name is NTU's."""
  try:
    name = ntu.parse_name(frame_dir)
  except ValueError:  # one view per sequence
    return dict(subject=0, view=1, setup=0, sequence_key=frame_dir)
  return dict(subject=name.performer, view=name.camera, setup=name.setup,
              sequence_key=name.sequence_key)


def load_example(named_record: tuple[str, dict],
                 classes: int) -> report.Loaded:
  """One record -> one example of the two most confident persons."""
  frame_dir, record = named_record
  label = record['label']
  if not _is_label(label) or label >= classes:
    raise report.SkipSample(
        report.LABEL_OUT_OF_RANGE,
        f'label {label!r} is not an integer in 0..{classes - 1}')
  skeleton, dropped = raw_pose2d.skeleton(record)
  return report.Loaded(
      examples=[(frame_dir, dict(skeleton=skeleton, label=int(label),
                                 sample_name=frame_dir, **_ids(frame_dir)))],
      dropped_bodies=collections.Counter(
          {DROP_SURPLUS: dropped} if dropped else {}))
