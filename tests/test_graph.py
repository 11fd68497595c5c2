"""Spatial partition vs. an independent BFS + per-joint construction."""
import collections
import math

import numpy as np
import pytest

from byol_skeleton.data import skeletons
from byol_skeleton.model import graph


def bfs_distances(layout, source):
  """Hop distance of every joint from `source`, by breadth-first search."""
  neighbours = collections.defaultdict(set)
  for a, b in layout.edges:
    neighbours[a].add(b)
    neighbours[b].add(a)
  dist = {source: 0}
  queue = collections.deque([source])
  while queue:
    u = queue.popleft()
    for w in neighbours[u]:
      if w not in dist:
        dist[w] = dist[u] + 1
        queue.append(w)
  return [dist.get(v, math.inf) for v in range(layout.num_joints)], neighbours


def expected_partition(layout, partition):
  """Column by column: joint i averages itself and its neighbours j, and
  sorts each j by comparing j's and i's distance to the centre."""
  dist, neighbours = bfs_distances(layout, layout.center)
  if partition == 'reference':  # distances beyond max_hop=1 are inf
    dist = [d if d <= 1 else math.inf for d in dist]
  v = layout.num_joints
  a = np.zeros((3, v, v))
  for i in range(v):
    weight = 1.0 / (len(neighbours[i]) + 1)
    a[0, i, i] = weight
    for j in neighbours[i]:
      a[2 if dist[j] < dist[i] else 1, j, i] = weight
  return a


@pytest.mark.parametrize('name', sorted(skeletons.LAYOUTS))
@pytest.mark.parametrize('partition', graph.PARTITIONS)
def test_partition_matches_independent_construction(name, partition):
  layout = skeletons.get_layout(name)
  a = graph.spatial_partition(layout, partition)
  assert a.shape == (3, layout.num_joints, layout.num_joints)
  assert a.dtype == np.float32
  np.testing.assert_allclose(a, expected_partition(layout, partition),
                             rtol=1e-6)
  # Every joint's neighbourhood weights sum to one (column normalisation).
  np.testing.assert_allclose(a.sum(axis=(0, 1)), 1.0, rtol=1e-6)


@pytest.mark.parametrize('name', sorted(skeletons.LAYOUTS))
def test_hop_distance_matches_bfs(name):
  layout = skeletons.get_layout(name)
  full = graph.hop_distance(layout)
  capped = graph.hop_distance(layout, max_hop=1)
  for source in range(layout.num_joints):
    dist, _ = bfs_distances(layout, source)
    np.testing.assert_array_equal(full[source], dist)
    np.testing.assert_array_equal(
        capped[source], [d if d <= 1 else math.inf for d in dist])


def test_ntu_hand_values():
  # 0-based: centre 20 spine_shoulder (neighbours 1 spine_mid, 2 neck,
  # 4/8 shoulders); 0 spine_base (neighbours 1, 12 left_hip, 16 right_hip);
  # 12 left_hip (neighbours 0, 13 left_knee).
  layout = skeletons.get_layout('ntu25')
  ref = graph.spatial_partition(layout, 'reference')
  cor = graph.spatial_partition(layout, 'corrected')
  for a in (ref, cor):
    assert a[0, 20, 20] == pytest.approx(1 / 5)
    for j in (1, 2, 4, 8):  # all farther from the centre than the centre
      assert a[1, j, 20] == pytest.approx(1 / 5)
    assert not a[2, :, 20].any()
    assert a[0, 0, 0] == pytest.approx(1 / 4)
    assert a[2, 1, 0] == pytest.approx(1 / 4)  # spine_mid is nearer
    assert a[1, 12, 0] == a[1, 16, 0] == pytest.approx(1 / 4)
    assert a[2, 20, 1] == pytest.approx(1 / 3)  # spine_mid <- centre
  # Left hip: the reference sees both neighbours at distance inf (group 1);
  # the true distances are 2 (spine_base, nearer) and 4 (knee, farther).
  assert ref[1, 0, 12] == ref[1, 13, 12] == pytest.approx(1 / 3)
  assert not ref[2, :, 12].any()
  assert cor[2, 0, 12] == pytest.approx(1 / 3)
  assert cor[1, 13, 12] == pytest.approx(1 / 3)
  assert cor[1, 0, 12] == 0


def test_unknown_partition():
  with pytest.raises(ValueError, match='partition'):
    graph.spatial_partition(skeletons.get_layout('ntu25'), 'uniform')


def mirror(layout):
  """Joint index -> its left/right mirror image, from the joint names."""
  swap = {'left': 'right', 'right': 'left'}

  def mirrored(name):
    side, _, rest = name.partition('_')
    return f'{swap[side]}_{rest}' if side in swap else name

  index = {name: v for v, name in enumerate(layout.joint_names)}
  return np.array([index[mirrored(name)] for name in layout.joint_names])


@pytest.mark.parametrize('name', sorted(skeletons.LAYOUTS))
def test_graph_is_a_tree_connected_and_mirror_symmetric(name):
  layout = skeletons.get_layout(name)
  dist, _ = bfs_distances(layout, layout.center)
  assert max(dist) < math.inf  # connected
  assert len(layout.edges) == layout.num_joints - 1  # so a tree
  m = mirror(layout)
  assert sorted(m) == list(range(layout.num_joints)) and np.any(m != np.arange(
      layout.num_joints))
  assert m[layout.center] == layout.center
  assert {(m[a], m[b]) for a, b in layout.edges} == set(layout.edges)
  assert sorted(m[list(layout.left)]) == sorted(layout.right)
  for partition in graph.PARTITIONS:
    a = graph.spatial_partition(layout, partition)
    np.testing.assert_array_equal(a[:, m][:, :, m], a)


def test_coco17_facts():
  layout = skeletons.get_layout('coco17')
  names = layout.joint_names
  assert layout.num_joints == 17 and layout.coordinates == 2
  assert names[layout.center] == 'nose'
  # The limbs are dropped, the face is kept.
  assert {names[v] for v in layout.left} == {
      f'left_{j}' for j in ('shoulder', 'elbow', 'wrist', 'hip', 'knee',
                            'ankle')}
  parent = dict(layout.bone_pairs)
  assert names[parent[names.index('left_hip')]] == 'left_shoulder'
  assert names[parent[names.index('right_wrist')]] == 'right_elbow'
