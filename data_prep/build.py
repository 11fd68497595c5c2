"""Builds TFDS shards from raw files, one protocol (builder config) at a time.

  python -m data_prep.build --dataset=NAME --manual_dir=RAW_DIR \\
      [--data_dir=DIR] [--protocols=xsub,xview] [--num_workers=N] \\
      [--missing_list=FILE]
  python -m data_prep.build --dataset=pose2d --manual_dir=FILE.pkl \\
      [--name=pose2d_NAME] [--num_classes=N] [--data_dir=DIR] ...

NAME: ntu60, ntu120, pku_mmd2, nw_ucla, or synthetic (needs no --manual_dir).
pose2d reads an mmaction2 / PYSKL 2D annotation pickle (data_prep/pose2d.py)
into the dataset --name (default pose2d_ + the file's stem), one protocol per
train/test pair of its splits.
Each protocol is a separate TFDS config (`tfds.data_source('NAME/PROTOCOL')`)
and parses the raw files again. At the end it prints, per protocol, the
examples per split, the skipped samples by reason (the first few; all of them
are in skipped.json beside the shards) and the dropped bodies.

A protocol that cannot be built (a split with no recording) does not stop the
others: it is named with the reason, after the reports of those that were
built, and the exit code is 2, as for any other bad input (one sentence, no
traceback).

One build of a dataset into a data_dir at a time: a build holds an OS lock
(flock) on DATA_DIR/NAME.build.lock until it ends, however it ends, and a
second one is refused with the holder's PID and host rather than made to
wait: builds take hours, and once the first is done a rerun skips the
protocols it prepared.
"""
import importlib
import os
import pathlib
import time

from absl import app
from absl import flags
import tensorflow_datasets as tfds

from byol_skeleton import errors
from byol_skeleton.train import workdir as workdir_lib
from data_prep import pose2d
from data_prep import report

# name -> (module, builder class); imported only when asked for.
DATASETS = {
    'ntu60': ('data_prep.builders', 'Ntu60'),
    'ntu120': ('data_prep.builders', 'Ntu120'),
    'pku_mmd2': ('data_prep.builders', 'PkuMmd2'),
    'nw_ucla': ('data_prep.builders', 'NwUcla'),
    'synthetic': ('data_prep.synthetic', 'Synthetic'),
}
# Datasets generated from nothing.
NO_MANUAL_DIR = ('synthetic',)
# Built from one annotation pickle: its builder class, name and protocols
# come from the file (builders.pose2d_builder).
FROM_PICKLE = 'pose2d'

_DATASET = flags.DEFINE_enum('dataset', None, sorted([*DATASETS, FROM_PICKLE]),
                             'Dataset to build.', required=True)
_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', None, 'Folder with the raw files (see the builder\'s '
    'MANUAL_DOWNLOAD_INSTRUCTIONS); for pose2d, the annotation pickle.')
_DATA_DIR = flags.DEFINE_string(
    'data_dir', None, 'Output TFDS data dir (default: TFDS_DATA_DIR or '
    '~/tensorflow_datasets).')
_PROTOCOLS = flags.DEFINE_list(
    'protocols', None, 'Builder configs to build (default: all of them).')
_NUM_WORKERS = flags.DEFINE_integer(
    'num_workers', None, 'Parsing processes (default: all cores).')
_MISSING_LIST = flags.DEFINE_string(
    'missing_list', None, 'NTU only: the authors\' missing-skeleton list '
    '(default: ntu60.txt / ntu120.txt or the original file name in '
    '--manual_dir).')
_NAME = flags.DEFINE_string(
    'name', None, 'pose2d only: the dataset name (pose2d_...; default '
    'pose2d_ + the pickle\'s file stem), data.dataset in configs.')
_NUM_CLASSES = flags.DEFINE_integer(
    'num_classes', None, 'pose2d only: the class count (default: 1 + the '
    'largest label in the pickle); larger labels are skipped.')


def builder_class(dataset: str):
  module, name = DATASETS[dataset]
  return getattr(importlib.import_module(module), name)


class IncompleteBuild(errors.UserError):
  """Some protocols could not be built; `reports` has every protocol's."""

  def __init__(self, reports: dict[str, str], failures: dict[str, str]):
    self.reports = reports
    super().__init__(f'{len(failures)} of {len(reports)} protocols not built: '
                     + '; '.join(failures.values()))


def build_lock(data_dir, dataset: str) -> workdir_lib.FileLock:
  """Holds DATA_DIR/<dataset>.build.lock until released or the process ends.

  Two builds of one dataset into one data_dir would race to move their
  finished shards into the same folder (one then dies with FileExistsError).
  """
  path = pathlib.Path(data_dir) / f'{dataset}.build.lock'
  try:
    return workdir_lib.FileLock(
        path, lambda holder: f'data_dir {data_dir} is in use by another '
        f'{dataset} build ({holder}, lock {path}); wait for it to end, or '
        'build into another --data_dir.')
  except OSError as e:  # the refusal is a UserError, not an OSError
    raise errors.UserError(
        f'--data_dir {data_dir} cannot be written ({path}: '
        f'{e.strerror}).') from None


def _data_dir_root(data_dir: str | None) -> str:
  """The folder TFDS writes into, as `tfds` resolves it."""
  return (data_dir or os.environ.get('TFDS_DATA_DIR')
          or os.path.expanduser('~/tensorflow_datasets'))


def _pickle_builder(manual_dir, name, num_classes):
  """The builder class of a pose2d pickle; errors name the file."""
  if not (manual_dir and os.path.isfile(manual_dir)):
    raise errors.UserError(
        f'--manual_dir must be an existing annotation pickle for '
        f'{FROM_PICKLE}, got {manual_dir!r}.')
  if num_classes is not None and num_classes < 1:
    raise errors.UserError(f'--num_classes must be >= 1, got {num_classes}.')
  from data_prep import builders  # pylint: disable=g-import-not-at-top
  return builders.pose2d_builder(manual_dir, name, num_classes)


def _check_arguments(dataset, cls, manual_dir, protocols, missing_list):
  known = [config.name for config in cls.BUILDER_CONFIGS]
  unknown = sorted(set(protocols or ()) - set(known))
  if unknown:
    raise errors.UserError(f'unknown protocols {unknown} for {dataset}; '
                           f'known: {known}.')
  if dataset not in (*NO_MANUAL_DIR, FROM_PICKLE) and not (
      manual_dir and os.path.isdir(manual_dir)):
    raise errors.UserError(
        f'--manual_dir must be an existing folder for {dataset}, got '
        f'{manual_dir!r}; it holds {cls.RAW_FILES} (see {cls.__name__}'
        '.MANUAL_DOWNLOAD_INSTRUCTIONS in data_prep/builders.py).')
  if missing_list and not dataset.startswith('ntu'):
    raise errors.UserError(
        f'--missing_list applies to ntu60/ntu120, not {dataset}.')


def _build_protocol(builder, manual_dir) -> str:
  """Builds one protocol; returns its printable report."""
  start = time.time()
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=manual_dir, try_download_gcs=False))
  lines = [f'written to {builder.data_dir} in {time.time() - start:.1f} s']
  lines += [f'{split}: {info.num_examples} examples'
            for split, info in sorted(builder.info.splits.items())]
  if hasattr(builder, 'report'):
    lines.append(builder.report.format())
    skipped = builder.report.write_skipped(
        pathlib.Path(builder.data_dir) / 'skipped.json')
    lines.append(f'every skipped sample, with its reason: {skipped}')
  return '\n'.join(lines)


def build(dataset: str, manual_dir: str | None = None,
          data_dir: str | None = None, protocols: list[str] | None = None,
          num_workers: int | None = None,
          missing_list: str | None = None, name: str | None = None,
          num_classes: int | None = None) -> dict[str, str]:
  """Builds every protocol; returns protocol -> printable report.

  Raises errors.UserError for bad arguments or raw files, and IncompleteBuild
  (with every protocol's report) after trying them all when some could not
  be built.
  """
  if dataset == FROM_PICKLE:
    cls = _pickle_builder(manual_dir, name, num_classes)
  elif name or num_classes:
    raise errors.UserError(
        f'--name and --num_classes apply to {FROM_PICKLE}, not {dataset}.')
  else:
    cls = builder_class(dataset)
  _check_arguments(dataset, cls, manual_dir, protocols, missing_list)
  kwargs = {}
  if dataset not in NO_MANUAL_DIR:
    kwargs['num_workers'] = num_workers
  if missing_list:
    kwargs['missing_list'] = missing_list

  reports, failures = {}, {}
  with build_lock(_data_dir_root(data_dir), cls.name):
    for protocol in protocols or [c.name for c in cls.BUILDER_CONFIGS]:
      builder = cls(config=protocol, data_dir=data_dir,
                    file_format='array_record', **kwargs)
      if builder.is_prepared():
        reports[protocol] = (f'already prepared in {builder.data_dir}; delete '
                             'it to rebuild')
        continue
      try:
        reports[protocol] = _build_protocol(builder, manual_dir)
      except report.EmptySplit as e:
        failures[protocol] = str(e)
        reports[protocol] = f'not built: {e}\n{builder.report.format()}'
  if failures:
    raise IncompleteBuild(reports, failures)
  return reports


def _print_reports(dataset: str, reports: dict[str, str]):
  for protocol, text in reports.items():
    print(f'\n== {dataset}/{protocol} ==\n{text}')


def _dataset_name() -> str:
  if _DATASET.value != FROM_PICKLE:
    return _DATASET.value
  return _NAME.value or pose2d.default_name(_MANUAL_DIR.value)


def main(argv):
  with errors.reported():  # a UserError: one sentence on stderr, exit code 2
    if len(argv) > 1:
      raise errors.UserError(f'unexpected arguments: {argv[1:]}')
    try:
      reports = build(_DATASET.value, _MANUAL_DIR.value, _DATA_DIR.value,
                      _PROTOCOLS.value, _NUM_WORKERS.value,
                      _MISSING_LIST.value, _NAME.value, _NUM_CLASSES.value)
    except IncompleteBuild as e:
      _print_reports(_dataset_name(), e.reports)
      raise
    except ValueError as e:  # a reader's error names the file and line
      raise errors.UserError(str(e)) from None
    _print_reports(_dataset_name(), reports)


def _parse_flags(argv):
  """absl's flag parsing; a bad flag is one sentence, not the flag help."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    errors.fail(str(e))


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
