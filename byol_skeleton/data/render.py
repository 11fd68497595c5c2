"""Skeleton sequences drawn side by side: an animated GIF and a PNG strip.

A `Panel` is one view of a recording: joints (T, M, V, 3) in the canonical
orientation of preprocessing (spine along +y, shoulders along +x), drawn as
lines between the layout's edges in an orthographic projection with y up
(on 2-D axes: matplotlib's 3-D axes took 2.4x as long). A person whose
joints are all zero in a frame is absent there (an empty body slot), and
joints outside `visible` (those left/right drop zeroed) are not drawn, so a
dropped limb is missing rather than a bone to the origin. Every frame and panel of a figure
shares one set of axes, so a sheared or resampled view is seen against the
clean one.
"""
import dataclasses

import numpy as np

from byol_skeleton.data.skeletons import Layout

# The persons' colours (tab10's first two).
_COLOURS = ('#1f77b4', '#ff7f0e')
# Seen from the subject's front left, a little above: limbs in front of the
# body and beside it both show.
_ELEVATION, _AZIMUTH = 15.0, -30.0


@dataclasses.dataclass(frozen=True)
class Panel:
  title: str
  joints: np.ndarray  # (T, M, V, 3)
  visible: np.ndarray  # (V,) bool


def project(points, elevation: float = _ELEVATION,
            azimuth: float = _AZIMUTH) -> np.ndarray:
  """(..., 3) -> (..., 2): orthographic projection seen from `azimuth`
  degrees from the subject's front towards their right, and `elevation`
  degrees above the horizon.

  Canonical skeletons face -z (left -> right shoulder is +x, spine +y), so
  the front view is the back view turned by 180 degrees about y.
  """
  a, e = np.radians(azimuth + 180), np.radians(elevation)
  yaw = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0],
                  [-np.sin(a), 0, np.cos(a)]])
  pitch = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)],
                    [0, np.sin(e), np.cos(e)]])
  return points @ (pitch @ yaw)[:2].T


def bones(joints, visible, layout: Layout) -> list[np.ndarray]:
  """Per person, the (E, 2, D) bones of one frame's (M, V, D) joints that
  join two drawn joints; no bones for an absent person."""
  edges = np.array([e for e in layout.edges if visible[e[0]] and visible[e[1]]],
                   np.int64).reshape(-1, 2)
  return [person[edges] if np.any(person != 0) else
          np.zeros((0, 2, joints.shape[-1])) for person in joints]


def _screen(panels):
  """The panels' joints projected (T, M, V, 2), absent persons kept at 0,
  and one square box (centre (2,), half side) holding every drawn joint."""
  screens, drawn = [], []
  for p in panels:
    present = np.any(p.joints != 0, axis=-1, keepdims=True)
    screen = np.where(present, project(p.joints), 0.0)
    screens.append(screen)
    drawn.append(screen[:, :, p.visible][present[:, :, p.visible, 0]])
  points = np.concatenate(drawn + [np.zeros((1, 2))])
  lo, hi = points.min(0), points.max(0)
  return screens, (lo + hi) / 2, max(float(np.max(hi - lo)) / 2, 1e-3) * 1.08


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _person_lines(ax, num_persons, centre, half):
  from matplotlib import collections  # pylint: disable=g-import-not-at-top
  ax.set_xlim(centre[0] - half, centre[0] + half)
  ax.set_ylim(centre[1] - half, centre[1] + half)
  ax.set_aspect('equal')
  ax.set_xticks([])
  ax.set_yticks([])
  lines = [collections.LineCollection(
      [], colors=_COLOURS[m % len(_COLOURS)], linewidths=1.8,
      capstyle='round') for m in range(num_persons)]
  for line in lines:
    ax.add_collection(line, autolim=False)  # the axes are fixed
  return lines


def _draw(lines, screen, visible, layout):
  for line, segments in zip(lines, bones(screen, visible, layout)):
    line.set_segments(segments)


def animation(panels, layout: Layout, title: str, path, fps: float,
              dpi: int = 80):
  """Writes the panels side by side as a GIF, one image per frame."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  plt = _pyplot()
  num_frames = len(panels[0].joints)
  screens, centre, half = _screen(panels)
  fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0),
                           squeeze=False, dpi=dpi)
  lines = []
  for ax, panel in zip(axes[0], panels):
    ax.set_title(panel.title, fontsize=10)
    lines.append(_person_lines(ax, panel.joints.shape[1], centre, half))
  heading = fig.suptitle(title, fontsize=11)
  fig.tight_layout()
  images = []
  # One draw per frame: matplotlib's own GIF writer drew each frame three
  # times and took 3x as long.
  for t in range(num_frames):
    heading.set_text(f'{title}   frame {t + 1}/{num_frames}')
    for panel_lines, screen, panel in zip(lines, screens, panels):
      _draw(panel_lines, screen[t], panel.visible, layout)
    fig.canvas.draw()
    images.append(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[
        ..., :3]).quantize(colors=64, method=Image.Quantize.FASTOCTREE))
  plt.close(fig)
  images[0].save(path, save_all=True, append_images=images[1:], loop=0,
                 duration=round(1000 / fps))


def strip(panels, layout: Layout, title: str, path, frames: int,
          dpi: int = 100):
  """Writes a PNG grid: a row per panel, `frames` evenly spaced frames."""
  plt = _pyplot()
  num_frames = len(panels[0].joints)
  times = np.unique(np.linspace(0, num_frames - 1, frames).round().astype(int))
  screens, centre, half = _screen(panels)
  fig, axes = plt.subplots(len(panels), len(times), squeeze=False,
                           figsize=(1.5 * len(times) + 0.3,
                                    1.5 * len(panels) + 0.5))
  for row, (panel, screen) in enumerate(zip(panels, screens)):
    for col, t in enumerate(times):
      ax = axes[row, col]
      _draw(_person_lines(ax, panel.joints.shape[1], centre, half),
            screen[t], panel.visible, layout)
      if row == 0:
        ax.set_title(f'frame {t + 1}', fontsize=9)
      if col == 0:
        ax.set_ylabel(panel.title, fontsize=9)
  fig.suptitle(title, fontsize=11)
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  plt.close(fig)
