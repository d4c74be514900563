#!/usr/bin/env bash
# The README's first command: builds capfilt and runs the whole CapFilt job on the bundled demo scrape
# (Pipelines/demo.yaml: a few hundred synthetic image-text pairs, about half with noisy alt texts, and two
# tiny BLIP models trained on that world), then measures the result against the corpus's ground truth.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-deps.sh
echo "building capfilt (release)..." >&2
swift build -c release --product capfilt >&2 2>/dev/null || swift build -c release --product capfilt >&2
bin=.build/release/capfilt
"$bin" run Pipelines/demo.yaml --new-run
echo >&2
echo "== capfilt eval (against Pipelines/demo/corpus/labels.jsonl, which the pipeline never reads)" >&2
"$bin" eval local/demo-run --labels Pipelines/demo/corpus/labels.jsonl
echo >&2
echo "output: local/demo-run/shards (webdataset tars, manifests, stats), local/demo-run/capfilt_run.json" >&2
