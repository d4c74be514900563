#!/usr/bin/env bash
# Whether bf16 pays here (Scripts/bench_bf16_matmul.c): oneDNN's bf16 matmul (brgemm) against its fp32 one on the
# ViT's and the text passes' whole products, one thread (capfilt's way: one piece per thread) and oneDNN's own
# threads, then the vdpbf16ps / FMA instruction ceilings. Usage: Scripts/bench_bf16_matmul.sh [threads...]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build
cc -O2 Scripts/bench_bf16_matmul.c -o .build/bench_bf16_matmul -ldnnl -lgomp
echo "# $(lscpu | sed -n 's/^Model name: *//p'), oneDNN $(dpkg-query -W -f='${Version}' libdnnl2 2>/dev/null), $(grep -o -m1 'avx512_bf16\|amx_bf16' /proc/cpuinfo | head -1)"
threads_list=("$@"); [ $# -gt 0 ] || threads_list=(1 2)
for threads in "${threads_list[@]}"; do
  # ViT batch 8 (qkv-size, fc1, fc2), ViT batch 1, text pass at batch 8 × 2 texts, decoding's LM head at 8 rows.
  .build/bench_bf16_matmul "$threads" 4616 768 768  4616 3072 768  4616 768 3072  577 768 768 \
    560 768 768  560 3072 768  8 768 768  8 30524 768
done
