#!/usr/bin/env bash
# The loaders users read our output with, on a real run (issue 12): installs datasets, webdataset, pyarrow,
# pandas, DuckDB and Pillow from PyPI into local/loaders-venv, makes a mixed JPEG/PNG/WebP scrape from the
# demo's first shard (a third of its JPEGs re-encoded as WebP by Pillow), runs capfilt on it with the demo
# models twice (output.image_format original and jpg), and runs Scripts/check_loaders.py on each output.
# About 3 minutes on a fresh machine (mostly pip).
#   Scripts/check_loaders.sh [CAPFILT]    CAPFILT: the binary to run (default .build/debug/capfilt, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/debug/capfilt}
[ -x "$bin" ] || swift build --product capfilt
venv=local/loaders-venv
if ! "$venv/bin/python" -c "import datasets, webdataset, pyarrow, pandas, duckdb, PIL" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "datasets>=5.2,<6" "webdataset>=0.2" "pyarrow>=20" "pandas>=2" "duckdb>=1" "pillow>=11"
fi
work=local/check-loaders
rm -rf "$work" && mkdir -p "$work/data"
"$venv/bin/python" - "$work/data/00000.tar" <<'PY'
import io, sys, tarfile
from PIL import Image
src = tarfile.open("Pipelines/demo/corpus/data/00000.tar")
members = [(m, src.extractfile(m).read()) for m in src.getmembers() if m.isfile()]
jpgs = 0
with tarfile.open(sys.argv[1], "w", format=tarfile.USTAR_FORMAT) as out:
    for m, data in members[:240]:
        name = m.name
        if name.endswith(".jpg"):
            jpgs += 1
            if jpgs % 3 == 0:
                try:
                    buffer = io.BytesIO()
                    Image.open(io.BytesIO(data)).save(buffer, "WEBP", quality=90)
                    data, name = buffer.getvalue(), name[:-4] + ".webp"
                except Exception:
                    pass  # a scrape's undecodable JPEG stays as it is
        info = tarfile.TarInfo(name); info.size = len(data)
        out.addfile(info, io.BytesIO(data))
PY
# The input's bytes as they are (the default), and every image re-encoded to JPEG (output.image_format: jpg).
for format in original jpg; do
  mkdir -p "$work/$format" && ln -sfn ../data "$work/$format/data"
  cat > "$work/$format/spec.yaml" <<YAML
version: 1
input: {kind: webdataset, paths: [data]}
output: {folder: out, samples_per_shard: 40, image_format: $format}
captioner: {model: $PWD/Pipelines/demo/models/captioner, decoding: nucleus, prompt: "", max_new_tokens: 24,
            min_new_tokens: 0, repetition_penalty: 1.0, batch_size: 8}
filter: {model: $PWD/Pipelines/demo/models/filter}
YAML
  "$bin" run "$work/$format/spec.yaml" --quiet
done
status=0
for format in original jpg; do
  # A cache of its own for each check: `datasets` must read the files, not an earlier run's cached copy.
  HF_DATASETS_CACHE="$PWD/$work/$format/hf-cache" \
    "$venv/bin/python" Scripts/check_loaders.py "$PWD/$work/$format/out" "$format" || status=1
done
exit $status
