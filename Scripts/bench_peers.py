#!/usr/bin/env python3
"""capfilt against the engines our users run BLIP with on a CPU, in one run, on the same checkpoints and images:
transformers 5 (fp32 and bf16 autocast), ONNX Runtime (fp32 and dynamic int8) and OpenVINO (its default
precision and f32) for the vision tower, and capfilt in fp32, bf16 and int8.

    Scripts/setup-peers.sh                                   # local/peers-venv: torch, transformers, ORT, OpenVINO
    local/peers-venv/bin/python Scripts/fixtures/blip.py --full-size local/full   # random-init base checkpoints
    swift build -c release --build-path .build-release
    local/peers-venv/bin/python Scripts/bench_peers.py --caption local/full/caption-st --itm local/full/itm-st \
        --json local/peers.json local/full/images/rgb_80x60.png

    # quick check of the script itself on the tiny test checkpoints (seconds):
    local/peers-venv/bin/python Scripts/bench_peers.py --caption Tests/Fixtures/blip/caption-st \
        --itm Tests/Fixtures/blip/itm-st --repeats 1 Tests/Fixtures/blip/images/rgb_80x60.png

What it measures (seconds per image, median of --repeats, one untimed warm-up call before each Python figure):

1. The vision tower: pixel values in, last hidden state out, at batch 1 and batch 8 (8 copies of the image),
   for the captioner's tower. Peers: transformers fp32; transformers under torch.autocast("cpu", bfloat16);
   ONNX Runtime on a torch.onnx.export of the tower (dynamic batch), fp32 and after
   onnxruntime.quantization.quantize_dynamic (QInt8 weights, per channel); OpenVINO on ov.convert_model of
   the torch tower, compiled for CPU with its default configuration (bf16 inference on a CPU with
   avx512_bf16 or AMX) and with INFERENCE_PRECISION_HINT f32. capfilt: `capfilt bench --only
   vision_forward_batch8_per_image` in each precision.
2. The whole CapFilt step: decode and preprocess the image, one nucleus caption (p = 0.9, exactly 20 new
   tokens), ITM P(match) of the web text and of the caption; at batch 1 and in batches of 8 (one generate()
   for 8 images, one ITM call for their 16 texts). Configurations: transformers fp32 the plain way
   (generate(pixel_values) and ITM forward(pixel_values), so the filter's ViT runs once per text: the
   reference of the ratios); transformers fp32 and bf16 autocast with each tower run once and its embeddings
   passed to text_decoder.generate / text_encoder as encoder_hidden_states; OpenVINO (default precision) for
   both towers with the text parts in transformers bf16 autocast; capfilt `bench --only
   capfilt_step,capfilt_step_batch8_per_image` in each precision. The transformers side computes the ITM
   head only; capfilt's step also computes the ITC cosine of every text, so it does slightly more work.
3. Agreement of each engine with its own fp32 reference on --images (a folder, of which the first
   --agreement-count images that Pillow decodes are used, or a comma list of files; default: 12 images of
   Pipelines/demo/corpus/images): greedy and beam-3 captions (20 new tokens at most),
   token-identical or not, and the largest |ΔP(match)| over three texts per image (a web text, "click to
   enlarge" and the image's fp32 greedy caption). Peers' vision towers feed transformers' fp32 decoder and
   text encoder and are compared with all-fp32 transformers; transformers bf16 runs everything under
   autocast; capfilt bf16 / int8 are compared with capfilt fp32 (`capfilt caption`, `capfilt score`), and
   capfilt fp32 with transformers fp32 as a check of the whole comparison.

Every engine gets the same thread count (--threads, default all cores). An engine that fails (an export, a
refused precision) is reported in its cells as "failed: reason" and the run goes on. --json FILE writes
every figure. The ratios: the reference's seconds / the row's seconds, so above 1x is faster.
"""
import argparse
import contextlib
import json
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import torch
from PIL import Image
from transformers import BlipForConditionalGeneration, BlipForImageTextRetrieval, BlipProcessor
from transformers.utils import logging as hf_logging

WEB_TEXT = "a woman sitting on the beach with her dog"
OTHER_TEXT = "click to enlarge"
STEP_TEXT_TOKENS = 35  # texts are cut to this many tokens in the step, as `capfilt bench` and the pipeline do
NUCLEUS = dict(do_sample=True, top_p=0.9, min_new_tokens=20, max_new_tokens=20)
GREEDY = dict(max_new_tokens=20)
BEAM3 = dict(num_beams=3, max_new_tokens=20)
CAPFILT_FLAGS = {"greedy": ["--max-new-tokens", "20"], "beam3": ["--num-beams", "3", "--max-new-tokens", "20"]}
PRECISIONS = ("fp32", "bf16", "int8")
DEFAULT_AGREEMENT_FOLDER = "Pipelines/demo/corpus/images"
DEFAULT_AGREEMENT_COUNT = 12

# Engines of the vision tower: key (for --skip and the JSON) -> label. Python peers first, then capfilt.
PEERS = {
    "transformers-fp32": "transformers fp32",
    "transformers-bf16": "transformers bf16 autocast",
    "ort-fp32": "ONNX Runtime fp32",
    "ort-int8": "ONNX Runtime int8",
    "openvino": "OpenVINO default",
    "openvino-f32": "OpenVINO f32",
}
CAPFILT = {f"capfilt-{p}": f"capfilt {p}" for p in PRECISIONS}
# The order the vision tower is timed in: peers and capfilt alternate, so drifts of the machine hit both.
VISION_ORDER = ["transformers-fp32", "capfilt-fp32", "transformers-bf16", "capfilt-bf16", "ort-fp32",
                "ort-int8", "capfilt-int8", "openvino", "openvino-f32"]


@dataclass
class Failure:
    """What an engine could not do, shown in its table cells instead of a figure."""
    reason: str

    def __str__(self):
        text = " ".join(self.reason.split())
        return "failed: " + (text if len(text) <= 90 else text[:87] + "...")


def attempt(fn, *args, **kwargs):
    """fn's result, or a Failure naming the exception: one engine's trouble never stops the run."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - any failure of a peer is a result to report
        return Failure(f"{type(e).__name__}: {e}")


def median_time(fn, repeats, warm_up=True):
    if warm_up:
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- the machine

def machine_info(threads):
    import onnxruntime
    import openvino
    import transformers
    model = platform.processor()
    flags = set()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
            if key.strip() == "Flags":
                flags = set(value.split())
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "isa": [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags],
        "threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
        "openvino": openvino.__version__,
    }


# ----------------------------------------------------------------------------------------------- the models

@dataclass
class Models:
    cap: BlipForConditionalGeneration
    itm: BlipForImageTextRetrieval
    proc: BlipProcessor
    iproc: BlipProcessor

    def pixels(self, images, itm=False):
        return (self.iproc if itm else self.proc)(images=images, return_tensors="pt")["pixel_values"]


def load_models(caption, itm):
    return Models(cap=BlipForConditionalGeneration.from_pretrained(caption).eval(),
                  itm=BlipForImageTextRetrieval.from_pretrained(itm).eval(),
                  proc=BlipProcessor.from_pretrained(caption, backend="pil"),
                  iproc=BlipProcessor.from_pretrained(itm, backend="pil"))


def caption_ids(models, embeds, **generate_kwargs):
    """What cap.generate(pixel_values) returns, from image embeddings: its text_decoder.generate call."""
    text = models.cap.config.text_config
    prompt = torch.full((embeds.shape[0], 1), text.bos_token_id, dtype=torch.long)
    return models.cap.text_decoder.generate(
        input_ids=prompt, eos_token_id=text.sep_token_id, pad_token_id=text.pad_token_id,
        encoder_hidden_states=embeds, encoder_attention_mask=torch.ones(embeds.shape[:-1], dtype=torch.long),
        **generate_kwargs)


def itm_probabilities(models, embeds, texts, rows, max_tokens):
    """ITM P(match) of texts[i] against image rows[i] of embeds: what itm(pixel_values, input_ids) computes,
    the ViT left out."""
    tokens = models.iproc(text=texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
    image = embeds[torch.tensor(rows)]
    out = models.itm.text_encoder(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                                  encoder_hidden_states=image,
                                  encoder_attention_mask=torch.ones(image.shape[:-1], dtype=torch.long))
    logits = models.itm.itm_head(out.last_hidden_state[:, 0, :])
    return torch.softmax(logits.float(), dim=1)[:, 1]


def plain_itm_probabilities(models, images, texts, max_tokens):
    """ITM the plain transformers way: forward() gets pixel values, so the ViT runs once per text."""
    inputs = models.iproc(images=images, text=texts, padding=True, truncation=True, max_length=max_tokens,
                          return_tensors="pt")
    return torch.softmax(models.itm(**inputs).itm_score.float(), dim=1)[:, 1]


def bf16_autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16)


# ------------------------------------------------------------------------------------- vision tower engines
# Each engine is a function: float32 pixel values (N, 3, S, S) -> float32 last hidden state (N, tokens, width).

class LastHiddenState(torch.nn.Module):
    """The vision tower as one tensor in, one tensor out, for the exporters."""

    def __init__(self, vision):
        super().__init__()
        self.vision = vision

    def forward(self, pixel_values):
        return self.vision(pixel_values=pixel_values).last_hidden_state


def torch_engine(vision, bf16):
    def run(pixels):
        with torch.inference_mode(), (bf16_autocast() if bf16 else contextlib.nullcontext()):
            return vision(pixel_values=pixels).last_hidden_state.float()
    return run


def export_onnx(vision, example, path):
    """torch.onnx.export with a dynamic batch; the dynamo exporter first, the TorchScript one if it fails.
    Returns the exporter's name."""
    module = LastHiddenState(vision).eval()
    names = dict(input_names=["pixel_values"], output_names=["last_hidden_state"])
    try:
        torch.onnx.export(module, (example,), path, dynamo=True, external_data=False, verbose=False, **names,
                          dynamic_shapes={"pixel_values": {0: torch.export.Dim("batch")}})
        return "dynamo"
    except Exception as first:  # noqa: BLE001
        log(f"dynamo ONNX export failed ({type(first).__name__}: {first}); trying the TorchScript exporter")
        torch.onnx.export(module, (example,), path, dynamo=False, **names,
                          dynamic_axes={"pixel_values": {0: "batch"}, "last_hidden_state": {0: "batch"}})
        return "torchscript"


def quantize_int8(source, target):
    """ORT's dynamic quantization: int8 weights (per output channel where ORT allows it, else per tensor),
    activations quantized per call. Returns the granularity used."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    try:
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)
        ort_session(target, 1)  # per-channel graphs that ORT cannot run fail here, not in the timing
        return "per-channel"
    except Exception as first:  # noqa: BLE001
        log(f"per-channel int8 failed ({type(first).__name__}: {first}); quantizing per tensor")
        quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=False)
        return "per-tensor"


def ort_session(path, threads):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def ort_engine(path, threads):
    session = ort_session(path, threads)

    def run(pixels):
        return torch.from_numpy(session.run(["last_hidden_state"], {"pixel_values": pixels.numpy()})[0])
    return run


def openvino_model(vision, example):
    import openvino as ov
    side = example.shape[-1]
    with torch.no_grad():
        return ov.convert_model(LastHiddenState(vision).eval(), example_input=example,
                                input=[ov.PartialShape([-1, 3, side, side])])


def openvino_engine(model, threads, f32):
    """Compiled for CPU with the default configuration (but the thread count), or with f32 inference.
    Returns the engine and the inference precision OpenVINO chose."""
    import openvino as ov
    config = {"INFERENCE_NUM_THREADS": threads}
    if f32:
        config["INFERENCE_PRECISION_HINT"] = "f32"
    compiled = ov.Core().compile_model(model, "CPU", config)
    request = compiled.create_infer_request()

    def run(pixels):
        request.infer({0: pixels.numpy()})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())
    return run, str(compiled.get_property("INFERENCE_PRECISION_HINT")).replace("<Type: '", "").rstrip("'>")


def build_engines(models, skip, workdir, threads):
    """Every peer engine for both towers: {key: {"caption": fn, "itm": fn}} or {key: Failure}, and notes
    (exporters, int8 granularity, OpenVINO's precision) keyed by engine."""
    engines, notes = {}, {}
    towers = {"caption": models.cap.vision_model, "itm": models.itm.vision_model}
    side = models.cap.config.vision_config.image_size
    example = torch.randn(2, 3, side, side)
    engines["transformers-fp32"] = {t: torch_engine(v, bf16=False) for t, v in towers.items()}
    if "transformers-bf16" not in skip:
        engines["transformers-bf16"] = {t: torch_engine(v, bf16=True) for t, v in towers.items()}

    if not {"ort-fp32", "ort-int8"} <= skip:
        per_tower = {}
        for tower, vision in towers.items():
            path = os.path.join(workdir, f"{tower}-vision.onnx")
            log(f"exporting the {tower} tower to ONNX")
            per_tower[tower] = attempt(export_onnx, vision, example, path)
            if not isinstance(per_tower[tower], Failure):
                notes["ort-fp32"] = f"{per_tower[tower]} export"
        for key, int8 in (("ort-fp32", False), ("ort-int8", True)):
            if key in skip:
                continue
            engines[key] = {}
            for tower in towers:
                if isinstance(per_tower[tower], Failure):
                    engines[key] = per_tower[tower]
                    break
                path = os.path.join(workdir, f"{tower}-vision.onnx")
                if int8:
                    log(f"quantizing the {tower} tower to int8 (ORT dynamic)")
                    target = os.path.join(workdir, f"{tower}-vision-int8.onnx")
                    granularity = attempt(quantize_int8, path, target)
                    if isinstance(granularity, Failure):
                        engines[key] = granularity
                        break
                    notes[key], path = f"dynamic QInt8, {granularity}", target
                engine = attempt(ort_engine, path, threads)
                if isinstance(engine, Failure):
                    engines[key] = engine
                    break
                engines[key][tower] = engine

    if not {"openvino", "openvino-f32"} <= skip:
        converted = {}
        for tower, vision in towers.items():
            log(f"converting the {tower} tower to OpenVINO")
            converted[tower] = attempt(openvino_model, vision, example)
        for key, f32 in (("openvino", False), ("openvino-f32", True)):
            if key in skip:
                continue
            engines[key] = {}
            for tower in towers:
                built = converted[tower] if isinstance(converted[tower], Failure) else \
                    attempt(openvino_engine, converted[tower], threads, f32)
                if isinstance(built, Failure):
                    engines[key] = built
                    break
                engines[key][tower], notes[key] = built[0], f"inference precision {built[1]}"
    return engines, notes


# --------------------------------------------------------------------------------------------------- capfilt

def capfilt_error(stderr):
    """The line of capfilt's standard error that says what went wrong (not its backtrace's last line)."""
    lines = [line.strip(" *") for line in stderr.splitlines() if line.strip(" *")]
    telling = [line for line in lines if any(word in line.lower() for word in
                                             ("error", "failure", "fatal", "corrupted", "refused", "crashed"))]
    return (telling or lines or [""])[0]


def run_capfilt(binary, args):
    """capfilt's JSON lines, or a Failure saying how it ended and why."""
    if not os.access(binary, os.X_OK):
        return Failure(f"no capfilt binary at {binary} (swift build -c release, or --capfilt)")
    out = subprocess.run([binary] + args, capture_output=True, text=True)
    if out.returncode != 0:
        how = f"signal {signal.Signals(-out.returncode).name}" if out.returncode < 0 else f"exit {out.returncode}"
        return Failure(f"capfilt {args[0]} {how}: {capfilt_error(out.stderr)}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def capfilt_bench(a, precision, only):
    out = run_capfilt(a.capfilt, ["bench", "--caption", a.caption, "--itm", a.itm, "--precision", precision,
                                  "--threads", str(a.threads), "--repeats", str(a.repeats), "--only", only]
                      + a.image)
    return out if isinstance(out, Failure) else out[0]


def capfilt_captions(a, precision, mode, images):
    out = run_capfilt(a.capfilt, ["caption", "--model", a.caption, "--precision", precision,
                                  "--threads", str(a.threads)] + CAPFILT_FLAGS[mode] + images)
    return out if isinstance(out, Failure) else [line.get("token_ids") for line in out]


def capfilt_scores(a, precision, image, texts):
    out = run_capfilt(a.capfilt, ["score", "--model", a.itm, "--precision", precision, "--threads",
                                  str(a.threads), "--image", image] + [x for t in texts for x in ("--text", t)])
    return out if isinstance(out, Failure) else [line["itm"] for line in out]


# ------------------------------------------------------------------------------------- 1. the vision tower

def time_peer_vision(engine, pixels, repeats):
    eight = pixels.repeat(8, 1, 1, 1)
    return {"b1_s": median_time(lambda: engine(pixels), repeats),
            "b8_per_image_s": median_time(lambda: engine(eight), repeats) / 8}


def time_vision(a, models, engines, skip):
    pixels = models.pixels(Image.open(a.image[0]))
    rows = {}
    for key in VISION_ORDER:
        if key in skip:
            continue
        log(f"vision tower: {key}")
        if key in CAPFILT:
            bench = capfilt_bench(a, key.split("-")[1], "vision_forward_batch8_per_image")
            rows[key] = bench if isinstance(bench, Failure) else {
                "b1_s": bench["vision_forward_s"], "b8_per_image_s": bench["vision_forward_batch8_per_image_s"],
                "blas": bench.get("blas"), "blas_threads": bench.get("blas_threads")}
        elif isinstance(engines.get(key), Failure):
            rows[key] = engines[key]
        else:
            rows[key] = attempt(time_peer_vision, engines[key]["caption"], pixels, a.repeats)
    return rows


# -------------------------------------------------------------------------------------- 2. the CapFilt step

def plain_step(models, paths):
    """The transformers user's way: generate(pixel_values), then ITM forward(pixel_values) for all texts."""
    images = [Image.open(p) for p in paths]
    ids = models.cap.generate(pixel_values=models.pixels(images), **NUCLEUS)
    captions = models.proc.batch_decode(ids, skip_special_tokens=True)
    plain_itm_probabilities(models, images + images, [WEB_TEXT] * len(images) + captions, STEP_TEXT_TOKENS)


def reused_step(models, vision, text_bf16, paths):
    """Each tower once per image, its embeddings given to the decoder and to the ITM text encoder."""
    images = [Image.open(p) for p in paths]
    n = len(images)
    embeds = vision["caption"](models.pixels(images))
    with bf16_autocast() if text_bf16 else contextlib.nullcontext():
        ids = caption_ids(models, embeds, **NUCLEUS)
    captions = models.proc.batch_decode(ids, skip_special_tokens=True)
    itm_embeds = vision["itm"](models.pixels(images, itm=True))
    with bf16_autocast() if text_bf16 else contextlib.nullcontext():
        itm_probabilities(models, itm_embeds, [WEB_TEXT] * n + captions, list(range(n)) * 2, STEP_TEXT_TOKENS)


def time_step(step, paths, repeats):
    eight = [paths[i % len(paths)] for i in range(8)]
    with torch.inference_mode():
        return {"b1_s": median_time(lambda: step(paths[:1]), repeats),
                "b8_per_image_s": median_time(lambda: step(eight), repeats) / 8}


STEP_LABELS = {
    "transformers-plain": "transformers fp32, plain (ITM re-runs the ViT per text)",
    "transformers-fp32-reused": "transformers fp32, image embeddings reused",
    "transformers-bf16-reused": "transformers bf16 autocast, image embeddings reused",
    "openvino-vision-bf16-text": "OpenVINO default vision + transformers bf16 autocast text",
    "capfilt-fp32": "capfilt fp32",
    "capfilt-bf16": "capfilt bf16",
    "capfilt-int8": "capfilt int8",
}


def time_steps(a, models, engines, skip):
    """Step configurations in alternation with capfilt: {key: figures or Failure}, and capfilt's peak RSS."""
    fp32 = engines["transformers-fp32"]
    plan = [
        ("transformers-plain", None, lambda paths: plain_step(models, paths)),
        ("transformers-fp32-reused", "transformers-fp32", lambda paths: reused_step(models, fp32, False, paths)),
        ("capfilt-fp32", "capfilt-fp32", None),
        ("transformers-bf16-reused", "transformers-bf16",
         lambda paths: reused_step(models, engines["transformers-bf16"], True, paths)),
        ("capfilt-bf16", "capfilt-bf16", None),
        ("openvino-vision-bf16-text", "openvino",
         lambda paths: reused_step(models, engines["openvino"], True, paths)),
        ("capfilt-int8", "capfilt-int8", None),
    ]
    rows, rss = {}, {}
    for key, engine, step in plan:
        if engine in skip:
            continue
        log(f"whole step: {key}")
        if step is None:
            bench = capfilt_bench(a, key.split("-")[1], "capfilt_step,capfilt_step_batch8_per_image")
            rows[key] = bench if isinstance(bench, Failure) else {
                "b1_s": bench["capfilt_step_s"], "b8_per_image_s": bench["capfilt_step_batch8_per_image_s"]}
            rss[key] = bench if isinstance(bench, Failure) else bench["peak_rss_mb"]
        elif engine is not None and isinstance(engines.get(engine), Failure):
            rows[key] = engines[engine]
        else:
            rows[key] = attempt(time_step, step, a.image, a.repeats)
    return rows, rss


# ------------------------------------------------------------------------------------------- 3. agreement

def decodable(path):
    try:
        Image.open(path).convert("RGB")
        return True
    except Exception:  # noqa: BLE001 - an unreadable file is simply not used
        return False


def agreement_images(a):
    """--images: a comma list of files, or a folder, whose first --agreement-count decodable images are used
    (the default, the demo corpus, holds corrupt files on purpose)."""
    if not os.path.isdir(a.images):
        return [p for p in a.images.split(",") if p]
    chosen = []
    for name in sorted(os.listdir(a.images)):
        path = os.path.join(a.images, name)
        if os.path.isfile(path) and decodable(path):
            chosen.append(path)
        if len(chosen) == a.agreement_count:
            break
    return chosen


def score_tokens(models):
    """`capfilt score` cuts texts at the model's positions, so the agreement's texts are cut there too."""
    return models.itm.config.text_config.max_position_embeddings


def transformers_outputs(models, vision, bf16, images, texts_per_image, captions=True):
    """Greedy and beam-3 token ids per image (batch 1, so no padding) and P(match) per (image, text), with
    the given towers and transformers' text parts (under autocast when bf16)."""
    out = {"greedy": [], "beam3": [], "itm": []}
    with torch.inference_mode():
        for i, image in enumerate(images):
            if captions:
                embeds = vision["caption"](models.pixels(image))
                with bf16_autocast() if bf16 else contextlib.nullcontext():
                    out["greedy"].append(caption_ids(models, embeds, **GREEDY)[0].tolist())
                    out["beam3"].append(caption_ids(models, embeds, **BEAM3)[0].tolist())
            if texts_per_image is not None:
                itm_embeds = vision["itm"](models.pixels(image, itm=True))
                texts = texts_per_image[i]
                with bf16_autocast() if bf16 else contextlib.nullcontext():
                    out["itm"].append(itm_probabilities(models, itm_embeds, texts, [0] * len(texts),
                                                        score_tokens(models)).tolist())
    return out


def capfilt_outputs(a, precision, paths, texts_per_image):
    out = {}
    for mode in CAPFILT_FLAGS:
        out[mode] = capfilt_captions(a, precision, mode, paths)
        if isinstance(out[mode], Failure):
            return out[mode]
    out["itm"] = []
    for path, texts in zip(paths, texts_per_image):
        scores = capfilt_scores(a, precision, path, texts)
        if isinstance(scores, Failure):
            return scores
        out["itm"].append(scores)
    return out


def compare(outputs, reference):
    """Identical greedy and beam-3 captions (count, total) and the largest |ΔP(match)|."""
    result = {}
    for mode in ("greedy", "beam3"):
        pairs = list(zip(outputs[mode], reference[mode]))
        result[f"{mode}_identical"] = [sum(x == y for x, y in pairs), len(pairs)]
    deltas = [abs(x - y) for xs, ys in zip(outputs["itm"], reference["itm"]) for x, y in zip(xs, ys)]
    result["max_itm_delta"] = max(deltas) if deltas else None
    return result


def agreement(a, models, engines, skip):
    """{engine key: comparison with its fp32 reference, or Failure}, and the images used."""
    paths = agreement_images(a)
    images = [Image.open(p) for p in paths]  # as they are: the processor converts (RGBA, gray) as capfilt does
    for image in images:
        image.load()
    log(f"agreement: transformers fp32 reference on {len(paths)} images")
    reference = transformers_outputs(models, engines["transformers-fp32"], False, images, None)
    greedy_texts = models.proc.batch_decode([torch.tensor(ids) for ids in reference["greedy"]],
                                            skip_special_tokens=True)
    texts = [[WEB_TEXT, OTHER_TEXT, caption] for caption in greedy_texts]
    with torch.inference_mode():
        reference["itm"] = [plain_itm_probabilities(models, [image] * 3, t, score_tokens(models)).tolist()
                            for image, t in zip(images, texts)]
    # The fp32 reference's own check: its ITM from reused embeddings against forward(pixel_values).
    reused = transformers_outputs(models, engines["transformers-fp32"], False, images, texts, captions=False)
    results = {"transformers-fp32": compare({**reference, "itm": reused["itm"]}, reference)}
    for key in PEERS:
        if key == "transformers-fp32" or key in skip:
            continue
        log(f"agreement: {key}")
        engine = engines.get(key)
        results[key] = engine if isinstance(engine, Failure) else attempt(
            lambda: compare(transformers_outputs(models, engine, key == "transformers-bf16", images, texts), reference))
    capfilt_reference = None
    for precision in PRECISIONS:
        key = f"capfilt-{precision}"
        if key in skip:
            continue
        log(f"agreement: {key}")
        outputs = capfilt_outputs(a, precision, paths, texts)
        if precision == "fp32":
            if isinstance(outputs, Failure):
                results[key] = outputs
                continue
            capfilt_reference = outputs
            results["capfilt-fp32-vs-transformers-fp32"] = compare(outputs, reference)
        elif isinstance(outputs, Failure) or capfilt_reference is None:
            results[key] = outputs if isinstance(outputs, Failure) else Failure("no capfilt fp32 reference")
        else:
            results[key] = compare(outputs, capfilt_reference)
    return results, paths


# ----------------------------------------------------------------------------------------------- the tables

def seconds(row, field):
    if isinstance(row, Failure):
        return str(row)
    return f"{row[field]:.3f}" if row[field] >= 0.01 else f"{row[field]:.2e}"


def timing_cells(row, reference, ratio_fields):
    """b1 seconds, b8 seconds per image and the ratios to the reference; a failure once, then dashes."""
    if row is None or isinstance(row, Failure):
        return [str(row) if row else "not run"] + ["–"] * (1 + len(ratio_fields))
    return [seconds(row, "b1_s"), seconds(row, "b8_per_image_s")] + [ratio(reference, row, f) for f in ratio_fields]


def ratio(reference, row, field):
    if isinstance(reference, Failure) or isinstance(row, Failure) or reference is None or row is None:
        return "–"
    return f"{reference[field] / row[field]:.2f}x"


def identical(result, mode):
    if result is None:
        return "–"
    if isinstance(result, Failure):
        return str(result)
    same, total = result[f"{mode}_identical"]
    return f"{same}/{total}"


def itm_delta(result):
    if result is None:
        return "–"
    if isinstance(result, Failure):
        return str(result)
    return "–" if result["max_itm_delta"] is None else f"{result['max_itm_delta']:.2e}"


def vision_table(rows, agree, notes):
    lines = ["| engine | b1 s | b8 s/image | vs capfilt fp32 (b8) | greedy identical | beam-3 identical "
             "| max ΔP(match) |",
             "|---|---|---|---|---|---|---|"]
    reference = rows.get("capfilt-fp32")
    for key in VISION_ORDER:
        if key not in rows and key not in agree:
            continue
        label = {**PEERS, **CAPFILT}[key] + (f" ({notes[key]})" if key in notes else "")
        result = agree.get(key)
        if not agree:
            cells = ["–"] * 3
        elif key in ("transformers-fp32", "capfilt-fp32"):
            cells = ["reference"] * 3
            if key == "transformers-fp32" and isinstance(result, dict) and result["max_itm_delta"]:
                cells[2] = f"reference (reused embeddings vs forward(): {result['max_itm_delta']:.1e})"
        elif isinstance(result, Failure):
            cells = [str(result), "–", "–"]
        else:
            cells = [identical(result, "greedy"), identical(result, "beam3"), itm_delta(result)]
        lines.append(f"| {label} | " + " | ".join(timing_cells(rows.get(key), reference, ["b8_per_image_s"]) + cells)
                     + " |")
    return "\n".join(lines)


def step_table(rows):
    lines = ["| configuration | b1 s | b8 s/image | vs plain (b1) | vs plain (b8) |", "|---|---|---|---|---|"]
    reference = rows.get("transformers-plain")
    for key, row in rows.items():
        lines.append(f"| {STEP_LABELS[key]} | " +
                     " | ".join(timing_cells(row, reference, ["b1_s", "b8_per_image_s"])) + " |")
    return "\n".join(lines)


def to_json(value):
    if isinstance(value, Failure):
        return {"failed": value.reason}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------------------------------ main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--caption", required=True, help="BlipForConditionalGeneration folder (Hugging Face layout)")
    ap.add_argument("--itm", required=True, help="BlipForImageTextRetrieval folder")
    ap.add_argument("--capfilt", default=".build-release/release/capfilt", help="capfilt binary")
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions per figure (median)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of every engine")
    ap.add_argument("--images", default=DEFAULT_AGREEMENT_FOLDER,
                    help="images for the agreement: a folder (its first --agreement-count decodable images) or a "
                    f"comma list of files (default {DEFAULT_AGREEMENT_FOLDER})")
    ap.add_argument("--agreement-count", type=int, default=DEFAULT_AGREEMENT_COUNT,
                    help="images taken from an --images folder (default %(default)s)")
    ap.add_argument("--skip", default="", help="comma list of engines (" + ", ".join(list(PEERS)[1:] + list(CAPFILT))
                    + ") or sections (vision, step, agreement) to leave out; transformers fp32 always runs")
    ap.add_argument("--json", help="write every figure to this file")
    ap.add_argument("image", nargs="+", help="image(s) for the timings (the first for the vision tower; "
                    "batches of 8 cycle through them)")
    a = ap.parse_args()
    a.skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    unknown = a.skip - set(PEERS) - set(CAPFILT) - {"vision", "step", "agreement"}
    if unknown:
        ap.error(f"unknown --skip entries: {', '.join(sorted(unknown))}")
    a.skip.discard("transformers-fp32")
    return a


def quiet_libraries():
    warnings.filterwarnings("ignore")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization logs through the root logger
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)


def save(path, results):
    """The figures so far, as JSON: written after each section, so a run stopped late keeps the rest."""
    if path:
        with open(path, "w") as f:
            json.dump(to_json(results), f, indent=2)
            f.write("\n")


def measure(a, models, machine):
    results = {"machine": machine, "options": {"repeats": a.repeats, "timing_images": a.image,
                                               "skip": sorted(a.skip)},
               "vision": {}, "step": {}, "capfilt_peak_rss_mb": {}, "agreement": {}, "agreement_images": []}
    with tempfile.TemporaryDirectory(prefix="capfilt-peers-") as workdir:
        engines, results["notes"] = build_engines(models, a.skip, workdir, a.threads)
        if "vision" not in a.skip:
            results["vision"] = time_vision(a, models, engines, a.skip)
            save(a.json, results)
        if "step" not in a.skip:
            results["step"], results["capfilt_peak_rss_mb"] = time_steps(a, models, engines, a.skip)
            save(a.json, results)
        if "agreement" not in a.skip:
            results["agreement"], results["agreement_images"] = agreement(a, models, engines, a.skip)
            save(a.json, results)
    return results


def print_report(a, results):
    machine, vision, steps, agree = results["machine"], results["vision"], results["step"], results["agreement"]
    paths, rss = results["agreement_images"], results["capfilt_peak_rss_mb"]
    blas = next((r.get("blas") for r in vision.values() if isinstance(r, dict) and r.get("blas")), None)
    print(f"machine: {machine['cpu']}, {machine['cores']} cores ({', '.join(machine['isa'])}); "
          f"{a.threads} threads for every engine")
    print(f"torch {machine['torch']}, transformers {machine['transformers']}, ONNX Runtime {machine['onnxruntime']}, "
          f"OpenVINO {machine['openvino']}; capfilt {a.capfilt}" + (f" ({blas})" if blas else ""))
    print(f"checkpoints: {a.caption}, {a.itm}; timing image {', '.join(a.image)}; medians of {a.repeats}")
    if vision or agree:
        print("\n### Vision tower (captioner's ViT, seconds per image)\n")
        print(vision_table(vision, agree, results["notes"]))
        print("\nvs capfilt fp32: capfilt fp32's b8 seconds / the row's." + (
              " Agreement: peers' towers + transformers fp32 text against all-fp32 transformers; transformers bf16 "
              "all under autocast; capfilt bf16/int8 against capfilt fp32; on "
              f"{len(paths)} images ({os.path.dirname(paths[0])}); ΔP(match) over 3 texts per image."
              if paths else " Agreement not run."))
        check = agree.get("capfilt-fp32-vs-transformers-fp32")
        if check is not None:
            print(f"check: capfilt fp32 against transformers fp32: greedy {identical(check, 'greedy')}, "
                  f"beam-3 {identical(check, 'beam3')} identical, max ΔP(match) {itm_delta(check)}")
    if steps:
        print("\n### Whole CapFilt step (nucleus caption p=0.9, 20 new tokens, ITM of web text and caption; "
              "seconds per image)\n")
        print(step_table(steps))
        print("\nvs plain: the plain transformers way's seconds / the row's.")
    if rss:
        print("\ncapfilt peak RSS, captioner and filter loaded, after the step bench: " +
              ", ".join(f"{k.split('-')[1]} {v if isinstance(v, Failure) else f'{v} MB'}" for k, v in rss.items()))
    if a.json:
        print(f"\nwrote {a.json}")


def main():
    a = parse_args()
    quiet_libraries()
    torch.set_num_threads(a.threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    machine = machine_info(a.threads)
    log(f"loading {a.caption} and {a.itm}")
    results = measure(a, load_models(a.caption, a.itm), machine)
    print_report(a, results)


if __name__ == "__main__":
    main()
