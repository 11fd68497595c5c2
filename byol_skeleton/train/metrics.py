"""What every run leaves behind: metrics.jsonl, results.json and curve plots."""
import json
import pathlib

import numpy as np


def _plain(value):
  """JSON-ready Python scalars from numpy/jax values."""
  if hasattr(value, 'tolist'):
    return np.asarray(value).tolist()
  return value


class MetricsLog:
  """Appends one JSON object per logged step to `<dir>/metrics.jsonl`.

  Appending keeps a resumed run's history in one file; `truncate` first drops
  what was logged after the checkpoint it resumes from.
  """

  def __init__(self, directory, enabled: bool = True):
    self.directory = pathlib.Path(directory)
    self.path = self.directory / 'metrics.jsonl'
    self.enabled = enabled
    if enabled:
      self.directory.mkdir(parents=True, exist_ok=True)

  def write(self, step: int, **values):
    if not self.enabled:
      return
    record = {'step': int(step), **{k: _plain(v) for k, v in values.items()}}
    with self.path.open('a') as f:
      f.write(json.dumps(record) + '\n')

  def truncate(self, step: int) -> None:
    """Drops the records after `step` (atomically: a kill leaves either file)."""
    if not self.enabled or not self.path.exists():
      return
    kept = [r for r in self.read() if r['step'] <= step]
    tmp = self.path.with_suffix('.jsonl.tmp')
    tmp.write_text(''.join(json.dumps(r) + '\n' for r in kept))
    tmp.replace(self.path)

  def read(self) -> list[dict]:
    if not self.path.exists():
      return []
    with self.path.open() as f:
      return [json.loads(line) for line in f if line.strip()]


def write_results(directory, results: dict, config=None) -> pathlib.Path:
  """Writes `<dir>/results.json`: the final metrics plus the config."""
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  payload = {k: _plain(v) for k, v in results.items()}
  if config is not None:
    payload['config'] = json.loads(config.to_json_best_effort())
  path = directory / 'results.json'
  tmp = path.with_suffix('.json.tmp')
  tmp.write_text(json.dumps(payload, indent=2))
  tmp.replace(path)  # atomic: a reader never sees half a file
  return path


def plot_curves(records: list[dict], keys, path) -> pathlib.Path | None:
  """One panel per key that appears in `records`, against the step."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  keys = [k for k in keys if any(k in r for r in records)]
  if not keys:
    return None
  fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2),
                           squeeze=False)
  for ax, key in zip(axes[0], keys):
    points = [(r['step'], r[key]) for r in records if key in r]
    ax.plot(*zip(*points), marker='.' if len(points) < 30 else None)
    ax.set_xlabel('step')
    ax.set_title(key)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return pathlib.Path(path)
