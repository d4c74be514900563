#!/usr/bin/env python3
"""Proves that what ParquetWriter writes is readable by the Python ecosystem: pyarrow, pandas, DuckDB and Hugging
Face `datasets` read the writer's golden files (Tests/Fixtures/parquet/written/: PLAIN + snappy, and dictionary +
zstd; WriterTests holds them byte-identical to the writer's output) and get exactly the rows WriterTests' ManifestSample
writes, including the image struct column that `datasets` decodes to PIL images through the footer's
"huggingface" features. The rows are rebuilt here from the same rules; change both together.

Setup:  python3 -m venv /tmp/pqvenv && /tmp/pqvenv/bin/pip install pyarrow pandas duckdb datasets
Run:    /tmp/pqvenv/bin/python Scripts/check_parquet_writer.py [FILE.parquet ...]
Exits 1 with the first difference, 0 with a summary when every reader agrees.
"""

import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a730000001649444154789c633c21a7c1"
                    "c0c0c0c4c0c0c0c0c000000d720112397285f20000000049454e44ae426082")
WRITTEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "parquet", "written")
GOLDEN = [os.path.join(WRITTEN, "manifest_snappy.parquet"), os.path.join(WRITTEN, "manifest_dictionary_zstd.parquet")]


def expected_rows():
    rows = []
    for i in range(25):
        rows.append({
            "key": f"{i:09d}",
            "caption": None if i % 5 == 4 else "" if i % 6 == 1 else f"caption {i} — ünïcödé",
            "width": None if i % 7 == 3 else i * 1_000_000_007 - 5,
            "height": None if i % 4 == 2 else i - 12,
            "itm": None if i % 3 == 0 else i / 8,
            "scale": None if i % 5 == 0 else i * 0.25,
            "kept": None if i % 6 == 5 else i % 2 == 0,
            "jpg": None if i % 9 == 8 else bytes((i + k) % 256 for k in range(i % 4 * 3)),
            "synthetic_captions": None if i % 8 == 7 else [f"s{i}_{k}" for k in range(i % 3)],
            "synthetic_scores": None if i % 8 == 7 else [k * 0.5 + i for k in range(i % 3)],
            "image": None if i % 9 == 8 else {"bytes": PNG, "path": f"{i}.png" if i % 2 == 0 else None},
        })
    return rows


EXPECTED_SCHEMA = pa.schema([
    ("key", pa.string()), ("caption", pa.string()), ("width", pa.int64()), ("height", pa.int32()),
    ("itm", pa.float64()), ("scale", pa.float32()), ("kept", pa.bool_()), ("jpg", pa.binary()),
    ("synthetic_captions", pa.list_(pa.string())), ("synthetic_scores", pa.list_(pa.float32())),
    ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
])


def check_statistics(f, want):
    """Row-group statistics as pyarrow reads them: null counts everywhere but lists, exact min/max on flat columns."""
    meta, start = f.metadata, 0
    for g in range(meta.num_row_groups):
        rows = want[start:start + meta.row_group(g).num_rows]
        start += len(rows)
        for i in range(meta.num_columns):
            path = meta.schema.column(i).path
            stats = meta.row_group(g).column(i).statistics
            name, _, field = path.partition(".")
            if name.startswith("synthetic_"):
                if stats is not None:
                    fail(f"row group {g} {path}: list leaves should have no statistics")
                continue
            if field:  # image.bytes, image.path
                values = [None if r[name] is None else r[name][field] for r in rows]
            else:
                values = [r[name] for r in rows]
            present = [v for v in values if v is not None]
            if stats is None or stats.null_count != len(values) - len(present):
                fail(f"row group {g} {path}: null_count {stats and stats.null_count}, expected {len(values) - len(present)}")
            if field or name == "jpg":
                continue
            if not present:
                continue
            if not stats.has_min_max or stats.min != min(present) or stats.max != max(present):
                fail(f"row group {g} {path}: min/max {stats.min}/{stats.max}, expected {min(present)}/{max(present)}")


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def compare(reader, got, want):
    if len(got) != len(want):
        fail(f"{reader}: {len(got)} rows, expected {len(want)}")
    for i, (g, w) in enumerate(zip(got, want)):
        for column, value in w.items():
            if g[column] != value:
                fail(f"{reader}: row {i} column {column}: {g[column]!r}, expected {value!r}")


def main():
    for path in sys.argv[1:] or GOLDEN:
        print(f"{os.path.basename(path)}:")
        check(path)
    print("OK: every reader agrees with the writer")


def check(path):
    want = expected_rows()

    f = pq.ParquetFile(path)
    table = f.read()
    if not table.schema.equals(EXPECTED_SCHEMA):
        fail(f"pyarrow schema:\n{table.schema}\nexpected:\n{EXPECTED_SCHEMA}")
    compare("pyarrow", table.to_pylist(), want)
    groups = [f.metadata.row_group(g).num_rows for g in range(f.metadata.num_row_groups)]
    check_statistics(f, want)
    print(f"pyarrow {pa.__version__}: schema, {table.num_rows} rows and every row group's statistics match; "
          f"row groups {groups}; "
          f"created_by {f.metadata.created_by!r}")

    import pandas as pd
    frame = pd.read_parquet(path)
    if list(frame.columns) != [field.name for field in EXPECTED_SCHEMA]:
        fail(f"pandas columns {list(frame.columns)}")
    if not all(isinstance(k, str) for k in frame["key"]) or frame["key"].iloc[7] != "000000007":
        fail("pandas: keys are not kept as strings")
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    for row in records:
        for column in ("synthetic_captions", "synthetic_scores"):
            if row[column] is not None:
                row[column] = [x.item() if hasattr(x, "item") else x for x in row[column]]
        for column in ("width", "height"):
            if row[column] is not None:
                row[column] = int(row[column])
    compare("pandas", records, want)
    print(f"pandas {pd.__version__}: {len(frame)} rows match (keys stay strings)")

    try:
        import duckdb
    except ImportError:
        print("duckdb not installed: skipped")
    else:
        con = duckdb.connect()
        cursor = con.execute(f"SELECT * FROM read_parquet('{path}')")
        names = [d[0] for d in cursor.description]
        compare("duckdb", [dict(zip(names, row)) for row in cursor.fetchall()], want)
        # A filter DuckDB may answer from the statistics (row groups skipped by min/max) must still be right.
        query = f"SELECT key FROM read_parquet('{path}') WHERE width > 9000000000 AND kept ORDER BY key"
        got = [row[0] for row in con.execute(query).fetchall()]
        expected = [r["key"] for r in want if r["width"] is not None and r["width"] > 9_000_000_000 and r["kept"]]
        if got != expected:
            fail(f"duckdb filter: {got}, expected {expected}")
        print(f"duckdb {duckdb.__version__}: read_parquet gives {len(want)} matching rows; a filtered query "
              f"gives {len(got)} matching keys")

    try:
        import datasets
    except ImportError:
        print("datasets not installed: skipped")
        return
    ds = datasets.load_dataset("parquet", data_files=path, split="train")
    if not isinstance(ds.features["image"], datasets.Image):
        fail(f"datasets: the image column is {ds.features['image']}, not Image() (the footer's huggingface metadata)")
    for i, expected in enumerate(want):
        image = ds[i]["image"]  # indexing decodes: a PIL image
        if (image is None) != (expected["image"] is None) or (image is not None and image.size != (2, 2)):
            fail(f"datasets: row {i} image {image!r}")
    raw = ds.cast_column("image", datasets.Image(decode=False)).to_list()
    compare("datasets (undecoded)", raw, want)
    print(f"datasets {datasets.__version__}: load_dataset('parquet') gives {ds.num_rows} matching rows, images "
          f"decoded as PIL; features {ds.features}")


if __name__ == "__main__":
    main()
