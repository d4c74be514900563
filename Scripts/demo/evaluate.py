#!/usr/bin/env python3
"""CapFilt on a demo corpus with transformers, scored against the corpus's labels.jsonl: the Python oracle
of what `capfilt run Pipelines/demo.yaml` should achieve.

Per decodable image (duplicates of an earlier image's bytes are dropped first, as the pipeline does by
default): one synthetic caption with the demo's generation settings (nucleus: do_sample, top_p 0.9, top_k 50,
temperature 1, repetition_penalty 1, max_new_tokens 24, min_new_tokens 0, no prompt; decoded with
skip_special_tokens), then the filter's ITM P(match) = softmax(itm_score)[:, 1] for the web text (unless it
is empty) and the synthetic caption, texts truncated to 35 tokens; a text is kept when P >= 0.5. A sample
is exported when any text is kept; its main caption is the web text if kept, else the best kept synthetic
caption.

Prints: filter recall on correct web texts, drop rate on wrong (non-empty) web texts by kind, the share of
synthetic captions equal to the reference, the share of correct pairs in the export and the share of
decodable images exported. With --draws K, captions are sampled K times (different torch seeds) and every
figure is averaged over the draws (the Swift engine draws with its own RNG).

Usage: python3 Scripts/demo/evaluate.py --models Pipelines/demo/models --corpus Pipelines/demo/corpus
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections import defaultdict

import numpy as np
import torch
from PIL import Image
from transformers import BertTokenizer, BlipForConditionalGeneration, BlipForImageTextRetrieval
from transformers.models.blip.image_processing_pil_blip import BlipImageProcessorPil
from transformers.utils import logging as hf_logging

GEN = dict(do_sample=True, top_p=0.9, top_k=50, temperature=1.0, repetition_penalty=1.0, max_new_tokens=24,
           min_new_tokens=0)


def load_corpus(folder: str):
    labels = {}
    with open(os.path.join(folder, "labels.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            labels[row["key"]] = row
    samples, seen, dropped_dups, undecodable = [], set(), 0, 0
    with open(os.path.join(folder, "list.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            path = os.path.join(folder, row["image"])
            data = open(path, "rb").read()
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                dropped_dups += 1
                continue
            seen.add(digest)
            try:
                img = Image.open(path)
                img.load()
                img = img.convert("RGB")
            except Exception:
                undecodable += 1
                continue
            samples.append({"key": row["key"], "image": img, "text": row["caption"], "label": labels[row["key"]]})
    return samples, dropped_dups, undecodable


@torch.no_grad()
def itm_probs(model, tok, pixels: torch.Tensor, texts: list[str]) -> list[float]:
    enc = tok(texts, padding=True, truncation=True, max_length=35, return_tensors="pt")
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=pixels)
    return torch.softmax(out.itm_score, dim=1)[:, 1].tolist()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="Pipelines/demo/models")
    ap.add_argument("--corpus", default="Pipelines/demo/corpus")
    ap.add_argument("--draws", type=int, default=1, help="caption draws per image (averaged)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--show", type=int, default=0, help="print this many per-sample rows")
    ap.add_argument("--repetition-penalty", type=float, default=GEN["repetition_penalty"],
                    help="override (capfilt's spec default is 1.1; the demo uses 1.0)")
    ap.add_argument("--min-new-tokens", type=int, default=GEN["min_new_tokens"])
    ap.add_argument("--max-new-tokens", type=int, default=GEN["max_new_tokens"])
    ap.add_argument("--threshold", type=float, default=0.5, help="ITM P(match) needed to keep a text")
    args = ap.parse_args()
    GEN.update(repetition_penalty=args.repetition_penalty, min_new_tokens=args.min_new_tokens,
               max_new_tokens=args.max_new_tokens)
    th = args.threshold
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    t0 = time.time()

    cap_dir, filt_dir = os.path.join(args.models, "captioner"), os.path.join(args.models, "filter")
    cap = BlipForConditionalGeneration.from_pretrained(cap_dir).eval()
    filt = BlipForImageTextRetrieval.from_pretrained(filt_dir).eval()
    cap_tok, filt_tok = BertTokenizer.from_pretrained(cap_dir), BertTokenizer.from_pretrained(filt_dir)
    cap_proc, filt_proc = BlipImageProcessorPil.from_pretrained(cap_dir), BlipImageProcessorPil.from_pretrained(filt_dir)

    samples, dropped_dups, undecodable = load_corpus(args.corpus)
    n = len(samples)
    print("generation: " + ", ".join(f"{k}={v}" for k, v in GEN.items()) + f"; filter threshold {th}")
    print(f"{args.corpus}: {n} decodable images ({undecodable} undecodable, {dropped_dups} exact duplicates "
          f"dropped)")

    images = [s["image"] for s in samples]
    cap_px = cap_proc(images=images, return_tensors="pt")["pixel_values"]
    filt_px = filt_proc(images=images, return_tensors="pt")["pixel_values"]

    # Web texts: scored once.
    web_p = [None] * n
    for i, s in enumerate(samples):
        if s["text"].strip():
            web_p[i] = itm_probs(filt, filt_tok, filt_px[i:i + 1], [s["text"]])[0]

    totals = defaultdict(list)
    wrong_by_kind = defaultdict(list)
    for i, s in enumerate(samples):
        lab = s["label"]
        if web_p[i] is None:
            continue
        if lab["web_text_matches"]:
            totals["web_recall"].append(web_p[i] >= th)
        else:
            totals["web_drop"].append(web_p[i] < th)
            wrong_by_kind[lab["noise"]].append(web_p[i] < th)

    rows = []
    for draw in range(args.draws):
        torch.manual_seed(args.seed + draw)
        with torch.no_grad():
            out = []
            for b in range(0, n, 64):
                out += cap.generate(pixel_values=cap_px[b:b + 64], **GEN).tolist()
        synth = [cap_tok.decode(ids, skip_special_tokens=True) for ids in out]
        synth_p = [itm_probs(filt, filt_tok, filt_px[i:i + 1], [synth[i]])[0] for i in range(n)]
        exact, syn_kept_ok, syn_drop_bad, n_bad, exported, correct = 0, 0, 0, 0, 0, 0
        for i, s in enumerate(samples):
            ref = s["label"]["reference_caption"].lower()
            ok = synth[i] == ref
            exact += ok
            if ok:
                syn_kept_ok += synth_p[i] >= th
            else:
                n_bad += 1
                syn_drop_bad += synth_p[i] < th
            web_kept = web_p[i] is not None and web_p[i] >= th
            if web_kept:
                exported += 1
                correct += bool(s["label"]["web_text_matches"])
                main = ("web", s["text"])
            elif synth_p[i] >= th:
                exported += 1
                correct += ok
                main = ("synthetic", synth[i])
            else:
                main = ("none", "")
            if draw == 0 and len(rows) < args.show:
                rows.append(f"{s['key']} web {web_p[i] if web_p[i] is None else round(web_p[i], 3)!s:>6} "
                            f"{s['label']['noise']:>16} | synth {synth_p[i]:.3f} {'==' if ok else '!='} ref | "
                            f"{main[0]}: {main[1]!r}")
        totals["synthetic_exact"].append(exact / n)
        totals["synthetic_correct_kept"].append(syn_kept_ok / max(1, exact))
        totals["synthetic_wrong_dropped"].append(syn_drop_bad / n_bad if n_bad else float("nan"))
        totals["synthetic_wrong_count"].append(n_bad)
        totals["export_correct"].append(correct / max(1, exported))
        totals["images_kept"].append(exported / n)
        if draw == 0:
            bad = [(samples[i]["label"]["reference_caption"], synth[i]) for i in range(n)
                   if synth[i] != samples[i]["label"]["reference_caption"].lower()]

    for r in rows:
        print("  " + r)
    web_recall, web_drop = np.mean(totals["web_recall"]), np.mean(totals["web_drop"])
    print(f"filter recall on correct web texts      {web_recall:.4f}  ({sum(totals['web_recall'])}/"
          f"{len(totals['web_recall'])})")
    print(f"filter drop rate on wrong web texts     {web_drop:.4f}  ({sum(totals['web_drop'])}/"
          f"{len(totals['web_drop'])})")
    for k in sorted(wrong_by_kind):
        v = wrong_by_kind[k]
        print(f"    {k:<18} dropped {sum(v)}/{len(v)}")
    print(f"synthetic captions equal to reference   {np.mean(totals['synthetic_exact']):.4f}"
          + (f"  (draws: {', '.join(f'{x:.4f}' for x in totals['synthetic_exact'])})" if args.draws > 1 else ""))
    print(f"  correct synthetic captions kept       {np.mean(totals['synthetic_correct_kept']):.4f}")
    print(f"  wrong synthetic captions dropped      {np.nanmean(totals['synthetic_wrong_dropped']):.4f}  "
          f"(of {np.mean(totals['synthetic_wrong_count']):.1f} per draw)")
    print(f"correct pairs in the export             {np.mean(totals['export_correct']):.4f}")
    print(f"decodable images exported               {np.mean(totals['images_kept']):.4f}")
    for ref, got in bad[:10]:
        print(f"  miss: {ref!r} -> {got!r}")
    print(f"({time.time() - t0:.0f}s)")


if __name__ == "__main__":
    main()
