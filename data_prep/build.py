"""Builds TFDS shards from raw files, one protocol (builder config) at a time.

  python -m data_prep.build --dataset=NAME --manual_dir=RAW_DIR \\
      [--data_dir=DIR] [--protocols=xsub,xview] [--num_workers=N] \\
      [--missing_list=FILE]

NAME: ntu60, ntu120, pku_mmd2, nw_ucla, or synthetic (needs no --manual_dir).
Each protocol is a separate TFDS config (`tfds.data_source('NAME/PROTOCOL')`)
and parses the raw files again. At the end it prints, per protocol, the
examples per split, the skipped samples by reason and the dropped bodies.
"""
import importlib
import os
import time

from absl import app
from absl import flags
import tensorflow_datasets as tfds

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

_DATASET = flags.DEFINE_enum('dataset', None, sorted(DATASETS),
                             'Dataset to build.', required=True)
_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', None, 'Folder with the raw files (see the builder\'s '
    'MANUAL_DOWNLOAD_INSTRUCTIONS).')
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


def builder_class(dataset: str):
  module, name = DATASETS[dataset]
  return getattr(importlib.import_module(module), name)


def build(dataset: str, manual_dir: str | None = None,
          data_dir: str | None = None, protocols: list[str] | None = None,
          num_workers: int | None = None,
          missing_list: str | None = None) -> dict[str, str]:
  """Builds every protocol; returns protocol -> printable report."""
  cls = builder_class(dataset)
  known = [config.name for config in cls.BUILDER_CONFIGS]
  unknown = sorted(set(protocols or ()) - set(known))
  if unknown:
    raise ValueError(f'unknown protocols {unknown} for {dataset}; '
                     f'known: {known}')
  if dataset not in NO_MANUAL_DIR and not (
      manual_dir and os.path.isdir(manual_dir)):
    raise ValueError(f'--manual_dir must be an existing folder for {dataset}, '
                     f'got {manual_dir!r}.\n{cls.MANUAL_DOWNLOAD_INSTRUCTIONS}')
  if missing_list and not dataset.startswith('ntu'):
    raise ValueError(f'--missing_list applies to ntu60/ntu120, not {dataset}')
  kwargs = {}
  if dataset not in NO_MANUAL_DIR:
    kwargs['num_workers'] = num_workers
  if missing_list:
    kwargs['missing_list'] = missing_list

  reports = {}
  for protocol in protocols or known:
    builder = cls(config=protocol, data_dir=data_dir,
                  file_format='array_record', **kwargs)
    if builder.is_prepared():
      reports[protocol] = (f'already prepared in {builder.data_dir}; delete it '
                           'to rebuild')
      continue
    start = time.time()
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
        manual_dir=manual_dir, try_download_gcs=False))
    lines = [f'written to {builder.data_dir} in {time.time() - start:.1f} s']
    lines += [f'{split}: {info.num_examples} examples'
              for split, info in sorted(builder.info.splits.items())]
    if hasattr(builder, 'report'):
      lines.append(builder.report.format())
    reports[protocol] = '\n'.join(lines)
  return reports


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  try:
    reports = build(_DATASET.value, _MANUAL_DIR.value, _DATA_DIR.value,
                    _PROTOCOLS.value, _NUM_WORKERS.value, _MISSING_LIST.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  for protocol, text in reports.items():
    print(f'\n== {_DATASET.value}/{protocol} ==\n{text}')


if __name__ == '__main__':
  app.run(main)
