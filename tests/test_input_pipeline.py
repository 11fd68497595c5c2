"""Input pipeline against the records it reads, identified by their first frame."""
import collections
import json
import os
import pathlib
import shutil
import subprocess
import sys

import jax
from jax.sharding import Mesh
import numpy as np
import pytest
import tensorflow_datasets as tfds

from byol_skeleton import errors
from byol_skeleton.data import pipeline as ip
from byol_skeleton.train import parallel
from configs import base
from data_prep import synthetic

REPS = 2  # 140 train action sequences (420 views), 180 test views
NUM_SEQUENCES = len(synthetic.TRAIN_SUBJECTS) * len(synthetic.ACTIONS) * REPS


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp('synthetic')
  synthetic.build_synthetic(data_dir, repetitions=REPS)
  source = tfds.data_source('synthetic/xsub', data_dir=str(data_dir),
                            download=False)
  records = {s: [source[s][i] for i in range(len(source[s]))]
             for s in ('train', 'test')}
  return str(data_dir), records


def make_config(data_dir, batch_size=28, **data):
  config = base.get_config()
  config.data.data_dir = data_dir
  config.data.max_frames = 128
  config.data.update(data)
  config.pretrain.batch_size = batch_size
  return config


def identify(records, skeletons):
  """Record ids of padded skeletons, by their first frame."""
  ids = {r['skeleton'][0].tobytes(): i for i, r in enumerate(records)}
  return np.array([ids[x[0].tobytes()] for x in skeletons])


def test_multi_view_pairs_visit_each_sequence_once_per_epoch(data):
  data_dir, records = data
  recs = records['train']
  loader = ip.PretrainData(make_config(data_dir), process_index=0,
                           process_count=1)
  assert loader.steps_per_epoch == NUM_SEQUENCES // 28 == 5
  epochs, same_view = [], 0
  for _ in range(2):
    keys = []
    for _ in range(loader.steps_per_epoch):
      b = loader.next_batch()
      i1, i2 = identify(recs, b['skeleton_1']), identify(recs, b['skeleton_2'])
      k1 = [recs[i]['sequence_key'] for i in i1]
      assert k1 == [recs[i]['sequence_key'] for i in i2]
      assert b['label'].tolist() == [recs[i]['label'] for i in i1]
      same_view += np.sum(i1 == i2)
      keys += k1
    assert sorted(keys) == sorted({r['sequence_key'] for r in recs})
    epochs.append(keys)
  assert epochs[0] != epochs[1]  # reshuffled
  # Two of three views drawn with replacement: the same one 1/3 of the time.
  assert 0.2 < same_view / (2 * NUM_SEQUENCES) < 0.47


def test_single_view_mode_uses_each_view_once_as_both(data):
  data_dir, records = data
  loader = ip.PretrainData(make_config(data_dir, 60, multi_view=False),
                           process_index=0, process_count=1)
  seen = []
  for _ in range(loader.steps_per_epoch):
    b = loader.next_batch()
    np.testing.assert_array_equal(b['skeleton_1'], b['skeleton_2'])
    np.testing.assert_array_equal(b['length_1'], b['length_2'])
    seen += identify(records['train'], b['skeleton_1']).tolist()
  assert sorted(seen) == list(range(len(records['train'])))


def test_two_processes_split_the_global_batch(data):
  data_dir, records = data
  config = make_config(data_dir)
  whole = ip.PretrainData(config, process_index=0, process_count=1)
  parts = [ip.PretrainData(config, process_index=p, process_count=2)
           for p in (0, 1)]
  seen = [[], []]
  for _ in range(whole.steps_per_epoch):
    b = whole.next_batch()
    halves = [p.next_batch() for p in parts]
    for k in b:
      np.testing.assert_array_equal(
          b[k], np.concatenate([h[k] for h in halves]))
    for p, h in enumerate(halves):
      seen[p] += identify(records['train'], h['skeleton_1']).tolist()
  keys = [{records['train'][i]['sequence_key'] for i in s} for s in seen]
  assert not keys[0] & keys[1]
  assert len(keys[0] | keys[1]) == NUM_SEQUENCES


@pytest.mark.parametrize('process_count', [1, 2])
def test_eval_epoch_is_complete_padded_and_masked(data, process_count):
  data_dir, records = data
  recs = records['test']
  config = make_config(data_dir)
  seen = []
  for p in range(process_count):
    loader = ip.EvalData(config, 'test', 40, process_index=p,
                         process_count=process_count)
    assert len(loader) == 5  # 180 examples: 4 full batches and 20 more
    batches = list(loader)
    assert len(batches) == 5 and list(loader)  # iterable again
    for b in batches:
      assert b['skeleton'].shape == (40 // process_count, 128, 2, 25, 3)
      x = b['skeleton'][b['mask']]
      ids = identify(recs, x)
      for row, i, length, label in zip(x, ids, b['length'][b['mask']],
                                       b['label'][b['mask']]):
        true = recs[i]['skeleton']
        assert length == len(true) and label == recs[i]['label']
        np.testing.assert_array_equal(row[:length], true)
        assert not row[length:].any()
      assert not b['skeleton'][~b['mask']].any()
      seen += ids.tolist()
  assert sorted(seen) == list(range(len(recs)))
  dropped = ip.EvalData(config, 'test', 40, drop_remainder=True,
                        process_index=0, process_count=1)
  assert len(dropped) == 4 and all(b['mask'].all() for b in dropped)


def test_long_sequences_are_cropped_to_max_frames(data):
  data_dir, records = data
  loader = ip.EvalData(make_config(data_dir, max_frames=50), 'test', 180,
                       process_index=0, process_count=1)
  b = next(iter(loader))
  for x, length, rec in zip(b['skeleton'], b['length'], records['test']):
    assert x.shape[0] == 50 and length == min(50, len(rec['skeleton']))
    np.testing.assert_array_equal(x[:length], rec['skeleton'][:length])


def _assert_same(batches_a, batches_b):
  for a, b in zip(batches_a, batches_b, strict=True):
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize('kind', ['pretrain', 'eval'])
def test_resume_from_saved_state_gives_identical_batches(data, kind):
  data_dir, _ = data
  config = make_config(data_dir)
  if kind == 'pretrain':
    make = lambda: ip.PretrainData(config, process_index=0, process_count=1)
  else:
    make = lambda: ip.EvalData(config, 'train', 64, shuffle=True, repeat=True,
                               drop_remainder=True, process_index=0,
                               process_count=1)
  loader = make()
  for _ in range(3):
    loader.next_batch()
  state = json.loads(json.dumps(loader.get_state()))
  # Past the end of the first epoch (5 or 6 steps).
  expected = [loader.next_batch() for _ in range(5)]
  resumed = make()
  resumed.set_state(state)
  _assert_same(expected, [resumed.next_batch() for _ in range(5)])
  fresh = make()
  _assert_same(expected[:1], [fresh.make_batch(3)])


def test_worker_processes_give_the_same_batches(data):
  data_dir, _ = data
  batches = []
  for workers in (0, 1):
    loader = ip.PretrainData(make_config(data_dir, worker_count=workers),
                             process_index=0, process_count=1)
    loader.set_state(dict(loader.get_state(), step=4))
    batches.append([loader.next_batch() for _ in range(2)])
    loader.close()
  _assert_same(*batches)


def test_state_of_another_pipeline_is_refused(data):
  data_dir, _ = data
  state = ip.PretrainData(make_config(data_dir), process_index=0,
                          process_count=1).get_state()
  other = ip.PretrainData(make_config(data_dir, 20), process_index=0,
                          process_count=1)
  with pytest.raises(errors.UserError, match='global_batch'):
    other.set_state(state)


def test_class_balanced_subset():
  labels = np.repeat(np.arange(5), [40, 20, 10, 3, 1])
  rng = np.random.default_rng(0)
  labels = labels[rng.permutation(len(labels))]
  subset = ip.class_balanced_subset(labels, 0.1, seed=3)
  counts = np.bincount(labels[subset], minlength=5)
  assert counts.tolist() == [4, 2, 1, 1, 1]
  assert len(set(subset.tolist())) == len(subset)
  np.testing.assert_array_equal(
      subset, ip.class_balanced_subset(labels, 0.1, seed=3))
  assert not np.array_equal(subset,
                            ip.class_balanced_subset(labels, 0.1, seed=4))
  assert len(ip.class_balanced_subset(labels, 1.0, seed=0)) == len(labels)
  with pytest.raises(errors.UserError):
    ip.class_balanced_subset(labels, 0.0, seed=0)


def test_subset_loader_and_saved_indices(data, tmp_path):
  data_dir, records = data
  labels = np.array([r['label'] for r in records['train']])
  subset = ip.class_balanced_subset(labels, 0.05, seed=0)
  path = ip.save_subset(tmp_path / 'run', subset, fraction=0.05, seed=0)
  saved = json.loads(path.read_text())
  assert saved['indices'] == subset.tolist() and saved['fraction'] == 0.05
  loader = ip.EvalData(make_config(data_dir), 'train', 8, indices=subset,
                       process_index=0, process_count=1)
  np.testing.assert_array_equal(loader.labels, labels[subset])
  seen = []
  for b in loader:
    seen += identify(records['train'], b['skeleton'][b['mask']]).tolist()
  assert sorted(seen) == subset.tolist()


def test_group_by_sequence_matches_a_dictionary():
  keys = np.array([b'c', b'a', b'c', b'b', b'a', b'c'], object)
  members, offsets = ip.group_by_sequence(keys)
  groups = [members[offsets[g]:offsets[g + 1]].tolist()
            for g in range(len(offsets) - 1)]
  expected = collections.defaultdict(list)
  for i, k in enumerate(keys):
    expected[k].append(i)
  assert groups == list(expected.values())


def test_fewer_persons_keep_the_first_body(data):
  data_dir, _ = data
  both, first = (
      next(iter(ip.EvalData(make_config(data_dir, num_persons=m), 'test', 180,
                            process_index=0, process_count=1)))
      for m in (2, 1))
  assert first['skeleton'].shape == (180, 128, 1, 25, 3)
  np.testing.assert_array_equal(first['skeleton'], both['skeleton'][:, :, :1])
  assert both['skeleton'][:, :, 1].any()  # the partners that were dropped
  pairs = ip.PretrainData(make_config(data_dir, num_persons=1),
                          process_index=0, process_count=1).next_batch()
  assert pairs['skeleton_1'].shape[2] == pairs['skeleton_2'].shape[2] == 1
  with pytest.raises(errors.UserError,
                     match='num_persons=3: 1 to the 2 stored'):
    ip.EvalData(make_config(data_dir, num_persons=3), 'test', 180)


def test_missing_shards_name_the_build_command(tmp_path):
  config = make_config(str(tmp_path))
  with pytest.raises(errors.UserError) as e:
    ip.PretrainData(config, process_index=0, process_count=1)
  message = str(e.value)
  for part in ('synthetic/xsub', "'train'", str(tmp_path),
               'python -m data_prep.build --dataset=synthetic'):
    assert part in message


def _damaged_copy(data_dir, tmp_path, damage):
  """A copy of the built data_dir, `damage(version_dir)` applied; its root."""
  root = tmp_path / 'data'
  shutil.copytree(data_dir, root)
  damage(root / 'synthetic' / 'xsub' / '2.0.0')
  return root


def _truncate(path):
  os.truncate(path, os.path.getsize(path) // 2)


TRAIN_SHARD = 'synthetic-train.array_record-00000-of-00001'
DAMAGES = {  # name -> (damage, the file the error names)
    'truncated_shard': (lambda d: _truncate(d / TRAIN_SHARD), TRAIN_SHARD),
    'missing_shard': (lambda d: (d / TRAIN_SHARD).unlink(), TRAIN_SHARD),
    'missing_dataset_info': (lambda d: (d / 'dataset_info.json').unlink(),
                             'dataset_info.json'),
}


@pytest.mark.parametrize('case', sorted(DAMAGES))
def test_damaged_shards_name_the_file_and_the_rebuild(data, tmp_path, case):
  damage, file = DAMAGES[case]
  root = _damaged_copy(data[0], tmp_path, damage)
  with pytest.raises(errors.UserError) as e:
    ip.PretrainData(make_config(str(root)), process_index=0, process_count=1)
  message = str(e.value)
  assert f'{root}/synthetic/xsub/2.0.0/{file} ' in message, message
  assert message.endswith(
      f'delete {root}/synthetic/xsub/2.0.0 and rebuild it with `python -m '
      'data_prep.build --dataset=synthetic --protocols=xsub '
      f'--data_dir={root}`.')
  assert '\n' not in message


def test_shard_damaged_after_opening_is_named_when_read(data, tmp_path):
  root = _damaged_copy(data[0], tmp_path, lambda d: None)
  loader = ip.EvalData(make_config(str(root)), 'test', 60, process_index=0,
                       process_count=1)
  shard = root / 'synthetic' / 'xsub' / '2.0.0' / TRAIN_SHARD.replace(
      'train', 'test')
  _truncate(shard)
  with pytest.raises(errors.UserError, match=(
      f"shard {shard} of synthetic/xsub 'test' is missing, truncated or "
      'damaged')):
    next(iter(loader))


def test_damaged_metadata_outside_data_prep_is_one_sentence(data, tmp_path):
  # Where data_prep is not imported (the training CLI), TFDS reads the
  # builder from its files and raises on a missing dataset_info.json.
  root = _damaged_copy(data[0], tmp_path,
                       lambda d: (d / 'dataset_info.json').unlink())
  script = ('import sys; from configs import base; '
            'from byol_skeleton import errors; '
            'from byol_skeleton.data import pipeline; '
            'c = base.get_config(); c.data.data_dir = sys.argv[1]\n'
            'try: pipeline.open_source(c.data, "train")\n'
            'except errors.UserError as e: print(e)')
  result = subprocess.run(
      [sys.executable, '-c', script, str(root)], capture_output=True,
      text=True, cwd=pathlib.Path(__file__).resolve().parents[1], timeout=300,
      check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.startswith(
      f'{root}/synthetic/xsub/2.0.0/dataset_info.json is missing'), (
          result.stdout + result.stderr[-3000:])


def test_unknown_dataset_names_those_the_builder_knows(tmp_path):
  config = make_config(str(tmp_path))
  config.data.dataset = 'foo'
  with pytest.raises(errors.UserError) as e:
    ip.EvalData(config, 'test', 8, process_index=0, process_count=1)
  assert str(e.value) == (
      f"data.dataset='foo' has no shards in data_dir {tmp_path} and `python -m "
      'data_prep.build` builds only ntu120, ntu60, nw_ucla, pku_mmd2, '
      'synthetic and pose2d_* (from a 2D annotation pickle); set data.dataset '
      'to one of them.')
  config.data.dataset, config.data.split = 'ntu60', 'xset'
  with pytest.raises(errors.UserError, match=(
      "data.split='xset' is not a protocol of ntu60")):
    ip.EvalData(config, 'test', 8, process_index=0, process_count=1)


def test_batch_larger_than_dataset_is_refused(data):
  data_dir, _ = data
  with pytest.raises(errors.UserError, match='140 action sequences'):
    ip.PretrainData(make_config(data_dir, 256), process_index=0,
                    process_count=1)


def test_to_device_shards_the_batch_axis():
  mesh = Mesh(np.asarray(jax.devices()), (parallel.AXIS,))
  n = jax.device_count()
  batch = dict(x=np.arange(2 * n * 3, dtype=np.float32).reshape(2 * n, 3),
               mask=np.arange(2 * n) % 3 == 0)
  out = parallel.to_device(batch, mesh)
  for k, v in out.items():
    np.testing.assert_array_equal(np.asarray(v), batch[k])
    assert len(v.addressable_shards) == n
    for shard in v.addressable_shards:
      np.testing.assert_array_equal(shard.data, batch[k][shard.index])
      assert shard.data.shape[0] == 2


def test_class_names_are_the_stored_action_names_or_the_labels(data, tmp_path):
  """Shards store the action names; shards built without them (no
  label.labels.txt beside them) still load and name classes by number."""
  config = make_config(data[0])
  assert ip.class_names(config.data) == synthetic.ACTIONS
  root = _damaged_copy(data[0], tmp_path,
                       lambda d: (d / 'label.labels.txt').unlink())
  config = make_config(str(root))
  assert ip.class_names(config.data) == tuple(
      str(i) for i in range(len(synthetic.ACTIONS)))
  assert len(ip.EvalData(config, 'test', 30).labels) == 180
  config.data.num_classes = 60
  with pytest.raises(errors.UserError, match='has 10 classes but '
                     r'data.num_classes=60; set it to 10\.'):
    ip.class_names(config.data)
