"""The stored example: one camera view of one recording, unpadded.

Every builder (ntu60, ntu120, pku_mmd2, nw_ucla, synthetic) writes this schema,
and `byol_skeleton.data.pipeline` reads it.
"""
import numpy as np
import tensorflow_datasets as tfds


def skeleton_features(label: tfds.features.ClassLabel, num_persons: int,
                      num_joints: int):
  """The schema; `label` carries the dataset's action names."""
  return tfds.features.FeaturesDict({
      # (frames, persons, joints, xyz); only the frames actually recorded.
      # BYTES: one raw buffer per example; the default encoding writes float
      # by float, ~60x slower to serialise (3 ms vs 0.05 ms per example).
      'skeleton': tfds.features.Tensor(
          shape=(None, num_persons, num_joints, 3), dtype=np.float32,
          encoding=tfds.features.Encoding.BYTES),
      'label': label,
      'subject': np.int32,
      'view': np.int32,  # camera id
      'setup': np.int32,
      # The recording without its camera id: views of one action share it.
      'sequence_key': tfds.features.Text(),
      'sample_name': tfds.features.Text(),
  })
