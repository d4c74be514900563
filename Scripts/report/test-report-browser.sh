#!/usr/bin/env bash
# The report in a real browser (issue 13): headless Chromium from Debian (installed here if missing) opens
# `capfilt report`'s page of a demo run from disk, in a copy of the report folder made elsewhere (the folder must
# work when copied). Checks, by Scripts/report/check_report_page.py: no console message while the page loads;
# every thumbnail decodes (naturalWidth > 0); the charts and sections carry the run's counts, computed from the
# run's own capfilt_run.json and JSONL manifests. Saves screenshots (PNG) as test artifacts in local/artifacts/.
# 6 minutes here with a debug capfilt at idle priority beside a benchmark (not timed on a quiet machine).
#   Scripts/report/test-report-browser.sh [CAPFILT]   CAPFILT: the binary (default .build/debug/capfilt)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-.build/debug/capfilt}")
browser=$(command -v chromium || true)
if [ -z "$browser" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test-report-browser.sh: chromium is not installed; run: sudo apt-get install chromium" >&2
    exit 1
  fi
  echo "installing chromium..." >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  browser=$(command -v chromium)
fi
work=$PWD/local/report-browser
artifacts=$PWD/local/artifacts
rm -rf "$work" && mkdir -p "$work" "$artifacts"

# The demo job into this folder (the demo's spec with its paths made absolute).
sed -e "s|\"demo/|\"$PWD/Pipelines/demo/|; s|model: demo/|model: $PWD/Pipelines/demo/|; s|folder: ../local/demo-run|folder: $work/run|" \
  Pipelines/demo.yaml > "$work/spec.yaml"
"$bin" run "$work/spec.yaml" --new-run --quiet
"$bin" report "$work/run"

# The report copied elsewhere; the copy under test gets a harness: a first script that records every error
# (script errors, resources that fail to load, console.error), and a last one that writes what the page shows
# into the DOM once everything has loaded, for --dump-dom.
cp -r "$work/run/report" "$work/copied"
cp -r "$work/run/report" "$work/copied-plain"
python3 - "$work/copied/index.html" "$work/harness.html" <<'PY'
import sys
page = open(sys.argv[1], encoding="utf-8").read()
first = """<script>window.__errors = [];
window.addEventListener('error', e => window.__errors.push(e.message || ('failed to load ' + (e.target && (e.target.src || e.target.href)))), true);
for (const level of ['error', 'warn']) { const f = console[level]; console[level] = (...a) => { window.__errors.push(level + ': ' + a.join(' ')); f.apply(console, a); }; }
</script>"""
last = """<script>window.addEventListener('load', () => {
  const count = el => Number(el.getAttribute('data-count'));
  const charts = {};
  for (const svg of document.querySelectorAll('svg[data-chart]')) {
    charts[svg.dataset.chart] = [...svg.querySelectorAll('rect[data-count]')].map(r => ({label: r.dataset.label || null, count: count(r),
      status: r.dataset.status || null, source: r.dataset.source || null, low: r.dataset.low ? Number(r.dataset.low) : null}));
  }
  const units = [...document.querySelectorAll('svg[data-chart="keep-rate"] rect')].map(r => ({input: Number(r.dataset.input), kept: Number(r.dataset.kept)}));
  const sections = {};
  for (const s of document.querySelectorAll('section[data-section]')) {
    sections[s.dataset.section] = {count: count(s), shown: Number(s.dataset.shown), cards: s.querySelectorAll('figure.sample').length,
      statuses: [...s.querySelectorAll('figure.sample')].map(f => f.dataset.status)};
  }
  const images = [...document.images].map(i => ({src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth, height: i.naturalHeight}));
  const out = document.createElement('pre');
  out.id = 'capfilt-test-result';
  out.textContent = JSON.stringify({errors: window.__errors, charts, units, sections, images,
    title: document.title, scripts: document.scripts.length});
  document.body.appendChild(out);
});</script>"""
page = page.replace("<head>", "<head>" + first, 1).replace("</body>", last + "</body>", 1)
open(sys.argv[1], "w", encoding="utf-8").write(page)
PY

chrome() {  # chromium headless with a profile of its own; no network is needed or used
  "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --hide-scrollbars \
    --user-data-dir="$work/profile" --enable-logging=stderr --v=0 "$@"
}
# 1. The untouched page (it has no script): the browser logs nothing from it.
chrome --virtual-time-budget=5000 --dump-dom "file://$work/copied-plain/index.html" > "$work/plain-dom.html" 2> "$work/plain.log"
# 2. The copy with the harness: what it shows.
chrome --virtual-time-budget=10000 --dump-dom "file://$work/copied/index.html" > "$work/dom.html" 2> "$work/harness.log"
# 3. Screenshots: the first screen, and the whole page.
chrome --virtual-time-budget=5000 --window-size=1280,1000 --screenshot="$artifacts/report-demo.png" "file://$work/run/report/index.html" 2> "$work/shot.log"
chrome --virtual-time-budget=5000 --window-size=1280,7000 --screenshot="$artifacts/report-demo-full.png" "file://$work/run/report/index.html" 2>> "$work/shot.log"
python3 Scripts/report/check_report_page.py "$work/run" "$work/dom.html" "$work/plain.log" "$work/harness.log" "$artifacts/report-demo.png"
echo "test-report-browser.sh: ok (screenshots: $artifacts/report-demo.png, $artifacts/report-demo-full.png)"
