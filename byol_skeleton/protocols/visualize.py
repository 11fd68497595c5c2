"""--mode=visualize: a few recordings as the encoder sees them.

The recordings are visualize.num_examples recordings of as many classes of
the visualize.split split (drawn with visualize.seed), or, when
visualize.inputs names recording files or folders, those (as predict.inputs:
read and preprocessed by the builders' own code, unreadable ones skipped).
Each is drawn as three views side by side: the clean test-time view, and the
training views T1 (augment.view1) and T2 (augment.view2) made by the
training step's own augmentation code, so the augment.* and data.* fields
change the picture. Per recording it writes WORKDIR/visualize/<name>.gif
(every frame of the views) and <name>.png (visualize.frames of them), <name>
being <split>_<index>_<action> or <number>_<file name>; results.json lists
the files.
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
from byol_skeleton.protocols import inputs
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


def action_names(data) -> list[str]:
  """The shards' action names; 'class N' where they store only numbers."""
  return [f'class {i}' if name == str(i) else name
          for i, name in enumerate(pipeline.class_names(data))]


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


def _from_split(config):
  """(batch, [(file name, title, results entry)], results) of
  visualize.num_examples recordings of as many classes of visualize.split."""
  vc, data = config.visualize, config.data
  labels = pipeline.read_metadata(data, vc.split).label
  _, indices = tsne.pick_examples(labels, vc.num_examples, 1, vc.seed)
  batch = next(iter(pipeline.EvalData(
      config, vc.split, len(indices), indices=indices, process_index=0,
      process_count=1)))
  source = pipeline.open_source(data, vc.split)
  decode = pipeline.Decoder(source.dataset_info.features, ('sample_name',))
  names = action_names(data)
  described = []
  for index, label in zip(indices, batch['label']):
    sample = decode(source[int(index)])['sample_name'].decode()
    action = names[label]
    described.append((f'{vc.split}_{index:05d}_{_slug(action)}',
                      f'{action}  ({sample})',
                      dict(index=int(index), sample=sample, action=action)))
  return batch, described, dict(split=vc.split)


def _from_files(config):
  """(batch, [(file name, title, results entry)], results) of the
  recording files visualize.inputs names."""
  recordings = inputs.read(config, 'visualize.inputs', config.visualize.inputs)
  batch = next(iter(pipeline.ArrayData(
      config, recordings.skeletons, len(recordings.skeletons),
      process_index=0, process_count=1)))
  described = [(f'{i:03d}_{_slug(pathlib.Path(path).stem)}',
                pathlib.Path(path).name, dict(path=path))
               for i, path in enumerate(recordings.paths)]
  return batch, described, dict(
      skipped=[dataclasses.asdict(s) for s in recordings.skipped])


def run(config, workdir, checkpoint_step=None):
  """Draws on process 0; a multi-host run's others have nothing to do."""
  del checkpoint_step  # draws data, no model
  _check(config)
  if jax.process_index() != 0:
    return {}
  vc = config.visualize
  batch, described, results = (_from_files if vc.inputs else _from_split)(
      config)
  drawn_views = views(config, batch, jax.random.key(vc.seed))
  layout = augment.view_spec(config, 'none').layout
  out = pathlib.Path(workdir) / MODE
  out.mkdir(parents=True, exist_ok=True)
  recordings = []
  for b, (name, title, entry) in enumerate(
      tqdm.tqdm(described, desc=MODE, unit='recording')):
    panels = [render.Panel(view, joints[b], drawn[b])
              for view, (joints, drawn) in drawn_views.items()]
    gif, png = out / f'{name}.gif', out / f'{name}.png'
    render.animation(panels, layout, title, gif, vc.fps)
    render.strip(panels, layout, title, png, vc.frames)
    recordings.append(dict(entry, gif=str(gif), png=str(png)))
  print(f'{MODE}: {len(recordings)} recordings drawn in {out}')
  results.update(views=list(drawn_views), recordings=recordings)
  metrics.write_results(out, results, config)
  return results
