#!/usr/bin/env bash
# The engine's hot paths (ViT forward at batch 1 and 8, one decoding step for 1, 8 and 24 rows, cross-attention
# K/V, the filter's text passes), timed by Tests/CapfiltBLIPTests/EngineBenchmarks.swift in a release build.
# With --baseline REV the same benchmark also runs on REV (built in a worktree under .build/, with this
# tree's benchmark file copied in), alternating the two ROUNDS times so drift hits both alike.
#
# Usage: Scripts/bench_engine.sh [--baseline REV] [--rounds N] CAPTIONER_FOLDER [FILTER_FOLDER]
#   e.g. Scripts/bench_engine.sh --baseline main Pipelines/demo/models/captioner Pipelines/demo/models/filter
# Environment: CAPFILT_BENCH_THREADS (default "1,2"), CAPFILT_BENCH_REPEATS (default 5), and whatever the
# engine reads (OPENBLAS_CORETYPE, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
baseline="" rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --baseline) baseline=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--baseline REV] [--rounds N] CAPTIONER [FILTER]" >&2; exit 2; }
captioner=$(realpath "$1")
filter=${2:+$(realpath "$2")}
bench=Tests/CapfiltBLIPTests/EngineBenchmarks.swift

build() {  # build the release test bundle in folder $1 (testable imports need -enable-testing)
  (cd "$1" && swift build -c release --build-tests -Xswiftc -enable-testing >&2)
}
run() {  # run the benchmark of folder $1 with label $2
  (cd "$1" && CAPFILT_BENCH_CAPTIONER="$captioner" CAPFILT_BENCH_FILTER="$filter" CAPFILT_BENCH_LABEL="$2" \
    swift test -c release --skip-build --filter EngineBenchmarks 2>&1 | grep '^BENCH ' | sed 's/^BENCH //')
}

build .
if [ -n "$baseline" ]; then
  tree=.build/bench-baseline
  rev=$(git rev-parse --short "$baseline")
  if [ ! -d "$tree" ]; then git worktree add --detach "$tree" "$rev" >&2; else git -C "$tree" checkout -q --detach "$rev"; fi
  cp "$bench" "$tree/$bench"
  build "$tree"
fi
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
for _ in $(seq "$rounds"); do
  [ -z "$baseline" ] || run "$tree" "baseline $rev"
  run . "current $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- Sources || echo +changes)"
done
