"""Raw readers, preprocessing and builders against independent computations."""
import collections
import json
import os
import pathlib
import socket
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow_datasets as tfds

from byol_skeleton import errors
from byol_skeleton.data import pipeline
from byol_skeleton.data import skeletons
from byol_skeleton.data.raw import ntu as ntu_raw
from byol_skeleton.data.raw import nw_ucla as nw_ucla_raw
from byol_skeleton.data.raw import pku_mmd as pku_raw
from byol_skeleton.data.raw import preprocess
from byol_skeleton.data.raw import problems
from byol_skeleton.data.raw import recording
from data_prep import build
from data_prep import builders
from data_prep import ntu
from data_prep import nw_ucla
from data_prep import pku_mmd
from data_prep import report

NTU25 = skeletons.get_layout('ntu25')
KINECT20 = skeletons.get_layout('kinect_v1_20')


# ---------------------------------------------------------------- helpers


def _walk_ntu(path):
  """Frame count, frames per bodyID and first xyz per bodyID, by a bare walk."""
  rows = [line.split() for line in open(path).read().splitlines()]
  num_frames, at = int(rows[0][0]), 1
  frames_per_body, first_xyz = collections.Counter(), {}
  for _ in range(num_frames):
    num_bodies, at = int(rows[at][0]), at + 1
    for _ in range(num_bodies):
      body_id, num_joints = rows[at][0], int(rows[at + 1][0])
      first_xyz.setdefault(body_id, [float(v) for v in rows[at + 2][:3]])
      frames_per_body[body_id] += 1
      at += 2 + num_joints
  return num_frames, frames_per_body, first_xyz


def _standing(rng, num_frames, x0=0.0, motion=0.02):
  """(T, 25, 3) body taller than wide, at depth 3 m, moving by `motion`."""
  template = np.stack([rng.uniform(-0.2, 0.2, 25) + x0,
                       rng.uniform(-0.8, 0.8, 25),
                       rng.uniform(2.9, 3.1, 25)], axis=-1)
  return template + rng.normal(0, motion, (num_frames, 25, 3))


def _ntu_text(frames):
  """A .skeleton file; frames = [[(body_id, joints (V, 3)), ...], ...]."""
  out = [str(len(frames))]
  for bodies in frames:
    out.append(str(len(bodies)))
    for body_id, joints in bodies:
      out += [f'{body_id} 0 1 1 1 1 0 0.01 0.02 2', str(len(joints))]
      out += [' '.join(f'{v:.6f}' for v in xyz) + ' 1 2 3 4 1 0 0 0 2'
              for xyz in joints]
  return '\n'.join(out) + '\n'


def _stored_names(data_dir, dataset, protocol, num_classes):
  """The class names the built shards store, as the pipeline reads them."""
  return pipeline.class_names(types.SimpleNamespace(
      dataset=dataset, split=protocol, data_dir=str(data_dir),
      num_classes=num_classes))


def _write(path, text):
  path.write_text(text)
  return path


def _pairwise(x):
  """(..., V, V) distances between the joints of each skeleton."""
  return np.linalg.norm(x[..., :, None, :] - x[..., None, :, :], axis=-1)


def _flat(x):
  """(T, M, V, 3) -> (T, M * V, 3): all joints of a frame together."""
  return x.reshape(len(x), -1, 3)


def _assert_canonical(out, layout, main=0):
  first = out[0, main]
  spine = first[layout.neck] - first[layout.hip]
  shoulders = first[layout.right_shoulder] - first[layout.left_shoulder]
  np.testing.assert_allclose(first[layout.hip], 0, atol=1e-6)
  np.testing.assert_allclose(spine / np.linalg.norm(spine), [0, 1, 0],
                             atol=1e-6)
  assert abs(shoulders[2]) < 1e-6 and shoulders[0] > 0


# ---------------------------------------------------------- preprocessing


def test_preprocess_drops_empty_frames_keeps_shape_and_absent_zeros():
  rng = np.random.default_rng(0)
  raw = np.stack([_standing(rng, 20), _standing(rng, 20, x0=1.0)], axis=1)
  raw[[3, 11]] = 0  # empty frames
  raw[5:9, 1] = 0  # second person absent
  out = preprocess.preprocess_sequence(raw, NTU25)
  kept = np.delete(raw, [3, 11], axis=0)
  assert out.shape == (18, 2, 25, 3) and out.dtype == np.float32
  np.testing.assert_array_equal(out[4:8, 1], 0)  # raw frames 5-8
  # A rigid motion: every distance between joints of a skeleton and between
  # the two persons, bone lengths included, is unchanged.
  present = np.ones(len(kept), bool)
  present[4:8] = False
  np.testing.assert_allclose(_pairwise(_flat(out[present])),
                             _pairwise(_flat(kept[present])), atol=2e-5)
  bones = np.array(NTU25.bone_pairs)
  np.testing.assert_allclose(
      np.linalg.norm(out[:, 0, bones[:, 0]] - out[:, 0, bones[:, 1]], axis=-1),
      np.linalg.norm(kept[:, 0, bones[:, 0]] - kept[:, 0, bones[:, 1]],
                     axis=-1), atol=2e-5)
  _assert_canonical(out, NTU25)


def test_preprocess_is_a_proper_rotation_not_a_mirror():
  rng = np.random.default_rng(1)
  raw = _standing(rng, 5)[:, None]
  out = preprocess.preprocess_sequence(raw, NTU25)
  # Signed volume of three joint-difference vectors: a mirror flips its sign.
  def vol(x):
    return np.linalg.det(x[0, 0, [1, 4, 8]] - x[0, 0, [0]])
  assert np.sign(vol(out)) == np.sign(vol(raw))
  np.testing.assert_allclose(vol(out), vol(raw), rtol=1e-4)


def test_preprocess_main_body_is_first_present_person():
  rng = np.random.default_rng(2)
  raw = np.stack([_standing(rng, 6), _standing(rng, 6, x0=1.0)], axis=1)
  raw[:2, 0] = 0  # person 0 enters late
  out = preprocess.preprocess_sequence(raw, NTU25)
  _assert_canonical(out, NTU25, main=1)
  np.testing.assert_array_equal(out[:2, 0], 0)


def test_preprocess_errors():
  with pytest.raises(ValueError, match='no non-empty frame'):
    preprocess.preprocess_sequence(np.zeros((4, 2, 25, 3)), NTU25)
  with pytest.raises(ValueError, match=r'shape \(T, M, 20, 3\)'):
    preprocess.preprocess_sequence(np.ones((4, 1, 25, 3)), KINECT20)
  raw = np.ones((4, 1, 25, 3))
  raw[2, 0, 3, 1] = np.nan
  with pytest.raises(ValueError, match='non-finite'):
    preprocess.preprocess_sequence(raw, NTU25)
  with pytest.raises(report.SkipSample) as info:
    preprocess.canonical_or_skip(np.ones((3, 1, 25, 3)), NTU25, min_frames=4)
  assert info.value.reason == report.TOO_FEW_FRAMES


# ---------------------------------------------------------------- NTU


def test_ntu_samples_parse_to_independently_counted_frames_and_bodies(
    shared_data):
  paths = sorted((shared_data / 'ntu_samples').glob('*.skeleton'))
  assert len(paths) == 12
  for path in paths:
    num_frames, frames_per_body, first_xyz = _walk_ntu(path)
    recording = ntu_raw.read_skeleton_file(path)
    assert recording.num_frames == num_frames, path.name
    assert [len(t.frames) for t in recording.tracks] == list(
        frames_per_body.values()), path.name
    np.testing.assert_allclose([t.joints[0, 0] for t in recording.tracks],
                               list(first_xyz.values()), atol=1e-6)

    loaded = ntu.load_example(str(path))
    (key, example), = loaded.examples
    skeleton = example['skeleton']
    assert key == example['sample_name'] == path.stem
    assert skeleton.shape == (num_frames, 2, 25, 3)  # no empty frame here
    assert np.any(skeleton[:, 1]) == (len(frames_per_body) == 2)
    assert example['label'] == int(path.stem[-3:]) - 1
    _assert_canonical(skeleton, NTU25)


def test_ntu_names_and_splits():
  name = ntu.parse_name('/x/S017C003P020R002A054.skeleton')
  assert (name.setup, name.camera, name.performer, name.replication,
          name.action) == (17, 3, 20, 2, 54)
  assert name.sequence_key == 'S017P020R002A054'
  for bad in ('S17C003P020R002A054.skeleton', 'S017C003P020R002A054.txt',
              'readme.skeleton'):
    with pytest.raises(ValueError, match='unknown NTU file name'):
      ntu.parse_name(bad)
  assert len(ntu.NTU60_XSUB_TRAIN_SUBJECTS) == 20
  assert len(ntu.NTU120_XSUB_TRAIN_SUBJECTS) == 53
  # NTU-120's cross-subject training set extends NTU-60's (same people).
  assert ntu.NTU60_XSUB_TRAIN_SUBJECTS < ntu.NTU120_XSUB_TRAIN_SUBJECTS
  def split(name, dataset, protocol):
    return ntu.split_of(ntu.parse_name(name), dataset, protocol)
  assert split('S001C001P038R001A001', 'ntu60', 'xsub') == 'train'
  assert split('S001C001P039R001A001', 'ntu60', 'xsub') == 'test'
  assert split('S001C001P001R001A001', 'ntu60', 'xview') == 'test'
  assert split('S001C002P003R001A001', 'ntu60', 'xview') == 'train'
  assert split('S018C001P103R001A100', 'ntu120', 'xsub') == 'train'
  assert split('S018C001P104R001A100', 'ntu120', 'xsub') == 'test'
  assert split('S018C001P104R001A100', 'ntu120', 'xset') == 'train'
  assert split('S019C001P001R001A100', 'ntu120', 'xset') == 'test'
  assert not ntu.in_dataset(ntu.parse_name('S018C001P001R001A061'), 'ntu60')


def test_ntu_body_selection(tmp_path):
  rng = np.random.default_rng(3)
  t = 40
  active = _standing(rng, t, motion=0.05)
  calm = _standing(rng, t, x0=1.0, motion=0.01)
  calmer = _standing(rng, t, x0=-1.0, motion=0.005)
  wide = _standing(rng, t, x0=2.0)[..., [1, 0, 2]]  # x/y swapped: lying flat
  short = _standing(rng, 5, x0=3.0)
  frames = [[('11', calm[f]), ('12', wide[f]), ('13', active[f])]
            + ([('14', short[f])] if f < 5 else []) for f in range(t)]
  recording = ntu_raw.read_skeleton_file(
      _write(tmp_path / 'S001C001P001R001A001.skeleton', _ntu_text(frames)))
  skeleton, dropped = ntu_raw.select_bodies(recording)
  np.testing.assert_allclose(skeleton[:, 0], active, atol=1e-5)  # most motion
  np.testing.assert_allclose(skeleton[:, 1], calm, atol=1e-5)
  assert dropped == {ntu_raw.DROP_SHORT: 1, ntu_raw.DROP_SPREAD: 1}

  # A bodyID change (no overlap) continues a slot; a third body at once is
  # surplus.
  frames = [[('21', active[f]) if f < 20 else ('22', active[f]),
             ('23', calm[f]), ('24', calmer[f])] for f in range(t)]
  recording = ntu_raw.read_skeleton_file(
      _write(tmp_path / 'S001C001P001R001A002.skeleton', _ntu_text(frames)))
  skeleton, dropped = ntu_raw.select_bodies(recording)
  np.testing.assert_allclose(skeleton[:, 0], active, atol=1e-5)
  np.testing.assert_allclose(skeleton[:, 1], calm, atol=1e-5)
  assert dropped == {ntu_raw.DROP_SURPLUS: 1}


def _good_frames(num_frames=15, num_joints=25):
  rng = np.random.default_rng(4)
  body = _standing(rng, num_frames)[:, :num_joints]
  return [[('7', body[f])] for f in range(num_frames)]


def _truncated(tmp):
  lines = _ntu_text(_good_frames()).splitlines()
  return _write(tmp / 'S001C001P001R001A001.skeleton',
                '\n'.join(lines[:3 + 10]) + '\n')


def _nan(tmp):
  text = _ntu_text(_good_frames())
  lines = text.splitlines()
  fields = lines[20].split()
  fields[1] = 'nan'
  lines[20] = ' '.join(fields)
  return _write(tmp / 'S001C001P001R001A001.skeleton', '\n'.join(lines))


# (file maker, error pattern). Line numbers: 1 frame count, then per frame
# 1 body count, 1 body info, 1 joint count, 25 joints (28 lines per frame).
NTU_MALFORMED = {
    'truncated': (_truncated, r':14: expected a joint line of 12 numbers, '
                  'got end of file'),
    'nan': (_nan, r':21: non-finite joint coordinate'),
    'wrong_joint_count': (
        lambda tmp: _write(tmp / 'S001C001P001R001A001.skeleton', _ntu_text(
            _good_frames(num_joints=24))), r':4: expected 25 joints, got 24'),
    'empty': (lambda tmp: _write(tmp / 'S001C001P001R001A001.skeleton', ''),
              r':1: expected the frame count, got end of file'),
    'short_joint_line': (
        lambda tmp: _write(tmp / 'S001C001P001R001A001.skeleton', _ntu_text(
            _good_frames()).replace(' 1 2 3 4 1 0 0 0 2\n', ' 1 2 3\n', 1)),
        r':5: expected a joint line of 12 numbers \(12 fields\), got 6'),
    'trailing_data': (
        lambda tmp: _write(tmp / 'S001C001P001R001A001.skeleton',
                           _ntu_text(_good_frames()) + '1\n'),
        r':422: expected end of file after 15 frames'),
}


@pytest.mark.parametrize('case', sorted(NTU_MALFORMED))
def test_ntu_malformed_files_name_file_line_and_expectation(tmp_path, case):
  make, pattern = NTU_MALFORMED[case]
  path = make(tmp_path)
  with pytest.raises(report.MalformedFile,
                     match=f'S001C001P001R001A001.skeleton{pattern}'):
    ntu_raw.read_skeleton_file(path)
  # In a build the same file is counted, not fatal.
  loaded = report.load_safely(ntu.load_example, ('x', str(path)))
  assert not loaded.examples
  assert loaded.skips[0][0] == report.UNREADABLE


def test_ntu_unusable_files_are_counted_as_skips(tmp_path):
  no_body = _write(tmp_path / 'S001C001P001R001A001.skeleton',
                   _ntu_text([[], []]))
  short = _write(tmp_path / 'S001C001P001R001A002.skeleton',
                 _ntu_text(_good_frames(num_frames=ntu_raw.MIN_FRAMES - 1)))
  unknown = _write(tmp_path / 'S001_C001.skeleton', _ntu_text(_good_frames()))
  for path, reason in ((no_body, report.NO_BODY),
                       (short, report.TOO_FEW_FRAMES)):
    loaded = report.load_safely(ntu.load_example, ('x', str(path)))
    assert [s[0] for s in loaded.skips] == [reason] and not loaded.examples
  with pytest.raises(ValueError, match='unknown NTU file name'):
    ntu.load_example(str(unknown))


def test_ntu_missing_list(tmp_path):
  path = _write(tmp_path / 'list.txt', 'header line\nsecond header\n\n'
                'S001C002P005R002A008\nS001C002P006R001A008\n')
  assert ntu.read_missing_list(path) == {'S001C002P005R002A008',
                                         'S001C002P006R001A008'}
  with pytest.raises(ValueError, match='no sample names'):
    ntu.read_missing_list(_write(tmp_path / 'bad.txt', 'nothing\n'))


def test_ntu60_build_on_real_samples(shared_data, tmp_path):
  manual = tmp_path / 'raw' / 'nturgb+d_skeletons'
  manual.mkdir(parents=True)
  samples = sorted((shared_data / 'ntu_samples').glob('*.skeleton'))
  for path in samples:
    os.symlink(path, manual / path.name)
  flagged = samples[0].stem
  _write(tmp_path / 'raw' / 'ntu60.txt', f'header\nheader\n\n{flagged}\n')
  data_dir = tmp_path / 'tfds'
  reports = build.build('ntu60', str(tmp_path / 'raw'), str(data_dir),
                        num_workers=2)
  assert sorted(reports) == ['xsub', 'xview']
  names = [p.stem for p in samples[1:]]
  expected = {
      # Performers here: 1, 3, 8, 15, 20; of these 1, 8, 15 train in xsub.
      'xsub': {n for n in names if int(n[9:12]) in (1, 8, 15)},
      'xview': {n for n in names if int(n[5:8]) in (2, 3)},
  }
  for protocol, train_names in expected.items():
    source = tfds.data_source(f'ntu60/{protocol}', data_dir=str(data_dir))
    got = {split: {source[split][i]['sample_name'].decode()
                   for i in range(len(source[split]))}
           for split in ('train', 'test')}
    assert got == {'train': train_names, 'test': set(names) - train_names}
    assert f'{report.MISSING_LIST}: 1' in reports[protocol]
    example = source['test'][0]
    name = ntu.parse_name(example['sample_name'].decode())
    assert example['sequence_key'].decode() == name.sequence_key
    assert (example['label'], example['view'], example['subject'],
            example['setup']) == (name.action - 1, name.camera,
                                  name.performer, name.setup)
    assert example['skeleton'].shape[1:] == (2, 25, 3)
    stored = _stored_names(data_dir, 'ntu60', protocol, 60)
    assert stored[:2] == ('drink water', 'eat meal/snack')
    assert stored[59] == 'walking apart from each other'


# ---------------------------------------------------------------- NW-UCLA


def test_nw_ucla_build_gives_standard_counts(shared_data, tmp_path):
  data_dir = str(tmp_path / 'tfds')
  reports = build.build('nw_ucla', str(shared_data / 'nw_ucla'), data_dir,
                        num_workers=2)
  assert 'examples: test 464, train 1020' in reports['xview']
  source = tfds.data_source('nw_ucla/xview', data_dir=data_dir)
  assert (len(source['train']), len(source['test'])) == (1020, 464)
  views = {split: {source[split][i]['view'] for i in range(0, 400, 7)}
           for split in ('train', 'test')}
  assert views == {'train': {1, 2}, 'test': {3}}
  example = source['test'][5]
  name = example['sample_name'].decode()
  with open(shared_data / 'nw_ucla' / 'all_sqe' / f'{name}.json') as f:
    raw = json.load(f)
  expected = preprocess.preprocess_sequence(
      np.array(raw['skeletons'], np.float32)[:, None], KINECT20)
  np.testing.assert_array_equal(example['skeleton'], expected)
  assert example['label'] == raw['label'] - 1
  assert example['sequence_key'].decode() == name[:-4]
  # a01 (label 1) .. a12 (label 10)
  names = _stored_names(data_dir, 'nw_ucla', 'xview', 10)
  assert (names[0], names[9]) == ('pick up with one hand', 'carry')


def _ucla_json(tmp, name, record):
  return _write(tmp / f'{name}.json', json.dumps(record))


def test_nw_ucla_reader_errors_and_skips(tmp_path):
  good = np.random.default_rng(5).normal(size=(3, 20, 3)).tolist()
  path = _ucla_json(tmp_path, 'a01_s02_e03_v03',
                    {'skeletons': good, 'label': 10})
  skeleton, label = nw_ucla_raw.read_json(path)
  assert skeleton.shape == (3, 1, 20, 3) and label == 9
  cases = {
      'wrong_joints': ({'skeletons': [[[0, 0, 0]] * 25], 'label': 1},
                       r'shape \[T\]\[20\]\[3\], got \(1, 25, 3\)'),
      'bad_label': ({'skeletons': good, 'label': 11},
                    'expected "label" an integer in 1..10'),
      'no_key': ({'skeleton': good}, 'expected a JSON object'),
      'nan': ({'skeletons': [[[float('nan'), 0, 0]] * 20], 'label': 1},
              'non-finite'),
  }
  for case, (record, pattern) in cases.items():
    with pytest.raises(report.MalformedFile, match=pattern):
      nw_ucla_raw.read_json(_ucla_json(tmp_path, f'a01_s01_e01_v01_{case}', record))
  with pytest.raises(report.MalformedFile, match=r'x.json:1: invalid JSON'):
    nw_ucla_raw.read_json(_write(tmp_path / 'x.json', '{"skeletons": [[['))
  empty = _ucla_json(tmp_path, 'a01_s01_e01_v01', {'skeletons': [], 'label': 1})
  loaded = report.load_safely(nw_ucla.load_example, ('x', str(empty)))
  assert [s[0] for s in loaded.skips] == [report.NO_BODY]
  with pytest.raises(ValueError, match='unknown NW-UCLA file name'):
    nw_ucla.parse_name('a1_s01_e01_v01.json')


# ---------------------------------------------------------------- PKU-MMD II


def _pku_video(rng, num_frames, two_persons):
  frames = np.zeros((num_frames, 2, 25, 3))
  frames[:, 0] = _standing(rng, num_frames)
  if two_persons:
    frames[:, 1] = _standing(rng, num_frames, x0=1.0)
  return frames


def _write_pku(root, videos, split):
  """videos: name -> (frames (T, 2, 25, 3), [(action, start, end)])."""
  (root / 'skeleton').mkdir(parents=True)
  (root / 'label').mkdir()
  for name, (frames, instances) in videos.items():
    _write(root / 'skeleton' / f'{name}.txt', '\n'.join(
        ' '.join(f'{v:.6f}' for v in frame.ravel()) for frame in frames) + '\n')
    _write(root / 'label' / f'{name}.txt', ''.join(
        f'{a},{s},{e},1\n' for a, s, e in instances))
  _write(root / 'cross_subject_v2.txt',
         'Training videos: \n' + ', '.join(split['train']) + '\n'
         'Validataion videos: \n' + ', '.join(split['test']) + '\n')


def test_pku_reader_on_tiny_files(tmp_path):
  rng = np.random.default_rng(6)
  frames = _pku_video(rng, 30, two_persons=True)
  frames[12:14, 1] = 0
  _write_pku(tmp_path, {'A03N07-M': (frames, [(5, 20, 30), (9, 0, 10),
                                              (5, 2, 6)])},
             {'train': ['A03N07-M'], 'test': ['A03N07-R']})
  np.testing.assert_allclose(
      pku_raw.read_skeleton_txt(tmp_path / 'skeleton' / 'A03N07-M.txt'),
      frames, atol=1e-6)
  assert pku_mmd.read_labels(tmp_path / 'label' / 'A03N07-M.txt') == [
      (5, 20, 30), (9, 0, 10), (5, 2, 6)]
  assert pku_mmd.read_split_file(tmp_path / 'cross_subject_v2.txt') == {
      'train': {'A03N07-M'}, 'test': {'A03N07-R'}}
  loaded = pku_mmd.load_video(
      (str(tmp_path / 'skeleton' / 'A03N07-M.txt'),
       str(tmp_path / 'label' / 'A03N07-M.txt')), {5: 0, 9: 1})
  examples = dict(loaded.examples)
  assert sorted(examples) == ['A03N07-M_000', 'A03N07-M_001', 'A03N07-M_002']
  first, second = examples['A03N07-M_002'], examples['A03N07-M_000']
  assert first['skeleton'].shape == (4, 2, 25, 3)
  assert second['skeleton'].shape == (10, 2, 25, 3)
  # The k-th instance of an action, by start frame, keys it across views.
  assert (first['sequence_key'], second['sequence_key']) == (
      'A03N07_A05_0', 'A03N07_A05_1')
  assert (first['label'], first['view'], first['subject'], first['setup']) == (
      0, 2, 7, 3)
  _assert_canonical(examples['A03N07-M_001']['skeleton'], NTU25)


def test_pku_malformed(tmp_path):
  bad = _write(tmp_path / 'A01N01-L.txt', '0 ' * 150 + '\n' + '0 ' * 149)
  with pytest.raises(report.MalformedFile,
                     match=r'A01N01-L.txt:2: expected 150 numbers'):
    pku_raw.read_skeleton_txt(bad)
  with pytest.raises(report.MalformedFile, match=r'lab.txt:2: expected'):
    pku_mmd.read_labels(_write(tmp_path / 'lab.txt', '1,0,5,1\n3,9,4,1\n'))
  one_line = _write(tmp_path / 'split1.txt', 'Training videos: A01N01-L,'
                    'A01N02-L\nValidataion videos: A01N03-R.txt\n')
  assert pku_mmd.read_split_file(one_line) == {
      'train': {'A01N01-L', 'A01N02-L'}, 'test': {'A01N03-R'}}
  with pytest.raises(report.MalformedFile, match='no test video names'):
    pku_mmd.read_split_file(_write(tmp_path / 'split.txt',
                                   'Training videos:\nA01N01-L\n'))
  with pytest.raises(ValueError, match='unknown PKU-MMD II file name'):
    pku_mmd.parse_name('A01N01-X.txt')


def test_pku_mmd2_build_on_tiny_files(tmp_path):
  rng = np.random.default_rng(7)
  # 41 action ids with gaps, as in the release; 2 frames per instance.
  ids = [i for i in range(1, 52) if i % 5][:41]
  instances = [(a, 2 * i, 2 * i + 2) for i, a in enumerate(ids)]
  videos = {name: (_pku_video(rng, 2 * len(ids), two_persons=i == 1),
                   instances)
            for i, name in enumerate(('A01N01-L', 'A01N01-M', 'A02N05-R',
                                      'A02N06-R'))}
  _write_pku(tmp_path / 'raw', videos,
             {'train': ['A01N01-L', 'A01N01-M'], 'test': ['A02N05-R']})
  reports = build.build('pku_mmd2', str(tmp_path / 'raw'),
                        str(tmp_path / 'tfds'), num_workers=1)
  assert 'examples: test 41, train 82' in reports['xsub']
  assert f'{report.NOT_IN_SPLIT}: 1' in reports['xsub']
  source = tfds.data_source('pku_mmd2/xsub', data_dir=str(tmp_path / 'tfds'))
  labels = sorted(source['test'][i]['label'] for i in range(41))
  assert labels == list(range(41))
  # Label i is the i-th smallest action id, named from the action list.
  names = _stored_names(tmp_path / 'tfds', 'pku_mmd2', 'xsub', 41)
  assert names == tuple(pku_mmd.ACTION_NAMES[a] for a in ids)
  assert (names[0], names[-1]) == ('bow', 'writing')


# ------------------------------------------- single recordings (predict)


def test_recording_read_is_the_builders_example(shared_data):
  """A raw file read alone (as --mode=predict does) is its builder's stored
  example: the same body selection, minimum length and preprocessing."""
  for path in sorted((shared_data / 'ntu_samples').glob('*.skeleton'))[:4]:
    loaded = ntu.load_example(str(path))
    if loaded.examples:
      np.testing.assert_array_equal(recording.read(path, NTU25),
                                    loaded.examples[0][1]['skeleton'])
    else:
      ((reason, _, message),) = loaded.skips
      with pytest.raises(problems.SkipSample, match=message) as e:
        recording.read(path, NTU25)
      assert e.value.reason == reason
  ucla = shared_data / 'nw_ucla' / 'all_sqe' / 'a01_s01_e00_v01.json'
  np.testing.assert_array_equal(
      recording.read(ucla, KINECT20),
      nw_ucla.load_example(str(ucla)).examples[0][1]['skeleton'])
  with pytest.raises(problems.SkipSample,
                     match=r"a \.json file has 20 joints \('kinect_v1_20'\), "
                     r"but the config's layout 'ntu25' has 25") as e:
    recording.read(ucla, NTU25)
  assert e.value.reason == problems.WRONG_JOINTS


def test_recording_read_of_pku_videos_and_arrays(tmp_path):
  rng = np.random.default_rng(3)
  video = _pku_video(rng, 9, two_persons=True)
  _write_pku(tmp_path / 'pku', {'A01N01-L': (video, [(1, 0, 9)])},
             {'train': ['A01N01-L'], 'test': ['A01N01-R']})
  np.testing.assert_allclose(
      recording.read(tmp_path / 'pku' / 'skeleton' / 'A01N01-L.txt', NTU25),
      preprocess.preprocess_sequence(video, NTU25), atol=1e-5)
  # Arrays are camera-frame skeletons of the given layout, preprocessed.
  raw = _pku_video(rng, 7, two_persons=False)[:, :1].astype(np.float32)
  expected = preprocess.preprocess_sequence(raw, NTU25)
  np.save(tmp_path / 'a.npy', raw)
  np.savez(tmp_path / 'one.npz', anything=raw)
  np.savez(tmp_path / 'named.npz', skeleton=raw, other=raw[:1])
  for name in ('a.npy', 'one.npz', 'named.npz'):
    np.testing.assert_array_equal(recording.read(tmp_path / name, NTU25),
                                  expected)
  np.savez(tmp_path / 'two.npz', a=raw, b=raw)
  np.save(tmp_path / 'flat.npy', raw.reshape(7, -1))
  _write(tmp_path / 'clip.mp4', 'video')
  for name, message in (
      ('two.npz', r'expected one array, or one named "skeleton", got '
       r"\['a', 'b'\]"),
      ('flat.npy', r'expected an array of shape \(T, M, V, 3\) \(frames, '
       r'persons, joints, xyz\), got shape \(7, 75\)'),
      ('clip.mp4', r"unknown recording format '\.mp4'; expected one of "
       r'\.skeleton, \.json, \.txt, \.npy, \.npz')):
    with pytest.raises(problems.MalformedFile, match=f'{name}: {message}'):
      recording.read(tmp_path / name, NTU25)
  assert recording.list_files([str(tmp_path)]) == sorted(
      tmp_path / n for n in ('a.npy', 'flat.npy', 'named.npz', 'one.npz',
                             'pku/label/A01N01-L.txt',
                             'pku/skeleton/A01N01-L.txt', 'two.npz',
                             'pku/cross_subject_v2.txt'))


# ---------------------------------------------------------------- CLI


def test_build_rejects_bad_arguments(tmp_path):
  with pytest.raises(errors.UserError, match=r"unknown protocols \['xset'\]"):
    build.build('ntu60', str(tmp_path), protocols=['xset'])
  with pytest.raises(errors.UserError,
                     match='--manual_dir must be an existing'):
    build.build('nw_ucla', str(tmp_path / 'absent'))
  with pytest.raises(errors.UserError, match='--missing_list applies to ntu'):
    build.build('nw_ucla', str(tmp_path), missing_list='x.txt')


def test_report_format():
  r = report.BuildReport()
  r.add('train', report.Loaded(
      examples=[('a', {})], skips=[(report.NO_BODY, 'b', 'why')],
      dropped_bodies=collections.Counter({ntu_raw.DROP_SHORT: 2})))
  r.add_skip(report.MISSING_LIST, 'c')
  text = r.format()
  assert 'examples: train 1' in text and 'skipped: 2' in text
  assert f'{report.NO_BODY}: 1\n    b: why' in text
  assert f'bodies dropped: 2\n  {ntu_raw.DROP_SHORT}: 2' in text


# ------------------------------------------------------------ bad raw input


def _ntu_files(root, *names):
  """Valid 15-frame .skeleton files `root/NAME.skeleton`; returns root."""
  root.mkdir(parents=True, exist_ok=True)
  for name in names:
    _write(root / f'{name}.skeleton', _ntu_text(_good_frames()))
  return root


def _cli(*args):
  """`python -m data_prep.build ARGS`: (exit code, stderr lines)."""
  result = subprocess.run(
      [sys.executable, '-m', 'data_prep.build', *args], capture_output=True,
      text=True, cwd=pathlib.Path(__file__).resolve().parents[1], timeout=300,
      check=False)
  return result.returncode, result.stderr.strip().splitlines()


def test_empty_split_builds_the_other_protocols_and_names_it(tmp_path):
  # Camera 1 only: xview has no training recording; xsub has both splits.
  raw = _ntu_files(tmp_path / 'raw', 'S001C001P001R001A001',
                   'S001C001P003R001A002')
  data_dir = tmp_path / 'tfds'
  with pytest.raises(build.IncompleteBuild) as info:
    build.build('ntu60', str(raw), str(data_dir), num_workers=1)
  assert str(info.value) == ('1 of 2 protocols not built: xview/train: no '
                             'recordings from cameras 2, 3')
  reports = info.value.reports
  assert 'train: 1 examples' in reports['xsub']
  assert reports['xview'].startswith(
      'not built: xview/train: no recordings from cameras 2, 3')
  source = tfds.data_source('ntu60/xsub', data_dir=str(data_dir))
  assert (len(source['train']), len(source['test'])) == (1, 1)
  # The CLI prints the reports, then the error as one sentence; exit code 2.
  code, stderr = _cli('--dataset=ntu60', f'--manual_dir={raw}',
                      f'--data_dir={data_dir}', '--num_workers=1')
  assert code == 2
  assert stderr[-1] == ('byol-skeleton: error: 1 of 2 protocols not built: '
                        'xview/train: no recordings from cameras 2, 3.')


def test_split_whose_every_file_is_skipped_is_named(tmp_path):
  raw = _ntu_files(tmp_path / 'raw', 'S001C001P001R001A001',
                   'S001C001P003R001A002')
  _write(raw / 'S001C002P001R001A003.skeleton', '')  # xview's only train file
  with pytest.raises(build.IncompleteBuild) as info:
    build.build('ntu60', str(raw), str(tmp_path / 'tfds'), num_workers=1)
  assert str(info.value) == ('1 of 2 protocols not built: xview/train: all 1 '
                             'recordings were skipped (reasons in the report)')
  assert f'{report.UNREADABLE}: 1' in info.value.reports['xview']


@pytest.mark.parametrize('dataset', ['ntu60', 'nw_ucla', 'pku_mmd2'])
def test_manual_dir_without_raw_files_is_one_sentence(tmp_path, dataset):
  raw = tmp_path / 'raw'
  raw.mkdir()
  _write(raw / 'readme.md', 'not a raw file\n')
  expected = {
      'ntu60': f'--manual_dir {raw} has no .skeleton file at any depth; '
               'expected SsssCcccPpppRrrrAaaa.skeleton files from',
      'nw_ucla': f'--manual_dir {raw} has no .json file at any depth; '
                 'expected the aAA_sSS_eEE_vVV.json files',
      'pku_mmd2': f'--manual_dir {raw} has no skeleton folder: expected '
                  'one of skeleton, skeletons, Skeleton_v2.',
  }[dataset]
  with pytest.raises(errors.UserError) as info:
    build.build(dataset, str(raw), str(tmp_path / 'tfds'), num_workers=1)
  message = str(info.value)
  assert message.startswith(expected) and '\n' not in message
  if dataset == 'pku_mmd2':
    return
  # Raw files none of which has a sample's name: named as such.
  _write(raw / 'x.skeleton', '')
  _write(raw / 'x.json', '{}')
  with pytest.raises(errors.UserError, match=(
      f'no usable recording in {raw} \\(skipped: {report.BAD_NAME}: 1\\)')):
    build.build(dataset, str(raw), str(tmp_path / 'tfds'), num_workers=1)


def test_cli_errors_are_one_sentence(tmp_path):
  code, stderr = _cli('--dataset=foo')
  assert code == 2
  assert stderr == ['byol-skeleton: error: flag --dataset=foo: value should be '
                    'one of <ntu120|ntu60|nw_ucla|pku_mmd2|pose2d|synthetic>.']
  # TFDS logs a line or two first; then one sentence, no help, no traceback.
  code, stderr = _cli('--dataset=ntu60', f'--manual_dir={tmp_path}',
                      f'--data_dir={tmp_path / "tfds"}')
  assert code == 2
  assert stderr[-1].startswith(
      f'byol-skeleton: error: --manual_dir {tmp_path} has no .skeleton file')
  assert not [line for line in stderr
              if line.startswith(('Traceback', 'flags:', 'Request the'))]


def test_pipeline_knows_the_datasets_and_protocols_the_builder_builds():
  assert pipeline.BUILDABLE == {
      name: tuple(c.name for c in build.builder_class(name).BUILDER_CONFIGS)
      for name in build.DATASETS}


def test_odd_names_and_duplicates_are_skipped_and_counted(tmp_path):
  raw = _ntu_files(tmp_path / 'raw' / 'a', 'S001C001P001R001A001',
                   'S001C001P003R001A002')
  _ntu_files(tmp_path / 'raw' / 'b', 'S001C001P001R001A001')  # unpacked twice
  _write(raw / 'S001C001P001R001A001 (copy).skeleton',
         _ntu_text(_good_frames()))
  reports = build.build('ntu60', str(tmp_path / 'raw'),
                        str(tmp_path / 'tfds'), protocols=['xsub'],
                        num_workers=1)
  text = reports['xsub']
  assert 'examples: test 1, train 1' in text
  assert (f'{report.BAD_NAME}: 1\n    a/S001C001P001R001A001 (copy).skeleton: '
          "unknown NTU file name 'S001C001P001R001A001 (copy)'") in text
  assert (f'{report.DUPLICATE}: 1\n    b/S001C001P001R001A001.skeleton: '
          'S001C001P001R001A001 is also a/S001C001P001R001A001.skeleton, '
          'kept') in text
  # NW-UCLA: a stray JSON beside the samples is counted the same way.
  ucla = tmp_path / 'ucla'
  ucla.mkdir()
  record = {'skeletons': [[[0.0, 0.0, 0.0]] * 20], 'label': 1}
  for name in ('a01_s01_e01_v01', 'a01_s01_e01_v03', 'meta'):
    _ucla_json(ucla, name, record)
  builder = builders.NwUcla(config='xview', data_dir=str(tmp_path / 'tfds'))
  items = builder._list_items(ucla)  # pylint: disable=protected-access
  assert [len(items[s]) for s in ('train', 'test')] == [1, 1]
  assert builder.report.skipped == {report.BAD_NAME: 1}


def test_a_second_build_into_one_data_dir_is_refused(tmp_path):
  data_dir = tmp_path / 'tfds'
  with build.build_lock(data_dir, 'synthetic'):
    with pytest.raises(errors.UserError) as info:
      build.build('synthetic', data_dir=str(data_dir))
  message = str(info.value)
  assert message.startswith(f'data_dir {data_dir} is in use by another '
                            'synthetic build')
  assert f'PID {os.getpid()} on {socket.gethostname()}, since' in message
  assert not (data_dir / 'synthetic').exists()  # refused before any work
  build.build_lock(data_dir, 'synthetic').release()  # released: free again
  build.build_lock(data_dir, 'ntu60').release()  # other datasets: their own


def test_nw_ucla_bool_label_is_skipped_and_all_skips_are_written(tmp_path):
  record = {'skeletons': np.random.default_rng(8).normal(
      size=(3, 20, 3)).tolist(), 'label': 1}
  raw = tmp_path / 'raw'
  raw.mkdir()
  with pytest.raises(report.MalformedFile, match='got True'):
    nw_ucla_raw.read_json(_ucla_json(tmp_path, 'x', dict(record, label=True)))
  _ucla_json(raw, 'a01_s01_e01_v01', record)
  _ucla_json(raw, 'a01_s01_e01_v03', record)
  _ucla_json(raw, 'a01_s01_e01_v02', dict(record, label=True))
  strays = [f'stray{i}' for i in range(7)]  # more than the report prints
  for name in strays:
    _ucla_json(raw, name, record)
  data_dir = tmp_path / 'tfds'
  text = build.build('nw_ucla', str(raw), str(data_dir), num_workers=1)[
      'xview']
  assert 'examples: test 1, train 1' in text
  assert f'{report.UNREADABLE}: 1' in text and f'{report.BAD_NAME}: 7' in text
  path = data_dir / 'nw_ucla' / 'xview' / '1.0.0' / 'skipped.json'
  assert f'every skipped sample, with its reason: {path}' in text
  skipped = json.loads(path.read_text())
  assert sorted(s['sample'] for s in skipped[report.BAD_NAME]) == [
      f'{name}.json' for name in strays]
  (unreadable,) = skipped[report.UNREADABLE]
  assert unreadable['sample'] == 'a01_s01_e01_v02'
  assert 'expected "label" an integer in 1..10, got True' in (
      unreadable['message'])
