#!/usr/bin/env bash
# ./run.sh          demo on the embedded synthetic dataset
# ./run.sh demo2d   the same demo on its 2D COCO-17 pickle (pose2d)
# ./run.sh test     the test suite on 8 fake CPU devices
# ./run.sh MODE ... passes through to the byol-skeleton CLI
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --upgrade pip
fi
if ! .venv/bin/python -c 'import byol_skeleton, pytest' 2>/dev/null; then
  .venv/bin/pip install --quiet -e '.[test]'
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
