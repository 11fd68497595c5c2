"""NTU RGB+D 60/120: file names, action names, splits, the stored example.

Parsing and body selection (the most active body first) are
byol_skeleton.data.raw.ntu's, shared with --mode=predict.
"""
import dataclasses
import pathlib
import re

from byol_skeleton.data.raw import ntu as ntu_raw
from byol_skeleton.data.raw import preprocess
from data_prep import report

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


def load_example(path: str) -> report.Loaded:
  """One stored example from one `.skeleton` file (label = action - 1)."""
  name = parse_name(path)
  skeleton, dropped = ntu_raw.select_bodies(ntu_raw.read_skeleton_file(path))
  try:
    skeleton = preprocess.canonical_or_skip(skeleton, ntu_raw.LAYOUT,
                                            ntu_raw.MIN_FRAMES)
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
