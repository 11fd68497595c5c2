"""ST-GCN 'spatial' partition of a skeleton graph (Yan et al. 2018, sec. 3.6).

K = 3 matrices, entry [j, i] = weight of joint j's message to joint i:
  0: the joint itself;
  1: neighbours at the same or a larger hop distance from the centre;
  2: neighbours nearer to the centre.
All three share one column normalisation of the 1-hop adjacency with self-loops
(A D^-1, D = column sums), so column i of their sum averages i's neighbourhood.

partition='reference' reproduces the reference code: its hop distances stop at
max_hop=1, so every joint more than one hop from the centre is at distance inf,
and inf == inf puts all edges among those joints into group 1.
partition='corrected' uses the true hop distances to the centre.
"""
import numpy as np

from byol_skeleton.data.skeletons import Layout

PARTITIONS = ('reference', 'corrected')
NUM_SUBSETS = 3


def hop_distance(layout: Layout, max_hop: int | None = None) -> np.ndarray:
  """(V, V) graph distances; inf beyond `max_hop` (None: no limit)."""
  v = layout.num_joints
  link = np.eye(v, dtype=np.int64)
  for i, j in layout.edges:
    link[i, j] = link[j, i] = 1
  dist = np.where(np.eye(v, dtype=bool), 0.0, np.inf)
  reach = np.eye(v, dtype=np.int64)
  for d in range(1, (v - 1 if max_hop is None else max_hop) + 1):
    reach = np.minimum(reach @ link, 1)
    dist[(reach > 0) & np.isinf(dist)] = d
  return dist


def spatial_partition(layout: Layout, partition: str = 'reference'
                      ) -> np.ndarray:
  """(3, V, V) float32 partition matrices of `layout`'s graph."""
  if partition not in PARTITIONS:
    raise ValueError(
        f'Unknown graph partition {partition!r}; expected one of {PARTITIONS}')
  hop = hop_distance(layout, max_hop=1)
  neighbourhood = hop <= 1
  # Every column has its self-loop, so no column sum is zero.
  normalised = neighbourhood / neighbourhood.sum(axis=0, keepdims=True)
  to_centre = (hop if partition == 'reference'
               else hop_distance(layout))[:, layout.center]
  is_self = np.eye(layout.num_joints, dtype=bool)
  # nearer[j, i]: j strictly nearer to the centre than i (inf < inf: False).
  nearer = to_centre[:, None] < to_centre[None, :]
  edge = neighbourhood & ~is_self
  groups = (is_self, edge & ~nearer, edge & nearer)
  return np.stack([normalised * g for g in groups]).astype(np.float32)
