"""One recording file -> its canonical skeleton, as the builders make it.

A recording is a raw file in a format the data builders read (NTU RGB+D
`.skeleton`, NW-UCLA `.json`, PKU-MMD II skeleton `.txt`, the whole video),
or a `.npy` / `.npz` array of shape (T, M, V, 3): camera-frame coordinates
in metres in a layout's joint order, M persons with the most active first
and an absent person all zeros. Each goes through its builder's reading,
body selection and minimum length, then the builders' `canonical_or_skip`
(centring and rotation; on an array that is already canonical these change
nothing beyond rounding).

A `.pkl` holds 2D COCO-17 keypoints of a pose estimator in the mmaction2 /
PYSKL format (raw/pose2d.py): one video's annotation, a list of them or a
whole dataset, each read as the pose2d builder reads it. `read_file` gives
every recording of any of these files.
"""
import pathlib
import zipfile

import numpy as np

from byol_skeleton.data import skeletons
from byol_skeleton.data.raw import ntu
from byol_skeleton.data.raw import nw_ucla
from byol_skeleton.data.raw import pose2d
from byol_skeleton.data.raw import pku_mmd
from byol_skeleton.data.raw import preprocess
from byol_skeleton.data.raw import problems

SUFFIXES = ('.skeleton', '.json', '.txt', '.npy', '.npz', '.pkl')
# What reading a damaged file raises, besides problems.MalformedFile (a
# ValueError): bad text or arrays (ValueError), I/O, truncated .npy / .npz.
READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile)
_ARRAY_MIN_FRAMES = 1


def _array(path: pathlib.Path) -> np.ndarray:
  """The (T, M, V, 3) array of a .npy, or of a .npz's one array (or its
  array named 'skeleton')."""
  if path.suffix == '.npy':
    array = np.load(path, allow_pickle=False)
  else:
    with np.load(path, allow_pickle=False) as arrays:
      names = list(arrays.keys())
      if 'skeleton' not in names and len(names) != 1:
        raise problems.MalformedFile(
            path, None, 'expected one array, or one named "skeleton", '
            f'got {names}')
      array = arrays['skeleton' if 'skeleton' in names else names[0]]
  if array.ndim != 4 or array.shape[3] != 3:
    raise problems.MalformedFile(
        path, None, 'expected an array of shape (T, M, V, 3) (frames, '
        f'persons, joints, xyz), got shape {array.shape}')
  return array


def _raw(path: pathlib.Path, layout: skeletons.Layout):
  """(skeleton (T, M, V, 3), its layout, its builder's minimum length)."""
  if path.suffix == '.skeleton':
    skeleton, _ = ntu.select_bodies(ntu.read_skeleton_file(path))
    return skeleton, ntu.LAYOUT, ntu.MIN_FRAMES
  if path.suffix == '.json':
    skeleton, _ = nw_ucla.read_json(path)
    return skeleton, nw_ucla.LAYOUT, nw_ucla.MIN_FRAMES
  if path.suffix == '.txt':
    return (pku_mmd.read_skeleton_txt(path), pku_mmd.LAYOUT,
            pku_mmd.MIN_FRAMES)
  if path.suffix in ('.npy', '.npz'):
    array = _array(path)
    if array.shape[2] != layout.num_joints:
      raise problems.SkipSample(
          problems.WRONG_JOINTS, f'{array.shape[2]} joints, but the '
          f"config's layout {layout.name!r} has {layout.num_joints}")
    return array, layout, _ARRAY_MIN_FRAMES
  raise problems.MalformedFile(
      path, None, f'unknown recording format {path.suffix!r}; expected one '
      f'of {", ".join(SUFFIXES)}')


def read(path, layout: skeletons.Layout) -> np.ndarray:
  """Canonical (T, M, V, 3) float32 skeleton of one recording file.

  Raises problems.SkipSample (no body, too short, another joint layout than
  `layout`) or one of READ_ERRORS (malformed or unreadable file).
  """
  path = pathlib.Path(path)
  skeleton, file_layout, min_frames = _raw(path, layout)
  if file_layout.name != layout.name:
    raise problems.SkipSample(
        problems.WRONG_JOINTS, f'a {path.suffix} file has '
        f'{file_layout.num_joints} joints ({file_layout.name!r}), but the '
        f"config's layout {layout.name!r} has {layout.num_joints}")
  return preprocess.canonical_or_skip(skeleton, layout, min_frames)


def _or_skip(load, *args):
  """load(*args), or the SkipSample it raised."""
  try:
    return load(*args)
  except problems.SkipSample as e:
    return e


def read_file(path, layout: skeletons.Layout) -> list[tuple[str, object]]:
  """(name, canonical skeleton or the SkipSample saying why there is none)
  of each recording in one file: the file itself, or `PATH:frame_dir` for
  each annotation of a pickle. Raises one of READ_ERRORS when the file as a
  whole cannot be read.
  """
  path = pathlib.Path(path)
  if path.suffix != '.pkl':
    return [(str(path), _or_skip(read, path, layout))]
  if layout.name != pose2d.LAYOUT.name:
    return [(str(path), problems.SkipSample(
        problems.WRONG_JOINTS, f'a .pkl file holds {pose2d.LAYOUT.name!r} '
        f"keypoints, but the config's layout is {layout.name!r}"))]
  return [(f'{path}:{name}', _or_skip(lambda r: pose2d.skeleton(r)[0], record))
          for name, record in pose2d.records(path)]


def list_files(paths) -> list[pathlib.Path]:
  """The recording files `paths` name, in order.

  A file is taken as given (its format is checked when it is read); a
  folder gives its files with a recording suffix, at any depth, sorted.
  Raises FileNotFoundError for a path that does not exist.
  """
  files = []
  for path in map(pathlib.Path, paths):
    if path.is_dir():
      files += sorted(p for p in path.rglob('*')
                      if p.suffix in SUFFIXES and p.is_file())
    elif path.exists():
      files.append(path)
    else:
      raise FileNotFoundError(path)
  return files
