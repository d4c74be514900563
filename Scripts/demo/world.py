#!/usr/bin/env python3
"""The demo's synthetic world: images of one or two coloured shapes on a plain or gradient background, each
with its true caption from a small grammar.

    a large red circle on a white background
    a small green star and a large blue square on a gray background

Objects are named left to right (two objects never overlap, and their centres are at least MIN_DX of the
shorter side apart horizontally), so every scene has exactly one true caption. Object centres sit at the
centres of a 6 x 6 grid (SNAP) and shapes are upright: a tiny ViT with 16-pixel patches learns shapes in
minutes that way, where free positions and rotations take it hours.

Nuisance variation the caption does not name: the image's native size (square, 84 to 320 pixels), the grid
cell, the exact radius within the size class, colour and shade jitter, a plain or gradient background, and
the encoding: JPEG (pixel noise, quality 35-92 artefacts) or PNG (clean graphics).

Everything is a pure function of a numpy Generator, so a seed gives the same scenes, bytes and captions.
The vocabulary (vocab()) is the grammar's words plus single characters and ##-pieces (so any text
tokenizes to something other than [UNK] soup, like real BERT) and the five special tokens, which come first:
[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4 (deliberately not BERT's ids).
"""
from __future__ import annotations

import io
import math
import string
import zlib
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image, ImageDraw

SIZES = ["small", "large"]
COLORS = {  # name -> base RGB
    "red": (215, 35, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 215, 30),
    "green": (40, 165, 55),
    "blue": (35, 80, 215),
    "purple": (135, 50, 175),
}
SHAPES = ["circle", "square", "triangle", "star", "cross"]
BACKGROUNDS = {"white": (215, 255), "gray": (105, 155), "black": (0, 45)}  # name -> shade range
# radius as a fraction of the image's shorter side
RADIUS = {"small": (0.11, 0.12), "large": (0.21, 0.23)}
SNAP = 6        # object centres at cell centres of a SNAP x SNAP grid (0: anywhere)
ROTATION = 0    # max rotation in degrees
MIN_DX = 0.3    # two objects' centres are at least this far apart horizontally (x the shorter side)
NATIVE_SIZES = [(84, 84), (96, 96), (112, 112), (128, 128), (160, 160), (192, 192), (224, 224), (256, 256), (320, 320)]

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["a", "and", "on", "background"] + SIZES + list(COLORS) + SHAPES + list(BACKGROUNDS)
PUNCT = list(".,!?-_'\"&:;/()#@%+*=$")
CHARS = list(string.ascii_lowercase + string.digits)

BOILERPLATE = [
    "IMG_2041.JPG", "DSC00317.jpg", "click to enlarge", "stock photo", "free shipping", "image", "photo",
    "untitled", "thumbnail", "Buy now!", "view larger image", "placeholder", "logo.png", "banner",
    "Copyright 2021 all rights reserved", "picture 3 of 12", "best price guaranteed", "no image available",
    "download free vector", "screenshot", "image001.png", "Add to cart", "New arrivals", "-", "...",
    "shapes clipart", "colorful shapes", "geometric pattern", "abstract background", "sale 50% off",
]


def vocab() -> list[str]:
    """The tokens of vocab.txt in id order."""
    out = list(SPECIAL)
    for t in WORDS + PUNCT + CHARS + ["##" + c for c in CHARS]:
        if t not in out:
            out.append(t)
    return out


@dataclass(frozen=True)
class Obj:
    size: str
    color: str
    shape: str

    def words(self) -> str:
        return f"{self.size} {self.color} {self.shape}"


@dataclass(frozen=True)
class Desc:
    """What a caption says: objects left to right, and the background."""
    objects: tuple[Obj, ...]
    background: str

    def caption(self) -> str:
        return " and ".join("a " + o.words() for o in self.objects) + f" on a {self.background} background"


@dataclass
class Placed:
    obj: Obj
    cx: float
    cy: float
    r: float
    angle: float
    rgb: tuple[int, int, int]


@dataclass
class Scene:
    desc: Desc
    width: int
    height: int
    placed: list[Placed]
    bg_shade: tuple[float, float]        # shade at the two ends of the gradient (equal: plain)
    bg_tint: tuple[float, float, float]  # small per-channel tint
    bg_angle: float
    noise: float
    fmt: str                             # "jpg" or "png"
    quality: int                         # JPEG quality
    extra: dict = field(default_factory=dict)

    @property
    def caption(self) -> str:
        return self.desc.caption()


def random_obj(rng: np.random.Generator) -> Obj:
    return Obj(SIZES[rng.integers(len(SIZES))], list(COLORS)[rng.integers(len(COLORS))],
               SHAPES[rng.integers(len(SHAPES))])


def random_desc(rng: np.random.Generator) -> Desc:
    n = 1 if rng.random() < 0.45 else 2
    objs = [random_obj(rng)]
    while len(objs) < n:
        o = random_obj(rng)
        if o.color != objs[0].color or o.shape != objs[0].shape:  # two objects never look alike
            objs.append(o)
    return Desc(tuple(objs), list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))])


def sample_scene(rng: np.random.Generator, desc: Desc | None = None, fmt: str | None = None,
                 size: tuple[int, int] | None = None) -> Scene:
    """A random scene (or one showing `desc`), with its native size, encoding and nuisances."""
    desc = desc or random_desc(rng)
    w, h = size or NATIVE_SIZES[rng.integers(len(NATIVE_SIZES))]
    m = min(w, h)
    fmt = fmt or ("jpg" if rng.random() < 0.7 else "png")
    for _ in range(10000):
        radii = [rng.uniform(*RADIUS[o.size]) * m for o in desc.objects]
        border = 0.03 * m
        pos = [(rng.uniform(border + r, w - border - r), rng.uniform(border + r, h - border - r)) for r in radii]
        if SNAP:
            pos = [((math.floor(x / w * SNAP) + 0.5) / SNAP * w, (math.floor(y / h * SNAP) + 0.5) / SNAP * h)
                   for x, y in pos]
        pos.sort()  # objects are named left to right: the leftmost place goes to the first object
        if any(x - r < 0.01 * m or x + r > w - 0.01 * m or y - r < 0.01 * m or y + r > h - 0.01 * m
               for (x, y), r in zip(pos, radii)):
            continue
        if len(pos) == 2 and (pos[1][0] - pos[0][0] < MIN_DX * m or
                              math.dist(pos[0], pos[1]) < sum(radii) + 0.04 * m):
            continue
        xs, ys = [x for x, _ in pos], [y for _, y in pos]
        break
    else:
        raise RuntimeError("no layout")
    placed = []
    for o, x, y, r in zip(desc.objects, xs, ys, radii):
        base = np.array(COLORS[o.color], float)
        rgb = tuple(int(v) for v in np.clip(base + rng.uniform(-14, 14, 3), 0, 255))
        placed.append(Placed(o, x, y, r, rng.uniform(-ROTATION, ROTATION), rgb))
    lo, hi = BACKGROUNDS[desc.background]
    if rng.random() < 0.5:
        s = rng.uniform(lo, hi)
        shade = (s, s)
    else:
        a, b = rng.uniform(lo, hi, 2)
        shade = (a, b)
    tint = tuple(rng.uniform(-6, 6, 3))
    noise = rng.uniform(0, 5) if fmt == "jpg" else 0.0  # PNGs are clean graphics (and stay small)
    quality = int(rng.integers(35, 93))
    return Scene(desc, w, h, placed, shade, tint, rng.uniform(0, 2 * math.pi), noise, fmt, quality)


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "square":
        pts = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        pts = [(x * 0.82, y * 0.82) for x, y in pts]
    elif shape == "triangle":
        pts = [(math.sin(2 * math.pi * k / 3), -math.cos(2 * math.pi * k / 3)) for k in range(3)]
        pts = [(x, y + 0.12) for x, y in pts]
    elif shape == "star":
        pts = []
        for k in range(10):
            rad = 1.0 if k % 2 == 0 else 0.42
            t = math.pi * k / 5
            pts.append((rad * math.sin(t), -rad * math.cos(t)))
    elif shape == "cross":
        a, b = 0.95, 0.32
        pts = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b), (-a, -b),
               (-b, -b)]
    else:
        raise ValueError(shape)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in pts]


def render(scene: Scene, rng: np.random.Generator | None = None) -> np.ndarray:
    """The scene as uint8 RGB (h, w, 3), before encoding. Noise draws from `rng` (default: a generator
    seeded from the scene, so rendering is a pure function of the scene)."""
    w, h, ss = scene.width, scene.height, 3
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = math.cos(scene.bg_angle) * (xx / w - 0.5) + math.sin(scene.bg_angle) * (yy / h - 0.5)
    t = np.clip(d + 0.5, 0, 1)
    shade = scene.bg_shade[0] * (1 - t) + scene.bg_shade[1] * t
    bg = np.stack([shade + scene.bg_tint[c] for c in range(3)], -1)
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8)).resize((w * ss, h * ss), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    for p in scene.placed:
        if p.obj.shape == "circle":
            draw.ellipse([(p.cx - p.r) * ss, (p.cy - p.r) * ss, (p.cx + p.r) * ss, (p.cy + p.r) * ss], fill=p.rgb)
        else:
            draw.polygon([(x * ss, y * ss) for x, y in _polygon(p.obj.shape, p.cx, p.cy, p.r, p.angle)],
                         fill=p.rgb)
    arr = np.asarray(img.reduce(ss), dtype=np.float32)
    if scene.noise > 0:
        if rng is None:
            key = f"{scene.width}x{scene.height} {scene.caption} {scene.placed[0].cx:.4f}".encode()
            rng = np.random.default_rng(zlib.crc32(key))
        arr = arr + rng.normal(0, scene.noise, arr.shape).astype(np.float32)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def encode(scene: Scene, pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(pixels)
    if scene.fmt == "jpg":
        im.save(buf, format="JPEG", quality=scene.quality)
    else:
        im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def make_image(rng: np.random.Generator, desc: Desc | None = None, **kw) -> tuple[Scene, bytes]:
    """A random scene and its encoded file bytes (noise drawn from rng)."""
    scene = sample_scene(rng, desc, **kw)
    return scene, encode(scene, render(scene, rng))


# ---------------------------------------------------------------------------------------------------------
# Wrong texts

ONE_ATTRIBUTE_KINDS = ["color", "shape", "size", "background", "object"]


def perturb(desc: Desc, rng: np.random.Generator, kind: str | None = None) -> tuple[Desc, str]:
    """A description wrong in exactly one attribute: one object's colour, shape or size, the background, or
    the second object (added to a one-object scene; dropped or replaced in a two-object scene)."""
    kind = kind or ONE_ATTRIBUTE_KINDS[rng.integers(len(ONE_ATTRIBUTE_KINDS))]
    objs = list(desc.objects)
    i = int(rng.integers(len(objs)))

    def other(options, current):
        choices = [x for x in options if x != current]
        return choices[rng.integers(len(choices))]

    if kind == "color":
        objs[i] = replace(objs[i], color=other(list(COLORS), objs[i].color))
    elif kind == "shape":
        objs[i] = replace(objs[i], shape=other(SHAPES, objs[i].shape))
    elif kind == "size":
        objs[i] = replace(objs[i], size=other(SIZES, objs[i].size))
    elif kind == "background":
        return Desc(desc.objects, other(list(BACKGROUNDS), desc.background)), kind
    elif kind == "object":
        if len(objs) == 1:
            new = random_obj(rng)
            objs = [objs[0], new] if rng.random() < 0.5 else [new, objs[0]]
        elif rng.random() < 0.5:
            objs = [objs[int(rng.integers(2))]]
        else:  # replace the second object with a different-looking one
            while True:
                new = random_obj(rng)
                if new.color != objs[1].color and new.shape != objs[1].shape:
                    break
            objs[1] = new
    else:
        raise ValueError(kind)
    return Desc(tuple(objs), desc.background), kind


def swapped(desc: Desc) -> Desc | None:
    """The two objects named in the wrong order (None for one object): wrong, since objects are named left to
    right; for two objects of the same colour and size it is the same as swapping their shapes."""
    return Desc(desc.objects[::-1], desc.background) if len(desc.objects) == 2 else None


def perturb_twice(desc: Desc, rng: np.random.Generator) -> Desc:
    """A description wrong in two attributes (each object's shape, say)."""
    while True:
        once, _ = perturb(desc, rng)
        twice, _ = perturb(once, rng)
        if twice != desc:
            return twice


def degenerate(caption: str, rng: np.random.Generator) -> str:
    """Broken grammar of the kind a weak captioner writes: a truncated caption, a dropped or doubled word,
    two words swapped."""
    words = caption.split()
    k = int(rng.integers(4))
    if k == 0:
        words = words[:int(rng.integers(1, len(words)))]
    elif k == 1:
        del words[int(rng.integers(len(words)))]
    elif k == 2:
        j = int(rng.integers(len(words)))
        words.insert(j, words[j])
    else:
        j = int(rng.integers(len(words) - 1))
        words[j], words[j + 1] = words[j + 1], words[j]
    out = " ".join(words)
    return out if out != caption else " ".join(caption.split()[:-1])


def boilerplate(rng: np.random.Generator) -> str:
    text = BOILERPLATE[rng.integers(len(BOILERPLATE))]
    if "2041" in text or "00317" in text:
        text = text.replace("2041", str(rng.integers(1000, 9999))).replace("00317", f"{rng.integers(0, 99999):05d}")
    return text


if __name__ == "__main__":
    import sys
    rng = np.random.default_rng(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    for _ in range(8):
        s, data = make_image(rng)
        print(f"{s.width}x{s.height} {s.fmt} {len(data)}B  {s.caption}")
        print("   wrong:", perturb(s.desc, rng)[0].caption(), "|", degenerate(s.caption, rng), "|", boilerplate(rng))
    print(len(vocab()), "tokens")
