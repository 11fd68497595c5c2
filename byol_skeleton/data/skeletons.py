"""Skeleton layouts as data: joints, graph edges, centre, limbs, bone pairs.

Every other module (graph partition, bones, left/right drop, preprocessing) reads
its joint facts from here, so a new layout is one entry in `LAYOUTS`.
Indices are 0-based.

Every layout's joints have 3 channels. Kinect layouts hold x, y, z (metres);
`coco17`, the keypoints of 2D pose estimators, holds x, y and the detector's
confidence score: `coordinates` says how many channels are spatial, and the
augmentations move only those (docs/design.md, "2D skeletons").
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Layout:
  name: str
  joint_names: tuple[str, ...]
  # (joint, parent) for every non-centre joint; the skeleton graph's edges.
  edges: tuple[tuple[int, int], ...]
  # Root of the spatial partition (ST-GCN's 'center').
  center: int
  # Limb joints zeroed by left/right drop (the subject's own left and right).
  left: tuple[int, ...]
  right: tuple[int, ...]
  # Joints that make the canonical 3D orientation of preprocessing; None in
  # 2D layouts, which are not rotated.
  hip: int | None = None
  neck: int | None = None
  left_shoulder: int | None = None
  right_shoulder: int | None = None
  # Spatial channels (x, y[, z]); the rest of the 3 (coco17: the score) are
  # per-joint values that are never sheared, filtered or differenced.
  coordinates: int = 3

  @property
  def num_joints(self) -> int:
    return len(self.joint_names)

  @property
  def bone_pairs(self) -> tuple[tuple[int, int], ...]:
    """(joint, parent) for every joint; the centre is its own parent (zero bone).

    Bone v is x[v] - x[parent(v)], so bones have the joints' shape and can be
    concatenated with them on the channel axis.
    """
    parent = {j: p for j, p in self.edges}
    parent[self.center] = self.center
    return tuple((v, parent[v]) for v in range(self.num_joints))


def _one_based(pairs):
  return tuple((a - 1, b - 1) for a, b in pairs)


NTU25 = Layout(
    name='ntu25',
    joint_names=(
        'spine_base', 'spine_mid', 'neck', 'head',
        'left_shoulder', 'left_elbow', 'left_wrist', 'left_hand',
        'right_shoulder', 'right_elbow', 'right_wrist', 'right_hand',
        'left_hip', 'left_knee', 'left_ankle', 'left_foot',
        'right_hip', 'right_knee', 'right_ankle', 'right_foot',
        'spine_shoulder', 'left_hand_tip', 'left_thumb',
        'right_hand_tip', 'right_thumb'),
    # ST-GCN's NTU edges (1-based in the reference code).
    edges=_one_based((
        (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7),
        (9, 21), (10, 9), (11, 10), (12, 11), (13, 1), (14, 13), (15, 14),
        (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (23, 8),
        (24, 25), (25, 12))),
    center=20,
    hip=0,
    neck=20,
    left_shoulder=4,
    right_shoulder=8,
    left=(4, 5, 6, 7, 21, 22, 12, 13, 14, 15),
    right=(8, 9, 10, 11, 23, 24, 16, 17, 18, 19),
)

KINECT_V1_20 = Layout(
    name='kinect_v1_20',
    joint_names=(
        'hip_center', 'spine', 'shoulder_center', 'head',
        'left_shoulder', 'left_elbow', 'left_wrist', 'left_hand',
        'right_shoulder', 'right_elbow', 'right_wrist', 'right_hand',
        'left_hip', 'left_knee', 'left_ankle', 'left_foot',
        'right_hip', 'right_knee', 'right_ankle', 'right_foot'),
    edges=(
        (0, 1), (1, 2), (3, 2), (4, 2), (5, 4), (6, 5), (7, 6), (8, 2),
        (9, 8), (10, 9), (11, 10), (12, 0), (13, 12), (14, 13), (15, 14),
        (16, 0), (17, 16), (18, 17), (19, 18)),
    # The shoulder centre plays the role of NTU's spine_shoulder.
    center=2,
    hip=0,
    neck=2,
    left_shoulder=4,
    right_shoulder=8,
    left=(4, 5, 6, 7, 12, 13, 14, 15),
    right=(8, 9, 10, 11, 16, 17, 18, 19),
)

COCO17 = Layout(
    name='coco17',
    joint_names=(
        'nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear',
        'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
        'left_wrist', 'right_wrist', 'left_hip', 'right_hip',
        'left_knee', 'right_knee', 'left_ankle', 'right_ankle'),
    # A tree rooted at the nose: the face on the nose, the shoulders on the
    # nose (as Kinect shoulders on the neck), each hip on its shoulder (COCO
    # has no pelvis joint), limbs outwards.
    edges=(
        (1, 0), (2, 0), (3, 1), (4, 2), (5, 0), (6, 0), (7, 5), (8, 6),
        (9, 7), (10, 8), (11, 5), (12, 6), (13, 11), (14, 12), (15, 13),
        (16, 14)),
    # The nose is COCO-17's only joint on the body's midline, so the only
    # centre under which the partition is left/right symmetric; it is also
    # the joint nearest to Kinect's centre (the neck).
    center=0,
    left=(5, 7, 9, 11, 13, 15),
    right=(6, 8, 10, 12, 14, 16),
    coordinates=2,
)

LAYOUTS = {layout.name: layout for layout in (NTU25, KINECT_V1_20, COCO17)}


def get_layout(name: str) -> Layout:
  try:
    return LAYOUTS[name]
  except KeyError:
    raise ValueError(
        f'Unknown skeleton layout {name!r}; known layouts: {sorted(LAYOUTS)}'
    ) from None
