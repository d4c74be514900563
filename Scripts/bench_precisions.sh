#!/usr/bin/env bash
# capfilt's precisions side by side in one run: `capfilt bench` (ViT at batch 8, the whole CapFilt step in
# batches of 8, peak RSS) in fp32, bf16 and int8, optionally after an older capfilt binary in fp32 (a
# before/after of the engine), then the demo job in fp32 and in bf16 with their `capfilt eval` figures.
# Each configuration runs once, in turn, so drift hits all alike. Benchmarks, not tests: nothing is asserted.
#
# Usage: Scripts/bench_precisions.sh CAPTIONER FILTER IMAGE [BEFORE_CAPFILT]
#   e.g. Scripts/bench_precisions.sh local/full/caption-st local/full/itm-st local/full/images/rgb_80x60.png
# Environment: CAPFILT (default .build-release/release/capfilt), THREADS (default 2), REPEATS (default 2).
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: $0 CAPTIONER FILTER IMAGE [BEFORE_CAPFILT]" >&2; exit 2; }
captioner=$1 filter=$2 image=$3 before=${4:-}
capfilt=${CAPFILT:-.build-release/release/capfilt}
[ -x "$capfilt" ] || swift build -c release --product capfilt --build-path .build-release >&2
only=vision_forward_batch8_per_image,capfilt_step_batch8_per_image
echo "# $(date -u) $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
configs=()
[ -z "$before" ] || configs+=("before fp32 $before")
configs+=("now fp32 $capfilt" "now bf16 $capfilt" "now int8 $capfilt")
for config in "${configs[@]}"; do
  set -- $config
  echo "== $1 $2"
  "$3" bench --caption "$captioner" --itm "$filter" --precision "$2" --threads "${THREADS:-2}" \
    --repeats "${REPEATS:-2}" --only "$only" "$image" || echo "(failed: $2 needs what this CPU has?)"
done
for spec in demo demo-bf16; do
  folder=local/demo-run; [ "$spec" = demo-bf16 ] && folder=local/demo-bf16
  echo "== demo job: Pipelines/$spec.yaml"
  /usr/bin/time -f "%e s wall, %U s user, %M KB peak RSS" "$capfilt" run "Pipelines/$spec.yaml" --new-run --quiet
  "$capfilt" eval "$folder" --labels Pipelines/demo/corpus/labels.jsonl
done
echo "# done $(date -u)"
