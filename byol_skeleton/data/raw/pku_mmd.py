"""PKU-MMD phase II per-video skeleton files (`AxxNyy-V.txt`).

One line per frame, 150 numbers = 2 persons x 25 joints x xyz (NTU joint
order; an absent second person is zeros). The video is untrimmed: the label
file beside it says where its actions are. Shared by data_prep's pku_mmd2
builder and --mode=predict (which classifies the whole file).
"""
import numpy as np

from byol_skeleton.data import skeletons
from byol_skeleton.data.raw import problems

LAYOUT = skeletons.get_layout('ntu25')
NUM_PERSONS = 2
MIN_FRAMES = 1

_NUMBERS_PER_LINE = NUM_PERSONS * LAYOUT.num_joints * 3


def read_skeleton_txt(path) -> np.ndarray:
  """(T, 2, 25, 3) float32 of a per-video skeleton file."""
  with open(path) as f:
    lines = f.read().splitlines()
  while lines and not lines[-1].strip():
    lines.pop()
  try:
    values = np.array(' '.join(lines).split(), dtype=np.float64)
  except ValueError:
    values = None
  if values is None or values.size != len(lines) * _NUMBERS_PER_LINE:
    for index, line in enumerate(lines):  # Locate the bad line.
      fields = line.split()
      if len(fields) != _NUMBERS_PER_LINE:
        raise problems.MalformedFile(
            path, index + 1, f'expected {_NUMBERS_PER_LINE} numbers '
            f'(2 persons x 25 joints x xyz), got {len(fields)}')
      for field in fields:
        try:
          float(field)
        except ValueError:
          raise problems.MalformedFile(
              path, index + 1, f'expected a number, got {field!r}') from None
  skeleton = values.reshape(len(lines), NUM_PERSONS, LAYOUT.num_joints, 3)
  bad = ~np.isfinite(skeleton).all(axis=(1, 2, 3))
  if bad.any():
    raise problems.MalformedFile(path, int(np.argmax(bad)) + 1,
                               'non-finite joint coordinate')
  return skeleton.astype(np.float32)
