"""Evaluation protocols end to end on `synthetic`; their parts against numpy.

One tiny pretraining run (module fixture) feeds every protocol; each mode
runs through `run(config, workdir)`, writes results.json and restores its
checkpoint.
"""
import json
import pathlib
import pickle
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from byol_skeleton import errors
from byol_skeleton.data import pipeline
from byol_skeleton.evaluation import inference
from byol_skeleton.evaluation import knn
from byol_skeleton.evaluation import spectrum
from byol_skeleton.model import build
from byol_skeleton.model import heads
from byol_skeleton.pretraining import byol
from byol_skeleton.pretraining import pretrain
from byol_skeleton.pretraining import pretrained as pretrained_run
from byol_skeleton.protocols import classifier
from byol_skeleton.protocols import distill
from byol_skeleton.protocols import embed
from byol_skeleton.protocols import evaluate
from byol_skeleton.protocols import finetune
from byol_skeleton.protocols import knn as knn_mode
from byol_skeleton.protocols import linear
from byol_skeleton.protocols import predict
from byol_skeleton.protocols import supervised
from byol_skeleton.protocols import transfer
from byol_skeleton.protocols import tsne
from byol_skeleton.train import checkpoints
from byol_skeleton.train import optimizers
from byol_skeleton.train import parallel
from configs import synthetic as synthetic_config
from data_prep import synthetic


def tiny_config(data_dir, **fields):
  """configs/synthetic.py:tiny with short protocol runs; fields 'a.b': v."""
  c = synthetic_config.get_config('tiny')
  c.data.data_dir = str(data_dir)
  c.pretrain.checkpoint_every_steps = 1000
  c.eval.batch_size = 64
  c.eval.log_every_steps = 10
  c.eval.checkpoint_every_steps = 20
  c.linear.update(epochs=2, lr_decay_epochs=(1.2, 1.6))
  c.finetune.update(fraction=0.02, epochs=6, batch_size=8)
  c.supervised.update(epochs=1, batch_size=32)
  c.distill.update(epochs=1, batch_size=64)
  c.tsne.max_per_class = 15
  for name, value in fields.items():
    section, field = name.split('.')
    c[section][field] = value
  return c


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  directory = tmp_path_factory.mktemp('synthetic')
  synthetic.build_synthetic(directory)
  return directory


# Two epochs of 21 steps (350 train sequences, batch 16), kNN after each.
PRETRAIN_STEPS = 42


@pytest.fixture(scope='module')
def pretrained(data_dir, tmp_path_factory):
  """(config, workdir) of a finished tiny pretraining run."""
  config = tiny_config(data_dir, **{'pretrain.epochs': 2,
                                    'pretrain.knn_every_epochs': 1})
  workdir = tmp_path_factory.mktemp('run')
  pretrain.run(config, workdir)
  return config, workdir


def read_results(workdir, mode):
  return json.loads((pathlib.Path(workdir) / mode / 'results.json').read_text())


# Parts against independent computations.


def test_topk_accuracy_hand_values():
  scores = np.array([[0.1, 0.5, 0.4], [0.3, 0.3, 0.3], [0.9, 0.0, 0.1]])
  labels = np.array([2, 1, 1])
  assert inference.topk_accuracy(scores, labels, 1) == pytest.approx(0)
  # Ties rank the lower index first: row 2 ranks (0, 1, 2).
  assert inference.topk_accuracy(scores, labels, 2) == pytest.approx(2 / 3)
  assert inference.topk_accuracy(scores, labels, 5) == pytest.approx(1)
  matrix = inference.confusion_matrix(scores, labels, 3)
  np.testing.assert_array_equal(matrix, [[0, 0, 0], [2, 0, 0], [0, 1, 0]])


def test_distillation_loss_matches_numpy():
  rng = np.random.default_rng(0)
  student, teacher = rng.normal(size=(2, 6, 5)) * 3
  for tau in (1.0, 2.5):
    p_teacher = np.exp(teacher / tau)
    p_teacher /= p_teacher.sum(-1, keepdims=True)
    s = student / tau
    log_p_student = s - np.log(np.exp(s).sum(-1, keepdims=True))
    expected = np.mean(-np.sum(p_teacher * log_p_student, -1))
    np.testing.assert_allclose(
        distill.distillation_loss(student, teacher, tau), expected, rtol=1e-5)


def test_knn_votes_match_brute_force_numpy():
  rng = np.random.default_rng(1)
  train = spectrum.normalise(rng.normal(size=(300, 8)).astype(np.float32))
  test = spectrum.normalise(
      rng.normal(size=(knn.BLOCK + 7, 8)).astype(np.float32))
  labels = rng.integers(0, 4, 300)
  k, tau = 20, 0.1
  votes = knn.knn_votes(train, labels, test, 4, k, tau)
  sim = test.astype(np.float64) @ train.T.astype(np.float64)
  expected = np.zeros((len(test), 4))
  for i, row in enumerate(sim):
    for j in np.argsort(-row)[:k]:
      expected[i, labels[j]] += np.exp(row[j] / tau)
  np.testing.assert_allclose(votes, expected, rtol=1e-4)


def test_label_subset_class_balanced_and_reproducible(data_dir, tmp_path):
  config = tiny_config(data_dir)
  labels = pipeline.read_metadata(config.data, 'train').label
  a, path = finetune.label_subset(config, 0.1, 3, tmp_path / 'a')
  b, _ = finetune.label_subset(config, 0.1, 3, tmp_path / 'b')
  c, _ = finetune.label_subset(config, 0.1, 4, tmp_path / 'c')
  np.testing.assert_array_equal(a, b)
  assert set(a.tolist()) != set(c.tolist())
  assert len(set(a.tolist())) == len(a)
  sizes = np.bincount(labels)
  np.testing.assert_array_equal(np.bincount(labels[a], minlength=len(sizes)),
                                np.round(0.1 * sizes))
  saved = json.loads(pathlib.Path(path).read_text())
  assert saved['indices'] == a.tolist() and saved['seed'] == 3


def test_frozen_encoder_gets_no_gradient_and_uses_running_stats(data_dir):
  config = tiny_config(data_dir)
  net = build.classifier(config)
  x = jax.random.normal(jax.random.key(0), (4, 16, 2, 25, 6))
  variables = jax.jit(net.init, static_argnames='train')(
      jax.random.key(1), x, train=False)
  # Running statistics far from any batch's, so the two BN modes differ.
  variables['batch_stats'] = jax.tree.map(lambda s: s * 3.0 + 0.5,
                                          variables['batch_stats'])
  labels = jnp.array([0, 1, 2, 3])

  def loss(params, train_encoder):
    logits, stats = classifier.apply(
        net, {'params': params, 'batch_stats': variables['batch_stats']}, x,
        train=True, train_encoder=train_encoder, dropout_key=jax.random.key(2))
    return classifier.cross_entropy(logits, labels), stats

  grads, stats = jax.jit(jax.grad(loss, has_aux=True), static_argnums=1)(
      variables['params'], False)
  assert all(np.all(np.asarray(g) == 0)
             for g in jax.tree.leaves(grads['encoder']))
  assert any(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(grads['head']))
  jax.tree.map(np.testing.assert_array_equal, stats, variables['batch_stats'])
  # Frozen logits = head on the inference-mode features, by hand.
  features = jax.jit(build.encoder(config).apply,
                     static_argnums=2)(
      {'params': variables['params']['encoder'],
       'batch_stats': variables['batch_stats']['encoder']}, x, False)
  head = variables['params']['head']
  logits, _ = jax.jit(lambda v: classifier.apply(net, v, x, train=False))(
      variables)
  np.testing.assert_allclose(
      logits, np.asarray(features) @ np.asarray(head['kernel']) + head['bias'],
      rtol=1e-5, atol=1e-5)
  # In train mode the same function does update the statistics.
  _, stats = jax.jit(lambda v: classifier.apply(
      net, v, x, train=True, train_encoder=True,
      dropout_key=jax.random.key(2)))(variables)
  assert any(np.any(np.asarray(a) != np.asarray(b)) for a, b in zip(
      jax.tree.leaves(stats), jax.tree.leaves(variables['batch_stats'])))


def test_standardized_probe_is_linear_in_the_frozen_features(data_dir):
  """Head on features normalised by batch moments in training, running ones
  at test (a fixed affine map), checked against numpy; the frozen encoder's
  statistics do not move, the feature statistics do (momentum 0.9)."""
  config = tiny_config(data_dir)
  net = build.classifier(config, standardize_features=True)
  x = jax.random.normal(jax.random.key(0), (8, 16, 2, 25, 6))
  variables = jax.jit(net.init, static_argnames='train')(
      jax.random.key(1), x, train=False)
  features = np.asarray(jax.jit(lambda v: net.apply(
      v, x, False, method=heads.Classifier.features))(variables), np.float64)
  head = {k: np.asarray(v, np.float64)
          for k, v in variables['params']['head'].items()}
  eps = 1e-5  # flax BatchNorm's default

  logits, stats = jax.jit(lambda v: classifier.apply(net, v, x, train=True))(
      variables)
  mean, var = features.mean(0), features.var(0)
  np.testing.assert_allclose(
      logits, (features - mean) / np.sqrt(var + eps) @ head['kernel']
      + head['bias'], rtol=1e-4, atol=1e-4)
  jax.tree.map(np.testing.assert_array_equal, stats['encoder'],
               variables['batch_stats']['encoder'])
  np.testing.assert_allclose(stats['feature_norm']['mean'], 0.1 * mean,
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(stats['feature_norm']['var'], 0.9 + 0.1 * var,
                             rtol=1e-5, atol=1e-6)

  tested = {'params': variables['params'], 'batch_stats': stats}
  logits, _ = jax.jit(lambda v: classifier.apply(net, v, x, train=False))(
      tested)
  running_mean = np.asarray(stats['feature_norm']['mean'], np.float64)
  running_var = np.asarray(stats['feature_norm']['var'], np.float64)
  np.testing.assert_allclose(
      logits, (features - running_mean) / np.sqrt(running_var + eps)
      @ head['kernel'] + head['bias'], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('views', ['none', 'conservative'])
def test_linear_augment_picks_the_probe_training_views(data_dir, views):
  """linear.augment reaches the probe's train step: with 'none' the views
  are the clean ones, so the step's key changes nothing; 'conservative'
  draws a crop and a rate from it, so two keys give two updates."""
  config = tiny_config(data_dir, **{'linear.augment': views})
  recipe = linear.recipe(config)
  assert recipe.augment == views
  mesh = parallel.make_mesh()
  txs, _ = classifier.make_optimizers(recipe, 1, 1)
  step = classifier.make_train_step(config, recipe, txs, mesh, False)
  data = pipeline.EvalData(config, 'train', 64, drop_remainder=True)
  batch = parallel.to_device(next(iter(data)), mesh)

  def head_after_step(seed):  # a fresh state each time: the step donates it
    state = classifier.init_state(config, recipe, txs, mesh)
    state = state.replace(rng=jax.random.key_data(jax.random.key(seed)))
    return step(state, batch, {})[0].params['head']

  updated = [head_after_step(seed) for seed in (1, 2)]
  same = jax.tree.leaves(jax.tree.map(np.array_equal, *updated))
  assert all(same) == (views == 'none')


def test_finetune_encoder_rate_follows_head_after_freeze():
  r = classifier.Recipe(
      name='finetune/seed_0', epochs=3, batch_size=8, lr=10.0,
      reference_batch=8, schedule=classifier.cosine, momentum=0.9,
      weight_decay=0.0, encoder_lr_scale=1e-3, freeze_fraction=1 / 3)
  total = 30
  assert r.freeze_steps(total) == 10
  txs, lr = classifier.make_optimizers(r, 10, total)
  params = {'w': jnp.ones(())}
  for part, expected in (('head', lr(10)), ('encoder', 1e-3 * lr(10))):
    # One plain-SGD step from zero momentum moves w by the rate times grad,
    # after the head has taken 10 steps and the encoder none.
    state = txs[part].init(params)
    for _ in range(10 if part == 'head' else 0):
      _, state = txs[part].update({'w': jnp.zeros(())}, state, params)
    updates, _ = txs[part].update({'w': jnp.ones(())}, state, params)
    np.testing.assert_allclose(updates['w'], -expected, rtol=1e-6)


# Modes end to end, on one tiny pretraining run.


@pytest.fixture(scope='module')
def linear_run(pretrained):
  config, workdir = pretrained
  config = config.copy_and_resolve_references()
  config.linear.random_baseline = True
  return config, workdir, linear.run(config, workdir)


def test_linear_eval_freezes_encoder_and_learns(linear_run):
  config, workdir, results = linear_run
  saved = read_results(workdir, 'linear_eval')
  assert saved['top1'] == results['top1']
  assert saved['random_top1'] == read_results(workdir,
                                              'linear_eval/random')['top1']
  assert saved['pretrained_checkpoint'] == str(
      workdir / 'checkpoints' / str(PRETRAIN_STEPS))
  assert (workdir / 'linear_eval' / 'metrics.jsonl').exists()
  # The probe's encoder is the pretrained one, bit for bit: no gradient and
  # no BN statistics reached it.
  state, _ = classifier.restore(config, workdir, linear.recipe(config))
  encoder, _, _ = pretrained_run.restore_pretrained(config, workdir,
                                              parallel.make_mesh())
  jax.tree.map(np.testing.assert_array_equal, state.params['encoder'],
               encoder['params'])
  jax.tree.map(np.testing.assert_array_equal, state.batch_stats['encoder'],
               encoder['batch_stats'])
  # Well above chance (0.1). Beating the random encoder takes hundreds of
  # steps, not this run's 42: tests/test_margin.py asserts it.
  assert results['top1'] > 0.3, results
  random_state, _ = classifier.restore(
      config, workdir, linear.recipe(config, 'linear_eval/random'))
  assert not np.array_equal(
      random_state.params['encoder']['block1']['gcn_kernel'],
      encoder['params']['block1']['gcn_kernel'])


def test_rerun_with_other_settings_is_refused_not_reused(linear_run):
  config, workdir, _ = linear_run
  config = config.copy_and_resolve_references()
  lr = config.linear.lr
  config.linear.lr = lr / 10
  with pytest.raises(errors.UserError,
                     match=r"holds a run with linear\.lr=\S+ \(now \S+\), "
                           r'which this one would resume; use another '
                           r'--workdir, or --restart'):
    linear.run(config, workdir)
  config.linear.lr = lr  # as it was: reruns are welcome
  config.eval.log_every_steps = 7  # and so are other cadences
  assert linear.run(config, workdir)['top1'] == linear_run[2]['top1']


def test_evaluate_reproduces_the_probe_on_any_device_count(linear_run):
  config, workdir, results = linear_run
  evaluated = evaluate.run(config, workdir)
  assert evaluated['top1'] == pytest.approx(results['top1'])
  matrix = np.array(read_results(workdir, 'evaluate')['confusion_matrix'])
  assert matrix.sum() == results['num_examples']
  assert np.trace(matrix) / matrix.sum() == pytest.approx(results['top1'])
  assert evaluated['class_names'] == synthetic.ACTIONS
  assert (workdir / 'evaluate' / 'confusion.png').stat().st_size > 0
  # Saved on 8 devices, restored and evaluated on 2.
  recipe = linear.recipe(config)
  mesh = parallel.make_mesh(jax.devices()[:2])
  state, _ = classifier.restore(config, workdir, recipe, mesh=mesh)
  logits, labels = classifier.evaluate(config, recipe,
                                       classifier.variables_of(state), mesh)
  assert inference.topk_accuracy(logits, labels, 1) == pytest.approx(
      results['top1'])
  # An earlier checkpoint, then missing and incompatible ones.
  ckpts = checkpoints.Checkpoints(workdir / 'linear_eval' / 'checkpoints',
                                  read_only=True)
  first = ckpts.all_steps()[0]
  assert evaluate.run(config, workdir, checkpoint_step=first)[
      'checkpoint'].endswith(f'/{first}')
  with pytest.raises(errors.UserError, match='available steps'):
    evaluate.run(config, workdir, checkpoint_step=first + 1)
  wider = config.copy_and_resolve_references()
  wider.model.width = 0.25
  with pytest.raises(checkpoints.CheckpointMismatchError, match='encoder'):
    evaluate.run(wider, workdir)
  wider.eval.run = 'supervised'
  with pytest.raises(errors.UserError, match='No classifier checkpoints'):
    evaluate.run(wider, workdir)


def test_knn_mode_and_monitor(pretrained):
  config, workdir = pretrained
  results = knn_mode.run(config, workdir)
  saved = read_results(workdir, 'knn')
  assert saved['knn_top1'] == results['knn_top1'] == results['top1']
  assert 0.1 < results['knn_top1'] <= results['knn_top5'] <= 1
  encoder, _, _ = pretrained_run.restore_pretrained(config, workdir,
                                              parallel.make_mesh())
  monitor = knn.KnnMonitor(config, parallel.make_mesh())
  assert monitor(encoder) == {'knn_top1': results['knn_top1'],
                              'knn_top5': results['knn_top5'],
                              'feature_rank': results['feature_rank']}
  assert 1 <= saved['feature_rank'] <= 32  # the tiny encoder's feature size


def test_pretraining_logs_knn_every_epoch(pretrained):
  """pretrain.knn_every_epochs=1: a kNN record before the first step (the
  random encoder) and after each epoch in metrics.jsonl; the first is the kNN
  of the initial state, the last the kNN mode's accuracy of the final
  checkpoint."""
  config, workdir = pretrained
  records = [json.loads(line) for line in
             (workdir / 'pretrain' / 'metrics.jsonl').read_text().splitlines()]
  logged = [r for r in records if 'knn_top1' in r]
  steps_per_epoch = PRETRAIN_STEPS // config.pretrain.epochs
  assert [r['step'] for r in logged] == [0] + [
      steps_per_epoch * (e + 1) for e in range(config.pretrain.epochs)]
  assert [r['epoch'] for r in logged] == [0.0, 1.0, 2.0]
  net = build.byol_network(config)
  tx = optimizers.byol_optimizer(config.pretrain, lambda step: 0.0)
  initial = jax.jit(lambda rng: byol.init_state(
      net, tx, rng, build.sample_input(config)))(jax.random.key(config.seed))
  at_init = knn.knn_accuracy(config, byol.online_encoder(initial))
  assert (logged[0]['knn_top1'], logged[0]['knn_top5']) == (
      at_init['knn_top1'], at_init['knn_top5'])
  for r in logged:
    assert 0 <= r['knn_top1'] <= r['knn_top5'] <= 1
  final = knn_mode.run(config, workdir)
  assert (logged[-1]['knn_top1'], logged[-1]['knn_top5'],
          logged[-1]['feature_rank']) == (
              final['knn_top1'], final['knn_top5'], final['feature_rank'])
  assert logged[0]['feature_rank'] == at_init['feature_rank']


@pytest.fixture(scope='module')
def finetuned(pretrained):
  config, workdir = pretrained
  config = config.copy_and_resolve_references()
  config.finetune.seeds = 2
  return config, workdir, finetune.run(config, workdir)


def test_finetune_seeds_subsets_and_summary(finetuned):
  config, workdir, results = finetuned
  per_seed = [read_results(workdir, f'finetune/seed_{s}') for s in (0, 1)]
  top1 = [r['top1'] for r in per_seed]
  assert results['top1'] == pytest.approx(np.mean(top1))
  assert results['top1_std'] == pytest.approx(np.std(top1))
  assert read_results(workdir, 'finetune')['seeds'] == [0, 1]
  labels = pipeline.read_metadata(config.data, 'train').label
  for seed, r in enumerate(per_seed):
    subset = json.loads(pathlib.Path(r['subset']).read_text())['indices']
    np.testing.assert_array_equal(
        subset, pipeline.class_balanced_subset(labels, 0.02, seed))
    assert r['train_examples'] == len(subset) == 20
  # After its frozen third the encoder trained (so did its BN statistics).
  state, _ = classifier.restore(config, workdir, finetune.recipe(
      config, 'finetune/seed_0'))
  encoder, _, _ = pretrained_run.restore_pretrained(config, workdir,
                                              parallel.make_mesh())
  moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != b)),
                       state.params['encoder'], encoder['params'])
  assert all(jax.tree.leaves(moved))


def _sigterm_at(monkeypatch, step: int):
  """SIGTERM while the training batch of `step` (0-based) is fetched."""
  fetch = pipeline.EvalData.next_batch

  def next_batch(data):
    if data.get_state()['step'] == step:
      signal.raise_signal(signal.SIGTERM)
    return fetch(data)

  monkeypatch.setattr(pipeline.EvalData, 'next_batch', next_batch)


@pytest.mark.parametrize('mode', ['linear_eval', 'finetune'])
def test_interrupted_protocol_saves_then_resumes_bitwise(
    mode, linear_run, finetuned, tmp_path, monkeypatch):
  """SIGTERM mid-run saves the step reached; the same call then ends where
  the uninterrupted run (the fixtures') did, bit for bit."""
  config, source, _ = linear_run if mode == 'linear_eval' else finetuned
  config = config.copy_and_resolve_references()
  config.eval.pretrained_workdir = str(source)
  config.linear.random_baseline = False
  config.finetune.seeds = 1
  name, run, recipe, stop_at = {
      # linear: between the saves at 20 and 40; finetune: 12 steps, the
      # encoder unfrozen from step 4 on
      'linear_eval': ('linear_eval', linear.run, linear.recipe, 25),
      'finetune': ('finetune/seed_0', finetune.run, finetune.recipe, 6),
  }[mode]
  _sigterm_at(monkeypatch, stop_at - 1)
  with pytest.raises(errors.Interrupted, match=f'saved step {stop_at} in '):
    run(config, tmp_path)
  monkeypatch.undo()
  steps = checkpoints.Checkpoints(tmp_path / name / 'checkpoints',
                                  read_only=True).all_steps()
  assert max(steps) == stop_at
  assert not (tmp_path / name / 'results.json').exists()
  resumed = run(config, tmp_path)
  want, _ = classifier.restore(config, source, recipe(config, name))
  got, _ = classifier.restore(config, tmp_path, recipe(config, name))
  assert int(got.step) == int(want.step) > stop_at
  jax.tree.map(np.testing.assert_array_equal, got, want)
  assert resumed['top1'] == read_results(source, name)['top1']


def test_distill_student_from_finetuned_teacher(finetuned, tmp_path):
  config, teacher_workdir, _ = finetuned
  config = config.copy_and_resolve_references()
  config.finetune.seeds = 1
  config.distill.teacher_workdir = str(teacher_workdir)
  config.distill.teacher_width = config.model.width
  results = distill.run(config, tmp_path)
  saved = read_results(tmp_path, 'distill/seed_0')
  assert saved['teacher_checkpoint'].startswith(
      str(teacher_workdir / 'finetune' / 'seed_0' / 'checkpoints'))
  assert results['top1'] == saved['top1']
  state, _ = classifier.restore(config, tmp_path,
                                distill.recipe(config, 'distill/seed_0'))
  assert int(state.step) == saved['steps'] == 1050 // 64
  config.distill.teacher_workdir = str(tmp_path / 'nothing')
  with pytest.raises(errors.UserError, match='No classifier checkpoints'):
    distill.run(config, tmp_path)


def test_supervised_baseline_on_a_label_subset(data_dir, tmp_path):
  config = tiny_config(data_dir, **{'supervised.fraction': 0.1})
  results = supervised.run(config, tmp_path)
  saved = read_results(tmp_path, 'supervised')
  assert saved['top1'] == results['top1'] and saved['train_examples'] == 100
  config.eval.run = 'supervised'
  assert evaluate.run(config, tmp_path)['top1'] == pytest.approx(
      results['top1'])


def test_transfer_checks_layouts_then_probes(pretrained, data_dir, tmp_path):
  config, source = pretrained
  config = tiny_config(data_dir, **{'transfer.protocol': 'linear',
                                    'linear.epochs': 1,
                                    'linear.lr_decay_epochs': (0.6, 0.8)})
  with pytest.raises(errors.UserError, match='source_workdir'):
    transfer.run(config, tmp_path)
  config.transfer.source_workdir = str(source)
  other = config.copy_and_resolve_references()
  other.data.layout = 'kinect_v1_20'
  with pytest.raises(errors.UserError, match="'ntu25'.*'kinect_v1_20'"):
    transfer.run(other, tmp_path)
  results = transfer.run(config, tmp_path)
  assert read_results(tmp_path, 'transfer')['pretrained_checkpoint'] == str(
      source / 'checkpoints' / str(PRETRAIN_STEPS))
  config.eval.run = 'transfer'
  assert evaluate.run(config, tmp_path)['top1'] == pytest.approx(
      results['top1'])
  # Fine-tuning (Table 6) trains on every training label of the target.
  config.transfer.update(protocol='finetune', epochs=1, batch_size=64)
  tuned = transfer.run(config, tmp_path / 'finetuned')
  saved = read_results(tmp_path / 'finetuned', 'transfer/seed_0')
  labels = pipeline.read_metadata(config.data, 'train').label
  assert saved['fraction'] == 1.0
  assert saved['train_examples'] == len(labels) == 1050
  assert saved['steps'] == 1050 // 64 and tuned['top1'] == saved['top1']


def test_tsne_plot(pretrained):
  config, workdir = pretrained
  results = tsne.run(config, workdir)
  assert len(results['classes']) == 10 and results['num_points'] == 150
  assert (workdir / 'tsne' / 'tsne.png').stat().st_size > 0
  assert read_results(workdir, 'tsne')['classes'] == list(results['classes'])
  assert results['class_names'] == [synthetic.ACTIONS[c]
                                    for c in results['classes']]


# predict and embed: recording files and features out.


def _write_raw_test_views(folder, every: int = 1) -> dict:
  """Every `every`-th camera view of the synthetic test split, as the camera
  recorded it (before preprocessing), as FOLDER/<sample name>.npy;
  {sample name: path}."""
  folder.mkdir(parents=True, exist_ok=True)
  test_subjects = [s for s in range(1, synthetic.NUM_SUBJECTS + 1)
                   if s not in synthetic.TRAIN_SUBJECTS]
  views = list(synthetic.camera_views(0, test_subjects,
                                      synthetic.DEFAULT_REPETITIONS))
  paths = {}
  for name, example in views[::every]:
    paths[name] = str(folder / f'{name}.npy')
    np.save(paths[name], example['skeleton'])
  return paths


def _by_sample_name(config, split, values):
  names = pipeline.read_metadata(config.data, split).sample_name
  return {n.decode(): v for n, v in zip(names, values)}


def test_predict_on_raw_recordings_equals_evaluate(linear_run, tmp_path,
                                                   capsys):
  """The test split's recordings, as raw camera-frame files, get the top 5
  (indices and softmax probabilities) of evaluate's logits of their stored
  examples."""
  config, workdir, _ = linear_run
  paths = _write_raw_test_views(tmp_path / 'raw', every=9)
  config = config.copy_and_resolve_references()
  config.predict.inputs = str(tmp_path / 'raw')
  results = predict.run(config, workdir)
  assert (results['num_predicted'], results['num_skipped']) == (50, 0)
  recipe = linear.recipe(config)
  state, _ = classifier.restore(config, workdir, recipe)
  logits, _ = classifier.evaluate(config, recipe,
                                  classifier.variables_of(state),
                                  parallel.make_mesh())
  expected = _by_sample_name(config, 'test', logits)
  rows = [json.loads(line) for line in
          (workdir / 'predict' / 'predictions.jsonl').read_text().splitlines()]
  assert [r['path'] for r in rows] == sorted(paths.values())
  for row in rows:
    z = expected[pathlib.Path(row['path']).stem].astype(np.float64)
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    top = np.argsort(-p, kind='stable')[:5]
    assert row['indices'] == top.tolist()
    np.testing.assert_allclose(row['probabilities'], p[top], rtol=1e-4,
                               atol=1e-6)
    assert row['names'] == [synthetic.ACTIONS[c] for c in top]
  printed = capsys.readouterr().out.splitlines()
  assert printed[0].split()[:3] == ['recording', 'top', '1']
  first = rows[0]
  assert printed[2].split()[:3] == [first['path'], first['names'][0],
                                    f'{first["probabilities"][0]:.3f}']
  assert printed[-1].startswith('50 recordings predicted by linear_eval')


def test_predict_skips_broken_recordings_and_names_them(linear_run,
                                                        tmp_path):
  config, workdir, _ = linear_run
  folder = tmp_path / 'mixed'
  good = _write_raw_test_views(folder, every=150)
  (folder / 'broken.skeleton').write_text('2\n1\n')
  np.save(folder / 'twenty_joints.npy', np.ones((20, 1, 20, 3), np.float32))
  np.save(folder / 'nobody.npy', np.zeros((20, 2, 25, 3), np.float32))
  (folder / 'notes.md').write_text('not a recording')
  (folder / 'coco.pkl').write_bytes(pickle.dumps({'keypoint': 0}))
  config = config.copy_and_resolve_references()
  config.predict.inputs = str(folder)
  results = predict.run(config, workdir)
  assert results['num_predicted'] == len(good) == 3
  skipped = {pathlib.Path(s['path']).name: (s['reason'], s['message'])
             for s in read_results(workdir, 'predict')['skipped']}
  assert skipped == {
      'broken.skeleton': ('unreadable file', 'line 3: expected a body-info '
                          'line of frame 1, got end of file'),
      'twenty_joints.npy': ('wrong joint count', "20 joints, but the "
                            "config's layout 'ntu25' has 25"),
      'nobody.npy': ('no body in any frame', 'no body in any frame'),
      'coco.pkl': ('wrong joint count', "a .pkl file holds 'coco17' "
                   "keypoints, but the config's layout is 'ntu25'")}
  rows = (workdir / 'predict' / 'predictions.jsonl').read_text().splitlines()
  assert [json.loads(r)['path'] for r in rows] == sorted(good.values())
  # Nothing readable: one error naming the files and why.
  config.predict.inputs = (f'{folder / "broken.skeleton"},'
                           f'{folder / "nobody.npy"}')
  with pytest.raises(errors.UserError,
                     match=r'none of the 2 recordings could be read \(.*'
                           r'broken\.skeleton: unreadable file: .*nobody\.npy:'
                           r' no body in any frame'):
    predict.run(config, workdir)
  config.predict.inputs = str(tmp_path / 'absent')
  with pytest.raises(errors.UserError, match='absent does not exist'):
    predict.run(config, workdir)


def test_embed_features_are_the_ones_knn_uses(linear_run, tmp_path):
  """Features, labels and keys of both splits from the online encoder: kNN
  and the effective rank on them are what the pretraining's kNN monitor
  logged for its last checkpoint. Raw recording files get the features of
  their stored examples; the probe's (frozen) encoder gives the same, the
  target encoder others."""
  config, workdir, _ = linear_run
  config = config.copy_and_resolve_references()
  saved = {}
  for split in ('train', 'test'):
    config.embed.split = split
    results = embed.run(config, workdir)
    assert results['file'] == str(workdir / 'embed' / f'{split}.npz')
    saved[split] = dict(np.load(results['file']))
    meta = pipeline.read_metadata(config.data, split)
    np.testing.assert_array_equal(saved[split]['labels'], meta.label)
    assert saved[split]['keys'].tolist() == [
        n.decode() for n in meta.sample_name]
    assert saved[split]['class_names'].tolist() == list(synthetic.ACTIONS)
  train, test = saved['train'], saved['test']
  votes = knn.knn_votes(spectrum.normalise(train['features']),
                        train['labels'], spectrum.normalise(test['features']),
                        config.data.num_classes, config.knn.k,
                        config.knn.temperature)
  log = (workdir / 'pretrain' / 'metrics.jsonl').read_text().splitlines()
  logged = [json.loads(line) for line in log if 'knn_top1' in line][-1]
  assert logged['step'] == PRETRAIN_STEPS
  assert (inference.topk_accuracy(votes, test['labels'], 1),
          inference.topk_accuracy(votes, test['labels'], 5)) == (
              logged['knn_top1'], logged['knn_top5'])
  assert spectrum.effective_rank(spectrum.normalise(
      test['features'])) == pytest.approx(logged['feature_rank'], rel=1e-6)

  paths = _write_raw_test_views(tmp_path / 'raw', every=10)
  config.embed.inputs = str(tmp_path / 'raw')
  results = embed.run(config, workdir)
  assert results['file'] == str(workdir / 'embed' / 'inputs.npz')
  raw = dict(np.load(results['file']))
  assert raw['keys'].tolist() == sorted(paths.values())
  np.testing.assert_array_equal(raw['labels'], -1)
  stored = _by_sample_name(config, 'test', test['features'])
  np.testing.assert_allclose(
      raw['features'], [stored[pathlib.Path(k).stem] for k in raw['keys']],
      rtol=1e-4, atol=1e-5)
  config.embed.run = 'linear_eval'
  probe = np.load(embed.run(config, workdir)['file'])['features']
  np.testing.assert_allclose(probe, raw['features'], rtol=1e-5, atol=1e-6)
  with pytest.raises(errors.UserError, match="needs embed.run='pretrain'"):
    config.embed.encoder = 'target'
    embed.run(config, workdir)
  config.embed.run = 'pretrain'
  target = np.load(embed.run(config, workdir)['file'])['features']
  assert target.shape == raw['features'].shape
  assert not np.allclose(target, raw['features'], atol=1e-3)
