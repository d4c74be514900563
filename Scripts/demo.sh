#!/usr/bin/env bash
# The README's first command: builds capfilt and runs the whole CapFilt job on the bundled demo scrape
# (Pipelines/demo.yaml): ingest, caption, filter, export, then the run's status.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-deps.sh
swift build -c release --product capfilt >&2
.build/release/capfilt run Pipelines/demo.yaml --new-run
echo "output: local/demo-run (shards in local/demo-run/shards, run manifest local/demo-run/capfilt_run.json)" >&2
