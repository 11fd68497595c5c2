"""Schedules as pure functions of the step (paper section 4.2)."""
import jax.numpy as jnp
import optax


def pretrain_lr(base_lr: float, batch_size: int, warmup_init_lr: float,
                warmup_steps: int, total_steps: int) -> optax.Schedule:
  """Linear warm-up from `warmup_init_lr`, then cosine decay to 0.

  `base_lr` is the paper's rate at batch 512 (0.2); it scales linearly with
  the global batch so a smaller run keeps the paper's per-sample step size.
  """
  peak = base_lr * batch_size / 512
  return optax.warmup_cosine_decay_schedule(
      init_value=warmup_init_lr, peak_value=peak,
      warmup_steps=max(1, min(warmup_steps, total_steps - 1)),
      decay_steps=max(total_steps, 2), end_value=0.0)


def target_ema(tau_base: float, total_steps: int):
  """BYOL's lambda: tau_base at step 0, cosine up to 1 at the last step (eq. 3)."""
  def schedule(step):
    progress = jnp.minimum(step / max(total_steps, 1), 1.0)
    return 1.0 - (1.0 - tau_base) * (jnp.cos(jnp.pi * progress) + 1.0) / 2.0
  return schedule


def momentum_bn(alpha: float, warmup: bool = True):
  """The target's momentum-BN alpha of eq. 4 at each step.

  The statistics start at mean 0 and variance 1, which leaves the target
  un-normalised until the EMA has forgotten them (~1/(1-alpha) steps): at
  initialisation its projections of different sequences are nearly parallel
  (mean cosine 0.99 on the synthetic demo batch, 0.35 once calibrated), so the
  online network regresses onto a near-constant target. With `warmup`, alpha
  is min(alpha, step/(step+1)): the first update copies the batch statistics
  and the next ones average all batches so far, the bias correction of an EMA
  started at its first sample. It only changes the first 1/(1-alpha) steps, a
  negligible part of the paper's runs but most of a short CPU run.
  """
  def schedule(step):
    if not warmup:
      return jnp.asarray(alpha, jnp.float32)
    return jnp.minimum(alpha, step / (step + 1.0))
  return schedule


def step_decay(lr: float, steps_per_epoch: int, decay_epochs) -> optax.Schedule:
  """`lr` multiplied by 0.1 at each epoch in `decay_epochs` (sections 4.2-4.3)."""
  return optax.piecewise_constant_schedule(
      lr, {int(e * steps_per_epoch): 0.1 for e in decay_epochs})
