#!/usr/bin/env bash
# The README's first command: builds capfilt, runs the whole CapFilt job on the bundled demo scrape
# (Pipelines/demo.yaml: the synthetic corpus and the two tiny models trained on its world, see
# Pipelines/demo/README.md), then measures the result against the corpus's ground truth with `capfilt eval` and writes its report
# (`capfilt report`: local/demo-run/report/index.html).
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-deps.sh
echo "building capfilt (release)..." >&2
swift build -c release --product capfilt >&2
bin=.build/release/capfilt
"$bin" run Pipelines/demo.yaml --new-run
labels=Pipelines/demo/corpus/labels.jsonl
echo >&2
echo "== capfilt eval (against $labels, which the pipeline never reads)" >&2
"$bin" eval local/demo-run --labels "$labels"
echo >&2
"$bin" report local/demo-run
echo >&2
echo "output: local/demo-run/shards (webdataset tars, manifests, stats), local/demo-run/capfilt_run.json, local/demo-run/report/index.html" >&2
