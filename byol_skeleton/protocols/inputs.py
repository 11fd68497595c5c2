"""Recordings given as paths, for --mode=predict and --mode=embed.

`read` reads every recording in the files the comma-separated paths name
(data/raw/recording.py: the builders' own reading and preprocessing; a 2D
annotation pickle may hold many). A recording that gives no skeleton
(malformed file, no body, too short, another joint layout) is skipped with
its reason, and the others go on; nothing readable at all is one UserError.
"""
import dataclasses

from absl import logging
import tqdm

from byol_skeleton import errors
from byol_skeleton.data import pipeline
from byol_skeleton.data import skeletons
from byol_skeleton.data.raw import problems
from byol_skeleton.data.raw import recording

# Skipped files listed in an error message; results.json lists all.
_SHOWN = 5


@dataclasses.dataclass(frozen=True)
class Skipped:
  path: str
  reason: str  # one of problems' reasons
  message: str


@dataclasses.dataclass(frozen=True)
class Recordings:
  paths: list[str]  # of the readable recordings, in order
  skeletons: list  # their canonical (T, M, V, 3) skeletons
  skipped: list[Skipped]

  def data(self, config) -> pipeline.ArrayData:
    """Their test-time batches, as EvalData's."""
    return pipeline.ArrayData(config, self.skeletons, config.eval.batch_size)


def _split_paths(field: str, value: str) -> list[str]:
  paths = [p.strip() for p in value.split(',') if p.strip()]
  if not paths:
    raise errors.UserError(
        f'{field} is empty; give recording files or folders, '
        f'comma-separated: {field}=PATH[,PATH...].')
  return paths


def read(config, field: str, value: str) -> Recordings:
  """The recordings that config field `field` (value `value`) names."""
  paths = _split_paths(field, value)
  try:
    files = recording.list_files(paths)
  except FileNotFoundError as e:
    raise errors.UserError(f'{field}: {e.args[0]} does not exist.') from None
  if not files:
    raise errors.UserError(
        f'{field}: no recording files in {", ".join(paths)}; expected '
        f'{", ".join(recording.SUFFIXES)} files.')
  layout = skeletons.get_layout(config.data.layout)
  read_paths, read_skeletons, skipped = [], [], []
  for path in tqdm.tqdm(files, desc='read', unit=' files', leave=False):
    try:
      named = recording.read_file(path, layout)
    except problems.MalformedFile as e:
      skipped.append(Skipped(str(path), problems.UNREADABLE, e.detail))
      continue
    except recording.READ_ERRORS as e:
      skipped.append(Skipped(str(path), problems.UNREADABLE, str(e)))
      continue
    for name, skeleton in named:
      if isinstance(skeleton, problems.SkipSample):
        skipped.append(Skipped(name, skeleton.reason, str(skeleton)))
      else:
        read_paths.append(name)
        read_skeletons.append(skeleton)
  for s in skipped:
    logging.warning('Skipped %s (%s): %s', s.path, s.reason, s.message)
  if not read_skeletons:
    shown = '; '.join(f'{s.path}: {s.reason}: {s.message}'
                      for s in skipped[:_SHOWN])
    more = (f'; and {len(skipped) - _SHOWN} more' if len(skipped) > _SHOWN
            else '')
    raise errors.UserError(
        f'{field}: none of the {len(skipped)} recordings could be read '
        f'({shown}{more}).')
  return Recordings(read_paths, read_skeletons, skipped)


def class_names(config) -> tuple[str, ...]:
  """The dataset's action names; the labels' numbers when no shards say."""
  try:
    return pipeline.class_names(config.data)
  except errors.UserError as e:
    logging.warning('Classes are named by number: %s', e)
    return tuple(str(i) for i in range(config.data.num_classes))
