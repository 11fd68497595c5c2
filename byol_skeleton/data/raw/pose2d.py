"""2D keypoint annotations of mmaction2 / PYSKL (COCO-17) -> skeletons.

A record is one video's annotation dict: 'keypoint' (M, T, 17, 2) float
pixels, 'keypoint_score' (M, T, 17), 'img_shape' (h, w), 'total_frames' (T),
and in a dataset 'frame_dir' (its id) and 'label'. A dataset pickle holds
{'split': ..., 'annotations': [record, ...]} (data_prep/pose2d.py builds
shards from it); mmaction2's pose extraction writes one record per video.
`skeleton` turns a record into the builders' (T', 2, 17, 3) x, y, score
skeleton; `records` reads the recordings of any of these pickles for
--mode=predict, embed and visualize.
"""
import pickle

import numpy as np

from byol_skeleton.data import skeletons
from byol_skeleton.data.raw import preprocess
from byol_skeleton.data.raw import problems

LAYOUT = skeletons.get_layout('coco17')
# As NTU: the two most confident persons; more are dropped (counted).
NUM_PERSONS = 2
KEYPOINT_KEYS = ('keypoint', 'keypoint_score', 'img_shape')
KEYPOINT_SHAPE = (LAYOUT.num_joints, 2)
_UNPICKLING_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError,
                      AttributeError, ImportError, IndexError)


def unpickle(path):
  """The object a pickle holds; MalformedFile when it is not a pickle.

  Only open pickles you trust: unpickling runs code the file names.
  """
  try:
    with open(path, 'rb') as f:
      return pickle.load(f)
  except _UNPICKLING_ERRORS as e:
    raise problems.MalformedFile(
        path, None, f'not a pickle of 2D skeleton annotations ({e!r})')


def _arrays(record):
  """(keypoint, score, img_shape) of a record; SkipSample when unusable."""
  try:
    keypoint = np.asarray(record['keypoint'], np.float64)
    score = np.asarray(record['keypoint_score'], np.float64)
    h, w = (float(v) for v in record['img_shape'])
    frames = int(record.get('total_frames', np.shape(keypoint)[1]))
  except (TypeError, ValueError, IndexError) as e:
    raise problems.SkipSample(problems.SHAPE_MISMATCH,
                              f'unreadable arrays: {e}')
  if (keypoint.ndim != 4 or keypoint.shape[1:] != (frames, *KEYPOINT_SHAPE)
      or score.shape != keypoint.shape[:3] or not (h > 0 and w > 0)):
    raise problems.SkipSample(
        problems.SHAPE_MISMATCH,
        f'keypoint {keypoint.shape}, keypoint_score {score.shape}, '
        f'img_shape {record["img_shape"]}; expected (M, {frames}, '
        f'{KEYPOINT_SHAPE[0]}, 2), (M, {frames}, {KEYPOINT_SHAPE[0]}) and '
        '(h, w) > 0 for total_frames ' + str(frames))
  if not (np.isfinite(keypoint).all() and np.isfinite(score).all()):
    raise problems.SkipSample(problems.NON_FINITE,
                              'NaN or infinite keypoint or score')
  return keypoint, score, (h, w)


def skeleton(record) -> tuple[np.ndarray, int]:
  """(skeleton (T', NUM_PERSONS, 17, 3), persons dropped) of one record.

  The NUM_PERSONS most confident persons, most confident first (readers
  put the main body in slot 0), normalised by `preprocess.normalise_2d`;
  a missing slot is all zeros. SkipSample: shape mismatch, NaN, no person.
  """
  keypoint, score, img_shape = _arrays(record)
  order = np.argsort(-np.clip(score, 0, None).sum(axis=(1, 2)), kind='stable')
  kept = order[:NUM_PERSONS]
  normalised = preprocess.normalise_2d(keypoint[kept], score[kept], img_shape)
  if not len(normalised):
    raise problems.SkipSample(problems.NO_PERSON,
                              f'no joint with a score > 0 in {len(score)} '
                              'persons')
  padded = np.zeros((len(normalised), NUM_PERSONS, *normalised.shape[2:]),
                    np.float32)
  padded[:, :normalised.shape[1]] = normalised
  return padded, len(order) - len(kept)


def records(path) -> list[tuple[str, dict]]:
  """(name, record) of every recording in a pickle, in file order.

  The pickle holds one record (mmaction2's pose extraction), a list of
  records, or a dataset dict with 'annotations'. A record is named by its
  'frame_dir', else by its position. MalformedFile when the pickle is none
  of these or a record lacks KEYPOINT_KEYS.
  """
  content = unpickle(path)
  if isinstance(content, dict) and 'annotations' in content:
    content = content['annotations']
  elif isinstance(content, dict):
    content = [content]
  if not isinstance(content, list) or not content:
    raise problems.MalformedFile(
        path, None, 'expected an annotation dict with '
        f'{list(KEYPOINT_KEYS)}, a non-empty list of them, or a dict with '
        f'"annotations" (mmaction2 / PYSKL format), got '
        f'{type(content).__name__}')
  for i, record in enumerate(content):
    check_keys(path, i, record, KEYPOINT_KEYS)
  return [(str(record.get('frame_dir', i)), record)
          for i, record in enumerate(content)]


def check_keys(path, index: int, record, keys):
  """MalformedFile naming what annotation `index` of `path` lacks of `keys`."""
  missing = [k for k in keys
             if not isinstance(record, dict) or k not in record]
  if missing:
    raise problems.MalformedFile(
        path, None, f'annotation {index} lacks {missing}; every annotation '
        f'needs {list(keys)}')
