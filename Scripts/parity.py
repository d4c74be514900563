#!/usr/bin/env python3
"""Side-by-side parity check: transformers 5 and the capfilt CLI on the same model folders and images.

Works on real Hub checkpoints (e.g. a downloaded Salesforce/blip-image-captioning-base) and on the
full-size random ones `Scripts/fixtures/blip.py --full-size DIR` writes. Prints, per setting, how many
generated sequences are identical, and the largest ITM / ITC differences.

Usage:
  python3 Scripts/parity.py --caption DIR --itm DIR IMAGE... [--capfilt .build/release/capfilt]
"""
import argparse
import json
import subprocess
import sys
import time

import torch
from PIL import Image
from transformers import BlipForConditionalGeneration, BlipForImageTextRetrieval, BlipProcessor

SETTINGS = {
    "greedy": ({}, []),
    "greedy_prompt": ({"prompt": "a picture of"}, ["--prompt", "a picture of"]),
    "beam3": ({"num_beams": 3}, ["--num-beams", "3"]),
    "beam3_min5_rep": ({"num_beams": 3, "min_new_tokens": 5, "repetition_penalty": 1.2},
                       ["--num-beams", "3", "--min-new-tokens", "5", "--repetition-penalty", "1.2"]),
}
TEXTS = ["a picture of a dog", "a woman sitting on the beach with her dog", "click to enlarge"]


def run_capfilt(binary, args):
    out = subprocess.run([binary] + args, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"capfilt failed: {out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caption", required=True)
    ap.add_argument("--itm", required=True)
    ap.add_argument("--capfilt", default=".build/release/capfilt")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())

    processor = BlipProcessor.from_pretrained(a.caption, backend="pil")
    cap = BlipForConditionalGeneration.from_pretrained(a.caption).eval()
    identical = total = 0
    for name, (kwargs, flags) in SETTINGS.items():
        kwargs = dict(kwargs)
        prompt = kwargs.pop("prompt", None)
        t0 = time.time()
        ours = run_capfilt(a.capfilt, ["caption", "--model", a.caption] + flags + a.images)
        t_ours = time.time() - t0
        t_theirs = 0.0
        for path, mine in zip(a.images, ours):
            inputs = processor(images=Image.open(path), text=prompt, return_tensors="pt")
            t0 = time.time()
            with torch.no_grad():
                ids = cap.generate(**inputs, **kwargs)[0].tolist()
            t_theirs += time.time() - t0
            total += 1
            if ids == mine["token_ids"]:
                identical += 1
            else:
                print(f"  DIFFERENT {name} {path}:\n    transformers {ids}\n    capfilt      {mine['token_ids']}")
        print(f"{name}: transformers {t_theirs:.1f}s, capfilt {t_ours:.1f}s (incl. model load)")
    print(f"captions: {identical}/{total} token sequences identical")

    itm = BlipForImageTextRetrieval.from_pretrained(a.itm).eval()
    iproc = BlipProcessor.from_pretrained(a.itm, backend="pil")
    worst_itm = worst_itc = 0.0
    for path in a.images:
        ours = run_capfilt(a.capfilt, ["score", "--model", a.itm, "--image", path] + sum([["--text", t] for t in TEXTS], []))
        for text, mine in zip(TEXTS, ours):
            inputs = iproc(images=Image.open(path), text=text, return_tensors="pt")
            with torch.no_grad():
                p = torch.softmax(itm(**inputs).itm_score, dim=1)[0, 1].item()
                c = itm(**inputs, use_itm_head=False).itm_score[0, 0].item()
            worst_itm = max(worst_itm, abs(p - mine["itm"]))
            worst_itc = max(worst_itc, abs(c - mine["itc"]))
    print(f"scores: {len(a.images) * len(TEXTS)} pairs, ITM max abs diff {worst_itm:.2e}, ITC max abs diff {worst_itc:.2e}")


if __name__ == "__main__":
    main()
