"""A synthetic, offline stand-in for the bird photos: one shape and colour per class.

Why: the demo and the tests must run with no data set and no network, yet train a real model
that reaches high accuracy in seconds. Each class is a distinct shape in a distinct colour,
drawn at a random position, size and rotation on a noisy, randomly tinted background, so a
small convnet has to learn something real, but learns it quickly.

Only Pillow and NumPy are used (no TensorFlow), so `trainer synth` is fast to start.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# (class name, shape, RGB colour). Names look like species folders on purpose.
CLASSES: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("RED_CIRCLE", "circle", (220, 30, 30)),
    ("BLUE_SQUARE", "square", (30, 60, 220)),
    ("GREEN_TRIANGLE", "triangle", (30, 180, 40)),
    ("YELLOW_CROSS", "cross", (235, 215, 20)),
    ("MAGENTA_DIAMOND", "diamond", (210, 40, 200)),
    ("CYAN_RING", "ring", (20, 200, 210)),
    ("ORANGE_STAR", "star", (245, 140, 20)),
    ("WHITE_BAR", "bar", (245, 245, 245)),
)
MAX_CLASSES = len(CLASSES)
# Timing of generated camera frames (see generate_frames): far enough apart that each burst is
# its own visit under the edge's default 60 s independence interval.
BURST = 2
BURST_GAP = timedelta(seconds=10)
CLASS_GAP = timedelta(minutes=2)
VISIT_EVERY = timedelta(minutes=30)
EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 0x9003
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class SynthSpec:
    """How much to generate. Defaults give a set the convnet learns in well under a minute."""

    num_classes: int = 4
    train_per_class: int = 40
    valid_per_class: int = 10
    test_per_class: int = 10
    image_size: int = 224
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.num_classes <= MAX_CLASSES:
            raise ValueError(f"num_classes must be between 2 and {MAX_CLASSES}, got {self.num_classes}")
        for name in ("train_per_class", "valid_per_class", "test_per_class"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {self.image_size}")


def class_names(num_classes: int) -> list[str]:
    """The sorted class names a data set of `num_classes` classes uses (folder order = label order)."""
    return sorted(name for name, _, _ in CLASSES[:num_classes])


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "triangle":
        points = [(0, -1), (0.87, 0.5), (-0.87, 0.5)]
    elif shape == "square":
        points = [(-0.75, -0.75), (0.75, -0.75), (0.75, 0.75), (-0.75, 0.75)]
    elif shape == "diamond":
        points = [(0, -1), (0.6, 0), (0, 1), (-0.6, 0)]
    elif shape == "star":
        points = []
        for i in range(10):
            rad = 1.0 if i % 2 == 0 else 0.45
            a = math.pi / 5 * i - math.pi / 2
            points.append((rad * math.cos(a), rad * math.sin(a)))
    elif shape == "bar":
        points = [(-1, -0.25), (1, -0.25), (1, 0.25), (-1, 0.25)]
    elif shape == "cross":
        w = 0.3
        points = [(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]
    else:
        raise ValueError(f"not a polygon shape: {shape}")
    cos, sin = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * cos - y * sin), cy + r * (x * sin + y * cos)) for x, y in points]


def render(class_index: int, size: int, rng: random.Random) -> Image.Image:
    """Draw one image of class `class_index` (index into CLASSES, not the sorted order)."""
    _, shape, colour = CLASSES[class_index]
    np_rng = np.random.default_rng(rng.getrandbits(32))
    # A dim, tinted, noisy background (foliage-ish), never close to the object colours' brightness.
    tint = np.array([rng.randint(20, 90), rng.randint(40, 110), rng.randint(20, 80)], dtype=np.float32)
    noise = np_rng.normal(0.0, 12.0, size=(size, size, 3)).astype(np.float32)
    background = np.clip(tint + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(image)
    r = size * rng.uniform(0.18, 0.32)
    cx = rng.uniform(r, size - r)
    cy = rng.uniform(r, size - r)
    jitter = tuple(int(np.clip(c + rng.randint(-20, 20), 0, 255)) for c in colour)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=jitter)
    elif shape == "ring":
        width = max(2, int(r * 0.35))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=jitter, width=width)
    else:
        draw.polygon(_polygon(shape, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=jitter)
    return image


def _index_of(name: str) -> int:
    for i, (class_name, _, _) in enumerate(CLASSES):
        if class_name == name:
            return i
    raise KeyError(name)


def generate_dataset(out_dir: Path, spec: SynthSpec = SynthSpec()) -> Path:
    """Write out_dir/{train,valid,test}/<CLASS>/<n>.jpg (the Kaggle layout) and return out_dir."""
    out_dir = Path(out_dir)
    rng = random.Random(spec.seed)
    counts = {"train": spec.train_per_class, "valid": spec.valid_per_class, "test": spec.test_per_class}
    for split in SPLITS:
        for name in class_names(spec.num_classes):
            folder = out_dir / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for n in range(counts[split]):
                image = render(_index_of(name), spec.image_size, rng)
                image.save(folder / f"{n + 1:04d}.jpg", quality=92)
    return out_dir



def _taken(taken: datetime | None) -> datetime:
    """A shot's capture time where one must be set (sorting a timed burst)."""
    if taken is None:
        raise ValueError("a shot has no capture time although a start time was given")
    return taken

def generate_frames(
    out_dir: Path,
    per_class: int,
    num_classes: int = 4,
    image_size: int = 640,
    seed: int = 1000,
    start_time: datetime | None = None,
) -> list[tuple[Path, str]]:
    """Write a flat folder of 'camera frames' (JPEGs) and return [(path, class name)].

    Frames are larger than the model input (like a real camera) and drawn with a different
    seed than the training set, so they are new images of known classes.

    With `start_time`, each frame carries an EXIF DateTimeOriginal as a trail camera writes it
    (local clock, no offset), laid out as visits: every class comes by once per `VISIT_EVERY`,
    shooting a burst of `BURST` frames `BURST_GAP` apart, classes `CLASS_GAP` apart. The edge
    then has real visits to group (frames vs events), as in the demo.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    names = class_names(num_classes)
    # (capture time or None, class name) in drawing order; the drawing order fixes the pixels.
    shots: list[tuple[datetime | None, str]] = []
    for i in range(per_class):
        for name in names:
            taken = None
            if start_time is not None:
                taken = start_time + (i // BURST) * VISIT_EVERY + _index_of(name) * CLASS_GAP + (i % BURST) * BURST_GAP
            shots.append((taken, name))
    images = [render(_index_of(name), image_size, rng) for _taken, name in shots]
    order: list[int] = list(range(len(shots)))
    if start_time is not None:
        # A camera names and writes its files in shooting order: so do we (names and mtimes).
        # With a start time every shot has its time (the loop above sets one per shot).
        order = sorted(order, key=lambda k: _taken(shots[k][0]))
    frames: list[tuple[Path, str]] = []
    for n, k in enumerate(order, start=1):
        taken, name = shots[k]
        path = out_dir / f"frame-{n:04d}.jpg"
        if taken is None:
            images[k].save(path, quality=90)
        else:
            images[k].save(path, quality=90, exif=_exif_taken_at(taken))
            os.utime(path, (taken.timestamp(), taken.timestamp()))
        frames.append((path, name))
    return frames


def _exif_taken_at(taken: datetime) -> Image.Exif:
    """EXIF with DateTimeOriginal in the camera's local clock, the way trail cameras write it."""
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = taken.strftime("%Y:%m:%d %H:%M:%S")
    return exif
