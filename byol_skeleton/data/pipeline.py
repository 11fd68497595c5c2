"""Host input pipeline: TFDS array_record shards -> padded numpy batches.

Every process computes the same global order (a fresh permutation per epoch
from `config.seed`) cut into global batches, and reads only its own slice of
each one. The global batches are therefore the same for any process count,
the processes' shares are disjoint, and the iterator state is one integer
(the next step), which restores exactly with any `data.worker_count`.

Batch formats (this process's share B = global batch / process count):
  pretraining: 'skeleton_1', 'skeleton_2' (B, max_frames, M, V, 3) float32,
    'length_1', 'length_2' (B,) int32, 'label' (B,) int32;
  evaluation: 'skeleton', 'length', 'label', 'mask' (B,) bool (False on the
    padding examples that fill a last partial batch); `ArrayData` gives the
    same batches of skeletons read from recording files (label -1).
Frames past `length` are zeros; sequences longer than `data.max_frames` are
cropped to their first `max_frames` frames.

Reading is random access (`tfds.data_source`), so memory holds only the
per-example metadata (a few integers each), never the dataset. One background
thread builds the next batches; data.worker_count > 0 builds them in grain
worker processes instead, which was slower on the 2-core development machine
(benchmarks/input_pipeline.py) and may pay off on hosts with many cores.

Shards that are missing, truncated or damaged, or whose metadata
(dataset_info.json, features.json) is, are a `UserError` naming the file and
the command that rebuilds it, whenever they are found: opening a split reads
all its records once (for the metadata), and every later read is checked too.
"""
import bisect
import dataclasses
import functools
import json
import os
import pathlib
import re
import sys

from absl import flags
from google.protobuf import json_format
import grain
import jax
import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_parser

from byol_skeleton import errors
from byol_skeleton.data import skeletons

# Batches read ahead by the background thread; each holds a whole batch.
_PREFETCH = 2


# The datasets `python -m data_prep.build` builds, with their protocols
# (data.split). byol_skeleton does not import data_prep (the import graph runs
# the other way), so tests/test_data_prep.py checks that the two agree.
BUILDABLE = {
    'ntu60': ('xsub', 'xview'),
    'ntu120': ('xsub', 'xset'),
    'pku_mmd2': ('xsub',),
    'nw_ucla': ('xview',),
    'synthetic': ('xsub',),
}
# Datasets built from a 2D annotation pickle (`--dataset=pose2d`): any name
# with this prefix; their protocols are the pickle's train/test split pairs.
FROM_PICKLE_PREFIX = 'pose2d_'
# Files TFDS needs beside the shards of a prepared dataset version.
_METADATA_FILES = ('dataset_info.json', 'features.json')
# What a damaged dataset_info.json / features.json raises while TFDS loads it.
_BAD_METADATA = (tfds.core.dataset_info.DatasetInfoFileError,
                 json_format.ParseError, json.JSONDecodeError)


def _data_dir(data) -> str:
  return (data.data_dir or os.environ.get('TFDS_DATA_DIR')
          or os.path.expanduser('~/tensorflow_datasets'))


def _build_command(data, *options: str) -> str:
  """`python -m data_prep.build ...` that builds data.dataset."""
  if data.dataset == 'synthetic':
    dataset = '--dataset=synthetic'
  elif data.dataset.startswith(FROM_PICKLE_PREFIX):
    dataset = f'--dataset=pose2d --manual_dir=FILE.pkl --name={data.dataset}'
  else:
    dataset = f'--dataset={data.dataset} --manual_dir=RAW_DIR'
  return ' '.join(('python -m data_prep.build', dataset, *options,
                   f'--data_dir={_data_dir(data)}'))


def _rebuild(data, version_dir) -> str:
  """The clause that says how to rebuild a damaged protocol."""
  return (f'delete {version_dir} and rebuild it with '
          f'`{_build_command(data, f"--protocols={data.split}")}`')


def _version_dirs(data) -> list[pathlib.Path]:
  """The data_dir's version folders (e.g. 1.0.0) of the protocol, newest first.

  Folders of unfinished builds (incomplete.*) are not versions.
  """
  root = pathlib.Path(_data_dir(data)) / data.dataset / data.split
  if not root.is_dir():
    return []
  found = [d for d in root.iterdir()
           if d.is_dir() and re.fullmatch(r'\d+\.\d+\.\d+', d.name)]
  return sorted(found, key=lambda d: tuple(map(int, d.name.split('.'))),
                reverse=True)


def _damaged_metadata(data, error=None) -> str | None:
  """The error for shards without readable metadata beside them, or None."""
  for version_dir in _version_dirs(data):
    if not any(version_dir.glob('*.array_record-*')):
      continue
    for name in _METADATA_FILES:
      path = version_dir / name
      if not path.is_file():
        what = 'missing'
      elif error is not None and name == _METADATA_FILES[0]:
        what = f'unreadable ({error})'
      else:
        continue
      return (f'{path} is {what}, so the shards of {data.dataset}/'
              f'{data.split} beside it cannot be read; '
              f'{_rebuild(data, version_dir)}.')
  return None


def _not_buildable(data) -> str | None:
  """The error for a dataset or protocol data_prep.build does not know."""
  if data.dataset.startswith(FROM_PICKLE_PREFIX):
    return None  # the pickle decides the protocols
  if data.dataset not in BUILDABLE:
    return (f'data.dataset={data.dataset!r} has no shards in data_dir '
            f'{_data_dir(data)} and `python -m data_prep.build` builds only '
            f'{", ".join(sorted(BUILDABLE))} and {FROM_PICKLE_PREFIX}* (from '
            'a 2D annotation pickle); set data.dataset to one of them.')
  if data.split not in BUILDABLE[data.dataset]:
    return (f'data.split={data.split!r} is not a protocol of '
            f'{data.dataset}: `python -m data_prep.build` builds '
            f'{", ".join(BUILDABLE[data.dataset])}; set data.split to one of '
            'them.')
  return None


def open_source(data, split: str):
  """Random access to the serialized records of a split ('train' / 'test').

  Decode them with `Decoder`, only the features needed.
  """
  name = f'{data.dataset}/{data.split}'
  try:
    builder = tfds.builder(name, data_dir=data.data_dir or None)
    prepared = builder.is_prepared()
  except tfds.core.registered.DatasetNotFoundError:
    prepared = False
  except _BAD_METADATA as e:
    message = _damaged_metadata(data, error=e)
    if message is None:
      raise
    raise errors.UserError(message) from None
  except ValueError:  # a registered builder has no such config
    message = _not_buildable(data)
    if message is None:
      raise
    raise errors.UserError(message) from None
  if not prepared:
    message = _damaged_metadata(data) or _not_buildable(data)
    if message:
      raise errors.UserError(message)
    raise errors.UserError(
        f'No {split!r} shards of dataset {name} in data_dir '
        f'{_data_dir(data)}; build them with `{_build_command(data)}`.')
  source = builder.as_data_source(
      split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)
  return CheckedSource(source, data, split, builder.data_dir)


def class_names(data) -> tuple[str, ...]:
  """The action name of each label of the dataset, as its shards store them.

  Shards built without names give the labels' numbers ('0', '1', ...). Read
  from the shards' own metadata, whatever builder code is imported.
  """
  version_dir = open_source(data, 'train').version_dir
  names = tuple(tfds.builder_from_directory(version_dir).info.features[
      'label'].names)
  if len(names) != data.num_classes:
    raise errors.UserError(
        f'{data.dataset}/{data.split} has {len(names)} classes but '
        f'data.num_classes={data.num_classes}; set it to {len(names)}.')
  return names


class CheckedSource:
  """A split's data source whose read errors name the shard and the rebuild.

  array_record's own errors ("Failed to read RiegeliPostscript") name no file.
  Picklable, as grain worker processes need.
  """

  def __init__(self, source, data, split: str, version_dir):
    self.source = source
    self.dataset_info = source.dataset_info
    shards = source.dataset_info.splits[split].file_instructions
    self._files = [shard.filename for shard in shards]
    self._ends = np.cumsum([shard.take for shard in shards]).tolist()
    self._what = f'of {data.dataset}/{data.split} {split!r}'
    self._rebuild = _rebuild(data, version_dir)
    self.version_dir = str(version_dir)

  def __len__(self) -> int:
    return len(self.source)

  def __getitem__(self, index: int) -> bytes:
    try:
      return self.source[index]
    except (RuntimeError, OSError) as e:
      shard = self._files[bisect.bisect_right(self._ends, index)]
      raise errors.UserError(
          f'shard {shard} {self._what} is missing, truncated or damaged '
          f'({e}); {self._rebuild}.') from None


class Decoder:
  """Decodes only the named features of serialized records.

  TFDS' own parser and decoders restricted to a few features: about 5x
  cheaper than decoding whole examples, and the read itself is cheaper one
  record at a time than through the source's thread pool.
  """

  def __init__(self, features, names):
    specs = features.get_serialized_info()
    self._parser = example_parser.ExampleParserNp({k: specs[k] for k in names})
    self._features = {k: features[k] for k in names}

  def __call__(self, record: bytes) -> dict:
    example = self._parser.parse_example(record)
    return {k: f.decode_example_np(example[k])
            for k, f in self._features.items()}


_METADATA = ('label', 'view', 'subject', 'sequence_key', 'sample_name')


@dataclasses.dataclass(frozen=True)
class Metadata:
  """Per-example scalars of one split, in record order."""
  label: np.ndarray  # (N,) int32
  view: np.ndarray  # (N,) int32, camera id
  subject: np.ndarray  # (N,) int32
  sequence_key: np.ndarray  # (N,) bytes; camera views of a recording share it
  sample_name: np.ndarray  # (N,) bytes; the recording's id (its file name)


@dataclasses.dataclass(frozen=True)
class _DataRef:
  """The fields of `config.data` that name a dataset (hashable for caching)."""
  dataset: str
  split: str
  data_dir: str


@functools.lru_cache(maxsize=8)
def _read_metadata(dataset: str, protocol: str, data_dir: str, split: str):
  data = _DataRef(dataset, protocol, data_dir)
  source = open_source(data, split)
  decode = Decoder(source.dataset_info.features, _METADATA)
  cols = {k: [] for k in _METADATA}
  for i in range(len(source)):
    for k, v in decode(source[i]).items():
      cols[k].append(v)
  return Metadata(
      **{k: np.asarray(cols[k], np.int32)
         for k in ('label', 'view', 'subject')},
      sequence_key=np.asarray(cols['sequence_key'], object),
      sample_name=np.asarray(cols['sample_name'], object))


def read_metadata(data, split: str) -> Metadata:
  """Labels, views, subjects and sequence keys of a split (cached)."""
  return _read_metadata(data.dataset, data.split, data.data_dir, split)


def group_by_sequence(keys: np.ndarray):
  """(members, offsets): the record ids grouped by sequence.

  Sequence g's record ids are members[offsets[g]:offsets[g + 1]]. Sequences
  are numbered in order of their first record, members in record
  order, so the grouping depends only on the records.
  """
  _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
  rank = np.argsort(np.argsort(first))  # unique (sorted) id -> first-seen id
  group = rank[inverse]
  members = np.argsort(group, kind='stable')
  offsets = np.concatenate([[0], np.cumsum(np.bincount(group))])
  return members, offsets


def class_balanced_subset(labels, fraction: float, seed: int) -> np.ndarray:
  """Sorted indices of `fraction` of each class (at least one per class).

  Each class keeps round(fraction * its size) examples drawn without
  replacement, so class proportions are kept; the same (labels, fraction,
  seed) always gives the same indices.
  """
  labels = np.asarray(labels)
  if not 0 < fraction <= 1:
    raise errors.UserError(
        f'labelled fraction must be in (0, 1], got {fraction}.')
  rng = np.random.default_rng(seed)
  picked = []
  for c in np.unique(labels):
    members = np.flatnonzero(labels == c)
    k = max(1, int(round(fraction * len(members))))
    picked.append(rng.choice(members, k, replace=False))
  return np.sort(np.concatenate(picked))


def save_subset(directory, indices, **info) -> pathlib.Path:
  """Writes DIRECTORY/subset.json ({'indices': [...], **info}); returns it."""
  path = pathlib.Path(directory) / 'subset.json'
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(
      {**info, 'indices': [int(i) for i in indices]}, indent=None))
  return path


@functools.lru_cache(maxsize=2)
def _permutation(num_items: int, seed: int, epoch: int) -> np.ndarray:
  return np.random.default_rng([seed, 0, epoch]).permutation(num_items)


@dataclasses.dataclass(frozen=True)
class Order:
  """Which items this process takes at each step.

  Epoch e is a permutation of the items (identity without shuffle) cut into
  global batches; process p takes the p-th contiguous slice of each. Without
  drop_remainder the last batch is completed with invalid positions.
  """
  num_items: int
  global_batch: int
  process_index: int
  process_count: int
  shuffle: bool
  drop_remainder: bool
  seed: int

  @property
  def local_batch(self) -> int:
    return self.global_batch // self.process_count

  @property
  def steps_per_epoch(self) -> int:
    if self.drop_remainder:
      return self.num_items // self.global_batch
    return -(-self.num_items // self.global_batch)

  def items(self, step: int):
    """(item ids (local_batch,) int64, valid (local_batch,) bool) at `step`."""
    epoch, k = divmod(step, self.steps_per_epoch)
    start = k * self.global_batch + self.process_index * self.local_batch
    pos = np.arange(start, start + self.local_batch)
    valid = pos < self.num_items
    pos = np.where(valid, pos, 0)
    if self.shuffle:
      pos = _permutation(self.num_items, self.seed, epoch)[pos]
    return pos, valid


def _process(process_index, process_count):
  if process_index is None:
    return jax.process_index(), jax.process_count()
  return process_index, process_count


class _ShardRecords:
  """Record id -> {'skeleton', 'label'} of a split's shards."""

  def __init__(self, source):
    self.source = source  # serialized records
    self.decode = Decoder(source.dataset_info.features, ('skeleton', 'label'))

  def __call__(self, index: int) -> dict:
    return self.decode(self.source[index])


class _ArrayRecords:
  """Record id -> {'skeleton', 'label': -1 (unknown)} of in-memory arrays."""

  def __init__(self, skeletons):
    self.skeletons = skeletons

  def __call__(self, index: int) -> dict:
    return {'skeleton': self.skeletons[index], 'label': -1}


class _Batches:
  """Reads and pads records; subclasses map a step to a batch.

  Holds only what a worker process needs (it is pickled to them).
  """

  def __init__(self, records, order: Order, max_frames: int, num_persons: int):
    self.records = records  # record id -> {'skeleton', 'label'}
    self.order = order
    self.max_frames = max_frames
    # The first bodies: the readers store the most active body first; fewer
    # stored persons leave the other slots zero (absent).
    self.num_persons = num_persons

  def read(self, ids):
    """Padded (len(ids), max_frames, M, V, 3), lengths, labels of records."""
    unique, inverse = np.unique(ids, return_inverse=True)
    records = [self.records(int(i)) for i in unique]
    shape = (self.num_persons, *records[0]['skeleton'].shape[2:])
    padded = np.zeros((len(ids), self.max_frames, *shape), np.float32)
    lengths = np.zeros(len(ids), np.int32)
    labels = np.zeros(len(ids), np.int32)
    for i, r in enumerate(inverse):
      x = records[r]['skeleton'][:self.max_frames, :self.num_persons]
      padded[i, :len(x), :x.shape[1]] = x
      lengths[i], labels[i] = len(x), records[r]['label']
    return padded, lengths, labels


class _PairBatches(_Batches):
  """Step -> two views of each item (a group of records) of the step."""

  def __init__(self, records, order, max_frames, num_persons, members,
               offsets, seed):
    super().__init__(records, order, max_frames, num_persons)
    self.members, self.offsets, self.seed = members, offsets, seed

  def __call__(self, step: int) -> dict:
    o = self.order
    groups, _ = o.items(step)
    # Drawn for the whole global batch: independent of the process count.
    u = np.random.default_rng([self.seed, 1, step]).random((o.global_batch, 2))
    u = u[o.process_index * o.local_batch:][:o.local_batch]
    start, count = self.offsets[groups], np.diff(self.offsets)[groups]
    picks = self.members[start[:, None] + (u * count[:, None]).astype(int)]
    x, lengths, labels = self.read(picks.T.reshape(-1))
    b = len(groups)
    return dict(skeleton_1=x[:b], length_1=lengths[:b], skeleton_2=x[b:],
                length_2=lengths[b:], label=labels[:b])


class _LabelledBatches(_Batches):
  """Step -> single views with labels and a validity mask."""

  def __init__(self, records, order, max_frames, num_persons, indices):
    super().__init__(records, order, max_frames, num_persons)
    self.indices = indices

  def __call__(self, step: int) -> dict:
    items, valid = self.order.items(step)
    x, lengths, labels = self.read(self.indices[items])
    x[~valid] = 0.0
    lengths[~valid] = 1  # a harmless length for masked padding examples
    labels[~valid] = 0
    return dict(skeleton=x, length=lengths, label=labels, mask=valid)


def _check_source(data, source):
  """Fewer persons than stored is allowed: the first (most active) bodies."""
  layout = skeletons.get_layout(data.layout)
  stored = tuple(source.dataset_info.features['skeleton'].shape[1:])
  expected = (data.num_persons, layout.num_joints, 3)
  if stored[1:] != expected[1:] or not 1 <= expected[0] <= stored[0]:
    raise errors.UserError(
        f'{data.dataset}/{data.split} stores skeletons of shape (T, M, V, 3) = '
        f'(T, *{stored}) but the config asks for (T, *{expected}) '
        f'(data.num_persons={data.num_persons}: 1 to the {stored[0]} stored; '
        f'data.layout={data.layout!r}: {layout.num_joints} joints).')
  return source


def _check_batch(order: Order, what: str):
  if order.global_batch % order.process_count:
    raise errors.UserError(
        f'batch size {order.global_batch} does not split over '
        f'{order.process_count} processes; use a multiple of '
        f'{order.process_count}.')
  if order.steps_per_epoch < 1:
    raise errors.UserError(
        f'batch size {order.global_batch} is larger than the '
        f'{order.num_items} {what}; use a smaller batch.')


class _Loader:
  """A stateful iterator of batches `make_batch(step)`; state = next step.

  Batches are built ahead in a background thread (or `worker_count`
  processes); the state counts batches handed out, so it does not depend on
  how far reading has run ahead, nor on the worker count.
  """

  def __init__(self, make_batch: _Batches, total_steps: int, workers: int):
    self.make_batch = make_batch
    self.order = make_batch.order
    self._total = total_steps
    self._workers = workers
    self._step = 0
    self._it = None

  @property
  def steps_per_epoch(self) -> int:
    return self.order.steps_per_epoch

  def _iterator(self, start: int):
    ds = grain.MapDataset.range(start, self._total).map(self.make_batch)
    if self._workers > 0:
      if not flags.FLAGS.is_parsed():
        # grain 0.2.18's worker processes read absl flags; outside an absl
        # app (tests, notebooks) they take their defaults.
        flags.FLAGS.mark_as_parsed()
      return iter(ds.to_iter_dataset(grain.ReadOptions(
          num_threads=1, prefetch_buffer_size=1)).mp_prefetch(
              grain.MultiprocessingOptions(num_workers=self._workers,
                                           per_worker_buffer_size=1)))
    return iter(ds.to_iter_dataset(grain.ReadOptions(
        num_threads=1, prefetch_buffer_size=_PREFETCH)))

  def next_batch(self) -> dict:
    if self._it is None:
      self._it = self._iterator(self._step)
    batch = next(self._it)
    self._step += 1
    return batch

  def __iter__(self):
    return self

  def __next__(self):
    return self.next_batch()

  def _fingerprint(self) -> dict:
    o = self.order
    return dict(num_items=o.num_items, global_batch=o.global_batch,
                seed=o.seed, shuffle=o.shuffle)

  def get_state(self) -> dict:
    """JSON-serialisable; `set_state` of it resumes with identical batches."""
    return dict(step=self._step, **self._fingerprint())

  def set_state(self, state: dict) -> None:
    saved = {k: state.get(k) for k in self._fingerprint()}
    if saved != self._fingerprint():
      raise errors.UserError(
          f'the saved input state {saved} does not match this input pipeline '
          f'{self._fingerprint()}; resume with the same dataset, batch size '
          'and seed.')
    self._step = int(state['step'])
    self.close()

  def close(self):
    """Stops read-ahead (and worker processes); iteration may go on after."""
    if self._it is not None and hasattr(self._it, 'close'):
      self._it.close()
    self._it = None


class PretrainData(_Loader):
  """Infinite pretraining pairs: skeleton_1/2, length_1/2, label.

  With data.multi_view, an epoch visits every action sequence (its camera
  views grouped by sequence_key) once and draws two of its views with
  replacement (paper sec. 3.4); otherwise it visits every view once and uses
  it as both. Remainders are dropped; each epoch reshuffles.
  """

  def __init__(self, config, *, process_index=None, process_count=None):
    data = config.data
    meta = read_metadata(data, 'train')
    if data.multi_view:
      members, offsets = group_by_sequence(meta.sequence_key)
    else:
      members, offsets = np.arange(len(meta.label)), np.arange(
          len(meta.label) + 1)
    order = Order(len(offsets) - 1, config.pretrain.batch_size,
                  *_process(process_index, process_count), shuffle=True,
                  drop_remainder=True, seed=config.seed)
    _check_batch(order, f'{"action sequences" if data.multi_view else "views"}'
                 f' of {data.dataset}/{data.split} train')
    source = _check_source(data, open_source(data, 'train'))
    super().__init__(
        _PairBatches(_ShardRecords(source), order, data.max_frames,
                     data.num_persons, members, offsets, config.seed),
        sys.maxsize, data.worker_count)


class EvalData(_Loader):
  """Labelled single views: skeleton, length, label, mask.

  `batch_size` is global. Finite (repeat=False): each `for batch in data`
  yields one epoch from the start, the last batch completed with mask=False
  examples unless drop_remainder. repeat=True: an endless stream of epochs
  (reshuffled when shuffle) read with `next_batch()`, resumable from
  `get_state()`. `indices` restricts it to those records of the split (e.g.
  from `class_balanced_subset`); `labels` are the labels of its items.
  """

  def __init__(self, config, split: str, batch_size: int, *, shuffle=False,
               repeat=False, drop_remainder=False, indices=None, seed=None,
               process_index=None, process_count=None):
    data = config.data
    meta = read_metadata(data, split)
    self.indices = (np.arange(len(meta.label)) if indices is None
                    else np.asarray(indices, np.int64))
    self.labels = meta.label[self.indices]
    order = Order(len(self.indices), batch_size,
                  *_process(process_index, process_count), shuffle=shuffle,
                  drop_remainder=drop_remainder,
                  seed=config.seed if seed is None else seed)
    _check_batch(order, f'examples of {data.dataset}/{data.split} {split}')
    self._repeat = repeat
    source = _check_source(data, open_source(data, split))
    super().__init__(
        _LabelledBatches(_ShardRecords(source), order, data.max_frames,
                         data.num_persons, self.indices),
        sys.maxsize if repeat else order.steps_per_epoch, data.worker_count)

  def __len__(self):
    return self.steps_per_epoch

  def __iter__(self):
    if self._repeat:
      return self
    return self._iterator(0)


class ArrayData(_Loader):
  """EvalData's batches of in-memory skeletons (T, M, V, 3), labels -1.

  For recordings read from files rather than shards: one finite epoch in
  order, each process taking its share of each global batch, the last batch
  completed with mask=False examples.
  """

  def __init__(self, config, skeletons, batch_size: int, *,
               process_index=None, process_count=None):
    data = config.data
    order = Order(len(skeletons), batch_size,
                  *_process(process_index, process_count), shuffle=False,
                  drop_remainder=False, seed=config.seed)
    _check_batch(order, 'recordings')
    super().__init__(
        _LabelledBatches(_ArrayRecords(skeletons), order, data.max_frames,
                         data.num_persons, np.arange(len(skeletons))),
        order.steps_per_epoch, data.worker_count)

  def __len__(self):
    return self.steps_per_epoch

  def __iter__(self):
    return self._iterator(0)
