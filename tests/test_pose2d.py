"""2D skeletons from pose estimators: the annotation pickle, its preprocessing,
the build and its skips, the synthetic pickle, and the CLI chain on it."""
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import pretrain_harness as harness
from byol_skeleton.data import skeletons
from byol_skeleton.data.raw import pose2d as raw_pose2d
from byol_skeleton.data.raw import preprocess
from byol_skeleton.data.raw import problems
from data_prep import build
from data_prep import pose2d
from data_prep import report
from data_prep import synthetic
from data_prep import synthetic_pose2d

COCO17 = skeletons.get_layout('coco17')
NTU = {name: i for i, name in enumerate(synthetic.LAYOUT.joint_names)}


def _record(frame_dir, rng, label=0, persons=1, frames=4, img_shape=(100, 200),
            score=None):
  return dict(
      frame_dir=frame_dir, label=label, total_frames=frames,
      keypoint=rng.uniform(0, 100, (persons, frames, 17, 2)).astype(np.float32),
      keypoint_score=(rng.uniform(0.2, 1.0, (persons, frames, 17)) if score
                      is None else np.full((persons, frames, 17), score)
                      ).astype(np.float32),
      img_shape=img_shape, original_shape=img_shape)


def _write_pickle(path, content):
  with open(path, 'wb') as f:
    pickle.dump(content, f)
  return path


# ---------------------------------------------------------- preprocessing


def test_normalise_2d_hand_values():
  keypoint = np.zeros((1, 3, 17, 2))
  score = np.ones((1, 3, 17))
  keypoint[0, 0, 0] = (150, 25)  # w = 200, h = 100: scale 100
  keypoint[0, 0, 1] = (0, 100)
  keypoint[0, 0, 2] = (37, 41)
  score[0, 0, 2] = 0.0  # not detected: missing, whatever its pixels
  score[0, 1] = 0.0  # nobody detected in frame 1: dropped
  score[0, 2, 3] = 0.4
  out = preprocess.normalise_2d(keypoint, score, (100, 200))
  assert out.shape == (2, 1, 17, 3) and out.dtype == np.float32
  np.testing.assert_allclose(out[0, 0, 0], [0.5, 0.25, 1.0])
  np.testing.assert_allclose(out[0, 0, 1], [-1.0, -0.5, 1.0])
  np.testing.assert_array_equal(out[0, 0, 2], 0.0)
  np.testing.assert_allclose(out[1, 0, 3], [-1.0, 0.5, 0.4])  # frame 2
  # Portrait: the longer side is the height; the image centre is the origin
  # and stays present through its score.
  portrait = preprocess.normalise_2d(
      np.full((1, 1, 17, 2), (50.0, 100.0)), np.full((1, 1, 17), 0.7),
      (200, 100))
  np.testing.assert_allclose(portrait[0, 0, 0], [0.0, 0.0, 0.7], atol=1e-7)
  with pytest.raises(ValueError, match='2D'):
    preprocess.preprocess_sequence(np.ones((2, 1, 17, 3)), COCO17)


def test_split_pairs_of_the_public_releases():
  assert pose2d.split_pairs(['xsub_train', 'xsub_val', 'xview_train',
                             'xview_val']) == {
                                 'xsub': ('xsub_train', 'xsub_val'),
                                 'xview': ('xview_train', 'xview_val')}
  assert pose2d.split_pairs(['xset_train', 'xset_val']) == {
      'xset': ('xset_train', 'xset_val')}
  assert pose2d.split_pairs(
      ['train1', 'test1', 'train2', 'test2', 'train3']) == {
          'split1': ('train1', 'test1'), 'split2': ('train2', 'test2')}
  assert pose2d.split_pairs(['train', 'val']) == {'default': ('train', 'val')}
  assert pose2d.split_pairs(['a_train', 'a_test', 'extra']) == {
      'a': ('a_train', 'a_test')}
  assert not pose2d.split_pairs(['xsub_train', 'val1'])
  assert pose2d.default_name('/x/NTU60 HRNet.pkl') == 'pose2d_ntu60_hrnet'


# ------------------------------------------------------------ bad pickles


def _malformed(path, case, rng):
  good = _record('a', rng)
  if case == 'not a pickle':
    path.write_text('frame_dir,label\n')
    return path
  content = {
      'missing keys': {'annotations': [good]},
      'annotation lacks a key': {
          'split': {'train': ['a'], 'val': []}, 'annotations': [
              {k: v for k, v in good.items() if k != 'keypoint_score'}]},
      'inconsistent shapes': {  # a 3D NTU pickle: (M, T, 25, 3)
          'split': {'train': ['a'], 'val': []}, 'annotations': [dict(
              good, keypoint=np.zeros((1, 4, 25, 3), np.float32))]},
      'unknown id': {'split': {'train': ['a'], 'val': ['b']},
                     'annotations': [good]},
  }[case]
  return _write_pickle(path, content)


MALFORMED = {
    'not a pickle': 'not a pickle of 2D skeleton annotations',
    'missing keys': 'expected a dict with keys "split" and "annotations" '
                    '(mmaction2 / PYSKL format), got [\'annotations\']',
    'annotation lacks a key': "annotation 0 lacks ['keypoint_score']",
    'inconsistent shapes': 'expected "keypoint" of shape (M, T, 17, 2) '
                           '(COCO-17, 2D pixels) in some annotation, found '
                           'only (M, T, *[(25, 3)])',
    'unknown id': "split 'val' names 1 frame_dir without annotation, e.g. "
                  "['b']",
}


@pytest.mark.parametrize('case', sorted(MALFORMED))
def test_malformed_pickles_are_one_sentence_naming_the_file(tmp_path, case):
  path = _malformed(tmp_path / 'bad.pkl', case, np.random.default_rng(0))
  with pytest.raises(ValueError) as info:
    build.build('pose2d', str(path), str(tmp_path / 'tfds'))
  message = str(info.value)
  assert message.startswith(f'{path}: {MALFORMED[case]}'), message
  assert '\n' not in message


def test_cli_pickle_errors_are_one_sentence(tmp_path):
  path = _malformed(tmp_path / 'bad.pkl', 'not a pickle',
                    np.random.default_rng(0))
  cases = {
      (f'--manual_dir={path}',): f'{path}: not a pickle',
      (f'--manual_dir={tmp_path}',): '--manual_dir must be an existing '
                                     'annotation pickle for pose2d',
      (f'--manual_dir={path}', '--name=NTU'): "--name='NTU': expected "
                                              'pose2d_ followed by',
  }
  for flags, expected in cases.items():
    result = subprocess.run(
        [sys.executable, '-m', 'data_prep.build', '--dataset=pose2d', *flags,
         f'--data_dir={tmp_path / "tfds"}'], capture_output=True, text=True,
        cwd=harness.REPO, timeout=300, check=False)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert lines[-1].startswith(f'byol-skeleton: error: {expected}'), lines
    assert not [line for line in lines if line.startswith('Traceback')]


# --------------------------------------------------------------- the build


def test_build_keeps_the_confident_persons_and_counts_every_skip(tmp_path):
  rng = np.random.default_rng(1)
  three = _record('S001C001P001R001A001', rng, persons=3, frames=5)
  three['keypoint_score'][1] += 5.0  # person 1 is the most confident
  three['keypoint_score'][0, :, :] = 0.0  # person 0 is never detected
  nan = _record('nan', rng)
  nan['keypoint'][0, 1, 3, 0] = np.nan
  short = _record('short', rng)
  short['total_frames'] = 5
  records = [
      three, _record('S001C002P001R001A001', rng, label=1),
      _record('S001C001P002R001A002', rng, label=1),
      _record('clip_b', rng, img_shape=(480, 640)), nan, short,
      _record('nobody', rng, persons=0), _record('zeros', rng, score=0.0),
      _record('label', rng, label=2), _record('orphan', rng),
      _record('S001C002P001R001A001', rng)]  # a duplicate id
  split = {'xsub_train': ['S001C001P001R001A001', 'S001C002P001R001A001',
                          'nan', 'nobody'],
           'xsub_val': ['S001C001P002R001A002', 'clip_b', 'short', 'zeros',
                        'label']}
  path = _write_pickle(tmp_path / 'tiny.pkl',
                       {'split': split, 'annotations': records})
  data_dir = tmp_path / 'tfds'
  reports = build.build('pose2d', str(path), str(data_dir), num_workers=1,
                        name='pose2d_tiny', num_classes=2)
  text = reports['xsub']
  for reason, count in ((report.NO_PERSON, 2), (report.NON_FINITE, 1),
                        (report.SHAPE_MISMATCH, 1),
                        (report.LABEL_OUT_OF_RANGE, 1),
                        (report.NOT_IN_SPLIT, 1), (report.DUPLICATE, 1)):
    assert f'  {reason}: {count}\n' in text, text
  assert f'{pose2d.DROP_SURPLUS}: 1' in text
  skipped = json.loads(
      (data_dir / 'pose2d_tiny' / 'xsub' / '1.0.0' / 'skipped.json')
      .read_text())
  assert {e['sample'] for e in skipped[report.NO_PERSON]} == {'nobody',
                                                              'zeros'}
  source = tfds.data_source('pose2d_tiny/xsub', data_dir=str(data_dir))
  train = {r['sample_name']: r for r in source['train']}
  test = {r['sample_name']: r for r in source['test']}
  assert set(train) == {b'S001C001P001R001A001', b'S001C002P001R001A001'}
  assert set(test) == {b'S001C001P002R001A002', b'clip_b'}
  # Persons by confidence (1, then 2; 0 dropped), normalised by the image.
  x = train[b'S001C001P001R001A001']['skeleton']
  assert x.shape == (5, 2, 17, 3)
  for slot, person in enumerate((1, 2)):
    pixels = three['keypoint'][person]
    np.testing.assert_allclose(x[:, slot, :, 0], (pixels[..., 0] - 100) / 100,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x[:, slot, :, 1], (50 - pixels[..., 1]) / 100,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x[:, slot, :, 2],
                               three['keypoint_score'][person], rtol=1e-6)
  # NTU names give the take (multi-view sampling); others one view each.
  a, b = train.values()
  assert a['sequence_key'] == b['sequence_key'] == b'S001P001R001A001'
  assert sorted((a['view'], b['view'])) == [1, 2] and a['subject'] == 1
  assert test[b'clip_b']['sequence_key'] == b'clip_b'
  assert test[b'clip_b']['view'] == 1 and test[b'clip_b']['label'] == 0
  np.testing.assert_array_equal(test[b'clip_b']['skeleton'][:, 1], 0.0)


# ----------------------------------------------------- the synthetic pickle


def test_synthetic_pickle_has_the_release_format():
  content = synthetic_pose2d.annotations(seed=0, repetitions=1)
  records = {r['frame_dir']: r for r in content['annotations']}
  assert len(records) == 3 * len(synthetic.ACTIONS) * synthetic.NUM_SUBJECTS
  split = content['split']
  assert {k: len(v) for k, v in split.items()} == {
      'xsub_train': 210, 'xsub_val': 90, 'xview_train': 200, 'xview_val': 100}
  assert all(n[4:8] == 'C001' for n in split['xview_val'])
  two_person = {synthetic.ACTIONS.index(a) for a in synthetic.TWO_PERSON}
  missing = []
  for r in records.values():
    m, t = r['keypoint'].shape[:2]
    assert r['keypoint'].shape == (m, t, 17, 2) and t == r['total_frames']
    assert r['keypoint_score'].shape == (m, t, 17)
    assert m == (2 if r['label'] in two_person else 1)
    score = r['keypoint_score']
    assert score.min() >= 0 and score.max() <= 1
    np.testing.assert_array_equal(r['keypoint'][score == 0], 0.0)
    missing.append(np.mean(score == 0))
  assert 0.01 < np.mean(missing) < 0.1
  # The frontal camera sees the subject's left shoulder on the image's right.
  frontal = [r for n, r in records.items() if n[4:8] == 'C002']
  left, right = COCO17.left[0], COCO17.right[0]
  seen = [(r['keypoint'][0, :, left, 0] > r['keypoint'][0, :, right, 0])[
      (r['keypoint_score'][0, :, [left, right]] > 0).all(axis=0)].mean()
          for r in frontal if r['label'] != synthetic.ACTIONS.index('turn')]
  assert np.mean(seen) > 0.9


def test_synthetic_coco17_pose_and_projection_hand_values():
  rng = np.random.default_rng(2)
  world = rng.normal(size=(3, 25, 3))
  coco = synthetic_pose2d.coco17_pose(world)
  assert coco.shape == (3, 17, 3)
  for v, name in enumerate(COCO17.joint_names[5:], start=5):
    np.testing.assert_array_equal(coco[:, v], world[:, NTU[name]])
  head = world[:, NTU['head']]
  ear = np.linalg.norm(coco[:, 3] - head, axis=-1)
  np.testing.assert_allclose(ear, 0.075, rtol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(coco[:, 1] - head, axis=-1),
                             np.linalg.norm(coco[:, 2] - head, axis=-1))
  # f = 1050, centre (960, 540); x to the sensor's left is image left.
  np.testing.assert_allclose(
      synthetic_pose2d.project(np.array([0.5, 0.2, 2.0])), [697.5, 435.0])


def test_records_of_a_video_a_list_and_a_dataset(tmp_path):
  rng = np.random.default_rng(4)
  a, b = _record('clip_a', rng), _record('clip_b', rng, persons=3)
  one = {k: v for k, v in a.items() if k != 'frame_dir'}
  for content, names in ((one, ['0']), ([a, b], ['clip_a', 'clip_b']),
                         ({'split': {}, 'annotations': [b]}, ['clip_b'])):
    path = _write_pickle(tmp_path / 'x.pkl', content)
    assert [n for n, _ in raw_pose2d.records(path)] == names
  skeleton, dropped = raw_pose2d.skeleton(b)
  assert skeleton.shape == (4, 2, 17, 3) and dropped == 1
  for content, message in (
      ([], 'a non-empty list of them'), ({'split': {}}, 'annotation 0 lacks'),
      ([a, {'keypoint': 0}], "annotation 1 lacks .'keypoint_score', "
       "'img_shape'.")):
    path = _write_pickle(tmp_path / 'bad.pkl', content)
    with pytest.raises(problems.MalformedFile, match=message):
      raw_pose2d.records(path)
  (tmp_path / 'text.pkl').write_text('not a pickle')
  with pytest.raises(problems.MalformedFile, match='text.pkl: not a pickle'):
    raw_pose2d.records(tmp_path / 'text.pkl')


# ------------------------------------------------------------- end to end


@pytest.mark.slow
def test_synthetic_pickle_builds_pretrains_and_evaluates(tmp_path):
  """The README's commands at the tests' scale, through the CLI: build, a
  few steps of pretraining, the linear probe."""
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  pickle_path = synthetic_pose2d.write_pickle(data_dir / 'synthetic.pkl',
                                              repetitions=1)
  out = harness.run([sys.executable, '-m', 'data_prep.build',
                     '--dataset=pose2d', f'--manual_dir={pickle_path}',
                     f'--data_dir={data_dir}', '--protocols=xsub',
                     '--num_workers=1'])
  assert out.returncode == 0, out.stderr[-3000:]
  assert '== pose2d_synthetic/xsub ==' in out.stdout
  workdir = tmp_path / 'run'
  for mode in ('pretrain', 'linear_eval'):
    out = harness.run(harness.command(
        workdir, data_dir, '--config.pretrain.steps_override=2',
        '--config.linear.epochs=1', mode=mode,
        config='configs/pose2d.py:tiny'), devices=1)
    assert out.returncode == 0, out.stderr[-3000:]
  assert harness.committed_steps(workdir)[-1] == 2
  results = json.loads((workdir / 'linear_eval' / 'results.json').read_text())
  # Every view of the pickle's xsub split: 7 and 3 subjects of 10 x 10 x 3.
  assert (results['train_examples'], results['num_examples']) == (210, 90)
  assert 0 <= results['top1'] <= results['top5'] <= 1
  # predict on the test split's annotations, as a list, and on one video's
  # annotation as mmaction2's pose extraction writes it (no label, no split).
  content = raw_pose2d.unpickle(pickle_path)
  records = {r['frame_dir']: r for r in content['annotations']}
  val = [records[name] for name in content['split']['xsub_val']]
  inputs = _write_pickle(tmp_path / 'val.pkl', val)
  one = {k: v for k, v in val[0].items() if k not in ('label', 'frame_dir')}
  _write_pickle(tmp_path / 'one_video.pkl', one)
  out = harness.run(harness.command(
      workdir, data_dir, '--config.predict.run=linear_eval',
      f'--config.predict.inputs={inputs},{tmp_path / "one_video.pkl"}',
      mode='predict', config='configs/pose2d.py:tiny'), devices=1)
  assert out.returncode == 0, out.stderr[-3000:]
  rows = [json.loads(line) for line in (workdir / 'predict' /
                                        'predictions.jsonl').read_text()
          .splitlines()]
  assert [r['path'] for r in rows] == [f'{inputs}:{r["frame_dir"]}'
                                       for r in val] + [
                                           f'{tmp_path / "one_video.pkl"}:0']
  assert rows[-1]['indices'] == rows[0]['indices']  # the same video
  # The builder's and predict's reading agree: linear_eval's top-1 on the
  # stored examples, up to one example of float ties.
  top1 = np.mean([r['indices'][0] == v['label'] for r, v in zip(rows, val)])
  assert abs(top1 - results['top1']) <= 1 / 90 + 1e-9, (top1, results)


def test_ntu_releases_get_ntus_action_names():
  records = {f'S001C001P001R001A{a:03d}': {'label': a - 1} for a in (1, 60)}
  annotations = pose2d.Annotations(records, {}, [])
  names = pose2d.class_names(annotations, 60)
  assert names[0] == 'drink water' and len(names) == 60
  assert pose2d.class_names(annotations, 10) is None  # not an NTU release
  records['S001C001P001R001A002'] = {'label': 5}  # labels not NTU's actions
  assert pose2d.class_names(annotations, 60) is None
  annotations = pose2d.Annotations({'v_ApplyEyeMakeup_g01_c01': {'label': 0}},
                                   {}, [])
  assert pose2d.class_names(annotations, 60) is None
