"""`--mode=predict`: a classifier run's five likeliest actions per recording.

predict.run names a classifier run under the workdir as eval.run does
('linear_eval', 'finetune/seed_N', 'supervised', 'distill/seed_N',
'transfer', 'transfer/seed_N'); --checkpoint_step its checkpoint (default:
latest). The config must describe the run, as for --mode=evaluate.

predict.inputs: recording files or folders, comma-separated: NTU
`.skeleton`, NW-UCLA `.json`, PKU-MMD II `.txt`, `.npy` / `.npz` arrays
(T, M, V, 3) in the config's joint layout, or `.pkl` 2D COCO-17 keypoint
annotations of a pose estimator (mmaction2 / PYSKL; one row per annotation,
named PATH:frame_dir) (data/raw/recording.py). They are
read and preprocessed by the builders' own code and seen through
evaluation's test-time view. A file that gives no skeleton is skipped with
its reason and the others are predicted.

Prints a table, one row per recording, and writes WORKDIR/predict/:
predictions.jsonl, one object per recording {path, names, indices,
probabilities} of the top 5; results.json, the counts and skipped files.
"""
import dataclasses
import json
import pathlib

import jax
import numpy as np

from byol_skeleton.evaluation import inference
from byol_skeleton.protocols import classifier
from byol_skeleton.protocols import evaluate
from byol_skeleton.protocols import inputs
from byol_skeleton.train import parallel

MODE = 'predict'
TOP_K = 5


def top_k(logits, k: int):
  """(indices (N, k), probabilities (N, k)): the k most probable classes,
  ranked as inference.top_classes ranks scores."""
  logits = np.asarray(logits, np.float64)
  p = np.exp(logits - logits.max(axis=1, keepdims=True))
  p /= p.sum(axis=1, keepdims=True)
  indices = inference.top_classes(p, k)
  return indices, np.take_along_axis(p, indices, axis=1)


def table(paths, indices, probabilities, class_names) -> str:
  """One row per recording: its path, then 'name probability' per rank."""
  header = ['recording'] + [f'top {i + 1}' for i in range(indices.shape[1])]
  rows = [[path] + [f'{class_names[c]} {p:.3f}' for c, p in zip(cs, ps)]
          for path, cs, ps in zip(paths, indices, probabilities)]
  widths = [max(len(row[i]) for row in [header] + rows)
            for i in range(len(header))]
  lines = ['  '.join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
           for row in [header] + rows]
  return '\n'.join([lines[0], '-' * len(lines[0])] + lines[1:])


def run(config, workdir, checkpoint_step=None):
  pc = config.predict
  recipe = evaluate.recipe_for(config, pc.run, 'predict.run')
  recordings = inputs.read(config, 'predict.inputs', pc.inputs)
  names = inputs.class_names(config)
  mesh = parallel.make_mesh()
  state, checkpoint = classifier.restore(config, workdir, recipe,
                                         checkpoint_step, mesh)
  logits, _ = inference.predict(
      classifier.logits_fn(config, recipe, mesh),
      classifier.variables_of(state), recordings.data(config), mesh,
      desc='predict')
  indices, probabilities = top_k(logits, min(TOP_K, logits.shape[1]))
  out = pathlib.Path(workdir) / MODE
  results = {'run': pc.run, 'checkpoint': checkpoint,
             'predictions': str(out / 'predictions.jsonl'),
             'num_predicted': len(recordings.paths),
             'num_skipped': len(recordings.skipped),
             'skipped': [dataclasses.asdict(s) for s in recordings.skipped]}
  if jax.process_index() == 0:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / 'predictions.jsonl', 'w') as f:
      for path, cs, ps in zip(recordings.paths, indices, probabilities):
        f.write(json.dumps({
            'path': path, 'names': [names[c] for c in cs],
            'indices': cs.tolist(), 'probabilities': ps.tolist()}) + '\n')
    print(table(recordings.paths, indices, probabilities, names))
    skipped = (f', {len(recordings.skipped)} skipped (reasons in '
               f'{out / "results.json"})' if recordings.skipped else '')
    print(f'{len(recordings.paths)} recordings predicted by {pc.run} '
          f'({checkpoint}){skipped}; {results["predictions"]}')
  classifier.write_results(out, results, config)
  return results
