#!/usr/bin/env python3
"""Side-by-side benchmark: transformers 5 (torch, CPU) and capfilt on the same base-size checkpoints, images
and work, in one run. Prints per component the median time per image and the ratio, checks that the outputs
agree, and reports the vision tower's achieved GFLOP/s against OpenBLAS sgemm on the same shapes.

    Scripts/setup-python.sh
    python3 Scripts/fixtures/blip.py --full-size local/full        # random-init base checkpoints (not committed)
    swift build -c release
    python3 Scripts/bench_vs_transformers.py --caption local/full/caption-st --itm local/full/itm-st local/full/images/rgb_80x60.png
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from PIL import Image
from transformers import BlipForConditionalGeneration, BlipForImageTextRetrieval, BlipProcessor


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caption", required=True)
    ap.add_argument("--itm", required=True)
    ap.add_argument("--capfilt", default=".build/release/capfilt")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("image")
    a = ap.parse_args()
    torch.manual_seed(0)
    image = Image.open(a.image)
    text = "a woman sitting on the beach with her dog"

    proc = BlipProcessor.from_pretrained(a.caption, backend="pil")
    cap = BlipForConditionalGeneration.from_pretrained(a.caption).eval()
    iproc = BlipProcessor.from_pretrained(a.itm, backend="pil")
    itm = BlipForImageTextRetrieval.from_pretrained(a.itm).eval()
    pv = proc(images=image, return_tensors="pt")["pixel_values"]
    ours = {}
    theirs = {}
    with torch.no_grad():
        theirs["decode_preprocess"] = median_time(lambda: proc(images=Image.open(a.image), return_tensors="pt"), a.repeats)
        theirs["vision_forward"] = median_time(lambda: cap.vision_model(pixel_values=pv), a.repeats)
        beam_ids = cap.generate(pixel_values=pv, num_beams=3, max_new_tokens=20, min_new_tokens=20)[0].tolist()
        theirs["beam3_caption_20_tokens"] = median_time(
            lambda: cap.generate(pixel_values=pv, num_beams=3, max_new_tokens=20, min_new_tokens=20), a.repeats)
        theirs["nucleus_caption_20_tokens"] = median_time(
            lambda: cap.generate(pixel_values=pv, do_sample=True, top_p=0.9, max_new_tokens=20, min_new_tokens=20), a.repeats)
        inputs = iproc(images=image, text=text, return_tensors="pt")
        theirs["itm_per_text"] = median_time(lambda: itm(**inputs), a.repeats)
        their_itm = torch.softmax(itm(**inputs).itm_score, dim=1)[0, 1].item()

        def step():
            img = Image.open(a.image)
            p = proc(images=img, return_tensors="pt")["pixel_values"]
            ids = cap.generate(pixel_values=p, do_sample=True, top_p=0.9, max_new_tokens=20, min_new_tokens=20)
            caption = proc.decode(ids[0], skip_special_tokens=True)
            for t in (text, caption):
                itm(**iproc(images=img, text=t, return_tensors="pt"))
        theirs["capfilt_step"] = median_time(step, a.repeats)

        # The same two items in batches of 8 images, as the pipeline runs them, the way a transformers user
        # would batch: one generate() for 8 images, one ITM call for their 16 texts (transformers' ITM takes
        # pixel values, so its forward runs the ViT once per text).
        theirs["vision_forward_batch8_per_image"] = median_time(
            lambda: cap.vision_model(pixel_values=pv.repeat(8, 1, 1, 1)), a.repeats) / 8

        def step8():
            imgs = [Image.open(a.image) for _ in range(8)]
            p = proc(images=imgs, return_tensors="pt")["pixel_values"]
            ids = cap.generate(pixel_values=p, do_sample=True, top_p=0.9, max_new_tokens=20, min_new_tokens=20)
            captions = proc.batch_decode(ids, skip_special_tokens=True)
            itm(**iproc(images=imgs + imgs, text=[text] * 8 + captions, padding=True, return_tensors="pt"))
        theirs["capfilt_step_batch8_per_image"] = median_time(step8, a.repeats) / 8

    out = subprocess.run([a.capfilt, "bench", "--caption", a.caption, "--itm", a.itm, "--repeats", str(a.repeats), a.image],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(out.stderr)
    bench = json.loads(out.stdout)
    for k in theirs:
        ours[k] = bench[k + "_s"]
    check = subprocess.run([a.capfilt, "caption", "--model", a.caption, "--num-beams", "3", "--max-new-tokens", "20",
                            "--min-new-tokens", "20", a.image], capture_output=True, text=True)
    same = json.loads(check.stdout.splitlines()[0])["token_ids"] == beam_ids
    score = subprocess.run([a.capfilt, "score", "--model", a.itm, "--image", a.image, "--text", text],
                           capture_output=True, text=True)
    itm_diff = abs(json.loads(score.stdout.splitlines()[0])["itm"] - their_itm)

    print(f"machine: {bench['blas']}, {bench['blas_threads']} BLAS threads; torch {torch.__version__} with {torch.get_num_threads()} threads")
    print(f"{'component (seconds per image)':34s} {'transformers':>13s} {'capfilt':>10s} {'ratio':>7s}")
    for k in theirs:
        print(f"{k:34s} {theirs[k]:12.3f}s {ours[k]:9.3f}s {theirs[k] / ours[k]:6.1f}x")
    print()
    print("capfilt breakdown (seconds per image; image embeddings given, so no ViT):")
    for k in ("beam3_decode_only", "nucleus_decode_only", "itm_text_pass_only",
              "nucleus_batch8_decode_only_per_image", "itm_batch8_text_pass_only_per_image"):
        print(f"  {k:40s} {bench[k + '_s']:.3f}s")
    floor = 2 * bench["vision_gflop"] / bench["sgemm_gflops_per_s_same_shapes"]
    print(f"floor of a capfilt step: its two ViT passes (captioner's and filter's weights differ) at the sgemm rate = "
          f"{floor:.3f}s per image, so no whole-step ratio above {theirs['capfilt_step_batch8_per_image'] / floor:.1f}x "
          f"(batch 8) or {theirs['capfilt_step'] / floor:.1f}x (batch 1) is possible on this machine")
    print(f"vision forward: {bench['vision_gflop']} GFLOP, {bench['vision_gflops_per_s']} GFLOP/s achieved, "
          f"sgemm on the same shapes {bench['sgemm_gflops_per_s_same_shapes']} GFLOP/s "
          f"({100 * bench['vision_share_of_sgemm']:.0f}%)")
    print(f"capfilt peak RSS with captioner and filter loaded: {bench['peak_rss_mb']} MB")
    print(f"beam-3 token ids identical to transformers: {same}; ITM P(match) differs by {itm_diff:.1e}")


if __name__ == "__main__":
    main()
