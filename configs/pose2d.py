"""2D skeletons of pose estimators (COCO-17 keypoints + score), same recipe.

Datasets come from mmaction2 / PYSKL annotation pickles, built with
`python -m data_prep.build --dataset=pose2d --manual_dir=FILE.pkl`; a
pickle's dataset name is pose2d_ + its file stem (or --name), its protocols
its train/test split pairs. A preset sets both for one release:

  ntu60_xsub, ntu60_xview    ntu60_hrnet.pkl (HRNet 2D of NTU RGB+D 60)
  ntu120_xsub, ntu120_xset   ntu120_hrnet.pkl (NTU RGB+D 120)
  gym                        gym_hrnet.pkl (FineGYM 99, train / val)
  ucf101_split1..3           ucf101_hrnet.pkl (UCF101, its 3 splits)
  hmdb51_split1..3           hmdb51_hrnet.pkl (HMDB51, its 3 splits)
  synthetic, synthetic_xview the synthetic takes in 2D (`python -m
                             data_prep.synthetic_pose2d --output=
                             runs/data/synthetic.pkl`, NTU-60's split names)
and `demo`, `tiny`, `cpu`: configs/synthetic.py's scales on that data.

The ST-GCN input keeps 6 channels: x, y, score and their bones, x, y
differences and the smaller score of the bone's two joints (docs/design.md,
"2D skeletons"). Preprocessing (byol_skeleton/data/raw/preprocess.py, `normalise_2d`)
centres pixels on the image, scales by half its longer side and applies no
rotation; shear is eq. 5's 2x2 form.
"""
import functools

from configs import ablations
from configs import base
from configs import protocols
from configs import synthetic


def _release(dataset, split, num_classes, max_frames, c):
  c.data.dataset = dataset
  c.data.split = split
  c.data.num_classes = num_classes
  c.data.max_frames = max_frames


# (dataset, its protocols, classes, frames kept): PYSKL's HRNet releases; the
# frame cap is the ST-GCN reference's 300 (longer videos are cropped).
_RELEASES = {
    'ntu60': ('pose2d_ntu60_hrnet', ('xsub', 'xview'), 60, 300),
    'ntu120': ('pose2d_ntu120_hrnet', ('xsub', 'xset'), 120, 300),
    'ucf101': ('pose2d_ucf101_hrnet', ('split1', 'split2', 'split3'), 101,
               300),
    'hmdb51': ('pose2d_hmdb51_hrnet', ('split1', 'split2', 'split3'), 51,
               300),
}
_RELEASE_PRESETS = {
    f'{short}_{split}': functools.partial(_release, dataset, split, classes,
                                          frames)
    for short, (dataset, splits, classes, frames) in _RELEASES.items()
    for split in splits}
# FineGYM's splits are plain train / val: the protocol 'default'.
_RELEASE_PRESETS['gym'] = functools.partial(
    _release, 'pose2d_gym_hrnet', 'default', 99, 300)
# Recordings are at most 40 frames (data_prep/synthetic.py).
_SYNTHETIC = functools.partial(_release, 'pose2d_synthetic', 'xsub', 10, 48)


def synthetic_xview(c):
  _SYNTHETIC(c)
  c.data.split = 'xview'


def demo(c):
  """`configs/synthetic.py:demo` on the 2D synthetic data."""
  _SYNTHETIC(c)
  synthetic.demo(c)


def tiny(c):
  """`configs/synthetic.py:tiny` on the 2D synthetic data: the tests' scale."""
  _SYNTHETIC(c)
  synthetic.tiny(c)


PRESETS = {**_RELEASE_PRESETS, 'synthetic': _SYNTHETIC,
           'synthetic_xview': synthetic_xview, 'demo': demo, 'tiny': tiny,
           'cpu': synthetic.cpu, **ablations.PRESETS, **protocols.PRESETS}


def get_config(arg='synthetic'):
  c = base.get_config()
  c.data.layout = 'coco17'  # ours: pose estimators' 17 keypoints, x, y, score
  _SYNTHETIC(c)
  return base.apply_presets(c, arg, PRESETS)
