"""--mode=visualize on a small synthetic dataset: files, frames, views."""
import json
import pathlib

import jax
import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from byol_skeleton import errors
from byol_skeleton import main
from byol_skeleton.data import pipeline
from byol_skeleton.data import render
from byol_skeleton.data import skeletons
from byol_skeleton.protocols import visualize
from configs import synthetic as synthetic_config
from data_prep import synthetic

NUM_FRAMES = 8
# Longer than every synthetic recording: crops loop the whole recording, and
# resized views of segments of at least 1.0 show it whole, so without
# augmentations nothing is random.
LOOPED = synthetic.MAX_FRAMES + 2


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp('synthetic')
  synthetic.build_synthetic(directory, repetitions=1)
  return directory


def small_config(data_dir, **fields):
  """Two recordings; T1 drops a side in every view. One config for every
  test, so T1's compiled program (~10 s) comes from the XLA cache after the
  first."""
  c = synthetic_config.get_config('tiny')
  c.data.data_dir = str(data_dir)
  c.data.num_frames = NUM_FRAMES
  c.augment.drop_prob = 1.0
  c.visualize.num_examples = 2
  c.visualize.frames = 3
  for name, value in fields.items():
    section, field = name.split('.')
    c[section][field] = value
  return c


def test_the_cli_knows_the_mode():
  assert main.MODES['visualize'] == visualize.__name__


def test_writes_a_gif_and_a_strip_per_recording(data_dir, tmp_path):
  config = small_config(data_dir)
  results = visualize.run(config, tmp_path)
  out = tmp_path / 'visualize'
  assert json.loads((out / 'results.json').read_text())['recordings'] == (
      results['recordings'])
  recordings = results['recordings']
  labels = pipeline.read_metadata(config.data, 'test').label
  # One recording per class drawn.
  assert len({labels[r['index']] for r in recordings}) == 2
  for r in recordings:
    with Image.open(r['gif']) as gif:
      assert gif.format == 'GIF' and gif.n_frames == NUM_FRAMES
      gif.seek(NUM_FRAMES - 1)
      gif.load()
    with Image.open(r['png']) as png:
      assert png.format == 'PNG'
      png.load()
      # Three rows of views under three columns of frames.
      assert 0.5 < png.width / png.height < 2


def test_views_differ_and_follow_the_augmentation_flags(data_dir):
  config = small_config(data_dir)
  batch = next(iter(pipeline.EvalData(
      config, 'test', 2, process_index=0, process_count=1)))
  key = jax.random.key(0)
  arrays = visualize.views(config, batch, key)
  assert list(arrays) == ['test view (none)', 'T1 (aggressive)',
                          'T2 (conservative)']
  (clean, clean_drawn), (t1, t1_drawn), (t2, t2_drawn) = arrays.values()
  assert clean.shape == t1.shape == t2.shape == (2, NUM_FRAMES, 2, 25, 3)
  assert not np.allclose(clean, t1)
  assert not np.allclose(clean, t2)
  assert not np.allclose(t1, t2)
  # Left/right drop of one side in every T1 view, and its joints undrawn.
  assert np.all(t1_drawn.sum(-1) == 25 - 10)
  assert np.all(clean_drawn) and np.all(t2_drawn)
  assert np.all(np.where(~t1_drawn[:, None, None, :, None], t1, 0) == 0)

  off = {f'augment.{flag}': False
         for flag in ('shear', 'filter', 'resample', 'shift', 'drop')}
  for temporal_view in ('crop', 'resize'):
    config = small_config(data_dir, **off, **{
        'data.num_frames': LOOPED, 'data.temporal_view': temporal_view,
        'augment.segment_min': 1.0})
    clean, t1, t2 = [joints for joints, _ in
                     visualize.views(config, batch, key).values()]
    np.testing.assert_array_equal(t1, clean)
    np.testing.assert_array_equal(t2, clean)


def test_absent_persons_and_dropped_joints_have_no_bones():
  layout = skeletons.get_layout('ntu25')
  joints = np.ones((2, 25, 3))
  joints[1] = 0  # an empty body slot
  visible = np.ones(25, bool)
  visible[list(layout.left)] = False
  first, second = render.bones(joints, visible, layout)
  kept = [e for e in layout.edges
          if not {e[0], e[1]} & set(layout.left)]
  assert first.shape == (len(kept), 2, 3) and second.shape == (0, 2, 3)


def test_projection_sees_the_front_and_the_right_side():
  # The spine, the subject's right and their front (canonical: -z).
  points = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
  front = render.project(points, elevation=0, azimuth=0)
  # Facing us: their right is on our left, their front points at us.
  np.testing.assert_allclose(front, [[0, 1], [-1, 0], [0, 0]], atol=1e-12)
  right_side = render.project(points, elevation=0, azimuth=90)
  np.testing.assert_allclose(right_side, [[0, 1], [0, 0], [1, 0]],
                             atol=1e-12)
  above = render.project(points, elevation=90, azimuth=0)
  np.testing.assert_allclose(above[2], [0, -1], atol=1e-12)


def test_action_names_come_from_the_shards(data_dir, monkeypatch):
  names = visualize.action_names(small_config(data_dir).data)
  assert names == list(pipeline.class_names(small_config(data_dir).data))
  assert not any(name.isdigit() for name in names)
  # Shards built without names store the labels' numbers.
  monkeypatch.setattr(pipeline, 'class_names', lambda data: ('0', 'wave', '2'))
  assert visualize.action_names(None) == ['class 0', 'wave', 'class 2']


def test_draws_recording_files_and_skips_unreadable_ones(data_dir, tmp_path):
  config = small_config(data_dir)
  source = tfds.data_source('synthetic/xsub', data_dir=str(data_dir),
                            download=False)['test']
  inputs = tmp_path / 'inputs'
  inputs.mkdir()
  for i in (0, 1):
    np.save(inputs / f'take_{i}.npy', source[i]['skeleton'])
  np.save(inputs / 'hand.npy', np.ones((20, 1, 21, 3), np.float32))
  config.visualize.inputs = str(inputs)
  results = visualize.run(config, tmp_path / 'run')
  assert [pathlib.Path(r['path']).name for r in results['recordings']] == [
      'take_0.npy', 'take_1.npy']
  assert [pathlib.Path(s['path']).name for s in results['skipped']] == [
      'hand.npy']
  for r in results['recordings']:
    with Image.open(r['gif']) as gif:
      assert gif.n_frames == NUM_FRAMES


@pytest.mark.parametrize('field, value, message', [
    ('visualize.split', 'val', "visualize.split='val'"),
    ('visualize.num_examples', 0, 'visualize.num_examples=0'),
    ('visualize.frames', NUM_FRAMES + 1, f'data.num_frames={NUM_FRAMES}'),
    ('visualize.fps', 0.0, 'visualize.fps=0.0'),
])
def test_bad_fields_are_named(tmp_path, field, value, message):
  with pytest.raises(errors.UserError, match=message):
    visualize.run(small_config(tmp_path, **{field: value}), tmp_path)
