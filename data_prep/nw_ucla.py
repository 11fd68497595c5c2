"""Northwestern-UCLA Multiview Action 3D: file names, action names, splits.

Files `aAA_sSS_eEE_vVV.json`, one per view of a take, read by
byol_skeleton.data.raw.nw_ucla. Standard cross-view protocol: train on views
1 and 2, test on view 3.
"""
import dataclasses
import pathlib
import re

from byol_skeleton.data.raw import nw_ucla as nw_ucla_raw
from byol_skeleton.data.raw import preprocess
from data_prep import report

# Labels 1..10 in the order of the action ids a01-a06, a08, a09, a11, a12
# (the dataset's own action list).
ACTION_NAMES = ('pick up with one hand', 'pick up with two hands',
                'drop trash', 'walk around', 'sit down', 'stand up',
                'donning', 'doffing', 'throw', 'carry')
XVIEW_TRAIN_VIEWS = frozenset((1, 2))

_NAME_RE = re.compile(r'a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})')


@dataclasses.dataclass(frozen=True)
class NwUclaName:
  action: int  # the id in the file name (a01..a12, with gaps), not the label
  subject: int
  execution: int
  view: int

  @property
  def name(self) -> str:
    return f'{self.sequence_key}_v{self.view:02d}'

  @property
  def sequence_key(self) -> str:
    return f'a{self.action:02d}_s{self.subject:02d}_e{self.execution:02d}'


def parse_name(path) -> NwUclaName:
  stem = pathlib.PurePath(path).name.removesuffix('.json')
  match = _NAME_RE.fullmatch(stem)
  if not match:
    raise ValueError(
        f'{path}: unknown NW-UCLA file name {stem!r}; expected '
        'aAA_sSS_eEE_vVV.json (action, subject, execution, view), e.g. '
        'a01_s01_e00_v01.json')
  return NwUclaName(*map(int, match.groups()))


def split_of(name: NwUclaName, protocol: str) -> str:
  if protocol != 'xview':
    raise ValueError(f'unknown protocol {protocol!r} for nw_ucla')
  return 'train' if name.view in XVIEW_TRAIN_VIEWS else 'test'


def split_rule(protocol: str, split: str) -> str:
  """Which recordings `split_of` puts into `split`, for an empty split."""
  if protocol != 'xview':
    raise ValueError(f'unknown protocol {protocol!r} for nw_ucla')
  train = ', '.join(map(str, sorted(XVIEW_TRAIN_VIEWS)))
  return (f'from views {train}' if split == 'train'
          else f'from views other than {train}')


def load_example(path: str) -> report.Loaded:
  name = parse_name(path)
  skeleton, label = nw_ucla_raw.read_json(path)
  skeleton = preprocess.canonical_or_skip(skeleton, nw_ucla_raw.LAYOUT,
                                          nw_ucla_raw.MIN_FRAMES)
  return report.Loaded(examples=[(name.name, {
      'skeleton': skeleton,
      'label': label,
      'subject': name.subject,
      'view': name.view,
      'setup': 0,  # NW-UCLA has no setups
      'sequence_key': name.sequence_key,
      'sample_name': name.name,
  })])
