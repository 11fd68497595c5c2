"""--mode=visualize: a few recordings of a split as the encoder sees them.

visualize.num_examples recordings of as many classes of the visualize.split
split (drawn with visualize.seed), each as three views side by side: the clean
test-time view, and the training views T1 (augment.view1) and T2
(augment.view2) made by the training step's own augmentation code, so the
augment.* and data.* fields change the picture. Per recording it writes
WORKDIR/visualize/<split>_<index>_<action>.gif (every frame of the views) and
.png (visualize.frames of them), and results.json lists the files.
"""
import dataclasses
import functools
import pathlib
import re

import jax
import jax.numpy as jnp
import tqdm

from byol_skeleton import errors
from byol_skeleton.data import augment
from byol_skeleton.data import pipeline
from byol_skeleton.data import render
from byol_skeleton.protocols import tsne
from byol_skeleton.train import metrics

MODE = 'visualize'


def make_views(config, pipeline_name: str, key, skeletons, lengths):
  """(joints (B, num_frames, M, V, 3), drawn joints (B, V) bool) of the
  views `pipeline_name` makes of a padded batch, one key per recording."""
  spec = dataclasses.replace(augment.view_spec(config, pipeline_name),
                             use_bones=False)

  def view(k, skeleton, length):
    params = augment.sample_params(k, spec)
    keep = (jnp.ones(spec.layout.num_joints) if params.keep is None
            else params.keep)
    return augment.apply_view(params, skeleton, length, spec), keep > 0

  return jax.device_get(jax.jit(functools.partial(
      augment.augment_batch, view))(key, skeletons, lengths))


def action_names(features) -> list[str]:
  """The label feature's names; 'class N' where shards store only numbers."""
  return [f'class {i}' if name == str(i) else name
          for i, name in enumerate(features['label'].names)]


def _check(config):
  vc = config.visualize
  if vc.split not in ('train', 'test'):
    raise errors.UserError(
        f"visualize.split={vc.split!r}; expected 'train' or 'test'.")
  if vc.num_examples < 1:
    raise errors.UserError(
        f'visualize.num_examples={vc.num_examples}; expected >= 1.')
  if not 1 <= vc.frames <= config.data.num_frames:
    raise errors.UserError(
        f'visualize.frames={vc.frames}; expected 1 to data.num_frames='
        f'{config.data.num_frames} (the frames of a view).')
  if vc.fps <= 0:
    raise errors.UserError(f'visualize.fps={vc.fps}; expected > 0.')


def _slug(text: str) -> str:
  return re.sub(r'[^a-z0-9]+', '_', text.lower()).strip('_')


def views(config, batch, key) -> dict:
  """{panel title: make_views' arrays} of the clean view, T1 and T2."""
  pipelines = {'test view': 'none', 'T1': config.augment.view1,
               'T2': config.augment.view2}
  return {f'{title} ({name})': make_views(
      config, name, jax.random.fold_in(key, i), batch['skeleton'],
      batch['length'])
          for i, (title, name) in enumerate(pipelines.items())}


def run(config, workdir, checkpoint_step=None):
  """Draws on process 0; a multi-host run's others have nothing to do."""
  del checkpoint_step  # draws data, no model
  _check(config)
  if jax.process_index() != 0:
    return {}
  vc, data = config.visualize, config.data
  labels = pipeline.read_metadata(data, vc.split).label
  _, indices = tsne.pick_examples(labels, vc.num_examples, 1, vc.seed)
  batch = next(iter(pipeline.EvalData(
      config, vc.split, len(indices), indices=indices, process_index=0,
      process_count=1)))
  source = pipeline.open_source(data, vc.split)
  names = action_names(source.dataset_info.features)
  decode = pipeline.Decoder(source.dataset_info.features, ('sample_name',))
  drawn_views = views(config, batch, jax.random.key(vc.seed))
  layout = augment.view_spec(config, 'none').layout
  out = pathlib.Path(workdir) / MODE
  out.mkdir(parents=True, exist_ok=True)
  recordings = []
  for b, index in enumerate(tqdm.tqdm(indices, desc=MODE, unit='recording')):
    action = names[batch['label'][b]]
    sample = decode(source[int(index)])['sample_name'].decode()
    panels = [render.Panel(title, joints[b], drawn[b])
              for title, (joints, drawn) in drawn_views.items()]
    stem = out / f'{vc.split}_{index:05d}_{_slug(action)}'
    title = f'{action}  ({sample})'
    render.animation(panels, layout, title, stem.with_suffix('.gif'), vc.fps)
    render.strip(panels, layout, title, stem.with_suffix('.png'), vc.frames)
    recordings.append(dict(index=int(index), sample=sample, action=action,
                           gif=str(stem.with_suffix('.gif')),
                           png=str(stem.with_suffix('.png'))))
  print(f'{MODE}: {len(recordings)} recordings of {data.dataset}/'
        f'{data.split} {vc.split} drawn in {out}')
  results = dict(split=vc.split, views=list(drawn_views),
                 recordings=recordings)
  metrics.write_results(out, results, config)
  return results
