"""What a build kept, skipped and dropped, and the errors that decide it.

Readers raise `MalformedFile` (the file breaks its format) or `SkipSample`
(well-formed but unusable), both from byol_skeleton.data.raw.problems;
builders raise `EmptySplit` for a protocol with a
split that nothing went into. A builder's per-item loader returns a `Loaded`;
`load_safely` turns a raised error into a counted skip, so one bad file never
stops a build. `BuildReport` sums the `Loaded`s and prints the end-of-build
summary, and `write_skipped` the whole list of skipped samples. Kept free of
TFDS so pool workers import it cheaply.
"""
import collections
import dataclasses
import json
import pathlib
from typing import Any, Callable

from byol_skeleton import errors
from byol_skeleton.data.raw import problems

# The readers' errors and skip reasons, which a build counts.
MalformedFile = problems.MalformedFile
SkipSample = problems.SkipSample
UNREADABLE = problems.UNREADABLE
NO_BODY = problems.NO_BODY
ONLY_NOISE = problems.ONLY_NOISE
TOO_FEW_FRAMES = problems.TOO_FEW_FRAMES
NO_PERSON = problems.NO_PERSON
NON_FINITE = problems.NON_FINITE
SHAPE_MISMATCH = problems.SHAPE_MISMATCH
# The builders' own skip reasons: the report's other keys.
MISSING_LIST = 'in the missing-skeleton list'
NOT_IN_DATASET = 'not part of this dataset'
NOT_IN_SPLIT = 'in neither split'
BAD_NAME = 'unrecognised file name'
DUPLICATE = 'duplicate sample'
# Records of 2D annotation pickles (data_prep/pose2d.py).
LABEL_OUT_OF_RANGE = 'label out of range'

# How many skipped names per reason the report prints; `write_skipped` has all.
_SHOWN_PER_REASON = 5


class EmptySplit(errors.UserError):
  """A split of a protocol with no example: that protocol cannot be built."""


@dataclasses.dataclass
class Loaded:
  """What one work item (a raw file) gave."""
  examples: list[tuple[str, dict[str, Any]]] = dataclasses.field(
      default_factory=list)
  # (reason, sample name, message)
  skips: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
  # Bodies removed by denoising, by reason.
  dropped_bodies: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)


def load_safely(load_fn: Callable[[Any], Loaded],
                named_item: tuple[str, Any]) -> Loaded:
  """`load_fn(item)`, with a bad or unusable file turned into one skip."""
  name, item = named_item
  try:
    return load_fn(item)
  except SkipSample as e:
    return Loaded(skips=[(e.reason, name, str(e))])
  except (MalformedFile, OSError, UnicodeDecodeError) as e:
    return Loaded(skips=[(UNREADABLE, name, str(e))])


def load_chunk(load_fn: Callable[[Any], Loaded],
               named_items: list[tuple[str, Any]]) -> list[Loaded]:
  """`load_safely` over a chunk: one pool task."""
  return [load_safely(load_fn, named_item) for named_item in named_items]


@dataclasses.dataclass
class BuildReport:
  """Counts over a whole build (all splits)."""
  examples: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  skipped: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  dropped_bodies: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  skipped_names: dict[str, list[str]] = dataclasses.field(
      default_factory=dict)
  # Every skip: (reason, sample name, message).
  skips: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)

  def add(self, split: str, loaded: Loaded):
    self.examples[split] += len(loaded.examples)
    self.dropped_bodies.update(loaded.dropped_bodies)
    for reason, name, message in loaded.skips:
      self.add_skip(reason, name, message)

  def add_skip(self, reason: str, name: str, message: str = ''):
    self.skipped[reason] += 1
    self.skips.append((reason, name, message))
    shown = self.skipped_names.setdefault(reason, [])
    if len(shown) < _SHOWN_PER_REASON:
      shown.append(f'{name}: {message}' if message else name)

  def format(self) -> str:
    examples = ', '.join(
        f'{split} {n}' for split, n in sorted(self.examples.items()))
    lines = [f'examples: {examples or "none"}']
    lines.append(f'skipped: {sum(self.skipped.values())}')
    for reason, n in sorted(self.skipped.items()):
      lines.append(f'  {reason}: {n}')
      lines.extend(f'    {shown}' for shown in self.skipped_names[reason])
      if n > len(self.skipped_names[reason]):
        lines.append('    ...')
    lines.append(
        f'bodies dropped: {sum(self.dropped_bodies.values())}')
    lines.extend(f'  {reason}: {n}'
                 for reason, n in sorted(self.dropped_bodies.items()))
    return '\n'.join(lines)

  def write_skipped(self, path) -> pathlib.Path:
    """Writes every skipped sample as JSON {reason: [{sample, message}]}."""
    by_reason = {}
    for reason, name, message in self.skips:
      by_reason.setdefault(reason, []).append(
          {'sample': name, 'message': message})
    path = pathlib.Path(path)
    path.write_text(json.dumps(by_reason, indent=1, sort_keys=True) + '\n')
    return path
