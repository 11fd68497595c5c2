"""Transfer learning (section 4.5): evaluate another dataset's pretrained encoder.

transfer.source_workdir is a pretraining run on the source dataset (e.g.
NTU-60); the config describes the target (e.g. PKU-MMD II), where the encoder
is fine-tuned (transfer.protocol='finetune', the paper's Table 6) or linearly
probed ('linear', config.linear).

Fine-tuning follows config.transfer, the semi-supervised recipe of section
4.4 on all of the target's training labels: the paper compares with a
supervised ST-GCN trained on all of them, and gives no other fine-tuning
recipe (see configs/base.py for its epochs). The encoder
reads the skeletons joint by joint, so both datasets must share a joint
layout; no mapping between different layouts is defined.
"""
import pathlib

from byol_skeleton import errors
from byol_skeleton.pretraining import pretrained
from byol_skeleton.protocols import finetune
from byol_skeleton.protocols import linear
from byol_skeleton.train import parallel

MODE = 'transfer'
PROTOCOLS = ('finetune', 'linear')


def recipe(config, name: str = MODE):
  protocol = config.transfer.protocol
  if protocol not in PROTOCOLS:
    raise errors.UserError(
        f'transfer.protocol={protocol!r}; expected one of {PROTOCOLS}.')
  if protocol == 'linear':
    return linear.recipe(config, name)
  return finetune.recipe(config, name, MODE)


def check_layouts(source_config: dict, config, source) -> None:
  """Raises when the source run's skeletons are not the target's."""
  data = source_config['data']
  if data['layout'] != config.data.layout:
    raise errors.UserError(
        f'transfer: the source run {source} was pretrained on '
        f'{data["dataset"]} with joint layout {data["layout"]!r}, but '
        f'{config.data.dataset} uses layout {config.data.layout!r}; no joint '
        f'mapping between {data["layout"]!r} and {config.data.layout!r} is '
        'defined, so that encoder cannot read these skeletons.')


def run(config, workdir, checkpoint_step=None):
  tc = config.transfer
  recipe(config)  # Checks the protocol before any work.
  if not tc.source_workdir:
    raise errors.UserError(
        'transfer needs --config.transfer.source_workdir: the workdir of a '
        'pretraining run on the source dataset.')
  source = pathlib.Path(tc.source_workdir).expanduser()
  check_layouts(pretrained.saved_config(source, checkpoint_step), config, source)
  variables, checkpoint, source_config = pretrained.restore_pretrained(
      config, source, parallel.make_mesh(), checkpoint_step)
  info = {'pretrained_checkpoint': checkpoint,
          'source_dataset': '{dataset}/{split}'.format(**source_config['data'])}
  if tc.protocol == 'linear':
    return linear.probe(config, workdir, variables, info, name=MODE)
  return finetune.finetune(config, workdir, variables, info, mode=MODE)
