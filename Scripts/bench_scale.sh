#!/usr/bin/env bash
# Throughput at scale (issue 10 items 8 and 9), with the demo models on the demo images made unique:
#
#   Scripts/bench_scale.sh curve N [SHARD [W]]  N samples in shards of SHARD (default 10,000, as img2dataset
#                                            writes them), W workers (default 1) sharing the 2 cores: per-unit
#                                            samples/s from first unit to last (each unit's done.json has its
#                                            seconds), then merge time and peak memory of a merge run again
#                                            from scratch.
#   Scripts/bench_scale.sh workers N         1 worker x 2 threads vs 2 workers x 1 thread on the same N
#                                            samples (shards of N/8), side by side in one run; bytes compared.
#   Scripts/bench_scale.sh resume N          a run killed when 99% of its units are done, then resumed: the
#                                            resume's wall time against the full run's.
#
# Release build; everything under local/bench-scale. Prints a table; BENCHMARKS.md quotes it.
# CAPTIONER=DIR FILTER=DIR TOKENS=N run other checkpoints (say the base-size random ones of
# `Scripts/fixtures/blip.py --full-size local/full`: CAPTIONER=local/full/caption-st FILTER=local/full/itm-st).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-curve}
n=${2:-100000}
shard=${3:-10000}
workers=${4:-1}
work=local/bench-scale
captioner=$(realpath "${CAPTIONER:-Pipelines/demo/models/captioner}")
filter=$(realpath "${FILTER:-Pipelines/demo/models/filter}")
tokens=${TOKENS:-24}
# CAPFILT=path uses that binary instead of building one.
if [ -n "${CAPFILT:-}" ]; then bin=$(realpath "$CAPFILT"); else swift build -c release --product capfilt >&2; bin=$PWD/.build/release/capfilt; fi

make_corpus() {  # $1 folder, $2 samples, $3 per shard
  rm -rf "$1" && mkdir -p "$1/data"
  python3 - "$1/data" "$2" "$3" <<'PY'
import io, sys, tarfile
out, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
src = [tarfile.open(f"Pipelines/demo/corpus/data/0000{i}.tar") for i in (0, 1)]
samples = []   # (image bytes, ext, caption) of the demo's decodable samples
for t in src:
    members = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
    for name, data in sorted(members.items()):
        key, ext = name.rsplit(".", 1)
        if ext in ("jpg", "png", "webp") and len(data) > 1000:
            samples.append((data, ext, members.get(key + ".txt", b"")))
for s in range((n + per - 1) // per):
    with tarfile.open(f"{out}/{s:05d}.tar", "w", format=tarfile.USTAR_FORMAT) as t:
        for i in range(s * per, min(n, (s + 1) * per)):
            data, ext, caption = samples[i % len(samples)]
            # Bytes after the image's end marker make every image distinct without changing its pixels.
            for name, payload in ((f"{i:09d}.{ext}", data + i.to_bytes(5, "little")), (f"{i:09d}.txt", caption)):
                info = tarfile.TarInfo(name); info.size = len(payload)
                t.addfile(info, io.BytesIO(payload))
PY
  cat > "$1/spec.yaml" <<YAML
version: 1
input: {kind: webdataset, paths: [data]}
output: {folder: out, samples_per_shard: 10000}
captioner: {model: $captioner, decoding: nucleus, prompt: "", max_new_tokens: $tokens,
            min_new_tokens: 0, repetition_penalty: 1.0, batch_size: 8}
filter: {model: $filter}
YAML
}

units_table() {  # per-unit samples/s from done.json, in unit order
  python3 - "$1" <<'PY'
import glob, json, sys
rows = [json.load(open(f)) for f in sorted(glob.glob(sys.argv[1] + "/units/*/done.json"))]
rates = [r["samples"] / r["seconds"] for r in rows]
# Samples per CPU-second (done.json's cpu_seconds, when the binary records it): what other load on the machine
# and a VM's stolen time do not move, so a per-sample cost that grew with the job would show here.
cpu = [r["samples"] / r["cpu_seconds"] if r.get("cpu_seconds") else None for r in rows]
for r, rate, c in zip(rows, rates, cpu):
    print(f"unit {r['unit']:05d}  worker {r['worker']}  {r['samples']:6d} samples  {r['seconds']:8.1f} s  {rate:6.1f} samples/s"
          + (f"  {c:6.1f} samples/CPU-s" if c else ""))
print(f"first unit {rates[0]:.1f} samples/s, last unit {rates[-1]:.1f} samples/s: last/first = {rates[-1] / rates[0]:.3f}")
if all(cpu):
    print(f"per CPU-second: first unit {cpu[0]:.1f}, last unit {cpu[-1]:.1f}: last/first = {cpu[-1] / cpu[0]:.3f}; "
          f"min {min(cpu):.1f}, max {max(cpu):.1f}")
for w in sorted({r["worker"] for r in rows}):
    mine = [rate for r, rate in zip(rows, rates) if r["worker"] == w]
    print(f"worker {w}: {len(mine)} units, first {mine[0]:.1f}, last {mine[-1]:.1f} samples/s: last/first = {mine[-1] / mine[0]:.3f}; "
          f"min {min(mine):.1f}, max {max(mine):.1f}")
PY
}

peak() { /usr/bin/time -f "%e s wall, %M KB peak RSS" "$@"; }

case $mode in
curve)
  make_corpus "$work/curve" "$n" "$shard"
  if [ "$workers" = 1 ]; then
    peak "$bin" run "$work/curve/spec.yaml" --quiet
  else
    s=$(date +%s.%N); pids=()
    for ((i = 0; i < workers; i++)); do
      "$bin" run "$work/curve/spec.yaml" --quiet --threads $(( (2 + workers - 1) / workers )) --worker $i --workers "$workers" & pids+=($!)
    done
    wait "${pids[@]}"; e=$(date +%s.%N)
    echo "$workers workers: $(echo "$e - $s" | bc) s wall"
  fi
  units_table "$work/curve/out"
  rm "$work/curve/out/capfilt_run.json"
  echo "merge of $n samples, from scratch:"
  peak "$bin" merge "$work/curve/out" --quiet
  ;;
workers)
  make_corpus "$work/workers" "$n" $(( (n + 7) / 8 ))
  rm -rf "$work/workers2" && cp -r "$work/workers" "$work/workers2"
  s=$(date +%s.%N); "$bin" run "$work/workers/spec.yaml" --quiet --threads 2; e=$(date +%s.%N)
  one=$(echo "$e - $s" | bc)
  s=$(date +%s.%N)
  "$bin" run "$work/workers2/spec.yaml" --quiet --threads 1 --worker 0 --workers 2 & a=$!
  "$bin" run "$work/workers2/spec.yaml" --quiet --threads 1 --worker 1 --workers 2 & b=$!
  wait $a $b; e=$(date +%s.%N)
  two=$(echo "$e - $s" | bc)
  echo "1 worker x 2 threads: $one s ($(echo "$n / $one" | bc -l | cut -c1-6) samples/s)"
  echo "2 workers x 1 thread: $two s ($(echo "$n / $two" | bc -l | cut -c1-6) samples/s)"
  echo "ratio (2x1 / 1x2 throughput): $(echo "$one / $two" | bc -l | cut -c1-5)"
  diff -r "$work/workers/out/shards" "$work/workers2/out/shards" && cmp "$work/workers/out/capfilt_run.json" "$work/workers2/out/capfilt_run.json" \
    && echo "datasets identical"
  ;;
resume)
  make_corpus "$work/resume" "$n" $(( (n + 99) / 100 ))
  s=$(date +%s.%N); "$bin" run "$work/resume/spec.yaml" --quiet; e=$(date +%s.%N)
  full=$(echo "$e - $s" | bc)
  # Undo the last unit and the merge: 1% of the work left, as after a kill in the last unit.
  last=$(ls "$work/resume/out/units" | tail -1)
  rm -rf "$work/resume/out/units/$last" "$work/resume/out/capfilt_run.json"
  s=$(date +%s.%N); "$bin" run "$work/resume/spec.yaml" --quiet; e=$(date +%s.%N)
  part=$(echo "$e - $s" | bc)
  echo "full run $full s; resume with 1 of 100 units left: $part s ($(echo "100 * $part / $full" | bc -l | cut -c1-5)% of the full run)"
  ;;
*) echo "usage: $0 curve|workers|resume N [SHARD]" >&2; exit 64 ;;
esac
