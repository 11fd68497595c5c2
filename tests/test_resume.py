"""Resuming pretraining: an interrupted run ends bit for bit where an
uninterrupted one does (same config, same 8 CPU devices)."""
import json
import logging
import re
import signal

import numpy as np
import pytest

from byol_skeleton import errors
from byol_skeleton.data import pipeline
from byol_skeleton.pretraining import pretrain
from byol_skeleton.train import checkpoints
from byol_skeleton.train import parallel
import pretrain_harness as harness

STEPS = 6  # one and a half epochs of the smallest synthetic build
STOP_AT = 3  # between the periodic checkpoints at 2 and 4


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return harness.build_data(tmp_path_factory)


def _losses(workdir) -> dict:
  """step -> (loss, lr, tau), checking that each step was logged once."""
  lines = (workdir / 'pretrain' / 'metrics.jsonl').read_text().splitlines()
  records = [r for r in map(json.loads, lines) if 'loss' in r]
  steps = [r['step'] for r in records]
  assert steps == sorted(set(steps)), steps
  return {r['step']: (r['loss'], r['lr'], r['tau']) for r in records}


@pytest.mark.slow
def test_interrupted_run_resumes_bitwise(tmp_path, data_dir, monkeypatch,
                                         caplog):
  config = harness.tiny_config(data_dir, steps_override=STEPS,
                               checkpoint_every_steps=2, log_every_steps=1)
  reference = pretrain.run(config, tmp_path / 'reference')

  # SIGTERM while the batch of step STOP_AT is fetched: the run finishes that
  # step, saves it and raises errors.Interrupted.
  fetch = pipeline.PretrainData.next_batch

  def next_batch(data):
    if data.get_state()['step'] == STOP_AT - 1:
      signal.raise_signal(signal.SIGTERM)
    return fetch(data)

  monkeypatch.setattr(pipeline.PretrainData, 'next_batch', next_batch)
  cut = tmp_path / 'interrupted'
  with pytest.raises(errors.Interrupted, match=f'saved step {STOP_AT} in '):
    pretrain.run(config, cut)
  monkeypatch.undo()
  assert harness.committed_steps(cut) == [2, STOP_AT]
  _, data_state = harness.restore(cut, STOP_AT)
  assert data_state['step'] == STOP_AT

  resumed = pretrain.run(config, cut)
  assert resumed['steps'] == reference['steps'] == STEPS
  assert resumed['final_loss'] == reference['final_loss']
  assert len(set(resumed['state_digests'])) == 1  # all 8 replicas agree
  assert resumed['state_digests'] == reference['state_digests']
  for step in (4, STEPS):
    want, want_data = harness.restore(tmp_path / 'reference', step)
    got, got_data = harness.restore(cut, step)
    assert got_data == want_data
    assert got_data['step'] == step == int(got.step)
    want, got = harness.leaves(want), harness.leaves(got)
    assert got.keys() == want.keys()
    unequal = [k for k in want if not np.array_equal(got[k], want[k])]
    assert not unequal, f'step {step}: {unequal[:5]}'
  # Every logged step of the resumed run (its log continues the first run's).
  assert _losses(cut) == _losses(tmp_path / 'reference')

  # A finished run run again trains nothing and reports its own training
  # time and rate, not this call's.
  rerun = pretrain.run(config, tmp_path / 'reference')
  assert reference['wall_seconds'] > 0
  assert ((rerun['wall_seconds'], rerun['pairs_per_s'])
          == (reference['wall_seconds'], reference['pairs_per_s']))

  # pretrain.stop_at_step ends a run at that step, saved and logged; the run
  # that goes on without it ends where the uninterrupted one does.
  config.pretrain.stop_at_step = STOP_AT
  stopped = pretrain.run(config, tmp_path / 'stopped')
  assert stopped['steps'] == STOP_AT and stopped['total_steps'] == STEPS
  assert harness.committed_steps(tmp_path / 'stopped') == [2, STOP_AT]
  config.pretrain.stop_at_step = 0
  finished = pretrain.run(config, tmp_path / 'stopped')
  assert finished['state_digests'] == reference['state_digests']
  assert _losses(tmp_path / 'stopped') == _losses(tmp_path / 'reference')

  # Restarting from an earlier step sets the later ones aside, cuts the log
  # back to that step and ends where the uninterrupted run does.
  again = pretrain.run(config, cut, checkpoint_step=4)
  assert again['state_digests'] == reference['state_digests']
  aside = list(tmp_path.glob('interrupted/checkpoints_after_4_*'))
  assert [d.name for d in aside[0].iterdir()] == [str(STEPS)]
  assert max(harness.committed_steps(cut)) == STEPS
  assert _losses(cut) == _losses(tmp_path / 'reference')

  # A damaged newest checkpoint: readers fall back to the step before and
  # name the damage; training also moves it aside and saves the step anew.
  newest = cut / 'checkpoints' / str(STEPS)
  for f in (newest / 'state').rglob('*'):
    if f.is_file() and f.parent.name == 'd':  # OCDBT's data files, cut short
      f.write_bytes(f.read_bytes()[:f.stat().st_size // 2])
  with caplog.at_level(logging.WARNING):
    state, _ = harness.restore(cut)
  assert int(state.step) == 4
  assert re.search(rf'checkpoint {newest} is damaged \(.+\); left it in '
                   'place and fell back to the step before', caplog.text)
  fixed = pretrain.run(config, cut)
  assert fixed['state_digests'] == reference['state_digests']
  assert [d.name.split('_')[0] for d in
          (cut / 'checkpoints_damaged').iterdir()] == [str(STEPS)]
  # Missing metadata is damage too, not a config mismatch.
  (cut / 'checkpoints' / str(STEPS) / 'state' / '_METADATA').unlink()
  with pytest.raises(checkpoints.DamagedCheckpointError,
                     match='its state metadata is missing'):
    harness.restore(cut, STEPS)

  # The checkpoint restored into a wider model names what does not fit.
  wider = harness.tiny_config(data_dir)
  wider.model.width = 0.25
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match=r'encoder/\S+: checkpoint has \(\d+,?\d*\), '
                           r'model expects \(\d+'):
    harness.restore(cut, config=wider)


@pytest.mark.parametrize('fields, message', [
    (dict(steps_override=-1), 'expected a positive step count'),
    (dict(steps_override=0, epochs=0), 'expected a positive step count'),
    (dict(stop_at_step=-2), r'stop_at_step=-2: expected 0 \(run to the end\)')])
def test_invalid_step_counts_are_config_errors(data_dir, tmp_path, fields,
                                               message):
  config = harness.tiny_config(data_dir, **fields)
  with pytest.raises(errors.UserError, match=message):
    pretrain.run(config, tmp_path)
  assert not (tmp_path / 'checkpoints').exists()


def test_batch_not_divisible_by_devices_names_field():
  with pytest.raises(errors.UserError,
                     match=r'^pretrain\.batch_size=12 is not divisible by the '
                           r'8 devices; use a multiple of 8\.$'):
    parallel.per_device_batch(12, 'pretrain.batch_size')
  assert parallel.per_device_batch(16, 'pretrain.batch_size') == 2
