"""run.sh's choice of JAX build, with fake nvidia-smi programs; installs nothing.

`./run.sh install --dry-run` prints the pip command it would run; a copy of
run.sh beside a fake .venv shows what every command installs first. PATH
holds only `dirname` and the fake nvidia-smi, so a real driver on the test
host does not take part.
"""
import pathlib
import shutil
import subprocess

import pytest
from setuptools.config import setupcfg

REPO = pathlib.Path(__file__).resolve().parents[1]

# nvidia-smi's header as drivers of both CUDA majors print it.
HEADER = """\
Thu Dec  4 10:00:00 2026
+-----------------------------------------------------------------------------------------+
| NVIDIA-SMI {driver}             Driver Version: {driver}     CUDA Version: {cuda}     |
|-----------------------------------------+------------------------+----------------------+
| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |
|   0  NVIDIA H100 80GB HBM3          On  |   00000000:18:00.0 Off |                    0 |
+-----------------------------------------+------------------------+----------------------+
"""
FAILED = ("NVIDIA-SMI has failed because it couldn't communicate with the "
          "NVIDIA driver. Make sure that the latest NVIDIA driver is installed "
          "and running.")
CPU = ".venv/bin/pip install --quiet -e '.[test]'"


def search_path(tmp_path, nvidia_smi=None, status=0) -> str:
  """A PATH of `dirname` and, unless None, an nvidia-smi that prints
  `nvidia_smi` and exits with `status`."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  (bin_dir / 'dirname').symlink_to(shutil.which('dirname'))
  if nvidia_smi is not None:
    fake = bin_dir / 'nvidia-smi'
    fake.write_text(f"#!/bin/sh\n{shutil.which('cat')} <<'EOF'\n{nvidia_smi}\n"
                    f"EOF\nexit {status}\n")
    fake.chmod(0o755)
  return str(bin_dir)


def dry_run(tmp_path, nvidia_smi=None, status=0, accelerator=None):
  """(stdout, stderr, returncode) of `run.sh install --dry-run`."""
  env = {'PATH': search_path(tmp_path, nvidia_smi, status)}
  if accelerator is not None:
    env['BYOL_SKELETON_ACCELERATOR'] = accelerator
  done = subprocess.run(
      [shutil.which('bash'), str(REPO / 'run.sh'), 'install', '--dry-run'],
      env=env, capture_output=True, text=True, timeout=30, check=False)
  return done.stdout.strip(), done.stderr, done.returncode


@pytest.mark.parametrize('driver, cuda, extras', [
    ('550.54.15', '12.4', 'test,cuda12'),
    ('525.60.13', '12.0', 'test,cuda12'),
    ('580.65.06', '13.0', 'test,cuda13'),
    ('590.44.01', '13.1', 'test,cuda13'),
])
def test_cuda_major_picks_the_extra(tmp_path, driver, cuda, extras):
  out, err, code = dry_run(tmp_path, HEADER.format(driver=driver, cuda=cuda))
  assert (out, err, code) == (
      f".venv/bin/pip install --quiet -e '.[{extras}]'", '', 0)


def test_no_driver_installs_cpu_jax_silently(tmp_path):
  assert dry_run(tmp_path) == (CPU, '', 0)


def test_failing_nvidia_smi_installs_cpu_jax_and_says_why(tmp_path):
  out, err, code = dry_run(tmp_path, FAILED, status=9)
  assert (out, code) == (CPU, 0)
  assert 'nvidia-smi failed (NVIDIA-SMI has failed' in err


def test_old_driver_installs_cpu_jax_and_says_why(tmp_path):
  out, err, code = dry_run(tmp_path, HEADER.format(driver='470.82.01',
                                                   cuda='11.4'))
  assert (out, code) == (CPU, 0)
  assert 'CUDA 11 at most' in err


def test_newer_cuda_gets_the_newest_build(tmp_path):
  out, err, _ = dry_run(tmp_path, HEADER.format(driver='700.1', cuda='14.0'))
  assert out == ".venv/bin/pip install --quiet -e '.[test,cuda13]'"
  assert 'CUDA 14' in err


def test_header_without_cuda_version_installs_cpu_jax(tmp_path):
  out, err, _ = dry_run(tmp_path, 'No devices were found')
  assert out == CPU and 'no CUDA version' in err


@pytest.mark.parametrize('accelerator, extras', [
    ('cpu', 'test'), ('cuda12', 'test,cuda12'), ('cuda13', 'test,cuda13')])
def test_environment_overrides_the_driver(tmp_path, accelerator, extras):
  header = HEADER.format(driver='580.65.06', cuda='13.0')
  out, _, code = dry_run(tmp_path, header, accelerator=accelerator)
  assert (out, code) == (f".venv/bin/pip install --quiet -e '.[{extras}]'", 0)


def test_unknown_override_is_an_error(tmp_path):
  out, err, code = dry_run(tmp_path, accelerator='rocm')
  assert (out, code) == ('', 2)
  assert 'BYOL_SKELETON_ACCELERATOR=rocm: expected cpu, cuda12 or cuda13' in err


def test_the_extras_run_sh_names_pull_jax_cuda_builds():
  extras = setupcfg.read_configuration(REPO / 'setup.cfg')['options'][
      'extras_require']
  assert extras['cuda12'] == ['jax[cuda12]']
  assert extras['cuda13'] == ['jax[cuda13]']


def fake_venv(tmp_path, ready: bool):
  """A copy of run.sh beside a .venv whose python and pip only log their
  arguments; python -c (run.sh's import check) succeeds when `ready`."""
  shutil.copy(REPO / 'run.sh', tmp_path / 'run.sh')
  venv_bin = tmp_path / '.venv' / 'bin'
  venv_bin.mkdir(parents=True)
  log = tmp_path / 'log'
  for name, body in (('python', f'[ "$1" = -c ] && exit {int(not ready)}'),
                     ('pip', 'exit 0')):
    (venv_bin / name).write_text(
        f'#!/bin/sh\necho "{name} $*" >> {log}\n{body}\nexit 0\n')
    (venv_bin / name).chmod(0o755)
  return log


@pytest.mark.parametrize('ready', [False, True])
def test_every_command_first_installs_what_the_venv_lacks(tmp_path, ready):
  log = fake_venv(tmp_path, ready)
  subprocess.run(
      [shutil.which('bash'), str(tmp_path / 'run.sh'), 'test', '-q'],
      env={'PATH': search_path(tmp_path),
           'BYOL_SKELETON_ACCELERATOR': 'cuda13'},
      capture_output=True, text=True, timeout=30, check=True)
  install = ['pip install --quiet -e .[test,cuda13]'] if not ready else []
  assert log.read_text().splitlines() == [
      'python -c import byol_skeleton,pytest,jax_cuda13_plugin', *install,
      'python -m pytest tests -n 2 -q']
