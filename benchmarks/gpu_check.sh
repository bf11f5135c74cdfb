#!/usr/bin/env bash
# One-GPU check of the CUDA paths (under 5 minutes on one GPU): c2f's torch engine on CUDA vs the
# CPU engine, one training step per network with AMP + channels_last vs fp32, deblur of a 2152x1436
# image tiled and whole, iterations/s and peak memory per network at the recipes' crop and batch;
# then the tests/gpu suite. Figures go to gpu_check.json (or $1).
# Usage: benchmarks/gpu_check.sh [OUT.json]      (CPU dry run of the same code: --device cpu --quick)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check.json}"
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device')" || exit 2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 240 python benchmarks/gpu_check.py --device cuda --out "$out"
rc=$?
timeout 60 python -m pytest -q tests/gpu || rc=1
exit $rc
