#!/usr/bin/env bash
# Compares the datasets of two capfilt output folders byte for byte: every file under shards/ and
# capfilt_run.json (units/, workers/, leases and locks are job state, not dataset).
#   Scripts/compare-datasets.sh REFERENCE_OUT OTHER_OUT
# Prints "identical: N files, B bytes" and exits 0, or names every missing, extra or differing file
# (with the first differing byte) and exits 1.
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: compare-datasets.sh REFERENCE_OUT OTHER_OUT" >&2; exit 2; }
ref=$1 other=$2
list() { (cd "$1" 2>/dev/null && { [ -f capfilt_run.json ] && echo capfilt_run.json; find shards -type f 2>/dev/null; } | LC_ALL=C sort); }
a=$(list "$ref") b=$(list "$other")
[ -n "$a" ] || { echo "compare: no dataset in $ref (no capfilt_run.json, no shards/)"; exit 1; }
bad=0
while read -r f; do [ -n "$f" ] && { echo "compare: only in $ref: $f"; bad=1; }; done < <(LC_ALL=C comm -23 <(echo "$a") <(echo "$b"))
while read -r f; do [ -n "$f" ] && { echo "compare: only in $other: $f"; bad=1; }; done < <(LC_ALL=C comm -13 <(echo "$a") <(echo "$b"))
n=0 bytes=0
while read -r f; do
  [ -n "$f" ] || continue
  n=$((n + 1)); bytes=$((bytes + $(stat -c %s "$ref/$f")))
  if ! out=$(cmp "$ref/$f" "$other/$f" 2>&1); then echo "compare: $f differs: $out"; bad=1; fi
done < <(LC_ALL=C comm -12 <(echo "$a") <(echo "$b"))
[ $bad -eq 0 ] || exit 1
echo "identical: $n files, $bytes bytes (shards/ and capfilt_run.json)"
