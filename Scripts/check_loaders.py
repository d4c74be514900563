"""What users load our output with, on a real run's output: pyarrow, pandas, DuckDB, Hugging Face `datasets`
(parquet, json, webdataset) and `webdataset`. Run by Scripts/check_loaders.sh, which makes the run.

    python Scripts/check_loaders.py OUT IMAGE_FORMAT     (the run's output.image_format: original, jpg or webp)

Prints one line per loader (works / FAILS with the error) and exits 1 if any loader that should work fails.
Loaders listed in KNOWN_GAPS are reported but do not fail the check (each names what is missing); if one of
them starts working, the check fails too, so the list cannot go stale.
"""
import glob
import json
import os
import sys
import traceback

out, image_format = sys.argv[1], sys.argv[2]
shards = os.path.join(out, "shards")
run = json.load(open(os.path.join(out, "capfilt_run.json")))
tars = sorted(glob.glob(os.path.join(shards, "*.tar")))
parquets = sorted(glob.glob(os.path.join(shards, "*.parquet")))
jsonls = sorted(glob.glob(os.path.join(shards, "*.jsonl")))
input_samples = run["totals"]["input_samples"]
kept = run["totals"]["kept"]
manifest_rows = [json.loads(line) for path in jsonls for line in open(path, encoding="utf-8")]
manifest_keys = [row["key"] for row in manifest_rows]
manifest_statuses = [row["status"] for row in manifest_rows]
formats = sorted({name.rsplit(".", 1)[1] for t in tars for name in __import__("tarfile").open(t).getnames()
                  if name.rsplit(".", 1)[1] not in ("json", "txt")})

# Loaders that do not read an output as it is, with what to do instead.
KNOWN_GAPS = {}
if image_format == "original" and len(formats) > 1:
    KNOWN_GAPS["datasets load_dataset('webdataset')"] = (
        "shards of a mixed-format run keep the input's KEY.jpg and KEY.png members, which the webdataset builder "
        "refuses ('don't share the same prefix or the same types'); set output.image_format: jpg (checked below)")
    KNOWN_GAPS["datasets load_dataset(OUT), dataset card"] = "its default config is the shards: as above"


def check_pyarrow():
    import pyarrow.parquet as pq
    schemas = {str(pq.read_schema(p)) for p in parquets}
    assert len(schemas) == 1, f"{len(schemas)} different schemas across {len(parquets)} shards"
    table = pq.ParquetDataset(parquets).read()
    assert table.num_rows == input_samples, (table.num_rows, input_samples)
    assert table.column("key").to_pylist() == manifest_keys
    return f"{len(parquets)} files, one schema, {table.num_rows} rows"


def check_pandas():
    import pandas as pd
    frame = pd.concat([pd.read_parquet(p) for p in parquets], ignore_index=True)
    assert frame["key"].map(type).eq(str).all(), "keys are not text"
    assert list(frame["key"]) == manifest_keys
    assert (frame["status"] == "kept").sum() == kept
    lines = pd.concat([pd.read_json(p, lines=True, dtype={"key": str}) for p in jsonls], ignore_index=True)
    assert list(lines["key"]) == manifest_keys
    return f"read_parquet {len(frame)} rows, keys text; read_json(dtype={{'key': str}}) {len(lines)} rows"


def check_duckdb():
    import duckdb
    rows = duckdb.sql(f"SELECT status, count(*) FROM read_parquet('{shards}/*.parquet') GROUP BY status").fetchall()
    counts = dict(rows)
    for status in ("kept", "filtered", "failed", "duplicate"):
        assert counts.get(status, 0) == run["totals"][status], (status, counts, run["totals"])
    return "counts by status equal the run manifest's: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def check_datasets_parquet():
    from datasets import load_dataset
    ds = load_dataset("parquet", data_files=parquets, split="train")
    assert ds.num_rows == input_samples and ds["key"] == manifest_keys
    return f"{ds.num_rows} rows"


def check_datasets_json():
    from datasets import load_dataset
    ds = load_dataset("json", data_files=jsonls, split="train")
    assert ds.num_rows == input_samples and ds["key"] == manifest_keys
    return f"{ds.num_rows} rows"


def check_datasets_webdataset():
    from datasets import load_dataset
    ds = load_dataset("webdataset", data_files=tars, split="train")
    assert ds.num_rows == kept, (ds.num_rows, kept)
    return f"{ds.num_rows} samples"


def check_datasets_card():
    from datasets import load_dataset
    ds = load_dataset(out, split="train")
    assert ds.num_rows == kept, (ds.num_rows, kept)
    assert sorted(ds["__key__"]) == sorted(k for k, s in zip(manifest_keys, manifest_statuses) if s == "kept")
    return f"{ds.num_rows} samples, the kept ones"


def check_webdataset():
    import webdataset as wds
    n = 0
    for sample in wds.WebDataset(tars, shardshuffle=False).decode("pil"):
        image = next(sample[k] for k in ("jpg", "png", "webp") if k in sample)
        assert image.size[0] > 0 and isinstance(sample["txt"], str) and isinstance(sample["json"], dict)
        n += 1
    assert n == kept, (n, kept)
    return f"{n} samples decoded (image, txt, json)"


checks = [
    ("pyarrow", check_pyarrow),
    ("pandas", check_pandas),
    ("duckdb", check_duckdb),
    ("datasets load_dataset('parquet')", check_datasets_parquet),
    ("datasets load_dataset('json')", check_datasets_json),
    ("datasets load_dataset('webdataset')", check_datasets_webdataset),
    ("datasets load_dataset(OUT), dataset card", check_datasets_card),
    ("webdataset WebDataset(...).decode()", check_webdataset),
]
print(f"loaders on {out} (output.image_format: {image_format}): {len(tars)} shards, {kept} kept of {input_samples} input samples, image formats {formats}")
failed = []
for name, check in checks:
    try:
        detail = check()
        ok = True
    except Exception as error:  # a loader's own error, reported as it is
        detail = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]
        ok = False
        if os.environ.get("CHECK_LOADERS_VERBOSE"):
            traceback.print_exc()
    gap = KNOWN_GAPS.get(name)
    if ok and gap:
        print(f"  {name:40s} works, but it is listed as a known gap: remove it from KNOWN_GAPS ({detail})")
        failed.append(name)
    elif ok:
        print(f"  {name:40s} works: {detail}")
    elif gap:
        print(f"  {name:40s} KNOWN GAP: {detail}\n  {'':40s} missing: {gap}")
    else:
        print(f"  {name:40s} FAILS: {detail}")
        failed.append(name)
if failed:
    print("check_loaders: FAILED: " + ", ".join(failed), file=sys.stderr)
    sys.exit(1)
