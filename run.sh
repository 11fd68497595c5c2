#!/usr/bin/env bash
# ./run.sh                    demo on the embedded synthetic dataset
# ./run.sh demo2d             the same demo on its 2D COCO-17 pickle (pose2d)
# ./run.sh test               the test suite on 8 fake CPU devices
# ./run.sh install [--dry-run]  (re)install into .venv; --dry-run prints the
#                             pip command instead of running it
# ./run.sh MODE ...           passes through to the byol-skeleton CLI
#
# Every command first installs into .venv what is missing: the package, the
# test tools and, where nvidia-smi reports an NVIDIA driver, JAX's CUDA build
# for the CUDA major version the driver supports (12 or 13).
# BYOL_SKELETON_ACCELERATOR=cpu|cuda12|cuda13 overrides that choice.
set -euo pipefail
cd "$(dirname "$0")"

warn() { echo "run.sh: $*" >&2; }

# Prints the JAX build for this host: cpu, cuda12 or cuda13.
accelerator() {
  local choice=${BYOL_SKELETON_ACCELERATOR:-}
  if [ -n "$choice" ]; then
    case "$choice" in
      cpu|cuda12|cuda13) echo "$choice"; return ;;
      *) warn "BYOL_SKELETON_ACCELERATOR=$choice: expected cpu, cuda12 or cuda13."
         exit 2 ;;
    esac
  fi
  if ! command -v nvidia-smi >/dev/null; then
    echo cpu; return
  fi
  local header
  if ! header=$(nvidia-smi 2>&1); then
    warn "nvidia-smi failed (${header%%$'\n'*}); installing CPU-only JAX."
    echo cpu; return
  fi
  # The header's "CUDA Version: 12.4" is the newest CUDA the driver runs.
  if [[ ! $header =~ CUDA\ Version:\ *([0-9]+)\. ]]; then
    warn "nvidia-smi reports no CUDA version; installing CPU-only JAX."
    echo cpu; return
  fi
  local major=${BASH_REMATCH[1]}
  if (( major < 12 )); then
    warn "the NVIDIA driver runs CUDA $major at most and JAX's CUDA builds" \
         "need 12 or 13; installing CPU-only JAX (update the driver for GPUs)."
    echo cpu
  elif (( major > 13 )); then
    warn "the driver runs CUDA $major; installing JAX's newest CUDA build, cuda13."
    echo cuda13
  else
    echo "cuda$major"
  fi
}

# What a ready .venv has for this host: pip extras and importable modules.
ACCELERATOR=$(accelerator)
EXTRAS=test
MODULES=byol_skeleton,pytest
if [ "$ACCELERATOR" != cpu ]; then
  EXTRAS+=",$ACCELERATOR"
  MODULES+=",jax_${ACCELERATOR}_plugin"
fi

install() {
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --upgrade pip
  fi
  warn "installing into .venv for $ACCELERATOR: pip install -e '.[$EXTRAS]'"
  .venv/bin/pip install --quiet -e ".[$EXTRAS]"
}

if [ "${1:-}" = install ]; then
  case "${2:-}" in
    --dry-run) echo ".venv/bin/pip install --quiet -e '.[$EXTRAS]'" ;;
    '') install ;;
    *) warn "install takes only --dry-run, got $2."; exit 2 ;;
  esac
  exit
fi
if ! .venv/bin/python -c "import $MODULES" 2>/dev/null; then
  install
fi
case "${1:-demo}" in
  test)
    shift
    exec .venv/bin/python -m pytest tests -n 2 "$@"
    ;;
  demo)
    .venv/bin/python -m data_prep.build --dataset=synthetic --data_dir=runs/data
    exec .venv/bin/python -m byol_skeleton.demo --data_dir=runs/data --workdir=runs/demo
    ;;
  demo2d)
    mkdir -p runs/data
    .venv/bin/python -m data_prep.synthetic_pose2d --output=runs/data/synthetic.pkl
    .venv/bin/python -m data_prep.build --dataset=pose2d --manual_dir=runs/data/synthetic.pkl --data_dir=runs/data
    exec .venv/bin/python -m byol_skeleton.demo --config=configs/pose2d.py:demo --data_dir=runs/data --workdir=runs/demo2d
    ;;
  *)
    exec .venv/bin/python -m byol_skeleton.main --mode="$1" "${@:2}"
    ;;
esac
