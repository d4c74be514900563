#!/usr/bin/env bash
# The README's first command: builds capfilt and runs the whole CapFilt job on the bundled demo scrape
# (Pipelines/demo.yaml), then, when the demo corpus ships ground-truth labels, measures the result with
# `capfilt eval`. Until the trained demo world lands (issue 4), the demo is an interim 31-sample scrape run
# with the tiny random test models, whose captions are word salad by construction.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-deps.sh
echo "building capfilt (release)..." >&2
swift build -c release --product capfilt >&2
bin=.build/release/capfilt
"$bin" run Pipelines/demo.yaml --new-run
labels=Pipelines/demo/corpus/labels.jsonl
if [ -f "$labels" ]; then
  echo >&2
  echo "== capfilt eval (against $labels, which the pipeline never reads)" >&2
  "$bin" eval local/demo-run --labels "$labels"
fi
echo >&2
echo "output: local/demo-run/shards (webdataset tars, manifests, stats), local/demo-run/capfilt_run.json" >&2
