"""NTU RGB+D `.skeleton` files: parsing and body selection.

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

Shared by data_prep's ntu60/ntu120 builders and --mode=predict.
"""
import collections
import dataclasses

import numpy as np

from byol_skeleton.data import skeletons
from byol_skeleton.data.raw import problems

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
    raise problems.MalformedFile(self.path, line_index + 1, message)

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
  """Parses a `.skeleton` file; problems.MalformedFile on any deviation."""
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
    raise problems.SkipSample(problems.NO_BODY, 'no body in any frame')
  dropped = collections.Counter()
  if len(tracks) > 1:
    reasons = [noise_reason(track) for track in tracks]
    dropped.update(reason for reason in reasons if reason)
    if all(reasons):
      raise problems.SkipSample(
          problems.ONLY_NOISE, f'all {len(tracks)} bodies look like noise')
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
