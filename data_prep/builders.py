"""TFDS builders of the recorded datasets: ntu60, ntu120, pku_mmd2, nw_ucla,
and pose2d_* (a 2D annotation pickle; `pose2d_builder` makes its class).

Each lists its raw files in the main process (file names decide the split),
parses and preprocesses them in a process pool (chunks in order, a bounded
number in flight, so memory stays flat whatever the dataset size), and writes
array_record
shards of the schema in `features.py`. Files that cannot become examples
(unreadable, unusable, oddly named, duplicates) are counted, not fatal;
`builder.report` holds the counts after a build. A protocol with an empty
split raises `report.EmptySplit` instead of TFDS' bare assertion.
"""
import collections
import functools
import logging
import multiprocessing
import os
import pathlib
import re
from typing import Any, Callable, Iterator

import tensorflow_datasets as tfds
import tqdm

from byol_skeleton import errors
from byol_skeleton.data.raw import ntu as ntu_raw
from byol_skeleton.data.raw import nw_ucla as nw_ucla_raw
from byol_skeleton.data.raw import pku_mmd as pku_raw
from data_prep import features
from data_prep import ntu
from data_prep import nw_ucla
from data_prep import pku_mmd
from data_prep import pose2d
from data_prep import report

SPLITS = ('train', 'test')

NamedItem = tuple[str, Any]  # (sample name for the report, loader input)


def _load_in_order(load_fn: Callable[[Any], report.Loaded],
                   items: list[NamedItem], num_workers: int
                   ) -> Iterator[report.Loaded]:
  """`report.load_safely` over `items`, in order, in a process pool.

  At most two chunks per worker are in flight, so parsed examples never pile
  up in memory when writing is slower than parsing (`Pool.imap` has no such
  bound).
  """
  chunk = max(1, min(32, len(items) // (8 * num_workers)))
  chunks = [items[i:i + chunk] for i in range(0, len(items), chunk)]
  task = functools.partial(report.load_chunk, load_fn)
  if num_workers <= 1 or len(chunks) < 2:
    for named_items in chunks:
      yield from task(named_items)
    return
  # forkserver: workers start from a clean process (no inherited JAX or
  # TFDS threads) and import only the TFDS-free reader modules.
  context = multiprocessing.get_context('forkserver')
  with context.Pool(num_workers) as pool:
    pending = collections.deque()
    for named_items in chunks:
      pending.append(pool.apply_async(task, (named_items,)))
      if len(pending) >= 2 * num_workers:
        yield from pending.popleft().get()
    while pending:
      yield from pending.popleft().get()


def _first_existing(root: pathlib.Path, candidates: tuple[str, ...],
                    what: str) -> pathlib.Path:
  for candidate in candidates:
    if (root / candidate).exists():
      return root / candidate
  raise errors.UserError(
      f'--manual_dir {root} has no {what}: expected one of '
      f'{", ".join(candidates)}.')


class SkeletonBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Shared machinery; subclasses set the constants and `_list_items`."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  CLASS_NAMES: tuple[str, ...]  # the action names, by label
  NUM_PERSONS: int
  NUM_JOINTS: int
  HOMEPAGE: str
  # The raw files the manual dir must hold, in a few words, for errors.
  RAW_FILES: str
  # Nothing is downloaded, so there are no checksums to look up next to the
  # code; tfds' lookup would import `importlib_resources`, absent on 3.11.
  code_path = None

  def __init__(self, *, num_workers: int | None = None, **kwargs):
    kwargs.setdefault('file_format', 'array_record')
    super().__init__(**kwargs)
    self.num_workers = num_workers or os.cpu_count() or 1
    self.report = report.BuildReport()

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=features.skeleton_features(
            self._class_label(), self.NUM_PERSONS, self.NUM_JOINTS),
        homepage=self.HOMEPAGE)

  def _class_label(self) -> tfds.features.ClassLabel:
    return tfds.features.ClassLabel(names=self.CLASS_NAMES)

  def _list_items(self, manual_dir: pathlib.Path
                  ) -> dict[str, list[NamedItem]]:
    """Work items per split; listing-time skips go to `self.report`."""
    raise NotImplementedError

  def _load_fn(self) -> Callable[[Any], report.Loaded]:
    """Picklable loader input -> report.Loaded (runs in pool workers)."""
    raise NotImplementedError

  def _split_rule(self, split: str) -> str:
    """Which recordings go into `split`, e.g. 'from cameras 2, 3'."""
    raise NotImplementedError

  def _raw_source(self, dl_manager) -> pathlib.Path:
    """What `_list_items` reads: the manual dir, or a file."""
    return pathlib.Path(dl_manager.manual_dir)

  def _split_generators(self, dl_manager):
    manual_dir = self._raw_source(dl_manager)
    items = self._list_items(manual_dir)
    # TFDS would only fail after writing the other splits, with a bare
    # "No examples were yielded"; say which split and why, before any work.
    if not any(items.values()):
      skipped = ', '.join(f'{reason}: {n}' for reason, n in sorted(
          self.report.skipped.items()))
      raise report.EmptySplit(
          f'{self.builder_config.name}: no usable recording in {manual_dir} '
          f'(skipped: {skipped}); expected {self.RAW_FILES}')
    empty = [split for split in SPLITS if not items[split]]
    if empty:
      raise report.EmptySplit('; '.join(
          f'{self.builder_config.name}/{split}: no recordings '
          f'{self._split_rule(split)}' for split in empty))
    return {split: self._generate_examples(split, items[split])
            for split in SPLITS}

  def _generate_examples(self, split: str, items: list[NamedItem]):
    count = 0
    for loaded in tqdm.tqdm(
        _load_in_order(self._load_fn(), items, self.num_workers),
        total=len(items),
        desc=f'{self.name}/{self.builder_config.name} {split}', unit=' files'):
      self.report.add(split, loaded)
      count += len(loaded.examples)
      yield from loaded.examples
    if not count:
      raise report.EmptySplit(
          f'{self.builder_config.name}/{split}: all {len(items)} recordings '
          'were skipped (reasons in the report)')
    logging.info('%s/%s %s done:\n%s', self.name, self.builder_config.name,
                 split, self.report.format())

  def _no_raw_files(self, what: str):
    """Raises the one-sentence error of a manual dir without raw files."""
    raise errors.UserError(
        f'{what}; expected {self.RAW_FILES} (see {type(self).__name__}'
        '.MANUAL_DOWNLOAD_INSTRUCTIONS in data_prep/builders.py).')

  def _named(self, parse_name: Callable[[Any], Any], path: pathlib.Path,
             manual_dir: pathlib.Path, seen: dict[str, pathlib.Path]):
    """The parsed name of `path`, or None when it is skipped (counted).

    A stray file (`X (copy).skeleton`) or a second copy of a sample (the
    release unpacked twice) is no reason to stop a build of thousands; the
    first copy in path order is kept.
    """
    where = path.relative_to(manual_dir)
    try:
      name = parse_name(path)
    except ValueError as e:  # the message repeats the path: said once
      self.report.add_skip(report.BAD_NAME, str(where),
                           str(e).removeprefix(f'{path}: '))
      return None
    if name.name in seen:
      self.report.add_skip(report.DUPLICATE, str(where),
                           f'{name.name} is also {seen[name.name]}, kept')
      return None
    seen[name.name] = where
    return name


class _NtuBuilder(SkeletonBuilder, skip_registration=True):
  """NTU RGB+D: one example per camera view, 2 persons, 25 joints."""

  DATASET: str
  MISSING_LIST_NAMES: tuple[str, ...]
  NUM_PERSONS = ntu_raw.MAX_BODIES
  NUM_JOINTS = ntu_raw.NUM_JOINTS
  HOMEPAGE = 'https://rose1.ntu.edu.sg/dataset/actionRecognition/'

  def __init__(self, *, missing_list: str | None = None, **kwargs):
    super().__init__(**kwargs)
    self.missing_list = missing_list

  def _missing_names(self, manual_dir: pathlib.Path) -> frozenset[str]:
    path = self.missing_list
    if path is None:
      path = next((manual_dir / name for name in self.MISSING_LIST_NAMES
                   if (manual_dir / name).is_file()), None)
    if path is None:
      logging.warning(
          'No missing-skeleton list (%s) in %s and no missing_list given: '
          'samples the authors flag as incomplete are kept.',
          ' or '.join(self.MISSING_LIST_NAMES), manual_dir)
      return frozenset()
    return ntu.read_missing_list(path)

  def _load_fn(self):
    return ntu.load_example

  def _split_rule(self, split):
    return ntu.split_rule(self.DATASET, self.builder_config.name, split)

  def _list_items(self, manual_dir):
    paths = sorted(manual_dir.rglob('*.skeleton'))
    if not paths:
      self._no_raw_files(
          f'--manual_dir {manual_dir} has no .skeleton file at any depth')
    missing = self._missing_names(manual_dir)
    items = {split: [] for split in SPLITS}
    seen = {}
    for path in paths:
      name = self._named(ntu.parse_name, path, manual_dir, seen)
      if name is None:
        continue
      if not ntu.in_dataset(name, self.DATASET):
        self.report.add_skip(report.NOT_IN_DATASET, name.name)
      elif name.name in missing:
        self.report.add_skip(report.MISSING_LIST, name.name)
      else:
        split = ntu.split_of(name, self.DATASET, self.builder_config.name)
        items[split].append((name.name, str(path)))
    return items


_NTU_INSTRUCTIONS = """\
Request the skeleton release at
https://rose1.ntu.edu.sg/dataset/actionRecognition/ and extract {zips}
into the manual dir (any folder depth; every `SsssCcccPpppRrrrAaaa.skeleton`
below it is read{extra}).
Put the authors' missing-skeleton list (github.com/shahroudy/NTURGB-D, Matlab/)
in the manual dir as {lists},
or pass its path as `missing_list` (CLI: --missing_list); listed samples are
skipped. Without a list they are kept (a warning says so).
"""


class Ntu60(_NtuBuilder):
  """NTU RGB+D 60 (Shahroudy et al. 2016): 60 actions, 40 subjects."""

  DATASET = 'ntu60'
  CLASS_NAMES = ntu.ACTION_NAMES[:60]
  MISSING_LIST_NAMES = ('ntu60.txt',
                        'NTU_RGBD_samples_with_missing_skeletons.txt')
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(
          name='xsub', description='Cross-subject: train on the 20 standard '
          'training subjects, test on the other 20.'),
      tfds.core.BuilderConfig(
          name='xview', description='Cross-view: train on cameras 2, 3; '
          'test on camera 1.'),
  ]
  RAW_FILES = ('SsssCcccPpppRrrrAaaa.skeleton files from '
               'nturgbd_skeletons_s001_to_s017.zip')
  MANUAL_DOWNLOAD_INSTRUCTIONS = _NTU_INSTRUCTIONS.format(
      zips='nturgbd_skeletons_s001_to_s017.zip',
      extra='; files of setups > 17 are counted as not part of NTU-60',
      lists=' or '.join(MISSING_LIST_NAMES))


class Ntu120(_NtuBuilder):
  """NTU RGB+D 120 (Liu et al. 2019): 120 actions, 106 subjects, 32 setups."""

  DATASET = 'ntu120'
  CLASS_NAMES = ntu.ACTION_NAMES
  MISSING_LIST_NAMES = ('ntu120.txt',
                        'NTU_RGBD120_samples_with_missing_skeletons.txt')
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(
          name='xsub', description='Cross-subject: train on the 53 standard '
          'training subjects, test on the other 53.'),
      tfds.core.BuilderConfig(
          name='xset', description='Cross-setup: train on even setup ids, '
          'test on odd.'),
  ]
  RAW_FILES = ('SsssCcccPpppRrrrAaaa.skeleton files from '
               'nturgbd_skeletons_s001_to_s017.zip and _s018_to_s032.zip')
  MANUAL_DOWNLOAD_INSTRUCTIONS = _NTU_INSTRUCTIONS.format(
      zips='nturgbd_skeletons_s001_to_s017.zip and '
      'nturgbd_skeletons_s018_to_s032.zip', extra='',
      lists=' or '.join(MISSING_LIST_NAMES))


class NwUcla(SkeletonBuilder):
  """Northwestern-UCLA Multiview Action 3D: 10 actions, 10 subjects, 3 views."""

  CLASS_NAMES = nw_ucla.ACTION_NAMES
  NUM_PERSONS = 1
  NUM_JOINTS = nw_ucla_raw.LAYOUT.num_joints
  HOMEPAGE = 'http://wangjiangb.github.io/my_data.html'
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(
          name='xview', description='Cross-view: train on views 1, 2 '
          '(1,020 sequences), test on view 3 (464).'),
  ]
  RAW_FILES = 'the aAA_sSS_eEE_vVV.json files of NW-UCLA (all_sqe)'
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Put the per-sequence JSON files `aAA_sSS_eEE_vVV.json` (the `all_sqe` folder
distributed with CTR-GCN's NW-UCLA data) anywhere under the manual dir.
"""

  def _load_fn(self):
    return nw_ucla.load_example

  def _split_rule(self, split):
    return nw_ucla.split_rule(self.builder_config.name, split)

  def _list_items(self, manual_dir):
    paths = sorted(manual_dir.rglob('*.json'))
    if not paths:
      self._no_raw_files(
          f'--manual_dir {manual_dir} has no .json file at any depth')
    items = {split: [] for split in SPLITS}
    seen = {}
    for path in paths:
      name = self._named(nw_ucla.parse_name, path, manual_dir, seen)
      if name is None:
        continue
      split = nw_ucla.split_of(name, self.builder_config.name)
      items[split].append((name.name, str(path)))
    return items


class PkuMmd2(SkeletonBuilder):
  """PKU-MMD phase II (Liu et al. 2020): 41 actions, 13 subjects, 3 views."""

  NUM_PERSONS = pku_raw.NUM_PERSONS
  NUM_JOINTS = pku_raw.LAYOUT.num_joints
  HOMEPAGE = 'https://www.icst.pku.edu.cn/struct/Projects/PKUMMD.html'
  SKELETON_DIRS = ('skeleton', 'skeletons', 'Skeleton_v2')
  LABEL_DIRS = ('label', 'labels', 'Label_PKUMMD_v2')
  SPLIT_FILES = ('cross_subject_v2.txt', 'cross-subject.txt',
                 'cross_subject.txt')
  BUILDER_CONFIGS = [
      tfds.core.BuilderConfig(
          name='xsub', description='Cross-subject split of the authors\' '
          'split file; one example per trimmed action instance.'),
  ]
  RAW_FILES = ('PKU-MMD II skeleton/ and label/ folders of AxxNyy-V.txt files '
               'and cross_subject_v2.txt')
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
From the PKU-MMD phase II release ({HOMEPAGE}) put into the manual dir:
  {' | '.join(SKELETON_DIRS)}/AxxNyy-V.txt   skeletons (Skeleton_v2.7z)
  {' | '.join(LABEL_DIRS)}/AxxNyy-V.txt   labels (Label_PKUMMD_v2.7z)
  {' | '.join(SPLIT_FILES)}   the cross-subject split file
"""

  def _class_label(self):
    # The names follow the label files' action ids, known once they are read
    # (`_list_items`).
    return tfds.features.ClassLabel(num_classes=pku_mmd.NUM_CLASSES)

  def _load_fn(self):
    return functools.partial(pku_mmd.load_video, label_index=self._label_index)

  def _split_rule(self, split):
    return ('of the split file\'s training videos' if split == 'train'
            else 'of the split file\'s validation videos')

  def _list_items(self, manual_dir):
    skeleton_dir = _first_existing(
        manual_dir, self.SKELETON_DIRS, 'skeleton folder')
    label_dir = _first_existing(manual_dir, self.LABEL_DIRS, 'label folder')
    split_of = {video: split for split, videos in pku_mmd.read_split_file(
        _first_existing(manual_dir, self.SPLIT_FILES, 'split file')).items()
                for video in videos}
    items = {split: [] for split in SPLITS}
    action_ids = set()
    seen = {}
    paths = sorted(skeleton_dir.glob('*.txt'))
    if not paths:
      self._no_raw_files(f'{skeleton_dir} has no .txt file')
    for path in paths:
      name = self._named(pku_mmd.parse_name, path, manual_dir, seen)
      if name is None:
        continue
      label_path = label_dir / path.name
      if name.name not in split_of:
        self.report.add_skip(report.NOT_IN_SPLIT, name.name)
      elif not label_path.is_file():
        self.report.add_skip(report.UNREADABLE, name.name,
                             f'no label file {label_path}')
      else:
        action_ids.update(a for a, _, _ in pku_mmd.read_labels(label_path))
        items[split_of[name.name]].append(
            (name.name, (str(path), str(label_path))))
    if len(action_ids) != pku_mmd.NUM_CLASSES:
      raise errors.UserError(
          f'{label_dir}: expected {pku_mmd.NUM_CLASSES} distinct action ids in '
          f'the label files, found {len(action_ids)}: {sorted(action_ids)}.')
    self._label_index = {a: i for i, a in enumerate(sorted(action_ids))}
    self.info.features['label'].names = [
        pku_mmd.action_name(a) for a in sorted(action_ids)]
    return items


class Pose2d(SkeletonBuilder, skip_registration=True):
  """2D COCO-17 skeletons of a pose estimator, from an annotation pickle.

  One class per pickle (`pose2d_builder`): its name, configs (the pickle's
  split pairs) and class count come from the file.
  """

  NUM_PERSONS = pose2d.NUM_PERSONS
  NUM_JOINTS = pose2d.LAYOUT.num_joints
  HOMEPAGE = 'https://github.com/kennymckormick/pyskl/tree/main/tools/data'
  RAW_FILES = ('an mmaction2 / PYSKL 2D skeleton annotation pickle (split, '
               'annotations with COCO-17 keypoint and keypoint_score)')
  MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Pass the annotation pickle itself (e.g. ntu60_hrnet.pkl of PYSKL's releases,
or one written by `python -m data_prep.synthetic_pose2d`) as --manual_dir.
"""
  PICKLE: str
  ANNOTATIONS: pose2d.Annotations
  PAIRS: dict[str, tuple[str, str]]

  def _raw_source(self, dl_manager):
    del dl_manager
    return pathlib.Path(self.PICKLE)

  def _class_label(self):
    if self.CLASS_NAMES:
      return super()._class_label()
    return tfds.features.ClassLabel(num_classes=self.NUM_CLASSES)

  def _load_fn(self):
    return functools.partial(pose2d.load_example, classes=self.NUM_CLASSES)

  def _split_rule(self, split):
    name = self.PAIRS[self.builder_config.name][SPLITS.index(split)]
    return f'in split {name!r} of {self.PICKLE}'

  def _list_items(self, manual_dir):
    del manual_dir
    annotations = self.ANNOTATIONS
    for frame_dir in annotations.duplicates:
      self.report.add_skip(report.DUPLICATE, frame_dir,
                           'another annotation has this frame_dir, kept')
    names = self.PAIRS[self.builder_config.name]
    items = {split: [(frame_dir, (frame_dir, annotations.records[frame_dir]))
                     for frame_dir in annotations.split[name]]
             for split, name in zip(SPLITS, names)}
    listed = {frame_dir for name in names
              for frame_dir in annotations.split[name]}
    for frame_dir in annotations.records:
      if frame_dir not in listed:
        self.report.add_skip(report.NOT_IN_SPLIT, frame_dir)
    return items


def pose2d_builder(pickle_path, name: str | None = None,
                   num_classes: int | None = None) -> type[Pose2d]:
  """The builder class of one annotation pickle, read and checked here.

  `name` (default `pose2d.default_name`) must be pose2d_ + lower-case letters, digits
  and underscores; `num_classes` defaults to 1 + the largest label.
  """
  name = name or pose2d.default_name(pickle_path)
  if not re.fullmatch(r'pose2d_[a-z0-9_]+', name):
    raise errors.UserError(
        f'--name={name!r}: expected pose2d_ followed by lower-case letters, '
        'digits and underscores, e.g. pose2d_ntu60_hrnet.')
  annotations = pose2d.read_pickle(pickle_path)
  pairs = pose2d.split_pairs(annotations.split)
  if not pairs:
    raise errors.UserError(
        f'{pickle_path}: no train/test pair among its splits '
        f'{sorted(annotations.split)}; expected P_train with P_val or P_test, '
        'trainN with testN, or train with val or test.')
  if num_classes is None:
    num_classes = pose2d.num_classes(annotations)
  configs = [tfds.core.BuilderConfig(
      name=protocol, description=f'train: {train}, test: {test}')
             for protocol, (train, test) in pairs.items()]
  return type('Pose2dPickle', (Pose2d,), dict(
      name=name, __doc__=f'2D COCO-17 skeletons of {pickle_path}.',
      BUILDER_CONFIGS=configs, NUM_CLASSES=num_classes,
      CLASS_NAMES=pose2d.class_names(annotations, num_classes),
      PICKLE=str(pickle_path), ANNOTATIONS=annotations, PAIRS=pairs),
              skip_registration=True)
