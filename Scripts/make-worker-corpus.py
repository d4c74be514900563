#!/usr/bin/env python3
"""Writes a small multi-unit corpus for the scheduler tests (Scripts/slurm/test-capfilt-slurm.sh,
Scripts/k8s/test-indexed-job.sh). Python standard library only.

    python3 Scripts/make-worker-corpus.py DIR [--samples 40] [--block-size 5] [--spec-dir NAME ...]

DIR/corpus/list.jsonl + DIR/corpus/images/: SAMPLES list rows made from the fixture images in
Tests/Fixtures/blip/images (each copy made distinct by zero bytes after its end marker, which leave the
pixels unchanged), with a few rows that exercise the merge across units: exact duplicate images placed in
other units than their first copy, a corrupt image, a missing file and an empty caption.
For every --spec-dir NAME, DIR/NAME/spec.yaml: the same bytes each time (input ../corpus/list.jsonl,
output folder `out` beside the spec, the tiny fixture models Tests/Fixtures/blip/caption-st and itm-st),
so that runs of those specs write datasets that must be byte-identical (the run manifest quotes the spec).
`input.block_size` makes ceil(SAMPLES / BLOCK) units. Extra spec lines can be appended with --job-yaml.
"""
import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "Tests/Fixtures/blip"
IMAGES = ["rgb_80x60.png", "rgb_100x75.jpg", "gray_50x50.png", "rgba_64x48.png", "gray_70x90.jpg",
          "rgb_64x64.png", "rgb_30x200.png"]
TEXTS = ["a woman sitting on the beach with her dog", "IMG_2041.JPG", "click to enlarge", "two dogs and a cat",
         "stock photo", "a red circle on a white background", "a small green star on a gray background"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--block-size", type=int, default=5)
    ap.add_argument("--spec-dir", action="append", default=[])
    ap.add_argument("--job-yaml", default="", help="lines appended to every spec, e.g. 'job:\\n  lease_seconds: 10'")
    a = ap.parse_args()
    corpus = a.dir / "corpus"
    (corpus / "images").mkdir(parents=True, exist_ok=True)
    originals = [(FIXTURES / "images" / n).read_bytes() for n in IMAGES]
    rows = []
    for i in range(a.samples):
        key = f"s{i:04d}"
        base = IMAGES[i % len(IMAGES)]
        ext = base.rsplit(".", 1)[1]
        data = originals[i % len(IMAGES)] + bytes(i // len(IMAGES))
        text = f"{TEXTS[(i * 3) % len(TEXTS)]} {i}"
        if i in (20, 29, 38):
            data = (corpus / "images" / rows[i - 11][1]).read_bytes()   # the same bytes as a row in another unit
            text = f"a copy of sample {i - 11}"
        if i == 13:
            data = data[:24] + b"\x55" * 300                           # corrupt
        if i == 22:
            text = ""
        name = f"{key}.{ext}"
        if i != 31:                                                      # row 31: the image was never downloaded
            (corpus / "images" / name).write_bytes(data)
        rows.append((key, name, text))
    with open(corpus / "list.jsonl", "w") as f:
        for key, name, text in rows:
            f.write(json.dumps({"key": key, "image": f"images/{name}", "caption": text}) + "\n")
    spec = f"""version: 1
input:
  kind: jsonl
  paths: [../corpus/list.jsonl]
  key_column: key
  block_size: {a.block_size}
output:
  folder: out
  samples_per_shard: 4
captioner:
  model: {FIXTURES / "caption-st"}
  decoding: nucleus
  max_new_tokens: 8
  min_new_tokens: 2
  batch_size: 2
  seed: 7
filter:
  model: {FIXTURES / "itm-st"}
  threshold: 0.5
duplicates: drop
"""
    if a.job_yaml:
        spec += a.job_yaml.replace("\\n", "\n").rstrip("\n") + "\n"
    for name in a.spec_dir:
        (a.dir / name).mkdir(parents=True, exist_ok=True)
        (a.dir / name / "spec.yaml").write_text(spec)
    units = -(-a.samples // a.block_size)
    print(f"make-worker-corpus: {a.dir}/corpus: {a.samples} rows, block_size {a.block_size}, {units} units; "
          f"specs: {', '.join(str(a.dir / n / 'spec.yaml') for n in a.spec_dir) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
