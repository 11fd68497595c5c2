"""`--mode=embed`: an encoder's features of a split, or of recording files.

embed.run picks the encoder: 'pretrain', the pretraining run's (in
eval.pretrained_workdir, or the workdir), its online encoder or with
embed.encoder='target' its target; or a classifier run named as eval.run
('linear_eval', 'finetune/seed_0', 'supervised', ...), its encoder as that
run left it. --checkpoint_step picks the checkpoint (default: latest).

The features are the encoder's outputs (not normalised) on test-time views,
as kNN and t-SNE compute them, of embed.split's examples, or of the
recordings embed.inputs names (files or folders, comma-separated, read as
--mode=predict reads them). Writes WORKDIR/embed/<split>.npz, or inputs.npz:
  features (N, D) float32; labels (N,) int32, -1 for recording files;
  keys (N,) the recordings' ids (sample names, or the files' paths);
  class_names (num_classes,) the dataset's action names.
"""
import dataclasses
import pathlib

import jax
import numpy as np

from byol_skeleton import errors
from byol_skeleton.data import pipeline
from byol_skeleton.evaluation import inference
from byol_skeleton.evaluation import knn
from byol_skeleton.pretraining import pretrained
from byol_skeleton.protocols import classifier
from byol_skeleton.protocols import evaluate
from byol_skeleton.protocols import inputs
from byol_skeleton.train import parallel

MODE = 'embed'
PRETRAIN = 'pretrain'


def restore_encoder(config, workdir, mesh, checkpoint_step=None):
  """(encoder variables, width or None, checkpoint path) of embed.run."""
  ec = config.embed
  if ec.run == PRETRAIN:
    variables, checkpoint, _ = pretrained.restore_pretrained(
        config, pretrained.pretrained_workdir(config, workdir), mesh,
        checkpoint_step, ec.encoder)
    return variables, None, checkpoint
  if ec.encoder != 'online':
    raise errors.UserError(
        f'embed.encoder={ec.encoder!r} needs embed.run={PRETRAIN!r}; a '
        f'classifier run ({ec.run!r}) has one encoder.')
  recipe = evaluate.recipe_for(config, ec.run, 'embed.run')
  state, checkpoint = classifier.restore(config, workdir, recipe,
                                         checkpoint_step, mesh)
  return ({'params': state.params['encoder'],
           'batch_stats': state.batch_stats['encoder']}, recipe.width,
          checkpoint)


def run(config, workdir, checkpoint_step=None):
  ec = config.embed
  mesh = parallel.make_mesh()
  skipped = []
  if ec.inputs:
    recordings = inputs.read(config, 'embed.inputs', ec.inputs)
    name, data, keys = 'inputs', recordings.data(config), recordings.paths
    names, skipped = inputs.class_names(config), recordings.skipped
  else:
    name = ec.split
    data = pipeline.EvalData(config, ec.split, config.eval.batch_size)
    keys = [k.decode() for k in
            pipeline.read_metadata(config.data, ec.split).sample_name]
    names = pipeline.class_names(config.data)
  variables, width, checkpoint = restore_encoder(config, workdir, mesh,
                                                 checkpoint_step)
  features, labels = inference.predict(knn.feature_fn(config, mesh, width),
                                       variables, data, mesh, desc='embed')
  out = pathlib.Path(workdir) / MODE
  path = out / f'{name}.npz'
  if jax.process_index() == 0:
    out.mkdir(parents=True, exist_ok=True)
    np.savez(path, features=features, labels=labels.astype(np.int32),
             keys=np.array(keys), class_names=np.array(names))
    print(f'{features.shape[0]} features of size {features.shape[1]} from '
          f'{ec.run} ({checkpoint}): {path}')
  results = {'file': str(path), 'num_examples': len(features),
             'feature_dim': features.shape[1], 'run': ec.run,
             'encoder': ec.encoder if ec.run == PRETRAIN else 'classifier',
             'checkpoint': checkpoint,
             'num_skipped': len(skipped),
             'skipped': [dataclasses.asdict(s) for s in skipped]}
  classifier.write_results(out, results, config)
  return results
