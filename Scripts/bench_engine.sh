#!/usr/bin/env bash
# The engine's hot paths (ViT forward at batch 1 and 8, one decoding step for 1, 8 and 24 rows, cross-attention
# K/V, generate() up to the first token for 8 images, the filter's text passes), timed by
# Tests/CapfiltBLIPTests/EngineBenchmarks.swift in a release build: the fastest of CAPFILT_BENCH_REPEATS runs,
# wall clock and process CPU seconds. Every configuration runs once per round, the rounds alternate them,
# so drift and other work on the machine hit all alike.
#
# Usage: Scripts/bench_engine.sh [--baseline REV] [--backends LIST] [--precisions LIST] [--rounds N] CAPTIONER [FILTER]
#   --baseline REV     also time REV (built in a worktree under .build/, with this tree's EngineBenchmarks.swift)
#   --backends LIST    fp32 GEMM backends to time this tree with (CAPFILT_FP32_GEMM): auto,openblas,onednn
#                      (default: auto)
#   --precisions LIST  reduced precisions to time this tree in as well, e.g. int8, and their agreement with fp32
#   e.g. Scripts/bench_engine.sh --baseline cd9a337 --rounds 2 local/full/caption-st local/full/itm-st
# Environment: CAPFILT_BENCH_THREADS (default "1,2"), CAPFILT_BENCH_REPEATS (default 5), and what the engine
# reads (OPENBLAS_CORETYPE, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
baseline="" rounds=1 backends=auto precisions=""
while [ $# -gt 0 ]; do
  case "$1" in
    --baseline) baseline=$2; shift 2 ;;
    --backends) backends=$2; shift 2 ;;
    --precisions) precisions=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--baseline REV] [--backends LIST] [--precisions LIST] [--rounds N] CAPTIONER [FILTER]" >&2; exit 2; }
captioner=$(realpath "$1")
filter=${2:+$(realpath "$2")}
bench=Tests/CapfiltBLIPTests/EngineBenchmarks.swift

build() {  # build the release test bundle in folder $1 (testable imports need -enable-testing)
  (cd "$1" && swift build -c release --build-tests -Xswiftc -enable-testing >&2)
}
run() {  # run test $2 of folder $1 with label $3 and fp32 backend $4
  (cd "$1" && CAPFILT_BENCH_CAPTIONER="$captioner" CAPFILT_BENCH_FILTER="$filter" CAPFILT_BENCH_LABEL="$3" \
    CAPFILT_FP32_GEMM="$4" CAPFILT_BENCH_PRECISIONS="$precisions" \
    swift test -c release --skip-build --filter "EngineBenchmarks/$2\$" 2>&1 | { grep '^BENCH ' || true; } | sed 's/^BENCH //')
}

build .
if [ -n "$baseline" ]; then
  tree=.build/bench-baseline
  rev=$(git rev-parse --short "$baseline")
  if [ ! -d "$tree" ]; then git worktree add --detach "$tree" "$rev" >&2; else git -C "$tree" checkout -q --detach "$rev"; fi
  cp "$bench" "$tree/$bench"
  build "$tree"
fi
head=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources || echo +changes)
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, oneDNN $(dpkg-query -W -f='${Version}' libdnnl2 2>/dev/null || echo '?')"
for _ in $(seq "$rounds"); do
  [ -z "$baseline" ] || run "$tree" testEngineTimings "baseline $rev" ""
  for backend in ${backends//,/ }; do run . testEngineTimings "current $head fp32 $backend" "$backend"; done
  [ -z "$precisions" ] || run . testEngineTimingsInReducedPrecision "current $head" auto
done
# Agreement of each reduced precision with fp32: the demo world (trained tiny models, every sample) and these
# models on the fixture images.
[ -z "$precisions" ] || run . testDemoWorldAgreement "current $head" auto
