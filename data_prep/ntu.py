"""NTU RGB+D 60/120 `.skeleton` files: names, parsing, body selection, splits.

Body selection (a file lists every body Kinect tracked, up to 6 per frame):
1. bodies are tracked by bodyID; one track = the frames one bodyID appears in;
2. only when a file has several tracks, noise tracks are dropped (thresholds of
   the NTU denoising commonly used since Shahroudy et al.'s release):
   - a track of at most `NOISE_MAX_FRAMES` (11) frames;
   - a track wider than tall: its x spread (max - min over joints) exceeds
     `SPREAD_RATIO` (0.8) times its y spread in more than
     `NOISY_FRAME_FRACTION` (69%) of its frames (furniture, reflections);
3. the rest are ranked by motion (sum over joints and xyz of the variance over
   the track's frames) and placed greedily into at most 2 person slots: a track
   joins the first slot whose frames it does not overlap (a bodyID change of
   the same person), else opens a new slot, else is dropped as surplus.
Slot 0 therefore holds the most active body.
"""
import collections
import dataclasses
import pathlib
import re

import numpy as np

from byol_skeleton.data import skeletons
from data_prep import preprocess
from data_prep import report

LAYOUT = skeletons.get_layout('ntu25')
NUM_JOINTS = LAYOUT.num_joints
MAX_BODIES = 2
NOISE_MAX_FRAMES = 11
SPREAD_RATIO = 0.8
NOISY_FRAME_FRACTION = 0.69
# A recording whose kept skeleton has fewer frames is too short to be an
# action; equal to the longest track still counted as noise plus one.
MIN_FRAMES = NOISE_MAX_FRAMES + 1

# Reasons a body is dropped (keys of the build report).
DROP_SHORT = f'noise: track of <= {NOISE_MAX_FRAMES} frames'
DROP_SPREAD = (f'noise: x spread > {SPREAD_RATIO} y spread in > '
               f'{NOISY_FRAME_FRACTION:.0%} of frames')
DROP_SURPLUS = f'surplus: more than {MAX_BODIES} bodies at once'

_JOINT_FIELDS = 12  # x y z depthX depthY colorX colorY orientationWXYZ state
_BODY_INFO_FIELDS = 10
_NAME_RE = re.compile(r'S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})')

# Standard splits (Shahroudy et al. 2016; Liu et al. 2019, NTU RGB+D 120).
NTU60_XSUB_TRAIN_SUBJECTS = frozenset((
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38))
NTU60_XVIEW_TRAIN_CAMERAS = frozenset((2, 3))
NTU120_XSUB_TRAIN_SUBJECTS = frozenset((
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38,
    45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82,
    83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103))
# The official action names, A001..A120 (Shahroudy et al. 2016 for
# A001-A060; Liu et al. 2019 for A061-A120); label = action - 1.
ACTION_NAMES = (
    # A001
    'drink water',
    'eat meal/snack',
    'brushing teeth',
    'brushing hair',
    'drop',
    'pickup',
    'throw',
    'sitting down',
    'standing up (from sitting position)',
    'clapping',
    # A011
    'reading',
    'writing',
    'tear up paper',
    'wear jacket',
    'take off jacket',
    'wear a shoe',
    'take off a shoe',
    'wear on glasses',
    'take off glasses',
    'put on a hat/cap',
    # A021
    'take off a hat/cap',
    'cheer up',
    'hand waving',
    'kicking something',
    'reach into pocket',
    'hopping (one foot jumping)',
    'jump up',
    'make a phone call/answer phone',
    'playing with phone/tablet',
    'typing on a keyboard',
    # A031
    'pointing to something with finger',
    'taking a selfie',
    'check time (from watch)',
    'rub two hands together',
    'nod head/bow',
    'shake head',
    'wipe face',
    'salute',
    'put the palms together',
    'cross hands in front (say stop)',
    # A041
    'sneeze/cough',
    'staggering',
    'falling',
    'touch head (headache)',
    'touch chest (stomachache/heart pain)',
    'touch back (backache)',
    'touch neck (neckache)',
    'nausea or vomiting condition',
    'use a fan (with hand or paper)/feeling warm',
    'punching/slapping other person',
    # A051
    'kicking other person',
    'pushing other person',
    'pat on back of other person',
    'point finger at the other person',
    'hugging other person',
    'giving something to other person',
    "touch other person's pocket",
    'handshaking',
    'walking towards each other',
    'walking apart from each other',
    # A061
    'put on headphone',
    'take off headphone',
    'shoot at the basket',
    'bounce ball',
    'tennis bat swing',
    'juggling table tennis balls',
    'hush (quite)',
    'flick hair',
    'thumb up',
    'thumb down',
    # A071
    'make ok sign',
    'make victory sign',
    'staple book',
    'counting money',
    'cutting nails',
    'cutting paper (using scissors)',
    'snapping fingers',
    'open bottle',
    'sniff (smell)',
    'squat down',
    # A081
    'toss a coin',
    'fold paper',
    'ball up paper',
    'play magic cube',
    'apply cream on face',
    'apply cream on hand back',
    'put on bag',
    'take off bag',
    'put something into a bag',
    'take something out of a bag',
    # A091
    'open a box',
    'move heavy objects',
    'shake fist',
    'throw up cap/hat',
    'hands up (both hands)',
    'cross arms',
    'arm circles',
    'arm swings',
    'running on the spot',
    'butt kicks (kick backward)',
    # A101
    'cross toe touch',
    'side kick',
    'yawn',
    'stretch oneself',
    'blow nose',
    'hit other person with something',
    'wield knife towards other person',
    'knock over other person (hit with body)',
    "grab other person's stuff",
    'shoot at other person with a gun',
    # A111
    'step on foot',
    'high-five',
    'cheers and drink',
    'carry something with other person',
    'take a photo of other person',
    'follow other person',
    "whisper in other person's ear",
    'exchange things with other person',
    'support somebody with hand',
    'finger-guessing game (playing rock-paper-scissors)',
)
# (max setup, max action) of each release; NTU-120 extends NTU-60.
DATASET_EXTENT = {'ntu60': (17, 60), 'ntu120': (32, 120)}


@dataclasses.dataclass(frozen=True)
class NtuName:
  setup: int
  camera: int
  performer: int
  replication: int
  action: int

  @property
  def name(self) -> str:
    return (f'S{self.setup:03d}C{self.camera:03d}P{self.performer:03d}'
            f'R{self.replication:03d}A{self.action:03d}')

  @property
  def sequence_key(self) -> str:
    """The recording without its camera: the cameras of one take share it."""
    return (f'S{self.setup:03d}P{self.performer:03d}R{self.replication:03d}'
            f'A{self.action:03d}')


def parse_name(path) -> NtuName:
  """NtuName of `S001C002P003R002A013[.skeleton]` (a path or a bare name)."""
  stem = pathlib.PurePath(path).name.removesuffix('.skeleton')
  match = _NAME_RE.fullmatch(stem)
  if not match:
    raise ValueError(
        f'{path}: unknown NTU file name {stem!r}; expected '
        'SsssCcccPpppRrrrAaaa.skeleton (setup, camera, performer, '
        'replication, action), e.g. S001C002P003R002A013.skeleton')
  return NtuName(*map(int, match.groups()))


def in_dataset(name: NtuName, dataset: str) -> bool:
  max_setup, max_action = DATASET_EXTENT[dataset]
  return name.setup <= max_setup and name.action <= max_action


def split_of(name: NtuName, dataset: str, protocol: str) -> str:
  """'train' or 'test'; protocols: ntu60 xsub, xview; ntu120 xsub, xset."""
  if (dataset, protocol) == ('ntu60', 'xsub'):
    train = name.performer in NTU60_XSUB_TRAIN_SUBJECTS
  elif (dataset, protocol) == ('ntu60', 'xview'):
    train = name.camera in NTU60_XVIEW_TRAIN_CAMERAS
  elif (dataset, protocol) == ('ntu120', 'xsub'):
    train = name.performer in NTU120_XSUB_TRAIN_SUBJECTS
  elif (dataset, protocol) == ('ntu120', 'xset'):
    train = name.setup % 2 == 0
  else:
    raise ValueError(f'unknown protocol {protocol!r} for {dataset}')
  return 'train' if train else 'test'


def split_rule(dataset: str, protocol: str, split: str) -> str:
  """Which recordings `split_of` puts into `split`, for an empty split."""
  cameras = ', '.join(map(str, sorted(NTU60_XVIEW_TRAIN_CAMERAS)))
  train, test = {
      ('ntu60', 'xsub'): (
          f'of the {len(NTU60_XSUB_TRAIN_SUBJECTS)} training subjects',
          'of the other subjects'),
      ('ntu60', 'xview'): (f'from cameras {cameras}',
                           f'from cameras other than {cameras}'),
      ('ntu120', 'xsub'): (
          f'of the {len(NTU120_XSUB_TRAIN_SUBJECTS)} training subjects',
          'of the other subjects'),
      ('ntu120', 'xset'): ('from even setups', 'from odd setups'),
  }[dataset, protocol]
  return train if split == 'train' else test


def read_missing_list(path) -> frozenset[str]:
  """Sample names in the authors' missing-skeleton list (headers ignored)."""
  with open(path) as f:
    names = frozenset(line.strip() for line in f
                      if _NAME_RE.fullmatch(line.strip()))
  if not names:
    raise ValueError(f'{path}: no sample names (SsssCcccPpppRrrrAaaa lines) '
                     'found; expected the NTU missing-skeleton list')
  return names


@dataclasses.dataclass
class Track:
  """One bodyID through the file."""
  frames: np.ndarray  # (n,) int, increasing frame indices
  joints: np.ndarray  # (n, 25, 3) float32, metres, camera frame


@dataclasses.dataclass
class Recording:
  num_frames: int
  tracks: list[Track]  # in order of first appearance


class _Lines:
  """Line cursor that names the file and line in every error."""

  def __init__(self, path, lines: list[str]):
    self.path = path
    self.lines = lines
    self.next = 0  # 0-based index of the next line to read

  def fail(self, line_index: int, message: str):
    raise report.MalformedFile(self.path, line_index + 1, message)

  def fields(self, what: str, count: int) -> list[str]:
    if self.next >= len(self.lines):
      self.fail(self.next, f'expected {what}, got end of file')
    fields = self.lines[self.next].split()
    if len(fields) != count:
      self.fail(self.next,
                f'expected {what} ({count} fields), got {len(fields)} fields')
    self.next += 1
    return fields

  def integer(self, what: str) -> int:
    (field,) = self.fields(what, 1)
    try:
      value = int(field)
    except ValueError:
      value = -1
    if value < 0:
      self.fail(self.next - 1,
                f'expected {what} (an integer >= 0), got {field!r}')
    return value

  def joints(self, count: int) -> np.ndarray:
    """(count, 3) xyz of `count` joint lines of `_JOINT_FIELDS` numbers."""
    start = self.next
    block = self.lines[start:start + count]
    try:
      values = np.array(' '.join(block).split(), dtype=np.float64)
    except ValueError:
      values = None
    if values is None or values.size != count * _JOINT_FIELDS:
      # Slow path only to locate the bad line.
      for offset in range(count):
        self.next = start + offset
        for field in self.fields(f'a joint line of {_JOINT_FIELDS} numbers',
                                 _JOINT_FIELDS):
          try:
            float(field)
          except ValueError:
            self.fail(start + offset, f'expected a number, got {field!r}')
    xyz = values.reshape(count, _JOINT_FIELDS)[:, :3]
    bad = ~np.isfinite(xyz).all(axis=1)
    if bad.any():
      self.fail(start + int(np.argmax(bad)), 'non-finite joint coordinate')
    self.next = start + count
    return xyz

  def expect_end(self, what: str):
    for index in range(self.next, len(self.lines)):
      if self.lines[index].strip():
        self.fail(index, f'expected end of file after {what}, got more data')


def read_skeleton_file(path) -> Recording:
  """Parses a `.skeleton` file; raises report.MalformedFile on any deviation."""
  with open(path) as f:
    lines = _Lines(path, f.read().splitlines())
  num_frames = lines.integer('the frame count')
  by_id: dict[int, tuple[list[int], list[np.ndarray]]] = {}
  for frame in range(num_frames):
    seen = set()
    for _ in range(lines.integer(f'the body count of frame {frame + 1}')):
      info = lines.fields(f'a body-info line of frame {frame + 1}',
                          _BODY_INFO_FIELDS)
      body_id = info[0]
      if body_id in seen:
        lines.fail(lines.next - 1,
                   f'bodyID {body_id} appears twice in frame {frame + 1}')
      seen.add(body_id)
      num_joints = lines.integer('the joint count')
      if num_joints != NUM_JOINTS:
        lines.fail(lines.next - 1,
                   f'expected {NUM_JOINTS} joints, got {num_joints}')
      frames, joints = by_id.setdefault(body_id, ([], []))
      frames.append(frame)
      joints.append(lines.joints(NUM_JOINTS))
  lines.expect_end(f'{num_frames} frames')
  return Recording(num_frames, [
      Track(np.array(frames), np.array(joints, np.float32))
      for frames, joints in by_id.values()])


def noise_reason(track: Track) -> str | None:
  """Why `track` is a false detection, or None."""
  if len(track.frames) <= NOISE_MAX_FRAMES:
    return DROP_SHORT
  spread = track.joints.max(axis=1) - track.joints.min(axis=1)  # (n, 3)
  wide = spread[:, 0] > SPREAD_RATIO * spread[:, 1]
  if wide.mean() > NOISY_FRAME_FRACTION:
    return DROP_SPREAD
  return None


def motion(track: Track) -> float:
  return float(track.joints.var(axis=0).sum())


def select_bodies(recording: Recording, max_bodies: int = MAX_BODIES
                  ) -> tuple[np.ndarray, collections.Counter]:
  """(T, max_bodies, 25, 3) float32 and the dropped bodies by reason."""
  tracks = recording.tracks
  if not tracks:
    raise report.SkipSample(report.NO_BODY, 'no body in any frame')
  dropped = collections.Counter()
  if len(tracks) > 1:
    reasons = [noise_reason(track) for track in tracks]
    dropped.update(reason for reason in reasons if reason)
    if all(reasons):
      raise report.SkipSample(
          report.ONLY_NOISE, f'all {len(tracks)} bodies look like noise')
    tracks = [track for track, reason in zip(tracks, reasons) if not reason]
  tracks = sorted(tracks, key=motion, reverse=True)

  skeleton = np.zeros(
      (recording.num_frames, max_bodies, NUM_JOINTS, 3), np.float32)
  occupied = np.zeros((max_bodies, recording.num_frames), bool)
  slots = 0
  for track in tracks:
    free = [s for s in range(slots) if not occupied[s, track.frames].any()]
    if free:
      slot = free[0]
    elif slots < max_bodies:
      slot, slots = slots, slots + 1
    else:
      dropped[DROP_SURPLUS] += 1
      continue
    occupied[slot, track.frames] = True
    skeleton[track.frames, slot] = track.joints
  return skeleton, dropped


def load_example(path: str) -> report.Loaded:
  """One stored example from one `.skeleton` file (label = action - 1)."""
  name = parse_name(path)
  skeleton, dropped = select_bodies(read_skeleton_file(path))
  try:
    skeleton = preprocess.canonical_or_skip(skeleton, LAYOUT, MIN_FRAMES)
  except report.SkipSample as e:
    return report.Loaded(skips=[(e.reason, name.name, str(e))],
                         dropped_bodies=dropped)
  return report.Loaded(examples=[(name.name, {
      'skeleton': skeleton,
      'label': name.action - 1,
      'subject': name.performer,
      'view': name.camera,
      'setup': name.setup,
      'sequence_key': name.sequence_key,
      'sample_name': name.name,
  })], dropped_bodies=dropped)
