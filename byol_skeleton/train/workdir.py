"""A run's working directory: checked before any work, locked while in use.

Two runs of one mode on one workdir would interleave their checkpoints and
logs, so a run holds an OS-level lock (flock) on WORKDIR/<mode>/lock. The
kernel releases it when the process ends, however it ends. Runs of other
modes (an evaluation reading a pretraining) take their own locks.
"""
import datetime
import fcntl
import os
import pathlib
import socket
import tempfile
from typing import Callable

from byol_skeleton import errors


def prepare(path) -> pathlib.Path:
  """The workdir, created; a clear error when it cannot be written."""
  workdir = pathlib.Path(path).expanduser()
  if workdir.exists() and not workdir.is_dir():
    raise errors.UserError(f'--workdir {workdir} exists and is not a directory.')
  try:
    workdir.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise errors.UserError(
        f'--workdir {workdir} cannot be created: {e.strerror}.') from None
  # A real write, not os.access: root passes access() on read-only mounts.
  try:
    with tempfile.TemporaryFile(dir=workdir):
      pass
  except OSError as e:
    raise errors.UserError(
        f'--workdir {workdir} is not writable: {e.strerror}.') from None
  return workdir


class FileLock:
  """An exclusive flock on `path` until released or the process ends; the
  file names its holder (PID, host, start), which a refusal quotes."""

  def __init__(self, path, refusal: Callable[[str], str]):
    """refusal(holder) -> the sentence a second taker gets."""
    self.path = pathlib.Path(path)
    self.path.parent.mkdir(parents=True, exist_ok=True)
    # Opened without truncating: the holder's line must survive a refusal.
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.read(fd, 1000).decode(errors='replace').strip()
      os.close(fd)
      raise errors.UserError(refusal(holder or 'holder unknown')) from None
    os.ftruncate(fd, 0)
    os.write(fd, (f'PID {os.getpid()} on {socket.gethostname()}, since '
                  f'{datetime.datetime.now():%Y-%m-%d %H:%M:%S}').encode())
    self._fd = fd

  def release(self) -> None:
    if self._fd is not None:
      os.close(self._fd)  # closing the descriptor releases the flock
      self._fd = None

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.release()


def mode_lock(workdir, mode: str) -> FileLock:
  """Holds WORKDIR/<mode>/lock: one run of a mode per workdir."""
  return FileLock(
      pathlib.Path(workdir) / mode / 'lock',
      lambda holder: f'--workdir {workdir} is in use by another {mode} run '
      f'({holder}); wait for it to end or use another --workdir.')


def set_aside(workdir, mode: str) -> pathlib.Path | None:
  """Moves a mode's earlier outputs to WORKDIR/replaced/<mode>_<time> (the
  lock stays); returns where, or None when there was nothing.

  Pretraining's outputs are WORKDIR/pretrain and WORKDIR/checkpoints; every
  other mode's are WORKDIR/<mode>.
  """
  workdir = pathlib.Path(workdir)
  mode_dir = workdir / mode
  outputs = [f for f in mode_dir.iterdir() if f.name != 'lock'] if (
      mode_dir.is_dir()) else []
  if mode == 'pretrain' and (workdir / 'checkpoints').exists():
    outputs.append(workdir / 'checkpoints')
  if not outputs:
    return None
  aside = (workdir / 'replaced' /
           f'{mode}_{datetime.datetime.now():%Y%m%d-%H%M%S}')
  aside.mkdir(parents=True)
  for path in outputs:
    path.rename(aside / path.name)
  return aside
