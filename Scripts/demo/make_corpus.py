#!/usr/bin/env python3
"""A scrape of the demo world as it looks in the wild, in two input forms with the same samples:

  DIR/data/00000.tar, 00001.tar, ...  webdataset shards as img2dataset writes them: KEY.jpg or KEY.png,
                                      KEY.txt (alt text), KEY.json ({"url", "caption", "key", "status",
                                      "error_message", "width", "height", "original_width",
                                      "original_height"}), plus NNNNN_stats.json per shard.
                                      KEY = shard * 1000 + index in shard, zero padded to 9 digits.
  DIR/list.jsonl + DIR/images/        one line per sample: {"key", "image": "images/KEY.ext", "caption"}
  DIR/labels.jsonl                    ground truth, never read by the pipeline: {"key", "web_text_matches",
                                      "reference_caption" (absent for undecodable images), "noise",
                                      "duplicate_of" (exact duplicates only)}

Alt texts: about half are the true caption (sometimes capitalised: the tokenizer lowercases), the rest are
noise: wrong in exactly one attribute (colour, shape, size, background, the second object), another
image's caption, boilerplate ("IMG_2041.JPG", "click to enlarge", ...), empty. A few image files are corrupt
or truncated, and a few are exact byte duplicates of an earlier sample's file.

Usage: python3 Scripts/demo/make_corpus.py --seed 0 --count 300 --out Pipelines/demo/corpus
"""
from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tarfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

PER_SHARD = 150
# Noise mix for the web text of a decodable, non-duplicate sample.
TEXT_KINDS = [("correct", 0.50), ("one_attribute", 0.24), ("unrelated", 0.09), ("boilerplate", 0.11),
              ("empty", 0.06)]
BROKEN = [("corrupt", 0.015), ("truncated", 0.02)]
DUPLICATE = 0.025


def tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def pick(rng: np.random.Generator, table: list[tuple[str, float]]) -> str:
    names, weights = zip(*table)
    w = np.array(weights) / sum(weights)
    return names[rng.choice(len(names), p=w)]


def web_text(kind: str, desc: world.Desc, rng: np.random.Generator, others: list[world.Desc]) -> tuple[str, str]:
    """(alt text, noise label) for one sample."""
    if kind == "correct":
        text = desc.caption()
        return (text[0].upper() + text[1:] if rng.random() < 0.3 else text), "correct"
    if kind == "one_attribute":
        wrong, what = world.perturb(desc, rng)
        text = wrong.caption()
        return (text[0].upper() + text[1:] if rng.random() < 0.3 else text), "wrong_" + what
    if kind == "unrelated":
        while True:
            other = others[rng.integers(len(others))]
            if other != desc:
                return other.caption(), "unrelated"
    if kind == "boilerplate":
        return world.boilerplate(rng), "boilerplate"
    return ("" if rng.random() < 0.7 else "  "), "empty"


def broken_bytes(kind: str, good: bytes, rng: np.random.Generator) -> bytes:
    if kind == "truncated":  # a download cut short: the header survives, most of the data does not
        return good[:max(64, int(len(good) * rng.uniform(0.05, 0.3)))]
    choice = rng.integers(3)
    if choice == 0:
        return b"<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"
    if choice == 1:
        return b""
    return bytes(rng.integers(0, 256, int(rng.integers(200, 2000)), dtype=np.uint8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--out", default="Pipelines/demo/corpus")
    args = ap.parse_args()

    rng = np.random.default_rng([args.seed, 2024])
    samples = []  # dicts: key, ext, data, text, label
    descs = [world.random_desc(rng) for _ in range(args.count)]
    decodable = []  # indices of good, original images
    for i in range(args.count):
        shard, j = divmod(i, PER_SHARD)
        key = f"{shard * 1000 + j:09d}"
        u = rng.random()
        label = {"key": key}
        if decodable and u < DUPLICATE:
            src = samples[decodable[rng.integers(len(decodable))]]
            desc, ext, data, w, h = src["desc"], src["ext"], src["data"], src["w"], src["h"]
            text, noise = web_text(pick(rng, TEXT_KINDS), desc, rng, descs)
            label |= {"web_text_matches": noise == "correct", "reference_caption": desc.caption(),
                      "noise": noise, "duplicate_of": src["key"]}
        else:
            desc = descs[i]
            scene, data = world.make_image(rng, desc)
            ext, w, h = scene.fmt, scene.width, scene.height
            if u < DUPLICATE + sum(p for _, p in BROKEN):
                broken = pick(rng, BROKEN)
                data = broken_bytes(broken, data, rng)
                text, _ = web_text(pick(rng, TEXT_KINDS), desc, rng, descs)
                label |= {"web_text_matches": False, "noise": broken}
            else:
                text, noise = web_text(pick(rng, TEXT_KINDS), desc, rng, descs)
                label |= {"web_text_matches": noise == "correct", "reference_caption": desc.caption(),
                          "noise": noise}
                decodable.append(i)
        samples.append({"key": key, "ext": ext, "data": data, "text": text, "label": label, "desc": desc,
                        "w": w, "h": h})

    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.makedirs(os.path.join(args.out, "data"))
    os.makedirs(os.path.join(args.out, "images"))
    for shard in range((len(samples) + PER_SHARD - 1) // PER_SHARD):
        part = samples[shard * PER_SHARD:(shard + 1) * PER_SHARD]
        with tarfile.open(os.path.join(args.out, "data", f"{shard:05d}.tar"), "w",
                          format=tarfile.USTAR_FORMAT) as tar:
            for s in part:
                meta = {"url": f"https://shapes.example.com/img/{s['key']}.{s['ext']}", "caption": s["text"],
                        "key": s["key"], "status": "success", "error_message": None, "width": s["w"],
                        "height": s["h"], "original_width": s["w"], "original_height": s["h"]}
                tar_add(tar, f"{s['key']}.{s['ext']}", s["data"])
                tar_add(tar, f"{s['key']}.txt", s["text"].encode())
                tar_add(tar, f"{s['key']}.json", json.dumps(meta).encode())
        stats = {"count": len(part), "successes": len(part), "failed_to_download": 0, "failed_to_resize": 0,
                 "duration": 0.0, "status_dict": {"success": len(part)}}
        with open(os.path.join(args.out, "data", f"{shard:05d}_stats.json"), "w") as f:
            json.dump(stats, f, indent=4)
            f.write("\n")
    with open(os.path.join(args.out, "list.jsonl"), "w") as lst, \
            open(os.path.join(args.out, "labels.jsonl"), "w") as lab:
        for s in samples:
            rel = f"images/{s['key']}.{s['ext']}"
            with open(os.path.join(args.out, rel), "wb") as f:
                f.write(s["data"])
            lst.write(json.dumps({"key": s["key"], "image": rel, "caption": s["text"]}) + "\n")
            lab.write(json.dumps(s["label"]) + "\n")

    kinds = {}
    for s in samples:
        kinds[s["label"]["noise"]] = kinds.get(s["label"]["noise"], 0) + 1
    matches = sum(s["label"]["web_text_matches"] for s in samples)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"wrote {len(samples)} samples to {args.out} ({size / 1e6:.2f} MB): {matches} correct web texts; "
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    dups = sum("duplicate_of" in s["label"] for s in samples)
    print(f"  {dups} exact duplicates, {sum(s['ext'] == 'png' for s in samples)} PNG, "
          f"{sum(s['ext'] == 'jpg' for s in samples)} JPEG")


if __name__ == "__main__":
    main()
