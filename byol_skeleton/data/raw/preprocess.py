"""Canonical position and orientation of a skeleton sequence (paper sec. 4.2).

`preprocess_sequence` is what every builder applies to a parsed recording,
and --mode=predict to a recording it classifies:
1. drop empty frames (every person all-zero);
2. centre: subtract the main body's `layout.hip` joint in frame 0 from every
   present joint (the hip is the root of the spine vector used for the
   rotation, so after step 3 the frame-0 hip is still the origin);
3. rotate the whole sequence with one rotation so that in frame 0 the main
   body's spine (`layout.hip` -> `layout.neck`) points along +y and its
   shoulder line (`layout.left_shoulder` -> `layout.right_shoulder`) lies in
   the x-y plane with positive x (exactly along +x when it is perpendicular to
   the spine; otherwise it keeps its tilt against the spine).

Left -> right shoulder along +x is the orientation a subject facing a Kinect
already has (Kinect x grows to the sensor's left, i.e. the subject's right),
so frontal recordings are rotated little; the rotation is proper (det +1),
never a mirror, so left and right limbs keep their meaning.

The main body is the first person present in the first non-empty frame
(readers put the most active body first). Joints of absent persons (a person
all-zero in a frame) stay exactly zero.

2D keypoints of pose estimators (`normalise_2d`, layout coco17) are not
rotated: the camera's image plane is their frame. Pixels are centred on the
image and scaled by half its longer side, the detector's score becomes the
third channel, and a joint with score 0 is missing (all three channels 0).
"""
import numpy as np

from byol_skeleton.data import skeletons
from byol_skeleton.data.raw import problems

# Below this length (metres) a frame-0 vector has no usable direction; the
# rotation is then skipped (identity) rather than amplifying tracker noise.
_MIN_NORM = 1e-6


def present_mask(skeleton: np.ndarray) -> np.ndarray:
  """(T, M) bool: the person has a non-zero coordinate in the frame."""
  return np.any(skeleton != 0, axis=(2, 3))


def canonical_rotation(spine: np.ndarray, shoulders: np.ndarray) -> np.ndarray:
  """3x3 proper rotation R with R @ spine along +y, R @ shoulders in x-y, x > 0.

  Gram-Schmidt: y = spine direction, x = shoulder direction minus its spine
  component, z = x cross y. Returns the identity when either direction is
  undefined (zero spine, or shoulders parallel to the spine).
  """
  spine = np.asarray(spine, np.float64)
  shoulders = np.asarray(shoulders, np.float64)
  spine_norm = np.linalg.norm(spine)
  if spine_norm < _MIN_NORM:
    return np.eye(3)
  y = spine / spine_norm
  x = shoulders - np.dot(shoulders, y) * y
  x_norm = np.linalg.norm(x)
  if x_norm < _MIN_NORM:
    return np.eye(3)
  x = x / x_norm
  z = np.cross(x, y)
  return np.stack([x, y, z])


def preprocess_sequence(skeleton: np.ndarray,
                        layout: skeletons.Layout) -> np.ndarray:
  """(T, M, V, 3) raw -> (T', M, V, 3) float32, T' = number of non-empty frames.

  Raises ValueError if the sequence has no non-empty frame, a non-finite
  coordinate, or a shape that does not match `layout`.
  """
  skeleton = np.asarray(skeleton)
  if layout.coordinates != 3:
    raise ValueError(f'layout {layout.name!r} is 2D; use normalise_2d')
  if skeleton.ndim != 4 or skeleton.shape[2:] != (layout.num_joints, 3):
    raise ValueError(
        f'expected a skeleton of shape (T, M, {layout.num_joints}, 3) for '
        f'layout {layout.name!r}, got {skeleton.shape}')
  if not np.all(np.isfinite(skeleton)):
    raise ValueError('skeleton has non-finite coordinates')
  present = present_mask(skeleton)
  skeleton = skeleton[present.any(axis=1)].astype(np.float64)
  present = present[present.any(axis=1)]
  if not len(skeleton):
    raise ValueError('skeleton has no non-empty frame')

  main = int(np.argmax(present[0]))
  first = skeleton[0, main]
  rotation = canonical_rotation(
      first[layout.neck] - first[layout.hip],
      first[layout.right_shoulder] - first[layout.left_shoulder])
  out = (skeleton - first[layout.hip]) @ rotation.T
  out[~present] = 0.0
  return out.astype(np.float32)


def canonical_or_skip(skeleton: np.ndarray, layout: skeletons.Layout,
                      min_frames: int) -> np.ndarray:
  """`preprocess_sequence`; problems.SkipSample when nothing usable is left."""
  if not present_mask(skeleton).any():
    raise problems.SkipSample(problems.NO_BODY, 'no body in any frame')
  out = preprocess_sequence(skeleton, layout)
  if len(out) < min_frames:
    raise problems.SkipSample(
        problems.TOO_FEW_FRAMES,
        f'{len(out)} non-empty frames, fewer than {min_frames}')
  return out


def normalise_2d(keypoint: np.ndarray, score: np.ndarray,
                 img_shape: tuple[int, int]) -> np.ndarray:
  """(M, T, V, 2) pixels, (M, T, V) scores -> (T', M, V, 3) x, y, score.

  x = (column - w/2) / s, y = (h/2 - row) / s with s = max(h, w) / 2: the
  image centre is the origin, the longer side spans [-1, 1], both axes share
  one scale (aspect kept) and y points up, as in the 3D layouts. A score <= 0
  marks a missing joint: all its channels are 0, so a person without any
  detected joint is absent (all-zero), and frames without any detected joint
  are dropped, as `preprocess_sequence` drops empty frames. T' may be 0.
  """
  h, w = img_shape
  scale = max(h, w) / 2
  x = (keypoint[..., 0] - w / 2) / scale
  y = (h / 2 - keypoint[..., 1]) / scale
  out = np.stack([x, y, score], axis=-1).transpose(1, 0, 2, 3)
  out[out[..., 2] <= 0] = 0.0
  return out[present_mask(out).any(axis=1)].astype(np.float32)
