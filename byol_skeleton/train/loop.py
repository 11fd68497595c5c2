"""The training loop of every trainer: pretraining and each classifier protocol.

One loop owns what all of them need: the progress bar, the log and checkpoint
cadence, saving then stopping on SIGTERM/SIGINT (every process agrees on the
step), stopping with one sentence on a NaN or infinite loss (the last good
checkpoint stays the latest), and resuming from the step the state holds.
A trainer supplies its step function, its data and what it logs.
"""
import dataclasses
import hashlib
import math
import signal
import time
from typing import Any, Callable

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp
import tqdm

from byol_skeleton import errors
from byol_skeleton.train import checkpoints
from byol_skeleton.train import metrics
from byol_skeleton.train import parallel


@dataclasses.dataclass(frozen=True)
class Monitor:
  """An evaluation run every `every_steps` steps, at step 0 and at the end.

  `fn(state) -> {name: number}` is logged and shown; its time is left out of
  the training rates and wall seconds.
  """
  every_steps: int
  fn: Callable[[Any], dict]


@dataclasses.dataclass
class Outcome:
  state: Any
  step: int


def sync_processes(key: str, timeout_s: int = 3600) -> None:
  """Returns once every process got here (at once with one process).

  Processes that compile a program at different speeds must meet before
  their next collective: Gloo gives a late process 30 s, and only process 0
  writes the compilation cache, so others may compile what it loads. The
  barrier of JAX's coordination service waits as long as compiling takes.
  """
  ocp.multihost.get_barrier_sync_fn()(key=key, timeout_ms=timeout_s * 1000)


def compiled_everywhere(step_fn, name: str):
  """`step_fn`, compiled at its first call, which returns once all processes
  have compiled it (see `sync_processes`)."""
  compiled = None

  def call(*args):
    nonlocal compiled
    if compiled is None:
      compiled = step_fn.lower(*args).compile()
      sync_processes(f'{name}_step_compiled')
    return compiled(*args)

  return call


def replica_digests(tree) -> list[str]:
  """SHA-256 of each device's copy of a replicated pytree, all processes.

  One hex digest per device (process by process): all equal means every
  replica of the state, on every host, is bit-identical.
  """
  local = {}
  for leaf in jax.tree.leaves(tree):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    for shard in leaf.addressable_shards:
      local.setdefault(shard.device.id, hashlib.sha256()).update(
          np.asarray(shard.data).tobytes())
  mine = np.stack([np.frombuffer(local[d].digest(), np.uint8)
                   for d in sorted(local)])
  everyone = multihost_utils.process_allgather(mine)
  return [bytes(d).hex() for d in np.asarray(everyone).reshape(-1, 32)]


class StopRequest:
  """Turns SIGTERM/SIGINT into a flag the loop checks, to save before exiting.

  With several processes a signal may reach them at different steps, so they
  vote at every log step and all stop at the same one.
  """

  def __init__(self):
    self.signum = None
    self._previous = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signum = signum

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def agreed(self, at_log_step: bool) -> int | None:
    """The signal every process stops for now, or None to go on."""
    if jax.process_count() == 1:
      return self.signum
    if not at_log_step:
      return None
    votes = multihost_utils.process_allgather(np.int32(self.signum or 0))
    return int(np.max(votes)) or None


def train(state, *, name: str, step_fn, data, mesh, ckpts, config,
          total_steps: int, log_every: int, save_every: int,
          scalars: Callable[[int, dict, float], dict],
          advice: str, monitor: Monitor | None = None,
          log: metrics.MetricsLog, stop_at: int = 0) -> Outcome:
  """Runs `step_fn` from the state's step to `total_steps`, or to `stop_at`
  when 0 < stop_at < total_steps (saved, logged and monitored there as at
  the end; the schedules still span `total_steps`).

  step_fn(state, device_batch, step) -> (state, metrics): metrics hold 'loss'
  and, optionally, 'finite' (when the parameters are checked too).
  data: next_batch() and get_state(), saved with every checkpoint.
  scalars(step, metrics, steps_per_s) -> what is logged at a log step,
  besides the loss. advice: what the NaN message tells the user to change.

  Raises errors.UserError on a non-finite loss (nothing saved), and
  errors.Interrupted after saving on SIGTERM/SIGINT.
  """
  if total_steps <= 0:
    raise errors.UserError(f'{name}: {total_steps} steps to train; its epochs '
                           'must be positive.')
  step = int(state.step)
  log.truncate(step)  # steps logged after the checkpoint are run again
  main_process = jax.process_index() == 0
  bar = tqdm.tqdm(total=total_steps, initial=step, desc=name, unit='step',
                  disable=not main_process, dynamic_ncols=True)
  postfix = {}
  last_saved = ckpts.latest_step()
  end = min(stop_at, total_steps) if stop_at > 0 else total_steps

  def save():
    nonlocal last_saved
    ckpts.save(step, state, config, data.get_state())
    last_saved = step

  def run_monitor():
    values = monitor.fn(state)
    log.write(step, **values)
    postfix.update({k: f'{v:.3g}' for k, v in values.items()})
    bar.set_postfix(postfix)

  def stop(exception):
    ckpts.wait()
    bar.close()  # before the message, which must be the last line
    raise exception

  if monitor and step == 0:
    run_monitor()  # the initial encoder: the reference the curve must beat
  tic, steps_since = time.perf_counter(), 0
  with StopRequest() as request:
    while step < end:
      batch = parallel.to_device(data.next_batch(), mesh)
      state, step_metrics = step_fn(state, batch, step)
      step += 1
      steps_since += 1
      at_log = step % log_every == 0 or step == end
      at_save = step % save_every == 0 or step == end
      if at_log or at_save:
        loss = float(step_metrics['loss'])
        finite = bool(step_metrics.get('finite', math.isfinite(loss)))
        if not finite:
          stop(errors.UserError(
              f'{name}: the loss or the parameters became NaN or infinite '
              f'(loss {loss}) at step {step}, so the run stopped without '
              f'saving it; the last good checkpoint is step '
              f'{ckpts.latest_step()} in {ckpts.directory} ({advice}).'))
        values = dict(loss=loss, **scalars(
            step, step_metrics, steps_since / (time.perf_counter() - tic)))
        log.write(step, **values)
        postfix.update({k: f'{v:.4g}' for k, v in values.items()})
        bar.set_postfix(postfix)
        tic, steps_since = time.perf_counter(), 0
      if monitor and (step % monitor.every_steps == 0 or step == end):
        monitor_tic = time.perf_counter()
        run_monitor()
        tic += time.perf_counter() - monitor_tic  # not training time
      if at_save:
        save()
      bar.update(1)
      signum = request.agreed(at_log)
      if signum and step < end:
        if step != last_saved:  # a signal right after a save: nothing new
          save()
        stop(errors.Interrupted(signum, name, step, ckpts.directory))
  bar.close()
  ckpts.wait()
  return Outcome(state, step)


def restore_or_init(ckpts: checkpoints.Checkpoints, init, abstract, data,
                    step: int | None = None):
  """The state to train from: checkpoint `step` (default: the newest that
  restores) with the data position saved beside it, or `init()` when there
  is none."""
  if step is None and ckpts.latest_step() is None:
    return init()
  restored = ckpts.restore(abstract(), step)
  data.set_state(restored.data)
  logging.info('Resumed from %s at step %d.', ckpts.directory, restored.step)
  return restored.state
