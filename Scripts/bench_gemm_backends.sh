#!/usr/bin/env bash
# GEMM libraries side by side on capfilt's pieces (Scripts/bench_gemm_backends.c), one thread, one run:
# ViT-B products at batch 8 and 1, attention's per-head products, the filter's text pass at batch 8, and the
# thin products of a decoding step at batch 8 (greedy and beam 3). Usage: Scripts/bench_gemm_backends.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build
cc -O2 Scripts/bench_gemm_backends.c -o .build/bench_gemm_backends -ldnnl -lopenblas -lgomp
echo "# $(lscpu | sed -n 's/^Model name: *//p'), OpenBLAS $(dpkg-query -W -f='${Version}' libopenblas0-pthread 2>/dev/null), oneDNN $(dpkg-query -W -f='${Version}' libdnnl2 2>/dev/null)"
# m n k rowBlock columnBlock: the tiling BLAS.tiling gives each product (TilingTests prints them).
.build/bench_gemm_backends \
  4616 768 768 244 192    4616 3072 768 272 384    4616 768 3072 244 192 \
  577 768 768 76 96       577 577 64 577 577       577 64 577 577 64 \
  560 768 768 80 80       560 3072 768 140 176 \
  8 768 768 8 12          8 3072 768 8 48          24 768 768 24 12          8 30524 768 8 64
