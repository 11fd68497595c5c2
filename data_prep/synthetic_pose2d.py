"""The synthetic takes as a pose estimator would see them: a 2D pickle.

  python -m data_prep.synthetic_pose2d --output=runs/synthetic_2d.pkl \\
      [--repetitions=5] [--seed=0]

The takes of data_prep/synthetic.py (same subjects and actions), each seen by
its three cameras through a pinhole of a 1920x1080 colour camera: COCO-17
joints (the face from the head, neck and shoulders; limbs as Kinect's) in
pixels, with a detector's noise and confidence scores, some joints not
detected (score 0), and persons missing in frames where the 3D recording
loses them. Written in the mmaction2 / PYSKL format (data_prep/pose2d.py) with
the splits of NTU-60's release: xsub_train / xsub_val (subjects 1-7 / 8-10)
and xview_train / xview_val (cameras 2, 3 / camera 1). Only persons present
somewhere in a take are listed (M = 1, or 2 with a partner).
"""
import pickle

from absl import app
from absl import flags
import numpy as np

from byol_skeleton.data import skeletons
from data_prep import synthetic

COCO17 = skeletons.get_layout('coco17')
IMG_SHAPE = (1080, 1920)  # (h, w), NTU's colour camera
FOCAL = 1050.0  # pixels; Kinect v2's colour camera
PIXEL_NOISE = 3.0  # pixels; wrists and ankles 2x
MISS_PROB = 0.03  # a joint not detected in a frame (score 0)
XVIEW_TRAIN_CAMERAS = (2, 3)  # as NTU's cross-view protocol
_NTU = {name: i for i, name in enumerate(synthetic.LAYOUT.joint_names)}
_LIMBS = [_NTU[name] for name in COCO17.joint_names[5:]]
_EXTREMITIES = [COCO17.joint_names.index(n) for n in (
    'left_wrist', 'right_wrist', 'left_ankle', 'right_ankle')]
# Face points in the head's frame (metres): (forward, up, to the left).
_FACE = np.array([
    (0.09, -0.02, 0.0),  # nose
    (0.07, 0.02, 0.03), (0.07, 0.02, -0.03),  # left, right eye
    (0.0, 0.0, 0.075), (0.0, 0.0, -0.075)])  # left, right ear


def _unit(v):
  norm = np.linalg.norm(v, axis=-1, keepdims=True)
  return v / np.where(norm > 0, norm, 1)


def coco17_pose(world: np.ndarray) -> np.ndarray:
  """(..., 25, 3) NTU-25 joints -> (..., 17, 3) COCO-17 joints.

  The face hangs on the head in a frame of up = neck -> head, left = the
  shoulder line made orthogonal to it, forward = left x up.
  """
  head, neck = world[..., _NTU['head'], :], world[..., _NTU['neck'], :]
  up = _unit(head - neck)
  across = (world[..., _NTU['left_shoulder'], :]
            - world[..., _NTU['right_shoulder'], :])
  left = _unit(across - np.sum(across * up, -1, keepdims=True) * up)
  forward = np.cross(left, up)
  axes = np.stack([forward, up, left], axis=-2)  # (..., 3, 3)
  face = head[..., None, :] + np.einsum('fa,...ad->...fd', _FACE, axes)
  return np.concatenate([face, world[..., _LIMBS, :]], axis=-2)


def project(camera_points: np.ndarray) -> np.ndarray:
  """Camera frame (x to the sensor's left, y up, z depth) -> (col, row) px."""
  h, w = IMG_SHAPE
  z = camera_points[..., 2]
  return np.stack([w / 2 - FOCAL * camera_points[..., 0] / z,
                   h / 2 - FOCAL * camera_points[..., 1] / z], axis=-1)


def detect(world: np.ndarray, rotation, origin, rng: np.random.Generator):
  """One camera's 2D detections of a take: (M, T, 17, 2) px, (M, T, 17).

  M is the number of persons present in some frame; a person absent in a
  frame (and every joint the detector misses) has score 0.
  """
  present = np.any(world != 0, axis=(2, 3))  # (T, 2)
  persons = np.flatnonzero(present.any(axis=0))
  camera = (coco17_pose(world[:, persons]) - origin) @ rotation.T
  pixels = project(camera)
  noise = np.full(COCO17.num_joints, PIXEL_NOISE)
  noise[_EXTREMITIES] *= 2
  pixels += rng.normal(size=pixels.shape) * noise[:, None]
  score = rng.uniform(0.6, 1.0, pixels.shape[:-1])
  score[rng.random(score.shape) < MISS_PROB] = 0.0
  score[~present[:, persons]] = 0.0
  if rng.random() < 0.2:  # the detector finds nobody in one frame
    score[rng.integers(1, len(score) - 1)] = 0.0
  pixels[score == 0] = 0.0
  return (pixels.transpose(1, 0, 2, 3).astype(np.float32),
          score.transpose(1, 0, 2).astype(np.float32))


def annotations(seed: int = 0,
                repetitions: int = synthetic.DEFAULT_REPETITIONS) -> dict:
  """The whole pickle's content: {'split': ..., 'annotations': [...]}."""
  split = {k: [] for k in ('xsub_train', 'xsub_val', 'xview_train',
                           'xview_val')}
  records = []
  subjects = range(1, synthetic.NUM_SUBJECTS + 1)
  for take in synthetic.takes(seed, subjects, repetitions):
    for cam, rotation, origin in synthetic.cameras(take):
      keypoint, score = detect(take.world, rotation, origin, take.rng)
      name = take.view_name(cam)
      records.append(dict(
          frame_dir=name, label=take.label, keypoint=keypoint,
          keypoint_score=score, total_frames=keypoint.shape[1],
          img_shape=IMG_SHAPE, original_shape=IMG_SHAPE))
      xsub = 'train' if take.subject in synthetic.TRAIN_SUBJECTS else 'val'
      xview = 'train' if cam in XVIEW_TRAIN_CAMERAS else 'val'
      split[f'xsub_{xsub}'].append(name)
      split[f'xview_{xview}'].append(name)
  return dict(split=split, annotations=records)


def write_pickle(path, seed: int = 0,
                 repetitions: int = synthetic.DEFAULT_REPETITIONS):
  with open(path, 'wb') as f:
    pickle.dump(annotations(seed, repetitions), f)
  return path


_OUTPUT = flags.DEFINE_string('output', None, 'The pickle to write.',
                              required=True)
_REPETITIONS = flags.DEFINE_integer(
    'repetitions', synthetic.DEFAULT_REPETITIONS,
    'Takes per (action, subject); each gives 3 camera views.')
_SEED = flags.DEFINE_integer('seed', 0, 'Subjects and takes.')


def main(argv):
  del argv
  print(write_pickle(_OUTPUT.value, _SEED.value, _REPETITIONS.value))


if __name__ == '__main__':
  app.run(main)
