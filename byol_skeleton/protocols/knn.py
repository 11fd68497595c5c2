"""`--mode=knn`: weighted kNN top-1/top-5 of a pretraining run's online encoder.

evaluation/knn.py computes it; this mode restores the encoder and records the
result as every protocol does.
"""
import pathlib

import jax

from byol_skeleton.evaluation import knn
from byol_skeleton.pretraining import pretrained
from byol_skeleton.protocols import classifier
from byol_skeleton.train import metrics
from byol_skeleton.train import parallel

MODE = 'knn'


def run(config, workdir, checkpoint_step=None):
  mesh = parallel.make_mesh()
  variables, checkpoint, _ = pretrained.restore_pretrained(
      config, pretrained.pretrained_workdir(config, workdir), mesh,
      checkpoint_step)
  results = {**knn.knn_accuracy(config, variables, mesh, progress=True),
             'k': config.knn.k,
             'temperature': config.knn.temperature,
             'pretrained_checkpoint': checkpoint}
  # Classifier-style keys, so scripts read every mode the same way.
  results['top1'], results['top5'] = results['knn_top1'], results['knn_top5']
  log = metrics.MetricsLog(workdir / MODE, enabled=jax.process_index() == 0)
  log.write(int(pathlib.Path(checkpoint).name), knn_top1=results['top1'],
            knn_top5=results['top5'], feature_rank=results['feature_rank'])
  classifier.write_results(workdir / MODE, results, config)
  return results
