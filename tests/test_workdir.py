"""The workdir lock: one run per mode and workdir, released however it ends."""
import os
import re
import signal
import subprocess
import sys

import pytest

from byol_skeleton import errors
from byol_skeleton.train import workdir
import pretrain_harness as harness


def test_second_run_of_a_mode_is_refused_naming_the_holder(tmp_path):
  with workdir.mode_lock(tmp_path, 'pretrain'):
    with pytest.raises(errors.UserError,
                       match=rf'in use by another pretrain run \(PID '
                             rf'{os.getpid()} on \S+, since '):
      workdir.mode_lock(tmp_path, 'pretrain')
    with workdir.mode_lock(tmp_path, 'linear_eval'):  # another mode: fine
      pass
  workdir.mode_lock(tmp_path, 'pretrain').release()  # free again


def test_lock_dies_with_its_process(tmp_path):
  holder = subprocess.Popen(
      [sys.executable, '-c',
       'import sys, time; from byol_skeleton.train import workdir; '
       f'workdir.mode_lock({str(tmp_path)!r}, "pretrain"); print("held", '
       'flush=True); time.sleep(600)'],
      cwd=harness.REPO, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'held'
    with pytest.raises(errors.UserError, match=f'PID {holder.pid} on '):
      workdir.mode_lock(tmp_path, 'pretrain')
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
  workdir.mode_lock(tmp_path, 'pretrain').release()


def test_cli_refuses_a_busy_workdir_in_one_sentence(tmp_path):
  with workdir.mode_lock(tmp_path, 'pretrain'):
    result = harness.run(harness.command(tmp_path, tmp_path / 'no_data'))
  assert result.returncode == 2, result.stderr[-3000:]
  message = harness.error_line(result.stderr)
  assert re.fullmatch(rf'--workdir {tmp_path} is in use by another pretrain '
                      rf'run \(PID {os.getpid()} on .+\); wait for it to end '
                      r'or use another --workdir\.', message), message
  assert not (tmp_path / 'checkpoints').exists()


def test_prepare_rejects_a_file_and_creates_a_directory(tmp_path):
  (tmp_path / 'file').write_text('')
  with pytest.raises(errors.UserError, match='exists and is not a directory'):
    workdir.prepare(tmp_path / 'file')
  assert workdir.prepare(tmp_path / 'a' / 'b').is_dir()


def test_set_aside_moves_a_modes_outputs_but_not_its_lock(tmp_path):
  for path in ('pretrain/metrics.jsonl', 'checkpoints/4/x', 'linear_eval/r'):
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(path)
  with workdir.mode_lock(tmp_path, 'pretrain'):
    aside = workdir.set_aside(tmp_path, 'pretrain')
  assert aside.parent == tmp_path / 'replaced'
  assert sorted(p.name for p in aside.iterdir()) == ['checkpoints',
                                                     'metrics.jsonl']
  assert (aside / 'checkpoints' / '4' / 'x').read_text() == 'checkpoints/4/x'
  assert [p.name for p in (tmp_path / 'pretrain').iterdir()] == ['lock']
  assert (tmp_path / 'linear_eval' / 'r').exists()  # other modes untouched
  assert workdir.set_aside(tmp_path, 'pretrain') is None
