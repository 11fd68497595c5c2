"""The embedded default dataset: procedurally generated multi-view skeletons.

Ten actions are parametric joint-angle trajectories on a kinematic NTU-25
skeleton built from each simulated subject's bone lengths. Every recording is
seen by three virtual Kinects at different angles (camera frame: y up, z
depth, x to the sensor's left), with joint noise and tracking glitches, then
goes through the same `preprocess_sequence` as the real datasets.

The data is hard in the ways the paper's augmentations address (dataset
version 2.0.0; on the easier 1.0.0 a randomly initialised encoder scored 94 %
under linear evaluation, leaving pretraining nothing to show): subjects vary
in tempo (0.6-1.6x) and excursion (0.6-1.4x), the action fills a random
50-100 % of the recording (the subject holds still before and after), and
the joint noise is the Kinect's centimetre scale. Recordings are sampled at
10 frames/s, a third of the Kinect's rate, so that a 32-frame view covers a
whole recording on a 2-core CPU, as 150 frames do for NTU in the paper
(section 4.2). docs/design.md, "The synthetic dataset", has the
measurements.

Build it with `Synthetic(data_dir=DIR).download_and_prepare()` (or
`build_synthetic(DIR)`, or `python -m data_prep.build --dataset=synthetic`)
and read it with `tfds.data_source('synthetic/xsub', data_dir=DIR)`.
Examples are a pure function of (seed, action, subject, repetition), so a
build is reproducible and `repetitions` only adds recordings.
"""
import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from byol_skeleton.data import skeletons
from byol_skeleton.data.raw import preprocess
from data_prep import features

ACTIONS = ('wave', 'both_arms_up', 'squat', 'kick', 'walk_in_place', 'jump',
           'bow', 'punch', 'clap', 'turn')
# A partner stands in front of the actor in these actions (the 2-person path).
TWO_PERSON = ('kick', 'punch')
NUM_SUBJECTS = 10
TRAIN_SUBJECTS = tuple(range(1, 8))  # cross-subject split: 1-7 train, 8-10 test
LEFT_HANDED = (3, 9)  # one in each split
CAMERA_YAWS = np.radians((-45.0, 0.0, 45.0))  # camera ids 1..3
# Camera height and distance (metres) per setup, as NTU varies them per setup.
SETUPS = ((0.9, 2.8), (1.3, 3.2), (1.7, 3.6))
FPS = 10.0
MIN_FRAMES, MAX_FRAMES = 14, 40  # 1.4-4 s
# The action spans this fraction of the recording; the rest is held still.
ACTIVE_FRACTION = (0.5, 1.0)
DEFAULT_REPETITIONS = 5
NUM_PERSONS = 2
LAYOUT = skeletons.get_layout('ntu25')

# Mean bone lengths (metres) of a 1.75 m adult.
_BONES = dict(spine1=0.25, spine2=0.24, neck=0.08, head=0.13, shoulder=0.18,
              upper_arm=0.28, forearm=0.25, hand=0.08, tip=0.06, thumb=0.05,
              hip=0.09, thigh=0.43, shin=0.41, foot=0.13)
_JOINT = {name: i for i, name in enumerate(LAYOUT.joint_names)}
# Kinect tracks hands and feet worst.
_EXTREMITIES = np.array([_JOINT[n] for n in (
    'left_hand', 'right_hand', 'left_hand_tip', 'left_thumb', 'right_hand_tip',
    'right_thumb', 'left_wrist', 'right_wrist', 'left_foot', 'right_foot')])
_NOISE_STD = 0.024  # metres; extremities 2.5x
_REST = dict(abd=0.15, elbow=0.15, knee=0.05)


@dataclasses.dataclass(frozen=True)
class Subject:
  bones: dict
  left_handed: bool
  speed: float  # Multiplies the tempo of periodic motions.
  amplitude: float  # Multiplies joint-angle excursions.


def random_subject(rng: np.random.Generator, left_handed=False) -> Subject:
  height = rng.uniform(0.85, 1.15)
  bones = {k: v * height * rng.uniform(0.94, 1.06) for k, v in _BONES.items()}
  return Subject(bones, left_handed, rng.uniform(0.6, 1.6),
                 rng.uniform(0.6, 1.4))


def make_subjects(seed: int) -> dict[int, Subject]:
  """Subject id (1-based) -> body and style; depends only on `seed`."""
  rng = np.random.default_rng([seed, 0])
  return {sid: random_subject(rng, sid in LEFT_HANDED)
          for sid in range(1, NUM_SUBJECTS + 1)}


def _unit(v):
  return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _limb_dir(side, flex, abd):
  """(T, 3) direction of a limb hanging down, flexed forward and abducted.

  Body frame: x = the subject's left, y up, z forward (right-handed).
  `side` is +1 for the left limb, -1 for the right one.
  """
  return np.stack([side * np.sin(abd) * np.cos(flex),
                   -np.cos(abd) * np.cos(flex), np.sin(flex)], -1)


def _rot_x(a):
  c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
  return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1),
                   np.stack([z, s, c], -1)], -2)


def _rot_y(a):
  c, s, z, o = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
  return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1),
                   np.stack([-s, z, c], -1)], -2)


def forward_kinematics(angles: dict, bones: dict, num_frames: int) -> np.ndarray:
  """Joint angles (each (T,) radians, missing = rest) -> (T, 25, 3) world pose.

  Angles: 'pitch' (torso bends forward), 'head', 'yaw' (whole body), 'lift'
  (metres off the floor), and per side s in {'l', 'r'}: s+'_flex' / s+'_abd'
  (shoulder), s+'_elbow', s+'_hip' (flexion), s+'_knee'. The feet touch the
  floor (y = 0) unless lifted.
  """
  t = num_frames
  get = lambda k, d=0.0: np.broadcast_to(angles.get(k, d), (t,)).astype(float)
  b = bones
  x = np.zeros((t, LAYOUT.num_joints, 3))
  fwd = np.array([0.0, 0.3, 1.0])
  # Upper body in the torso frame; bent by 'pitch' about the spine base below.
  x[:, _JOINT['spine_mid'], 1] = b['spine1']
  x[:, _JOINT['spine_shoulder'], 1] = b['spine1'] + b['spine2']
  x[:, _JOINT['neck'], 1] = b['spine1'] + b['spine2'] + b['neck']
  head = get('head')
  x[:, _JOINT['head']] = x[:, _JOINT['neck']] + b['head'] * np.stack(
      [0 * head, np.cos(head), np.sin(head)], -1)
  for s, side, name in (('l', 1.0, 'left'), ('r', -1.0, 'right')):
    shoulder = x[:, _JOINT['spine_shoulder']] + [side * b['shoulder'], -0.03, 0]
    d1 = _limb_dir(side, get(s + '_flex'), get(s + '_abd', _REST['abd']))
    # The elbow bends towards the front (up when the arm points forward).
    bend = _unit(fwd - (d1 @ fwd)[:, None] * d1)
    elbow_angle = get(s + '_elbow', _REST['elbow'])[:, None]
    d2 = np.cos(elbow_angle) * d1 + np.sin(elbow_angle) * bend
    elbow = shoulder + b['upper_arm'] * d1
    wrist = elbow + b['forearm'] * d2
    hand = wrist + b['hand'] * d2
    x[:, _JOINT[name + '_shoulder']] = shoulder
    x[:, _JOINT[name + '_elbow']] = elbow
    x[:, _JOINT[name + '_wrist']] = wrist
    x[:, _JOINT[name + '_hand']] = hand
    x[:, _JOINT[name + '_hand_tip']] = hand + b['tip'] * d2
    # The thumb points across the palm, off the elbow's bending plane.
    x[:, _JOINT[name + '_thumb']] = hand + b['thumb'] * (
        d2 - side * np.cross(d1, bend)) / np.sqrt(2)
  # Only the upper body is set yet (the spine base is the origin).
  x = np.einsum('tij,tvj->tvi', _rot_x(get('pitch')), x)
  for s, side, name in (('l', 1.0, 'left'), ('r', -1.0, 'right')):
    hip = np.array([side * b['hip'], -0.05, 0.0])
    flex, knee = get(s + '_hip'), get(s + '_knee', _REST['knee'])
    knee_pos = hip + b['thigh'] * _limb_dir(side, flex, 0.05)
    ankle = knee_pos + b['shin'] * _limb_dir(side, flex - knee, 0.05)
    x[:, _JOINT[name + '_hip']] = hip
    x[:, _JOINT[name + '_knee']] = knee_pos
    x[:, _JOINT[name + '_ankle']] = ankle
    x[:, _JOINT[name + '_foot']] = ankle + b['foot'] * _unit(
        np.array([0.0, -0.25, 1.0]))
  x = np.einsum('tij,tvj->tvi', _rot_y(get('yaw')), x)
  feet = [_JOINT[n] for n in ('left_ankle', 'right_ankle', 'left_foot',
                              'right_foot')]
  floor = x[:, feet, 1].min(axis=1)
  x[..., 1] += (get('lift') - floor)[:, None]
  return x


def _smooth_hold(u, ramp=0.2):
  """0 -> 1 over the first `ramp` of the clip, hold, back to 0 at the end."""
  r = np.clip(np.minimum(u, 1 - u) / ramp, 0, 1)
  return r * r * (3 - 2 * r)


def _bump(u, n=1):
  return np.sin(np.pi * n * u) ** 2


def _pulse(u, center, width):
  return np.exp(-((u - center) / width) ** 2)


def action_angles(action: str, num_frames: int, subject: Subject,
                  rng: np.random.Generator):
  """(actor angles, partner angles or None) of one recording of `action`."""
  u = np.linspace(0.0, 1.0, num_frames)
  # Tempo in cycles of periodic motions; sets seconds -> phase.
  t = np.arange(num_frames) / FPS * subject.speed * rng.uniform(0.9, 1.1)
  amp = subject.amplitude * rng.uniform(0.9, 1.1)
  phase = rng.uniform(0, 2 * np.pi)
  dom, other = ('l', 'r') if subject.left_handed else ('r', 'l')
  a, partner = {}, None
  if action == 'wave':
    hold = _smooth_hold(u)
    a[dom + '_abd'] = 0.15 + 2.4 * amp * hold
    a[dom + '_elbow'] = 0.3 + hold * (0.6 + 0.5 * np.sin(
        2 * np.pi * 2.0 * t + phase))
  elif action == 'both_arms_up':
    raise_ = 2.8 * amp * _bump(u, rng.integers(1, 3))
    a['l_abd'] = a['r_abd'] = 0.15 + raise_
  elif action == 'squat':
    down = _bump(u, rng.integers(1, 3))
    a['l_hip'] = a['r_hip'] = 1.6 * amp * down
    a['l_knee'] = a['r_knee'] = 2.0 * amp * down
    a['pitch'] = 0.4 * down
    a['l_flex'] = a['r_flex'] = 1.3 * down
  elif action == 'kick':
    kick = _pulse(u, 0.5, 0.12)
    a[dom + '_hip'] = 1.3 * amp * kick
    a[dom + '_knee'] = 1.2 * _pulse(u, 0.4, 0.1)
    a['pitch'] = -0.15 * kick
    a['l_abd'] = a['r_abd'] = 0.4
    partner = dict(pitch=-0.3 * _pulse(u, 0.55, 0.1))
  elif action == 'walk_in_place':
    step = np.sin(2 * np.pi * 0.9 * t + phase)
    for s, sign in (('l', 1.0), ('r', -1.0)):
      a[s + '_hip'] = 0.6 * amp * np.maximum(sign * step, 0)
      a[s + '_knee'] = 1.1 * amp * np.maximum(sign * step, 0)
      a[s + '_flex'] = -0.4 * amp * sign * step
      a[s + '_elbow'] = 0.4
  elif action == 'jump':
    wave = np.sin(2 * np.pi * rng.integers(1, 3) * u)
    crouch = np.maximum(-wave, 0)
    a['lift'] = 0.3 * amp * np.maximum(wave, 0)
    a['l_hip'] = a['r_hip'] = 0.6 * crouch
    a['l_knee'] = a['r_knee'] = 0.9 * crouch
    a['l_abd'] = a['r_abd'] = 0.15 + 2.5 * np.maximum(wave, 0)
  elif action == 'bow':
    down = _bump(u)
    a['pitch'] = 1.0 * amp * down
    a['head'] = 0.3 * down
  elif action == 'punch':
    n = rng.integers(2, 5)
    hits = {dom: 0 * u, other: 0 * u}
    for i in range(n):
      hits[(dom, other)[i % 2]] += _pulse(u, (i + 0.5) / n, 0.25 / n)
    for s in 'lr':
      a[s + '_flex'] = 1.2 + 0.3 * hits[s]
      a[s + '_elbow'] = 2.0 * (1 - np.minimum(hits[s] * amp, 1))
    partner = dict(pitch=-0.25 * (hits['l'] + hits['r']))
  elif action == 'clap':
    closed = 0.5 + 0.5 * np.cos(2 * np.pi * 2.5 * t + phase)
    a['l_flex'] = a['r_flex'] = 1.2
    a['l_abd'] = a['r_abd'] = 0.3 - amp * closed
    a['l_elbow'] = a['r_elbow'] = 0.3
  elif action == 'turn':
    direction = 1.0 if rng.random() < 0.5 else -1.0
    r = np.clip(u / 0.8, 0, 1)
    a['yaw'] = direction * np.pi * (0.5 + 0.5 * amp) * r * r * (3 - 2 * r)
    step = np.sin(2 * np.pi * 1.2 * t)
    a['l_hip'] = a['l_knee'] = 0.3 * np.maximum(step, 0)
    a['r_hip'] = a['r_knee'] = 0.3 * np.maximum(-step, 0)
  else:
    raise ValueError(f'unknown synthetic action {action!r}; known: {ACTIONS}')
  return a, partner


def _place(pose, yaw, position):
  """Rotates a (T, V, 3) pose about the vertical and moves it on the floor."""
  return pose @ _rot_y(np.asarray(yaw)).T + position


def _hold(angles, length: int, before: int, after: int):
  """`length`-frame angle trajectories (or constants) extended by holding
  their first value for `before` frames and their last for `after`."""
  if angles is None:
    return None
  return {k: np.pad(np.broadcast_to(v, (length,)), (before, after),
                    mode='edge') for k, v in angles.items()}


def perform(action: str, subject: Subject, num_frames: int,
            rng: np.random.Generator) -> np.ndarray:
  """(T, 2, 25, 3) world coordinates (y up, floor at 0); absent partner = 0."""
  active = max(1, round(num_frames * rng.uniform(*ACTIVE_FRACTION)))
  before = int(rng.integers(0, num_frames - active + 1))
  angles, partner_angles = (
      _hold(a, active, before, num_frames - active - before)
      for a in action_angles(action, active, subject, rng))
  facing = rng.uniform(-0.5, 0.5)
  position = np.array([rng.uniform(-0.4, 0.4), 0.0, rng.uniform(-0.3, 0.3)])
  world = np.zeros((num_frames, NUM_PERSONS, LAYOUT.num_joints, 3))
  world[:, 0] = _place(forward_kinematics(angles, subject.bones, num_frames),
                       facing, position)
  if partner_angles is not None:
    # The partner is another simulated body facing the actor, 1.2 m ahead.
    partner = random_subject(rng)
    ahead = _rot_y(np.asarray(facing)) @ np.array([0.0, 0.0, 1.2])
    world[:, 1] = _place(
        forward_kinematics(partner_angles, partner.bones, num_frames),
        facing + np.pi, position + ahead)
  return world


def camera_pose(yaw: float, height: float, distance: float):
  """(R, origin): a camera at `yaw` around the scene looking at its centre.

  Rows of R are the camera axes in world coordinates: x to the sensor's left,
  y up, z along the optical axis (depth), as Kinect; det R = +1.
  """
  origin = np.array([distance * np.sin(yaw), height, distance * np.cos(yaw)])
  z = _unit(np.array([0.0, 0.9, 0.0]) - origin)
  x = _unit(np.cross([0.0, 1.0, 0.0], z))
  return np.stack([x, np.cross(z, x), z]), origin


def record(world: np.ndarray, rotation, origin,
           rng: np.random.Generator) -> np.ndarray:
  """One camera's view of `world`: camera frame, Kinect noise and glitches."""
  present = np.any(world != 0, axis=(2, 3))
  cam = (world - origin) @ rotation.T
  std = np.full(LAYOUT.num_joints, _NOISE_STD)
  std[_EXTREMITIES] *= 2.5
  cam += rng.normal(size=cam.shape) * std[:, None] * rng.uniform(0.7, 1.3)
  t = len(cam)
  if rng.random() < 0.4:  # a hand or foot snaps away for a few frames
    start, dur = rng.integers(0, t - 6), rng.integers(2, 7)
    cam[start:start + dur, 0, rng.choice(_EXTREMITIES)] += rng.normal(0, 0.25, 3)
  cam[~present] = 0.0
  if rng.random() < 0.2:  # the tracker loses everybody for one frame
    cam[rng.integers(1, t - 1)] = 0.0
  return cam.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Take:
  """One performance of an action, before any camera sees it."""
  key: str  # SsssPpppRrrrAaaa: NTU's name without the camera
  label: int
  subject: int
  setup: int
  world: np.ndarray  # (T, 2, 25, 3), y up, floor at 0; absent partner = 0
  rng: np.random.Generator  # the take's own; the cameras draw from it too

  def view_name(self, camera: int) -> str:
    return f'{self.key[:4]}C{camera:03d}{self.key[4:]}'


def takes(seed: int, subject_ids, repetitions: int):
  """Yields every take: each action of each subject `repetitions` times.

  Each take draws from its own generator seeded by
  (seed, action, subject, repetition), so it does not depend on which other
  takes are generated.
  """
  subjects = make_subjects(seed)
  for sid in subject_ids:
    for label, action in enumerate(ACTIONS):
      for rep in range(1, repetitions + 1):
        rng = np.random.default_rng([seed, 1, label, sid, rep])
        setup = (rep - 1) % len(SETUPS) + 1
        num_frames = int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1))
        world = perform(action, subjects[sid], num_frames, rng)
        yield Take(f'S{setup:03d}P{sid:03d}R{rep:03d}A{label + 1:03d}', label,
                   sid, setup, world, rng)


def cameras(take: Take):
  """Yields (camera id, R, origin) of the take's 3 cameras, drawn lazily
  from its generator (a view's recording noise is drawn between them)."""
  height, distance = SETUPS[take.setup - 1]
  for cam, yaw in enumerate(CAMERA_YAWS, start=1):
    yield (cam, *camera_pose(yaw + take.rng.normal(0, 0.05), height,
                             distance))


def camera_views(seed: int, subject_ids, repetitions: int):
  """Yields (key, example) for every camera view of every take, its skeleton
  as the camera recorded it (camera frame, before preprocessing)."""
  for take in takes(seed, subject_ids, repetitions):
    for cam, rotation, origin in cameras(take):
      name = take.view_name(cam)
      yield name, dict(
          skeleton=record(take.world, rotation, origin, take.rng),
          label=take.label, subject=take.subject, view=cam, setup=take.setup,
          sequence_key=take.key, sample_name=name)


def recordings(seed: int, subject_ids, repetitions: int):
  """Yields (key, example) for every camera view of every recording, its
  skeleton preprocessed as every builder's (the stored examples)."""
  for name, example in camera_views(seed, subject_ids, repetitions):
    yield name, {**example, 'skeleton': preprocess.preprocess_sequence(
        example['skeleton'], LAYOUT)}


class Synthetic(tfds.core.GeneratorBasedBuilder):
  """Ten synthetic actions, ten subjects, three cameras; cross-subject split."""

  VERSION = tfds.core.Version('2.0.0')
  RELEASE_NOTES = {
      '1.0.0': 'Initial release.',
      '2.0.0': 'Harder: 10 frames/s, wider tempo and excursion, idle '
               'margins, centimetre noise (module docstring).',
  }
  BUILDER_CONFIGS = [tfds.core.BuilderConfig(
      name='xsub', description=f'train: subjects {TRAIN_SUBJECTS}; test: rest')]
  # Nothing is downloaded, so there are no checksums to look up next to the
  # code; tfds' lookup would import `importlib_resources`, absent on 3.11.
  code_path = None

  def __init__(self, *, repetitions: int = DEFAULT_REPETITIONS, seed: int = 0,
               file_format='array_record', **kwargs):
    """`repetitions` recordings per (action, subject), each seen by 3 cameras."""
    if repetitions < 1:
      raise ValueError(f'repetitions must be >= 1, got {repetitions}')
    self._repetitions = repetitions
    self._seed = seed
    super().__init__(file_format=file_format, **kwargs)

  def _info(self):
    return self.dataset_info_from_configs(
        features=features.skeleton_features(
            tfds.features.ClassLabel(names=ACTIONS), NUM_PERSONS,
            LAYOUT.num_joints),
        description=(
            'Procedural multi-view skeleton actions '
            f'({", ".join(ACTIONS)}) for trying the pipeline without data.'),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    test = [s for s in range(1, NUM_SUBJECTS + 1) if s not in TRAIN_SUBJECTS]
    return {'train': self._generate_examples(TRAIN_SUBJECTS),
            'test': self._generate_examples(test)}

  def _generate_examples(self, subject_ids):
    return recordings(self._seed, subject_ids, self._repetitions)


def build_synthetic(data_dir, repetitions: int = DEFAULT_REPETITIONS,
                    seed: int = 0) -> Synthetic:
  """Builds synthetic/xsub into `data_dir` (a no-op if already there)."""
  builder = Synthetic(data_dir=str(data_dir), repetitions=repetitions,
                      seed=seed)
  builder.download_and_prepare()
  return builder
