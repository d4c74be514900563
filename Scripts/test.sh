#!/usr/bin/env bash
# The test command: installs system libraries if missing, then runs every test. No real weights; PyPI only
# for the loaders check below (into local/loaders-venv).
#   Scripts/test.sh                 swift test, then the scheduler tests (below) with the debug capfilt
#   Scripts/test.sh --filter X      swift test --filter X only (arguments go to swift test)
# The scheduler tests run the capfilt that the test build made (.build/debug/capfilt) under a real one-node
# Slurm (Scripts/slurm/test-capfilt-slurm.sh, about 2-3 minutes; root, since it starts slurmctld, slurmd and
# munged) and as the Kubernetes Indexed Job's pods (Scripts/k8s/test-indexed-job.sh, about 30 s), each
# compared byte for byte with a one-process run. They run when no arguments are given (or with
# CAPFILT_SCHEDULER_TESTS=1); CAPFILT_SCHEDULER_TESTS=0 skips them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-deps.sh
swift build --build-tests
swift test --skip-build "$@"

scheduler=${CAPFILT_SCHEDULER_TESTS:-$([ $# -eq 0 ] && echo 1 || echo 0)}
[ "$scheduler" = 1 ] || { echo "test.sh: scheduler tests skipped (arguments given, or CAPFILT_SCHEDULER_TESTS=0)"; exit 0; }
bin=.build/debug/capfilt
[ -x "$bin" ] || { echo "test.sh: $bin was not built" >&2; exit 1; }
failed=()
if [ "$(id -u)" -eq 0 ]; then
  bash Scripts/slurm/test-capfilt-slurm.sh "$bin" || failed+=(Scripts/slurm/test-capfilt-slurm.sh)
else
  echo "test.sh: SKIPPED Scripts/slurm/test-capfilt-slurm.sh: it must run as root (it installs slurm-wlm and munge if missing and starts munged, slurmctld and slurmd); run: sudo bash Scripts/slurm/test-capfilt-slurm.sh $bin"
fi
if [ "$(id -u)" -eq 0 ] || python3 -c 'import yaml' 2>/dev/null; then
  bash Scripts/k8s/test-indexed-job.sh "$bin" || failed+=(Scripts/k8s/test-indexed-job.sh)
else
  echo "test.sh: SKIPPED Scripts/k8s/test-indexed-job.sh: not root and python3 has no yaml module (apt-get install python3-yaml, or run as root)"
fi
# The loaders users read our output with (pyarrow, pandas, DuckDB, datasets, webdataset; from PyPI into
# local/loaders-venv) on a real mixed-format run: Scripts/check_loaders.sh, about 3 minutes.
bash Scripts/check_loaders.sh "$bin" || failed+=(Scripts/check_loaders.sh)
# The report in headless Chromium (installed from Debian if missing) on a demo run: Scripts/report/test-report-browser.sh,
# 6 minutes here at idle priority beside a benchmark (not timed on a quiet machine); screenshots in local/artifacts/.
bash Scripts/report/test-report-browser.sh "$bin" || failed+=(Scripts/report/test-report-browser.sh)
[ ${#failed[@]} -eq 0 ] || { echo "test.sh: FAILED: ${failed[*]}" >&2; exit 1; }
