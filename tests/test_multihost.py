"""Two processes on 127.0.0.1 (2 CPU devices each, jax.distributed with gloo
collectives) against one process with 4 devices, same global batches."""
import json
import socket
import subprocess

import numpy as np
import pytest

import pretrain_harness as harness

STEPS = 3
# A larger learning rate than the tiny config's so that 3 steps move the
# parameters far more than the float tolerance of the comparison.
FLAGS = (f'--config.pretrain.steps_override={STEPS}',
         '--config.pretrain.checkpoint_every_steps=1',
         '--config.pretrain.base_lr=5.0')
# Relative L2 distance per part of the state (per element it would not do:
# biases that feed a BatchNorm get zero gradient up to rounding, so their
# values are rounding noise). Measured: parameters and statistics <= 2e-6,
# the optimizer's momentum (gradients, noisier) 3e-4; the 3 steps move the
# online parameters by 2e-2.
TOLERANCE = 2e-5
OPT_STATE_TOLERANCE = 2e-3


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  return harness.build_data(tmp_path_factory)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _parts(leaves: dict) -> dict:
  """'.online_params', '.opt_state', ... -> all their leaves, flattened."""
  parts = {}
  for key, value in leaves.items():
    parts.setdefault(key.split('[')[0], []).append(value.ravel())
  return {k: np.concatenate(v).astype(np.float64) for k, v in parts.items()}


def _relative_distance(a, b) -> float:
  return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def _results(workdir) -> dict:
  return json.loads((workdir / 'pretrain' / 'results.json').read_text())


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, data_dir):
  pair, single = tmp_path / 'pair', tmp_path / 'single'
  coordinator = (f'--coordinator_address=127.0.0.1:{_free_port()}',
                 '--num_processes=2')
  # The pair's process 1 compiles every time (only process 0 writes the
  # compilation cache): compile fast, run slow.
  runs = {
      f'process{i}': harness.start(
          harness.command(pair, data_dir, *FLAGS, *coordinator,
                          f'--process_id={i}'),
          tmp_path / f'process{i}.log', devices=2, fast_compile=True)
      for i in range(2)}
  runs['single'] = harness.start(harness.command(single, data_dir, *FLAGS),
                                 tmp_path / 'single.log', devices=4,
                                 fast_compile=True)
  try:
    for name, proc in runs.items():
      log = (tmp_path / f'{name}.log').read_text
      try:
        assert proc.wait(harness.TIMEOUT_S) == 0, log()[-3000:]
      except subprocess.TimeoutExpired:
        pytest.fail(f'{name} did not end:\n{log()[-3000:]}')
  finally:
    for proc in runs.values():
      if proc.poll() is None:
        proc.kill()

  # Every replica on both hosts holds the same bits.
  digests = _results(pair)['state_digests']
  assert len(digests) == 4 and len(set(digests)) == 1, digests
  # Only process 0 writes the run's files.
  assert len((pair / 'pretrain' / 'metrics.jsonl').read_text().splitlines()) \
      == len((single / 'pretrain' / 'metrics.jsonl').read_text().splitlines())

  # The pair's checkpoints restore in this single process (8 devices).
  assert harness.committed_steps(pair) == [1, 2, 3]
  got, got_data = harness.restore(pair)
  want, want_data = harness.restore(single)
  assert got_data == want_data == dict(got_data, step=STEPS)
  assert int(got.step) == STEPS
  first = _parts(harness.leaves(harness.restore(single, 1)[0]))
  got, want = _parts(harness.leaves(got)), _parts(harness.leaves(want))
  assert got.keys() == want.keys()
  for part in want:
    tolerance = OPT_STATE_TOLERANCE if part == '.opt_state' else TOLERANCE
    assert _relative_distance(got[part], want[part]) < tolerance, part
  # Not vacuous: steps 2-3 moved the parameters far beyond the tolerance.
  assert _relative_distance(first['.online_params'],
                            want['.online_params']) > 100 * TOLERANCE
  assert _results(pair)['final_loss'] == pytest.approx(
      _results(single)['final_loss'], rel=TOLERANCE)
