"""The synthetic dataset: schema, split, kinematics, cameras, separability."""
import collections

import numpy as np
import pytest
import tensorflow_datasets as tfds

from byol_skeleton.data.raw import preprocess
from configs import synthetic as synthetic_config
from data_prep import synthetic

REPS = 2
LAYOUT = synthetic.LAYOUT
J = {n: i for i, n in enumerate(LAYOUT.joint_names)}


@pytest.fixture(scope='module')
def records(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp('synthetic')
  synthetic.build_synthetic(data_dir, repetitions=REPS)
  source = tfds.data_source('synthetic/xsub', data_dir=str(data_dir),
                            download=False)
  return {split: [source[split][i] for i in range(len(source[split]))]
          for split in ('train', 'test')}


def test_split_sizes_subjects_and_views(records):
  num_train = len(synthetic.TRAIN_SUBJECTS)
  for split, subjects in (('train', range(1, num_train + 1)),
                          ('test', range(num_train + 1, 11))):
    recs = records[split]
    assert len(recs) == 3 * len(synthetic.ACTIONS) * len(subjects) * REPS
    assert {r['subject'] for r in recs} == set(subjects)
    by_key = collections.defaultdict(list)
    for r in recs:
      by_key[r['sequence_key']].append(r)
    for views in by_key.values():
      assert sorted(r['view'] for r in views) == [1, 2, 3]
      for k in ('label', 'subject', 'setup'):
        assert len({r[k] for r in views}) == 1
    assert np.bincount([r['label'] for r in recs]).tolist() == [
        len(recs) // 10] * 10


def test_lengths_and_second_person(records):
  two_person = {synthetic.ACTIONS.index(a) for a in synthetic.TWO_PERSON}
  for r in records['train'] + records['test']:
    x = r['skeleton']
    assert x.dtype == np.float32 and x.shape[1:] == (2, 25, 3)
    # At most one frame is dropped by a tracking glitch.
    assert synthetic.MIN_FRAMES - 1 <= len(x) <= synthetic.MAX_FRAMES
    assert np.any(x[:, 1] != 0) == (r['label'] in two_person)
    # Preprocessed: frame-0 hip at the origin.
    np.testing.assert_allclose(x[0, 0, LAYOUT.hip], 0, atol=1e-6)


def test_generation_is_reproducible_and_independent_of_size():
  a = dict(synthetic.recordings(7, [2], 1))
  b = dict(synthetic.recordings(7, [2], 2))
  assert set(a) < set(b)
  for name, ex in a.items():
    np.testing.assert_array_equal(ex['skeleton'], b[name]['skeleton'])
  c = dict(synthetic.recordings(8, [2], 1))
  assert not np.allclose(a[next(iter(a))]['skeleton'][:10],
                         c[next(iter(a))]['skeleton'][:10])


def test_kinematics_keep_bone_lengths_and_feet_on_floor():
  subject = synthetic.make_subjects(0)[1]
  rng = np.random.default_rng(0)
  for action in synthetic.ACTIONS:
    angles, _ = synthetic.action_angles(action, 60, subject, rng)
    pose = synthetic.forward_kinematics(angles, subject.bones, 60)
    bones = np.linalg.norm(
        pose[:, [j for j, _ in LAYOUT.edges]]
        - pose[:, [p for _, p in LAYOUT.edges]], axis=-1)
    np.testing.assert_allclose(bones, bones[:1].repeat(60, 0), atol=1e-9)
    np.testing.assert_allclose(
        bones[0, LAYOUT.edges.index((J['left_elbow'], J['left_shoulder']))],
        subject.bones['upper_arm'])
    feet = pose[:, [J['left_ankle'], J['right_ankle'], J['left_foot'],
                    J['right_foot']], 1].min(1)
    np.testing.assert_allclose(feet, angles.get('lift', 0), atol=1e-9)


@pytest.mark.parametrize('left_handed', [False, True])
def test_wave_uses_the_dominant_hand(left_handed):
  subject = synthetic.make_subjects(0)[1]
  subject = synthetic.Subject(subject.bones, left_handed, 1.0, 1.0)
  world = synthetic.perform('wave', subject, 80, np.random.default_rng(0))
  canon = preprocess.preprocess_sequence(world, LAYOUT)
  up = canon[:, 0, J['left_hand'], 1].max() > canon[:, 0, J['right_hand'],
                                                        1].max() + 0.3
  assert up == left_handed


def test_cameras_are_proper_rotations_with_y_up():
  for yaw in synthetic.CAMERA_YAWS:
    rotation, origin = synthetic.camera_pose(yaw, 1.3, 3.2)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(rotation), 1.0)
    assert rotation[1, 1] > 0.95  # camera y is close to world up
    # The scene centre is in front of the camera (positive depth).
    assert (rotation @ (np.array([0, 0.9, 0]) - origin))[2] > 2.5


def test_views_differ_raw_but_agree_after_preprocessing():
  subject = synthetic.make_subjects(0)[4]
  rng = np.random.default_rng(1)
  world = synthetic.perform('both_arms_up', subject, 70, rng)
  views = []
  for yaw in synthetic.CAMERA_YAWS:
    rotation, origin = synthetic.camera_pose(yaw, 1.3, 3.2)
    # Noise only: glitches would misalign frames between views.
    views.append(((world - origin) @ rotation.T
                  + rng.normal(0, 0.005, world.shape)) * np.any(
                      world != 0, axis=(2, 3), keepdims=True))
  dist = lambda a, b: np.linalg.norm(a[:, 0] - b[:, 0], axis=-1).mean()
  canon = [preprocess.preprocess_sequence(v, LAYOUT) for v in views]
  for i, j in ((0, 1), (0, 2), (1, 2)):
    assert dist(views[i], views[j]) > 0.15
    assert dist(canon[i], canon[j]) < 0.06


def _hand_features(x):
  actor = x[:, 0]
  speed = np.abs(np.diff(actor, axis=0)).mean(0)
  return np.concatenate([actor.mean(0).ravel(), actor.std(0).ravel(),
                         10 * speed.ravel()])


def test_classes_are_separable_across_subjects(records):
  """Nearest class centroid on hand-made features, train subjects -> test."""
  x, y = {}, {}
  for split, recs in records.items():
    x[split] = np.stack([_hand_features(r['skeleton']) for r in recs])
    y[split] = np.array([r['label'] for r in recs])
  mean, std = x['train'].mean(0), x['train'].std(0) + 1e-6
  z = {s: (v - mean) / std for s, v in x.items()}
  centroids = np.stack([z['train'][y['train'] == c].mean(0)
                        for c in range(len(synthetic.ACTIONS))])
  pred = np.argmin(((z['test'][:, None] - centroids) ** 2).sum(-1), axis=1)
  accuracy = (pred == y['test']).mean()
  assert accuracy > 0.7, accuracy  # chance: 0.1


def test_config_pads_to_the_longest_recording():
  # The loader crops recordings longer than data.max_frames without a word;
  # the config's literal must keep up with the generator's MAX_FRAMES.
  assert synthetic_config.get_config().data.max_frames >= synthetic.MAX_FRAMES
