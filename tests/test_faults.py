"""Faults and bad input on the CLI: nothing lost, one clear sentence each.

`pretrain` runs in subprocesses on the tiny config with 2 CPU devices.
"""
import concurrent.futures
import json
import os
import pathlib
import random
import re
import signal
import subprocess
import time

import numpy as np
import pytest

import pretrain_harness as harness

STEPS = 12  # three epochs of the smallest synthetic build
# A checkpoint after every step, so that kills often land in an async save
# or in the deletion of an old checkpoint (3 are kept).
FLAGS = (f'--config.pretrain.steps_override={STEPS}',
         '--config.pretrain.checkpoint_every_steps=1',
         '--config.pretrain.log_every_steps=1')


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return harness.build_data(tmp_path_factory)


def _log(path) -> str:
  return pathlib.Path(path).read_text(errors='replace')


def _wait(proc, log_path, timeout=harness.TIMEOUT_S) -> int:
  try:
    return proc.wait(timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
    pytest.fail(f'run did not end in {timeout} s:\n{_log(log_path)[-3000:]}')


def _interrupt(cmd, workdir, log_path, sig, delay) -> int:
  """Starts `cmd`; after its next checkpoint, waits `delay` s, sends `sig`."""
  before = max(harness.committed_steps(workdir), default=0)
  proc = harness.start(cmd, log_path)
  deadline = time.monotonic() + harness.TIMEOUT_S
  while max(harness.committed_steps(workdir), default=0) <= before:
    if proc.poll() is not None or time.monotonic() > deadline:
      proc.kill()
      pytest.fail(f'no new checkpoint before {sig.name}:\n'
                  f'{_log(log_path)[-3000:]}')
    time.sleep(0.05)
  time.sleep(delay)
  proc.send_signal(sig)
  return _wait(proc, log_path)


def _assert_all_restore(workdir):
  """Every finished checkpoint restores, its state and input at its step."""
  steps = harness.committed_steps(workdir)
  assert steps
  for step in steps:
    state, data_state = harness.restore(workdir, step)
    assert int(state.step) == data_state['step'] == step


def _records(workdir) -> dict:
  """step -> (loss, lr, tau) of every line of metrics.jsonl, repeats kept."""
  out = {}
  for line in (workdir / 'pretrain' / 'metrics.jsonl').read_text().splitlines():
    r = json.loads(line)
    out.setdefault(r['step'], set()).add((r['loss'], r['lr'], r['tau']))
  return out


@pytest.mark.slow
def test_kills_sigterm_and_nan_lose_nothing(tmp_path, data_dir):
  reference_dir, workdir = tmp_path / 'reference', tmp_path / 'faulty'
  cmd = harness.command(workdir, data_dir, *FLAGS)
  # The uninterrupted run goes alongside the interrupted ones; it saves only
  # at the end (the interval changes nothing else).
  reference = harness.start(
      harness.command(reference_dir, data_dir, *FLAGS,
                      f'--config.pretrain.checkpoint_every_steps={STEPS}'),
      tmp_path / 'reference.log')
  background = [reference]
  rng = random.Random(6)
  try:
    for i, sig in enumerate((signal.SIGKILL, signal.SIGKILL, signal.SIGTERM,
                             signal.SIGKILL)):
      log_path = tmp_path / f'run{i}.log'
      rc = _interrupt(cmd, workdir, log_path, sig, rng.uniform(0.0, 0.6))
      if sig == signal.SIGKILL:
        assert rc == -signal.SIGKILL
      else:  # saves the step it reached (if not saved already), exits 143
        assert rc == 128 + signal.SIGTERM, _log(log_path)[-3000:]
        reached = re.search(r'SIGTERM received: saved step (\d+) in ',
                            _log(log_path))
        assert reached, _log(log_path)[-3000:]
        assert max(harness.committed_steps(workdir)) == int(reached[1])
      _assert_all_restore(workdir)
    last_good = max(harness.committed_steps(workdir))
    assert last_good < STEPS, 'the interruptions came too late'
    assert _wait(reference, tmp_path / 'reference.log') == 0

    # Alongside: the finished checkpoint restored into a wider model.
    mismatch_log = tmp_path / 'mismatch.log'
    mismatch = harness.start(
        [*harness.command(reference_dir, data_dir, *FLAGS),
         '--config.model.width=0.25'], mismatch_log)
    background.append(mismatch)

    # A NaN loss in the first step after resuming stops the run, one sentence.
    before = harness.leaves(harness.restore(workdir, last_good)[0])
    steps_before = harness.committed_steps(workdir)
    nan_cmd, nan_env = harness.with_nan_at(cmd, last_good)
    nan_run = harness.run(nan_cmd, **nan_env)
    assert nan_run.returncode == 2, nan_run.stderr[-3000:]
    message = harness.error_line(nan_run.stderr)
    assert re.match(
        rf'pretrain: the loss or the parameters became NaN or infinite '
        rf'\(loss \S+\) at step {last_good + 1}, so the run stopped without '
        rf'saving it; the last good checkpoint is step {last_good} in '
        + re.escape(f'{workdir / "checkpoints"} ('), message), message
    assert harness.committed_steps(workdir) == steps_before
    after = harness.leaves(harness.restore(workdir, last_good)[0])
    assert all(np.array_equal(before[k], after[k]) for k in before)

    # Resuming (no NaN fed) finishes where the uninterrupted run does, bitwise.
    final = harness.run(cmd)
    assert final.returncode == 0, final.stderr[-3000:]
    assert _wait(mismatch, mismatch_log) == 2, _log(mismatch_log)[-3000:]
  finally:
    for proc in background:
      if proc.poll() is None:
        proc.kill()
  _assert_all_restore(workdir)
  got, got_data = harness.restore(workdir, STEPS)
  want, want_data = harness.restore(reference_dir, STEPS)
  assert got_data == want_data
  got, want = harness.leaves(got), harness.leaves(want)
  unequal = [k for k in want if not np.array_equal(got[k], want[k])]
  assert not unequal, unequal[:5]
  # Every step any of the runs logged (repeated after a kill) has the values
  # of the uninterrupted run.
  reference_records = _records(reference_dir)
  assert all(len(v) == 1 for v in reference_records.values())
  assert _records(workdir) == reference_records

  message = harness.error_line(_log(mismatch_log))
  assert re.match(
      re.escape(f'Checkpoint {reference_dir / "checkpoints" / str(STEPS)} ')
      + r'does not fit this config: \S*encoder/\S+: checkpoint has '
      r'\(\d+,?\d*\), model expects \(\d+', message), message


def _unwritable_dir(tmp_path) -> pathlib.Path:
  """An existing directory this process cannot write into."""
  if os.geteuid() != 0:
    path = tmp_path / 'read_only'
    path.mkdir()
    path.chmod(0o555)
    return path
  # Root ignores permission bits; sysfs refuses new files even to root.
  path = pathlib.Path('/sys/kernel')
  if not path.is_dir():
    pytest.skip('no directory that root cannot write to')
  return path


def test_bad_input_is_one_sentence(tmp_path, data_dir):
  a_file = tmp_path / 'a_file'
  a_file.write_text('not a directory')
  no_shards = tmp_path / 'no_shards'
  no_shards.mkdir()
  workdir = tmp_path / 'workdir'
  unwritable = _unwritable_dir(tmp_path)
  cases = {  # arguments -> the error's beginning
      (f'--workdir={a_file}',): f'--workdir {a_file} exists and is not a '
                                'directory.',
      (f'--workdir={a_file}/run',): f'--workdir {a_file}/run cannot be '
                                    'created: Not a directory.',
      (f'--workdir={unwritable}',): f'--workdir {unwritable} is not writable: ',
      (f'--config.data.data_dir={no_shards}',):
          f"No 'train' shards of dataset synthetic/xsub in data_dir "
          f'{no_shards}; build them with `python -m data_prep.build '
          f'--dataset=synthetic --data_dir={no_shards}`.',
      ('--config.pretrain.batch_size=15',):
          'pretrain.batch_size=15 is not divisible by the 2 devices; use a '
          'multiple of 2.',
      ('--config.model.widht=0.5',):
          "--config.model.widht: no such config field (did you mean 'width'?).",
      ('--config=configs/synthetic.py:tiny,huge',):
          "flag --config=configs/synthetic.py:tiny,huge: Unknown preset 'huge'",
      ('--mode=predict', f'--config.predict.inputs={tmp_path}/absent'):
          f'predict.inputs: {tmp_path}/absent does not exist.',
  }

  def attempt(args):  # a workdir each: a run locks its own
    return harness.run(harness.command(
        workdir / str(list(cases).index(args)), data_dir, *args))

  with concurrent.futures.ThreadPoolExecutor(3) as pool:
    results = dict(zip(cases, pool.map(attempt, cases)))
  for args, expected in cases.items():
    result = results[args]
    assert result.returncode == 2, (args, result.stderr[-3000:])
    assert harness.error_line(result.stderr).startswith(expected), args
