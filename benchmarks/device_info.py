"""The one description of the device a benchmark ran on, for every results file."""
import os
import platform


def describe() -> str:
  """E.g. 'cpu (x86_64, 2 cores)' or 'NVIDIA H200 (gpu, jax 0.11.2)'."""
  import jax  # pylint: disable=g-import-not-at-top
  device = jax.devices()[0]
  if device.platform == 'cpu':
    cpu = platform.processor() or platform.machine()
    return f'{device.device_kind} ({cpu}, {os.cpu_count()} cores)'
  return f'{device.device_kind} ({device.platform}, jax {jax.__version__})'
