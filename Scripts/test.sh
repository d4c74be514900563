#!/usr/bin/env bash
# The test command: installs system libraries if missing, then runs every test. No Python, no network
# beyond Debian's packages, no real weights.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-deps.sh
swift build --build-tests
swift test --skip-build "$@"
