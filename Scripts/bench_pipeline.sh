#!/usr/bin/env bash
# The pipeline's own overhead: `capfilt run` on N samples with the tiny test models, where model time is
# small, so the figure is what the plumbing (read, hash, decode, resize, ledger commits, export) sustains.
# Usage: Scripts/bench_pipeline.sh [N]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
work=local/bench-pipeline
rm -rf "$work" && mkdir -p "$work/data"
python3 - "$n" "$work/data/00000.tar" <<'PY'
import io, os, sys, tarfile
n, path = int(sys.argv[1]), sys.argv[2]
images = "Tests/Fixtures/blip/images"
names = sorted(os.listdir(images))
blobs = [open(os.path.join(images, f), "rb").read() for f in names]
with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as t:
    for i in range(n):
        j = i % len(names)
        data = blobs[j] + i.to_bytes(4, "little")   # distinct bytes after the end marker: no duplicates
        for name, payload in ((f"{i:09d}.{'jpg' if names[j].endswith('.jpg') else 'png'}", data),
                              (f"{i:09d}.txt", b"a red circle on a white background")):
            info = tarfile.TarInfo(name); info.size = len(payload)
            t.addfile(info, io.BytesIO(payload))
PY
cat > "$work/spec.yaml" <<YAML
version: 1
input: {kind: webdataset, paths: [data/00000.tar]}
output: {folder: out, samples_per_shard: 1000}
captioner: {model: ../../Tests/Fixtures/blip/caption-st, decoding: greedy, max_new_tokens: 8, batch_size: 16}
filter: {model: ../../Tests/Fixtures/blip/itm-st}
YAML
swift build -c release --product capfilt >&2
start=$(date +%s%N)
.build/release/capfilt run "$work/spec.yaml" --quiet
end=$(date +%s%N)
ms=$(( (end - start) / 1000000 ))
echo "$n samples in ${ms} ms: $(( n * 1000 / (ms > 0 ? ms : 1) )) samples/s (tiny models, release build, $(nproc) cores, model loading and weight hashing included)"
