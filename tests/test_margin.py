"""Pretraining beats the random encoder it starts from, in 3D and in 2D.

The demos' recipes (configs/synthetic.py:demo and configs/pose2d.py:demo,
whose rates are base.short_schedule's) through the CLI, on one CPU device
as the demos run, stopped early with pretrain.stop_at_step (the schedules
stay the 2,000-step demo's): the kNN monitor's top-1 at the stop must beat
its top-1 at step 0, the same encoder before any step. A broken part of
pretraining (loss, target update, predictor, augmentations, the encoder's
gradient) leaves the encoder near its random initialisation, which the
margin rejects. BYOL needs hundreds of steps before it passes its random
encoder (README, "Synthetic data"), a run compressed into fewer steps does
not get there (600 steps: 19.6 % against 22.2 % under linear_eval in 2D),
and where it passes depends on float rounding: two builds of the 3D demo
that differ only there had kNN 81.6 % and 45.1 % at step 400, against 61.1 %
at step 0, and 90.9 % and 75.1 % at step 1,000. Hence the stops at 1,000
(3D) and 800 (2D; kNN 19.1 -> 34.2 %). The full demos under linear_eval
are in docs/results.md.
"""
import json

import pytest

import pretrain_harness as harness
from data_prep import build
from data_prep import synthetic
from data_prep import synthetic_pose2d

# Both demos: 5 steps per epoch.
STEPS_PER_EPOCH = 5
# (config, stop step, kNN top-1 margin as a fraction; measured 0.298 (or
# 0.140) and 0.151, the slack is for other CPUs' floating point).
CASES = {'3d': ('configs/synthetic.py:demo', 1000, 0.08),
         '2d': ('configs/pose2d.py:demo', 800, 0.06)}
# 1,000 steps take 7 min alone, nearly twice that beside the suite's other
# worker.
TIMEOUT_S = 1500


def _build(kind: str, data_dir):
  if kind == '3d':
    synthetic.build_synthetic(data_dir)
  else:
    pickle_path = synthetic_pose2d.write_pickle(data_dir / 'synthetic.pkl')
    build.build('pose2d', str(pickle_path), str(data_dir),
                protocols=['xsub'], num_workers=1)


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_S + 120)
@pytest.mark.parametrize('kind', sorted(CASES))
def test_pretrained_encoder_beats_its_random_initialisation(
    kind, tmp_path_factory):
  config, stop, margin = CASES[kind]
  data_dir = tmp_path_factory.mktemp(f'synthetic_{kind}')
  _build(kind, data_dir)
  workdir = tmp_path_factory.mktemp(f'margin_{kind}')
  out = harness.run(
      harness.command(workdir, data_dir,
                      f'--config.pretrain.stop_at_step={stop}',
                      '--config.pretrain.knn_every_epochs='
                      f'{stop // STEPS_PER_EPOCH}',
                      config=config),
      devices=1, timeout=TIMEOUT_S)
  assert out.returncode == 0, out.stderr[-3000:]
  lines = (workdir / 'pretrain' / 'metrics.jsonl').read_text().splitlines()
  knn = {r['step']: r for r in map(json.loads, lines) if 'knn_top1' in r}
  assert sorted(knn) == [0, stop], knn
  assert knn[stop]['epoch'] == stop / STEPS_PER_EPOCH
  results = json.loads((workdir / 'pretrain' / 'results.json').read_text())
  assert (results['steps'], results['total_steps']) == (stop, 2000)
  assert knn[stop]['knn_top1'] >= knn[0]['knn_top1'] + margin, knn
