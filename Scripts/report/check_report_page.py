#!/usr/bin/env python3
"""Checks what headless Chromium saw of a capfilt report (Scripts/report/test-report-browser.sh).

  check_report_page.py RUN DOM PLAIN_LOG HARNESS_LOG SCREENSHOT

RUN: the run folder (its capfilt_run.json and shards/*.jsonl give the expected counts, read here on their own);
DOM: --dump-dom of the page with the harness (its <pre id="capfilt-test-result"> holds what the page showed);
PLAIN_LOG, HARNESS_LOG: Chromium's stderr for the untouched page and for the harness page (console lines);
SCREENSHOT: must be a PNG. Exits 1 with every failed check listed.
"""
import collections, html, json, pathlib, re, sys

run, dom, plain_log, harness_log, screenshot = map(pathlib.Path, sys.argv[1:6])
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


manifest = json.loads((run / "capfilt_run.json").read_text())
totals, reasons = manifest["totals"], manifest["status_dict"]
threshold = float(re.search(r"threshold:\s*([0-9.]+)", manifest["spec"]).group(1))
rows = [json.loads(line) for p in sorted((run / "shards").glob("*.jsonl")) for line in p.read_text().splitlines() if line]
judged = [r for r in rows if r["status"] in ("kept", "filtered")]
web_scored = [r for r in judged if r["web_text_scored"]]
synthetic = [s for r in judged for c, s in zip(r["synthetic_captions"], r["synthetic_itm"]) if c]
main = collections.Counter(r["main_caption_source"] for r in rows if r["status"] == "kept")

match = re.search(r'<pre id="capfilt-test-result">(.*?)</pre>', dom.read_text(encoding="utf-8"), re.S)
if not match:
    print("FAIL: the harness wrote no result: the page did not finish loading in the browser", file=sys.stderr)
    sys.exit(1)
page = json.loads(html.unescape(match.group(1)))

# Loads cleanly: no script error, no resource that failed, nothing on the console.
check(page["errors"] == [], f"errors while loading: {page['errors']}")
for log in (plain_log, harness_log):
    console = [l for l in log.read_text(errors="replace").splitlines() if "CONSOLE" in l]
    check(console == [], f"console messages in {log.name}: {console}")
check(page["scripts"] == 2, f"the report has scripts of its own ({page['scripts'] - 2})")

# Every thumbnail decodes.
images = page["images"]
check(len(images) >= 20, f"only {len(images)} thumbnails")
broken = [i for i in images if not i["complete"] or i["width"] == 0]
check(not broken, f"thumbnails that do not decode: {broken}")
check(all(i["src"].startswith("thumbs/") for i in images), "a thumbnail from outside the report folder")

# The charts carry the run's counts.
charts = page["charts"]
total = lambda chart, f=lambda b: True: sum(b["count"] for b in charts[chart] if f(b))
for status in ("kept", "filtered", "failed", "duplicate"):
    check(total("outcome", lambda b: b["status"] == status) == totals[status], f"outcome {status}: {total('outcome', lambda b: b['status'] == status)} != {totals[status]}")
check({b["label"]: b["count"] for b in charts["reasons"]} == reasons, f"reasons {charts['reasons']} != {reasons}")
check([b["count"] for b in charts["funnel"]] == [totals["input_samples"], totals["input_samples"] - totals["failed"],
                                                  totals["kept"] + totals["filtered"], totals["kept"]], f"funnel {charts['funnel']}")
check(total("itm-web") == len(web_scored), f"itm-web {total('itm-web')} != {len(web_scored)}")
check(total("itc-web") == len(web_scored), f"itc-web {total('itc-web')} != {len(web_scored)}")
check(total("itm-synthetic") == len(synthetic), f"itm-synthetic {total('itm-synthetic')} != {len(synthetic)}")
above = sum(1 for r in web_scored if r["web_text_itm"] >= threshold)
check(total("itm-web", lambda b: b["low"] >= threshold - 1e-6) == above, f"web texts above the threshold: {above}")
check(total("main-caption", lambda b: b["source"] == "web") == main["web"], "main captions from the web")
check(total("main-caption", lambda b: b["source"] == "synthetic") == main["synthetic"], "main captions synthetic")
check(sum(u["kept"] for u in page["units"]) == totals["kept"] and sum(u["input"] for u in page["units"]) == totals["input_samples"],
      f"keep rate per unit {page['units']}")

# The sections: the run's counts, and cards of the right verdicts.
sections = page["sections"]
check(sections["failed"]["count"] == totals["failed"], "failed section")
check(sections["dropped"]["count"] == totals["filtered"] + totals["duplicate"], "dropped section")
check(sections["kept"]["count"] + sections["replaced"]["count"] == totals["kept"], "kept sections")
near = sum(1 for r in web_scored if abs(r["web_text_itm"] - threshold) <= 0.05 + 1e-6)
check(abs(sections["near-threshold"]["count"] - near) <= 1, f"near-threshold section {sections['near-threshold']['count']} != {near}")
for name, statuses in (("kept", {"kept"}), ("replaced", {"kept"}), ("dropped", {"filtered", "duplicate"}), ("failed", {"failed"})):
    s = sections[name]
    check(s["cards"] == s["shown"] == min(s["count"], 12), f"{name}: {s['cards']} cards, {s['shown']} shown, {s['count']} in the run")
    check(set(s["statuses"]) <= statuses, f"{name} shows {set(s['statuses'])}")

check(screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{screenshot} is not a PNG")

if failures:
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    sys.exit(1)
print(f"report page: {len(images)} thumbnails decoded, {len(charts)} charts with the run's counts, no console messages")
