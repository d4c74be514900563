#!/usr/bin/env python3
"""Trains the demo's two tiny BLIP models on the synthetic world (world.py), on CPU, with transformers:

  OUT/captioner/  BlipForConditionalGeneration, LM loss on the true caption with input [DEC] w1 .. wn [SEP]
                  (what generate() sees with no prompt: it starts from [DEC] and stops at [SEP]), plus a
                  training-only auxiliary head on the ViT (AuxHead: the patch under each object's centre
                  names its shape, colour and size, the class token the background), dropped at save.
  OUT/filter/     BlipForImageTextRetrieval, initialised from the captioner (ViT and text tower, as BLIP
                  initialises both from one model), ViT frozen, then the ITM loss: per image the true
                  caption, a caption wrong in exactly one attribute (shape, second object, colour, size,
                  background) and one more negative (one or two attributes wrong, the objects named in the
                  wrong order, another image's caption, broken grammar, boilerplate, word salad); plus a
                  light ITC loss so use_itm_head=False gives meaningful cosines too.

The training images are a pool of world scenes (40k, 30% of the two-object ones re-drawn as hard pairs of one
colour), each encoded, decoded and resized as BlipImageProcessor does.

Each folder is in the Hugging Face Hub layout: config.json (transformers 5 save_pretrained),
model.safetensors, vocab.txt + tokenizer_config.json (BertTokenizer, lower case), preprocessor_config.json
(BlipImageProcessor). The vocabulary is the world's own (world.vocab()): [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3
[MASK]=4, then words, punctuation and characters; text_config.vocab_size = len(vocab) + 2, bos ([DEC]) =
len(vocab), eos = sep = [SEP], pad = [PAD].

Same seed, same thread count, same machine -> bit-identical weights (checked).
Usage: python3 Scripts/demo/train.py --seed 0 --out Pipelines/demo/models      (about 15 minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import pickle
import shutil
import sys
import tempfile
import time
from multiprocessing import Pool

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration,  # noqa: E402
                          BlipForImageTextRetrieval)
from transformers.utils import logging as hf_logging  # noqa: E402

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]  # as the Hub's preprocessor_config.json writes them
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
MEAN, STD = np.array(CLIP_MEAN, np.float32), np.array(CLIP_STD, np.float32)
IMAGE_SIZE = 96
MAX_POSITIONS = 64


def blip_config(n_vocab: int, args) -> BlipConfig:
    vision = dict(hidden_size=args.vision_width, intermediate_size=4 * args.vision_width,
                  num_hidden_layers=args.vision_layers, num_attention_heads=args.vision_width // 32,
                  image_size=IMAGE_SIZE, patch_size=args.patch, layer_norm_eps=1e-5,
                  initializer_range=0.02)  # the class default 1e-10 starts the ViT at ~0
    text = dict(vocab_size=n_vocab + 2, hidden_size=args.text_width, intermediate_size=4 * args.text_width,
                num_hidden_layers=args.text_layers, num_attention_heads=args.text_width // 32,
                max_position_embeddings=MAX_POSITIONS, layer_norm_eps=1e-12,
                bos_token_id=n_vocab, eos_token_id=3, pad_token_id=0, sep_token_id=3)
    return BlipConfig(vision_config=vision, text_config=text, image_text_hidden_size=64)


def write_folder_files(folder: str, vocab: list[str]) -> None:
    with open(os.path.join(folder, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": MAX_POSITIONS,
                   "strip_accents": None, "tokenize_chinese_chars": True, "cls_token": "[CLS]",
                   "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]", "mask_token": "[MASK]"},
                  f, indent=2)
        f.write("\n")
    with open(os.path.join(folder, "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "BlipImageProcessor", "processor_class": "BlipProcessor",
                   "do_resize": True, "size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE}, "resample": 3,
                   "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
                   "image_mean": CLIP_MEAN, "image_std": CLIP_STD, "do_convert_rgb": True},
                  f, indent=2)
        f.write("\n")


KIND_OF = {w: "size" for w in world.SIZES} | {w: "color" for w in world.COLORS} | \
    {w: "shape" for w in world.SHAPES} | {w: "background" for w in world.BACKGROUNDS}

# ---------------------------------------------------------------------------------------------------------
# Data: a pool of scenes, each decoded and resized exactly as BlipImageProcessor does (RGB, squash to
# IMAGE_SIZE² with Pillow BICUBIC on uint8).

def _pool_item(args):
    seed, i, size = args
    rng = np.random.default_rng([seed, 7, i])
    desc = world.random_desc(rng)
    if len(desc.objects) == 2 and rng.random() < 0.3:
        # Oversample the hard pairs: the same colour (and often the same size), told apart by shape and place.
        a, b = desc.objects
        b = world.Obj(a.size if rng.random() < 0.5 else b.size, a.color, b.shape if b.shape != a.shape else
                      [x for x in world.SHAPES if x != a.shape][rng.integers(len(world.SHAPES) - 1)])
        desc = world.Desc((a, b), desc.background)
    scene = world.sample_scene(rng, desc)
    pixels = world.render(scene, rng)
    if scene.fmt == "jpg":  # JPEG artefacts matter; PNG is lossless, so its decoded pixels are `pixels`
        im = Image.open(io.BytesIO(world.encode(scene, pixels))).convert("RGB")
    else:
        im = Image.fromarray(pixels)
    objs = np.full((2, 5), -1, np.int16)  # per object: centre x, y (in 1/1000 of the squashed image), shape,
    for k, p in enumerate(scene.placed):   # colour, size ids: the targets of the auxiliary vision head
        objs[k] = (int(p.cx / scene.width * 1000), int(p.cy / scene.height * 1000), world.SHAPES.index(p.obj.shape),
                   list(world.COLORS).index(p.obj.color), world.SIZES.index(p.obj.size))
    return np.asarray(im.resize((size, size), Image.BICUBIC)), (scene.desc, objs)


def make_pool(seed: int, n: int, workers: int, cache: str | None = None):
    """(images uint8 [n, S, S, 3], descriptions, object targets int16 [n, 2, 5])"""
    path = cache and os.path.join(cache, f"pool-{seed}-{n}-{IMAGE_SIZE}.pkl")
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    with Pool(workers) as p:
        items = p.map(_pool_item, [(seed, i, IMAGE_SIZE) for i in range(n)], chunksize=256)
    pool = np.stack([a for a, _ in items]), [d for _, (d, _) in items], np.stack([o for _, (_, o) in items])
    if path:
        os.makedirs(cache, exist_ok=True)
        with open(path, "wb") as f:
            pickle.dump(pool, f)
    return pool


def to_pixels(batch: np.ndarray) -> torch.Tensor:
    x = (batch.astype(np.float32) / np.float32(255) - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


class Texts:
    """Tokenizes with the model's own tokenizer, cached."""

    def __init__(self, tok: BertTokenizer):
        self.tok, self.cache = tok, {}

    def ids(self, text: str) -> list[int]:
        if text not in self.cache:
            self.cache[text] = self.tok(text, truncation=True, max_length=35)["input_ids"]
        return self.cache[text]

    def batch(self, texts: list[str], first: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [list(self.ids(t)) for t in texts]
        if first is not None:
            for r in rows:
                r[0] = first
        n = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), n, dtype=torch.long)  # [PAD] = 0
        mask = torch.zeros(len(rows), n, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            mask[i, :len(r)] = 1
        return ids, mask


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


# ---------------------------------------------------------------------------------------------------------

class AuxHead(torch.nn.Module):
    """Training-only dense supervision for the vision tower (discarded at save): the patch token under each
    object's centre predicts the object's shape (or "no object centre here"), colour and size; the class
    token predicts the background. It teaches the small ViT shapes far sooner than the caption loss alone."""

    def __init__(self, width: int):
        super().__init__()
        self.patch = torch.nn.Linear(width, len(world.SHAPES) + 1 + len(world.COLORS) + len(world.SIZES))
        self.cls = torch.nn.Linear(width, len(world.BACKGROUNDS))

    def loss(self, image_embeds: torch.Tensor, objs: np.ndarray, descs: list) -> torch.Tensor:
        b, t, _ = image_embeds.shape
        g = int(round((t - 1) ** 0.5))
        out = self.patch(image_embeds[:, 1:])                  # (B, g*g, 14)
        ns, nc = len(world.SHAPES), len(world.COLORS)
        shape_t = torch.full((b, g * g), ns, dtype=torch.long)  # ns = no object centre
        rows, cols, colour_t, size_t = [], [], [], []
        for i in range(b):
            for cx, cy, sh, co, si in objs[i]:
                if cx < 0:
                    continue
                j = min(g - 1, cy * g // 1000) * g + min(g - 1, cx * g // 1000)
                shape_t[i, j] = int(sh)
                rows.append(i), cols.append(j), colour_t.append(int(co)), size_t.append(int(si))
        loss = F.cross_entropy(out[..., :ns + 1].reshape(-1, ns + 1), shape_t.reshape(-1))
        sel = out[rows, cols]
        loss = loss + F.cross_entropy(sel[:, ns + 1:ns + 1 + nc], torch.tensor(colour_t))
        loss = loss + F.cross_entropy(sel[:, ns + 1 + nc:], torch.tensor(size_t))
        bg = torch.tensor([list(world.BACKGROUNDS).index(d.background) for d in descs])
        return loss + F.cross_entropy(self.cls(image_embeds[:, 0]), bg)


def train_captioner(cfg, pool, descs, objs, texts, args, rng, val) -> BlipForConditionalGeneration:
    torch.manual_seed(args.seed)
    model = BlipForConditionalGeneration(cfg)
    aux = AuxHead(cfg.vision_config.hidden_size)
    model.train()
    params = list(model.parameters()) + list(aux.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    bos = cfg.text_config.bos_token_id
    t0, n = time.time(), len(pool)
    order = rng.permutation(n)
    pos = 0
    for step in range(args.cap_steps):
        if pos + args.batch > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + args.batch]
        pos += args.batch
        ids, mask = texts.batch([descs[i].caption() for i in idx], first=bos)
        labels = ids.masked_fill(mask == 0, -100)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.cap_steps, args.lr, 100)
        out = model(pixel_values=to_pixels(pool[idx]), input_ids=ids, attention_mask=mask, labels=labels)
        loss = out.loss
        aux_loss = aux.loss(out.image_embeds, objs[idx], [descs[i] for i in idx]) if args.aux_weight else 0 * loss
        opt.zero_grad(set_to_none=True)
        (loss + args.aux_weight * aux_loss).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step == args.cap_steps - 1:
            print(f"  captioner step {step:5d} loss {loss.item():.4f} aux {aux_loss.item():.4f} "
                  f"({time.time() - t0:.0f}s)", flush=True)
        if args.eval_every and step and step % args.eval_every == 0:
            eval_captioner(model, val, texts, cfg)
            model.train()
    model.eval()
    return model


@torch.no_grad()
def eval_captioner(model, val, texts, cfg) -> None:
    model.eval()
    pool, descs = val[:2]
    bos, sep = cfg.text_config.bos_token_id, cfg.text_config.sep_token_id
    exact, confident, minp = 0, 0, []
    slots = {k: 0 for k in ["size", "color", "shape", "background", "length", "other"]}
    for s in range(0, len(pool), 128):
        px = to_pixels(pool[s:s + 128])
        out = model.generate(pixel_values=px, max_new_tokens=24, do_sample=False)
        # teacher-forced confidence along the greedy path
        ids = out.clone()
        mask = torch.ones_like(ids)
        for r in range(ids.shape[0]):
            row = ids[r].tolist()
            if sep in row[1:]:
                e = row.index(sep, 1) + 1
                mask[r, e:] = 0
        logits = model(pixel_values=px, input_ids=ids, attention_mask=mask).logits[:, :-1]
        p = torch.softmax(logits, -1).max(-1).values.masked_fill(mask[:, 1:] == 0, 1.0).min(-1).values
        for r in range(ids.shape[0]):
            text = texts.tok.decode(out[r], skip_special_tokens=True)
            ok = text == descs[s + r].caption()
            got, ref = text.split(), descs[s + r].caption().split()
            if len(got) != len(ref):
                slots["length"] += 1
            else:
                for g, w in zip(got, ref):
                    if g != w:
                        slots[KIND_OF.get(w, "other")] += 1
            exact += ok
            confident += ok and p[r].item() > 0.95
            minp.append(p[r].item())
    n = len(pool)
    print(f"    val greedy exact {exact / n:.3f}, exact with every step p>0.95 {confident / n:.3f}, "
          f"median min-step p {np.median(minp):.3f}; wrong words " + str(slots), flush=True)


HARD_KINDS = {"shape": 0.34, "object": 0.2, "color": 0.16, "size": 0.16, "background": 0.14}


def hard_negative(desc: world.Desc, rng: np.random.Generator) -> str:
    """A caption wrong in exactly one attribute, the kinds weighted by how hard they are to learn."""
    kind = list(HARD_KINDS)[rng.choice(len(HARD_KINDS), p=list(HARD_KINDS.values()))]
    return world.perturb(desc, rng, kind)[0].caption()


def negative_text(desc: world.Desc, rng: np.random.Generator, descs) -> str:
    u = rng.random()
    if u < 0.25:
        return world.perturb(desc, rng)[0].caption()
    if u < 0.45 and len(desc.objects) == 2:
        return world.swapped(desc).caption()
    if u < 0.70:
        return world.perturb_twice(desc, rng).caption()
    if u < 0.84:
        while True:
            other = descs[rng.integers(len(descs))]
            if other != desc:
                return other.caption()
    if u < 0.93:
        return world.degenerate(desc.caption(), rng)
    if u < 0.97:
        return world.boilerplate(rng)
    # word salad from the vocabulary
    words = world.WORDS
    return " ".join(words[rng.integers(len(words))] for _ in range(rng.integers(1, 14)))


def itm_logits(model, img, idx, ids, mask):
    enc = model.text_encoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=img[idx],
                             encoder_attention_mask=torch.ones(img[idx].shape[:-1], dtype=torch.long))
    return model.itm_head(enc.last_hidden_state[:, 0, :])


def train_filter(cfg, cap, pool, descs, texts, args, rng, val) -> BlipForImageTextRetrieval:
    torch.manual_seed(args.seed + 1)
    model = BlipForImageTextRetrieval(cfg)
    model.vision_model.load_state_dict(cap.vision_model.state_dict())
    bert = {k[len("bert."):]: v for k, v in cap.text_decoder.state_dict().items() if k.startswith("bert.")}
    model.text_encoder.load_state_dict(bert)
    model.train()
    if args.freeze_filter_vision:  # the captioner's ViT already sees every attribute; only the text side learns
        model.vision_model.requires_grad_(False)
        model.vision_model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, betas=(0.9, 0.98))
    t0, n, B = time.time(), len(pool), args.batch
    order, pos = rng.permutation(n), 0
    for step in range(args.itm_steps):
        if pos + B > n:
            order, pos = rng.permutation(n), 0
        idx = order[pos:pos + B]
        pos += B
        pos_texts = [descs[i].caption() for i in idx]
        neg_texts = [hard_negative(descs[i], rng) for i in idx] + [negative_text(descs[i], rng, descs) for i in idx]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.itm_steps, args.lr, 50)
        with torch.set_grad_enabled(not args.freeze_filter_vision):
            img = model.vision_model(pixel_values=to_pixels(pool[idx])).last_hidden_state
        ids, mask = texts.batch(pos_texts + neg_texts)
        pair = torch.arange(B).repeat(3)
        target = torch.cat([torch.ones(B, dtype=torch.long), torch.zeros(2 * B, dtype=torch.long)])
        weight = torch.cat([torch.ones(B), torch.full((2 * B,), 0.5)])  # positives and negatives weigh the same
        loss_itm = (F.cross_entropy(itm_logits(model, img, pair, ids, mask), target, reduction="none")
                    * weight).sum() / weight.sum()
        loss = loss_itm
        if args.itc_weight > 0:
            txt = model.text_encoder(input_ids=ids[:B], attention_mask=mask[:B]).last_hidden_state[:, 0]
            i_f = F.normalize(model.vision_proj(img[:, 0]), dim=-1)
            t_f = F.normalize(model.text_proj(txt), dim=-1)
            sim = i_f @ t_f.t() / 0.07
            same = torch.tensor([[a == b for b in pos_texts] for a in pos_texts], dtype=torch.float32)
            tgt = same / same.sum(1, keepdim=True)
            loss_itc = (-(F.log_softmax(sim, 1) * tgt).sum(1).mean() - (F.log_softmax(sim.t(), 1) * tgt).sum(1).mean()) / 2
            loss = loss + args.itc_weight * loss_itc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step == args.itm_steps - 1:
            print(f"  filter step {step:5d} itm {loss_itm.item():.4f} total {loss.item():.4f} "
                  f"({time.time() - t0:.0f}s)", flush=True)
        if args.eval_every and step and step % args.eval_every == 0:
            eval_filter(model, val, texts, args.seed)
            model.train()
            if args.freeze_filter_vision:
                model.vision_model.eval()
    model.eval()
    return model


@torch.no_grad()
def eval_filter(model, val, texts, seed) -> None:
    model.eval()
    pool, descs = val[:2]
    rng = np.random.default_rng([seed, 99])
    kinds = {"true": [], "other": [], "degenerate": [], "two_attributes": [], "swapped": []} | \
        {k: [] for k in world.ONE_ATTRIBUTE_KINDS}
    for s in range(0, len(pool), 128):
        img = model.vision_model(pixel_values=to_pixels(pool[s:s + 128])).last_hidden_state
        rows, labels = [], []
        for j, d in enumerate(descs[s:s + 128]):
            cand = [("true", d.caption())]
            cand += [(k, world.perturb(d, rng, k)[0].caption()) for k in world.ONE_ATTRIBUTE_KINDS]
            cand += [("other", descs[(s + j + 1) % len(descs)].caption()),
                     ("degenerate", world.degenerate(d.caption(), rng)),
                     ("two_attributes", world.perturb_twice(d, rng).caption())]
            if len(d.objects) == 2:
                cand.append(("swapped", world.swapped(d).caption()))
            for lab, text in cand:
                rows.append((j, text))
                labels.append(lab)
        ids, mask = texts.batch([t for _, t in rows])
        p = torch.softmax(itm_logits(model, img, torch.tensor([j for j, _ in rows]), ids, mask), -1)[:, 1]
        for lab, v in zip(labels, p.tolist()):
            kinds[lab].append(v)
    msg = []
    for k, v in kinds.items():
        v = np.array(v)
        acc = (v >= 0.5).mean() if k == "true" else (v < 0.5).mean()
        msg.append(f"{k} {acc:.3f}")
    print("    val ITM accuracy: " + ", ".join(msg), flush=True)


def save(model, folder: str, vocab: list[str]) -> None:
    if os.path.exists(folder):
        shutil.rmtree(folder)
    model.save_pretrained(folder)
    gen = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen):
        os.remove(gen)
    write_folder_files(folder, vocab)


def main() -> None:
    global IMAGE_SIZE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="Pipelines/demo/models")
    ap.add_argument("--pool", type=int, default=40000, help="training images")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cap-steps", type=int, default=2500)
    ap.add_argument("--itm-steps", type=int, default=1500)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--itc-weight", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=IMAGE_SIZE)
    ap.add_argument("--patch", type=int, default=16)
    ap.add_argument("--vision-width", type=int, default=128)
    ap.add_argument("--vision-layers", type=int, default=4)
    ap.add_argument("--text-width", type=int, default=128)
    ap.add_argument("--text-layers", type=int, default=3)
    ap.add_argument("--skip-filter", action="store_true")
    ap.add_argument("--freeze-filter-vision", type=int, default=1, help="1: the filter keeps the captioner's ViT")
    ap.add_argument("--captioner-from", help="development: take the captioner from this models folder")
    ap.add_argument("--aux-weight", type=float, default=1.0, help="weight of the auxiliary vision loss")
    ap.add_argument("--cache", help="keep the rendered image pool here between runs (a speed-up only)")
    ap.add_argument("--eval-every", type=int, default=0, help="validate every N steps (0: only at the end)")
    ap.add_argument("--val", type=int, default=512, help="validation images")
    args = ap.parse_args()
    IMAGE_SIZE = args.image_size

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    hf_logging.set_verbosity_error()
    vocab = world.vocab()
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tok_dir:  # the tokenizer exactly as the saved folders will load it
        write_folder_files(tok_dir, vocab)
        tok = BertTokenizer.from_pretrained(tok_dir)
    assert tok.cls_token_id == 2 and tok.sep_token_id == 3 and tok.pad_token_id == 0
    texts = Texts(tok)
    cfg = blip_config(len(vocab), args)

    t = time.time()
    pool, descs, objs = make_pool(args.seed, args.pool, args.threads, args.cache)
    val = make_pool(args.seed + 10_000, args.val, args.threads, args.cache)
    print(f"pool: {len(pool)} training and {args.val} validation images ({time.time() - t:.0f}s)", flush=True)
    rng = np.random.default_rng([args.seed, 1])

    t = time.time()
    if args.captioner_from:  # development shortcut: reuse a trained captioner, train only the filter
        cap = BlipForConditionalGeneration.from_pretrained(os.path.join(args.captioner_from, "captioner")).eval()
        pos = len(pool)  # draw the shuffles the captioner's training draws, so the filter comes out the same
        for _ in range(args.cap_steps):
            if pos + args.batch > len(pool):
                rng.permutation(len(pool))
                pos = 0
            pos += args.batch
    else:
        cap = train_captioner(cfg, pool, descs, objs, texts, args, rng, val)
        print(f"captioner trained in {time.time() - t:.0f}s", flush=True)
    eval_captioner(cap, val, texts, cfg)
    save(cap, os.path.join(args.out, "captioner"), vocab)
    if args.skip_filter:
        return

    t = time.time()
    itm = train_filter(cfg, cap, pool, descs, texts, args, rng, val)
    t_itm = time.time() - t
    print(f"filter trained in {t_itm:.0f}s", flush=True)
    eval_filter(itm, val, texts, args.seed)
    save(itm, os.path.join(args.out, "filter"), vocab)
    for name, m in (("captioner", cap), ("filter", itm)):
        size = os.path.getsize(os.path.join(args.out, name, "model.safetensors"))
        print(f"{name}: {sum(p.numel() for p in m.parameters()):,} parameters, model.safetensors {size:,} bytes")


if __name__ == "__main__":
    main()
