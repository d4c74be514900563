#!/usr/bin/env bash
# `capfilt merge` at scale without days of model time: a real job of U one-sample shards is run with the tiny
# test models (so the plan, the spec and the weights are real), then every unit's output is replaced by a
# synthetic one of S samples (rows copied from the real one with fresh keys and image hashes, 80% kept, tiny
# distinct image bytes), and the merge is timed from scratch with its peak memory.
#
#   Scripts/bench_merge.sh [UNITS] [SAMPLES_PER_UNIT]      default 100 x 10,000 = 10^6 samples
set -euo pipefail
cd "$(dirname "$0")/.."
units=${1:-100}
per=${2:-10000}
work=local/bench-merge
rm -rf "$work" && mkdir -p "$work/data"
# CAPFILT=path uses that binary instead of building one.
if [ -n "${CAPFILT:-}" ]; then bin=$(realpath "$CAPFILT"); else swift build -c release --product capfilt >&2; bin=$PWD/.build/release/capfilt; fi
python3 - "$work/data" "$units" <<'PY'
import io, sys, tarfile
out, units = sys.argv[1], int(sys.argv[2])
image = open("Tests/Fixtures/blip/images/rgb_80x60.png", "rb").read()
for u in range(units):
    with tarfile.open(f"{out}/{u:05d}.tar", "w", format=tarfile.USTAR_FORMAT) as t:
        for name, payload in ((f"{u:09d}.png", image + u.to_bytes(4, "little")), (f"{u:09d}.txt", b"a picture")):
            info = tarfile.TarInfo(name); info.size = len(payload); t.addfile(info, io.BytesIO(payload))
PY
cat > "$work/spec.yaml" <<YAML
version: 1
input: {kind: webdataset, paths: [data]}
output: {folder: out, samples_per_shard: 10000}
captioner: {model: $PWD/Tests/Fixtures/blip/caption-st, decoding: greedy, max_new_tokens: 8, batch_size: 8}
filter: {model: $PWD/Tests/Fixtures/blip/itm-st, threshold: 0.0}
YAML
"$bin" run "$work/spec.yaml" --quiet
python3 - "$work/out" "$per" <<'PY'
import glob, hashlib, io, json, os, sys, tarfile
out, per = sys.argv[1], int(sys.argv[2])
for folder in sorted(glob.glob(out + "/units/*")):
    done = json.load(open(folder + "/done.json"))
    real = json.loads(open(f"{folder}/{done['records']}").readline())
    unit = done["unit"]
    records, tar = io.BytesIO(), io.BytesIO()
    kept = 0
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for i in range(per):
            data = b"\x89PNG" + unit.to_bytes(4, "little") + i.to_bytes(4, "little") + bytes(52)
            r = dict(real, ordinal=i, key=f"{unit:05d}{i:06d}x", source_key=f"{unit:05d}{i:06d}x",
                     position=f"offset {i * 1024}", image_sha256=hashlib.sha256(data).hexdigest(), image_bytes=len(data))
            if i % 5 == 4:
                r.update(status="filtered", reason="no_text_matched", main_caption=None, main_caption_source=None)
            else:
                r.update(status="kept", reason=None)
                kept += 1
                info = tarfile.TarInfo(f"{i}.png"); info.size = len(data); t.addfile(info, io.BytesIO(data))
            records.write(json.dumps(r, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    rec, img = records.getvalue(), tar.getvalue()
    open(f"{folder}/{done['records']}", "wb").write(rec)
    open(f"{folder}/{done['images']}", "wb").write(img)
    done.update(samples=per, kept=kept, records_sha256=hashlib.sha256(rec).hexdigest(),
                images_sha256=hashlib.sha256(img).hexdigest(), images_bytes=len(img))
    json.dump(done, open(folder + "/done.json", "w"), indent=2, sort_keys=True)
PY
rm -f "$work/out/capfilt_run.json"
echo "merge of $units units x $per samples = $((units * per)) samples, from scratch:"
/usr/bin/time -f "%e s wall, %M KB peak RSS" "$bin" merge "$work/out" --quiet 2>&1 | grep -v "^  \|^job" || true
ls "$work/out/shards" | grep -c '\.tar$' | sed 's/^/shards: /'
du -sh "$work/out/shards" | sed 's/^/dataset: /'
