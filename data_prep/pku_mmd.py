"""PKU-MMD phase II: untrimmed per-video text files -> trimmed action instances.

Released files (names `AxxNyy-V.txt`, V in L/M/R = the three Kinect v2 views):
- skeleton file: read by byol_skeleton.data.raw.pku_mmd;
- label file (same name): one line per action instance,
  `action_id,start_frame,end_frame[,confidence]`; instance = frames
  [start, end) of the skeleton file, 0-based (as the usual PKU-MMD
  conversions slice it); confidence ignored;
- split file (`cross_subject_v2.txt`): a "Training videos:" line, then the
  training video names, comma-separated; a "Validataion videos:" line (sic;
  "Validation"/"Testing" also accepted), then the test video names.

Assumptions (the release documents none of this): `Nyy` is the subject and is
stored as 'subject'; the meaning of `Axx` is unknown and it is stored as
'setup'; neither is used by the split, which comes from the split file. The
three views of a video are one recording, and the k-th instance of an action
in one view is the k-th instance of that action in the others, so
sequence_key = `AxxNyy_A<action>_<k>`.
Action ids in the label files are not contiguous (phase II keeps 41 of
phase I's 51 actions); the builder maps the sorted distinct ids to 0..40.
"""
import dataclasses
import pathlib
import re

from byol_skeleton.data.raw import pku_mmd as pku_raw
from byol_skeleton.data.raw import preprocess
from data_prep import report

NUM_CLASSES = 41
# Action id -> name: PKU-MMD's action list of phase I (51 actions, ids 1-51,
# the Actions.xlsx of the release, as NTU RGB+D names them); phase II's label
# files use 41 of these ids. Written from that list, not read from the
# release: `action_name` names an id outside it by its number.
ACTION_NAMES = {
    1: 'bow',
    2: 'brushing hair',
    3: 'brushing teeth',
    4: 'check time (from watch)',
    5: 'cheer up',
    6: 'clapping',
    7: 'cross hands in front (say stop)',
    8: 'drink water',
    9: 'drop',
    10: 'eat meal/snack',
    11: 'falling',
    12: 'giving something to other person',
    13: 'hand waving',
    14: 'handshaking',
    15: 'hopping (one foot jumping)',
    16: 'hugging other person',
    17: 'jump up',
    18: 'kicking other person',
    19: 'kicking something',
    20: 'make a phone call/answer phone',
    21: 'pat on back of other person',
    22: 'pickup',
    23: 'playing with phone/tablet',
    24: 'point finger at the other person',
    25: 'pointing to something with finger',
    26: 'punching/slapping other person',
    27: 'pushing other person',
    28: 'put on a hat/cap',
    29: 'put something inside pocket',
    30: 'reading',
    31: 'rub two hands together',
    32: 'salute',
    33: 'sitting down',
    34: 'standing up',
    35: 'take off a hat/cap',
    36: 'take off glasses',
    37: 'take off jacket',
    38: 'take out something from pocket',
    39: 'taking a selfie',
    40: 'tear up paper',
    41: 'throw',
    42: 'touch back (backache)',
    43: 'touch chest (stomachache/heart pain)',
    44: 'touch head (headache)',
    45: 'touch neck (neckache)',
    46: 'typing on a keyboard',
    47: 'use a fan (with hand or paper)/feeling warm',
    48: 'wear jacket',
    49: 'wear on glasses',
    50: 'wipe face',
    51: 'writing',
}
VIEWS = {'L': 1, 'M': 2, 'R': 3}
_NAME_RE = re.compile(r'A(\d+)N(\d+)-([LMR])')
_TRAIN_HEADER = re.compile(r'training\b', re.IGNORECASE)
_TEST_HEADER = re.compile(r'(validataion|validation|testing|test)\b',
                          re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class PkuName:
  name: str  # the video, e.g. 'A01N01-L'
  group: int  # Axx
  subject: int  # Nyy
  view: int  # L/M/R -> 1/2/3

  @property
  def video_key(self) -> str:
    """The video without its view: the three views share it."""
    return self.name.rsplit('-', 1)[0]


def action_name(action_id: int) -> str:
  return ACTION_NAMES.get(action_id, f'action {action_id}')


def parse_name(path) -> PkuName:
  stem = pathlib.PurePath(path).name.removesuffix('.txt')
  match = _NAME_RE.fullmatch(stem)
  if not match:
    raise ValueError(
        f'{path}: unknown PKU-MMD II file name {stem!r}; expected AxxNyy-V.txt '
        'with V one of L, M, R, e.g. A01N01-L.txt')
  return PkuName(stem, int(match[1]), int(match[2]), VIEWS[match[3]])


def read_split_file(path) -> dict[str, frozenset[str]]:
  """{'train': video names, 'test': video names} of a PKU-MMD split file."""
  with open(path) as f:
    lines = f.read().splitlines()
  names = {}
  split = None
  for index, line in enumerate(lines):
    text = line.strip()
    if _TRAIN_HEADER.match(text) or _TEST_HEADER.match(text):
      split = 'train' if _TRAIN_HEADER.match(text) else 'test'
      if split in names:
        raise report.MalformedFile(path, index + 1, f'second {split} header')
      names[split] = set()
      text = text.partition(':')[2]  # names may follow on the header line
    elif text and split is None:
      raise report.MalformedFile(
          path, index + 1, 'expected a "Training videos:" header line')
    if split is not None:
      names[split].update(n.strip().removesuffix('.txt')
                          for n in text.split(',') if n.strip())
  for split in ('train', 'test'):
    if not names.get(split):
      raise report.MalformedFile(
          path, None, f'no {split} video names (expected "Training videos:" '
          'and "Validataion videos:" lines, each followed by names)')
  both = names['train'] & names['test']
  if both:
    raise report.MalformedFile(
        path, None, f'videos in both splits: {sorted(both)[:5]}')
  return {split: frozenset(videos) for split, videos in names.items()}


def read_labels(path) -> list[tuple[int, int, int]]:
  """[(action_id, start, end)] of a label file, in file order."""
  instances = []
  with open(path) as f:
    for index, line in enumerate(f):
      if not line.strip():
        continue
      fields = [field.strip() for field in line.split(',')]
      try:
        action, start, end = (int(field) for field in fields[:3])
        ok = len(fields) in (3, 4) and 0 <= start < end and action > 0
      except ValueError:
        ok = False
      if not ok:
        raise report.MalformedFile(
            path, index + 1, 'expected "action_id,start_frame,end_frame'
            f'[,confidence]" with 0 <= start < end, got {line.strip()!r}')
      instances.append((action, start, end))
  return instances


def load_video(item: tuple[str, str], label_index: dict[int, int]
               ) -> report.Loaded:
  """The trimmed instances of one video; `label_index`: action id -> label."""
  skeleton_path, label_path = item
  name = parse_name(skeleton_path)
  skeleton = pku_raw.read_skeleton_txt(skeleton_path)
  loaded = report.Loaded()
  occurrence = {}
  instances = read_labels(label_path)
  order = sorted(range(len(instances)), key=lambda i: instances[i][1])
  for index in order:
    action, start, end = instances[index]
    if action not in label_index:
      raise report.MalformedFile(
          label_path, None, f'action id {action} is not one of the dataset\'s '
          f'{len(label_index)} ids')
    k = occurrence[action] = occurrence.get(action, -1) + 1
    sample_name = f'{name.name}_{index:03d}'
    try:
      if start >= len(skeleton):
        raise report.SkipSample(
            report.TOO_FEW_FRAMES, f'frames [{start}, {end}) lie beyond the '
            f'{len(skeleton)} frames of {skeleton_path}')
      instance = preprocess.canonical_or_skip(
          skeleton[start:end], pku_raw.LAYOUT, pku_raw.MIN_FRAMES)
    except report.SkipSample as e:
      loaded.skips.append((e.reason, sample_name, str(e)))
      continue
    loaded.examples.append((sample_name, {
        'skeleton': instance,
        'label': label_index[action],
        'subject': name.subject,
        'view': name.view,
        'setup': name.group,
        'sequence_key': f'{name.video_key}_A{action:02d}_{k}',
        'sample_name': sample_name,
    }))
  return loaded
