"""Test setup: 8 fake CPU devices, set before JAX creates its backend."""
import os
import pathlib

os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8')
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import pytest  # pylint: disable=g-import-not-at-top

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / 'shared' / 'data'


@pytest.fixture(scope='session')
def shared_data():
  """The real recorded skeleton data beside the repository, or a skip."""
  if not SHARED_DATA.is_dir():
    pytest.skip(f'real skeleton data not found at {SHARED_DATA} '
                '(../shared/data beside the repository)')
  return SHARED_DATA


def pytest_configure(config):
  """Shares compiled XLA programs between tests and xdist workers of a run."""
  del config
  import jax  # pylint: disable=g-import-not-at-top
  cache = pathlib.Path(os.environ.get('TMPDIR', '/tmp')) / 'byol_skeleton_xla_cache'
  jax.config.update('jax_compilation_cache_dir', str(cache))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 1.0)
