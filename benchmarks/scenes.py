"""Deterministic trail-camera scenes: real bird photos pasted small into a wide synthetic frame.

Why: real trail-camera frames are wide (1920x1080 to 12 MP) with 0-3 small birds (a few % of
the frame) and many empty frames, while ../shared/data/birds25 holds 224x224 photos in which
the bird fills about half the picture. The detect-then-classify benchmark and tests need frames
of the first kind with known ground truth; this module builds them from the second kind.
NumPy + Pillow only (no TensorFlow, no detector), so tests and benchmarks can import it.

    background(size, seed)                         foliage-like synthetic frame, no bird in it
    compose(birds25_dir, size, n_birds, area_fractions, seed) -> Scene
    scene_set(birds25_dir, size, count, seed, ...) -> list[Scene]   ~30 % empty, 1-3 birds

Ground truth: a PastedBird's `box` is the whole pasted region (the square centre crop of the
photo, scaled), not a tight box around the bird. The bird fills roughly half of that region,
so a detector's tight box around it overlaps the pasted box by IoU ~0.4-0.7: match with a
lenient IoU (the benchmark uses 0.3). `area_fraction` is that region's area over the frame's.

The background is generated (smoothed noise in greens and browns, a light gradient,
thousands of small leaves), never cut from the photos, so nothing of the photos' own backgrounds appears
outside the pasted regions. Each paste is blended through a feathered elliptical alpha mask
so its edge is not a hard rectangle that a detector could key on.

Everything is a function of the seed (NumPy's PCG64 and Pillow's deterministic drawing,
resampling and JPEG encoding): the same arguments give byte-identical JPEGs on one install.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Box = tuple[float, float, float, float]  # ymin, xmin, ymax, xmax, normalised to the scene

CROP_FRACTION = 0.8  # side of the square centre crop taken from a birds25 photo (bird stays inside)
MASK_FEATHER = 0.06  # blur radius of the elliptical mask, as a fraction of the paste side
PLACEMENT_TRIES = 400
LEAF_DENSITY = 400  # one leaf per this many pixels of the (working-size) frame
WORKING_PIXELS = 1920 * 1080  # backgrounds larger than this are drawn at this size and scaled up  # random positions tried per bird before giving up on a layout

# Foliage palette (RGB): dark shade, mid leaf green, light leaf, dry-leaf tan.
_SHADE = np.array([28, 40, 22], np.float32)
_LEAF = np.array([62, 96, 44], np.float32)
_LIGHT = np.array([128, 150, 84], np.float32)
_TAN = np.array([140, 118, 80], np.float32)


@dataclass(frozen=True)
class PastedBird:
    """One bird photo pasted into a scene: the ground truth the benchmark scores against."""

    species: str  # the birds25 folder name, e.g. "AMERICAN ROBIN"
    source: Path  # the photo it came from
    box: Box  # the pasted region (ymin, xmin, ymax, xmax), normalised to the scene
    area_fraction: float  # pasted region area / frame area (from the integer pixel box)


@dataclass
class Scene:
    """A composed frame and what is in it."""

    image: Image.Image  # RGB
    birds: list[PastedBird] = field(default_factory=list)
    name: str = ""

    def jpeg(self, quality: int = 90) -> bytes:
        """The frame as a camera would write it (baseline JPEG, fixed settings: reproducible)."""
        buffer = io.BytesIO()
        self.image.save(buffer, format="JPEG", quality=quality, optimize=False, progressive=False)
        return buffer.getvalue()


# -- background -------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int) -> np.ndarray:
    """Value noise: a coarse random grid (`cells` across the short side) upsampled bicubically."""
    width, height = size
    short = min(width, height)
    grid_w = max(2, round(cells * width / short)) + 1
    grid_h = max(2, round(cells * height / short)) + 1
    grid = rng.random((grid_h, grid_w), dtype=np.float32)
    image = Image.fromarray(grid, mode="F").resize((width, height), Image.BICUBIC)
    return np.asarray(image, np.float32)


def _octaves(rng: np.random.Generator, size: tuple[int, int], cells: Sequence[int], decay: float = 0.55) -> np.ndarray:
    """Several octaves of smooth noise summed and scaled to 0..1."""
    total = np.zeros((size[1], size[0]), np.float32)
    weight = 1.0
    for count in cells:
        total += weight * _smooth_noise(rng, size, count)
        weight *= decay
    low, high = float(total.min()), float(total.max())
    return (total - low) / max(high - low, 1e-6)


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t[..., None]


def background(size: tuple[int, int], seed: int) -> Image.Image:
    """A foliage-like frame (leaf greens, shade, dry-leaf browns, light fall-off, small leaves).

    Built from noise and ellipses only, so no pixel comes from a bird photo. No branches:
    drawn as bark-brown strokes they read as "bird" to the COCO SSD (a twig crossing a branch,
    where birds perch, scored 0.57-0.61 on the full-frame pass); without them 60 seeds gave no
    bird box >= 0.3, whole or in 3x2 tiles. Tests check the detector finds no bird in it.
    """
    width, height = size
    if width < 16 or height < 16:
        raise ValueError(f"background size {size}: both sides must be >= 16 px")
    rng = np.random.default_rng([seed, 0xB6])
    # Large frames are drawn at about 2 MP and scaled up: 12 MP of noise costs seconds per
    # frame, and the detector never sees finer than a tile's 300x300 anyway.
    scale = min(1.0, float(np.sqrt(WORKING_PIXELS / (width * height))))
    full = size
    size = (max(16, round(width * scale)), max(16, round(height * scale)))
    width, height = size
    leaves = _octaves(rng, size, (3, 7, 16, 40, 90))  # leaf masses down to leaf-sized grain
    dryness = _octaves(rng, size, (2, 5, 11))  # where the foliage turns brown
    light = _octaves(rng, size, (2, 4))  # dappled light
    rgb = _mix(_SHADE, _LEAF, np.clip(leaves * 1.6 - 0.2, 0, 1))
    rgb = _mix(rgb, _LIGHT, np.clip(leaves * 2.0 - 1.2, 0, 1))
    rgb = _mix(rgb, _TAN, np.clip(dryness * 1.8 - 1.0, 0, 0.7))
    # Light gradient: brighter towards a random top corner, darker at the bottom.
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    corner = float(rng.random())
    gradient = 1.12 - 0.3 * ys - 0.1 * np.abs(xs - corner)
    rgb *= (gradient * (0.8 + 0.4 * light))[..., None]
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), mode="RGB")
    # Soften the strokes and grain a little, as a lens and JPEG would.
    image = image.filter(ImageFilter.GaussianBlur(radius=max(1.0, min(size) / 900)))
    _draw_leaves(image, rng)
    return image if size == full else image.resize(full, Image.BICUBIC)


def _draw_leaves(image: Image.Image, rng: np.random.Generator) -> None:
    """Thousands of small leaf-shaped ellipses, each a lighter or darker tint of the colour under it.

    Why: smooth noise alone reads, to the COCO SSD shrinking the whole frame to 300x300, like
    an out-of-focus close-up, and it called such frames "bird" at scores 0.3-0.5 (1 in 30 over
    its 0.5 threshold) with a box over most of the frame. Leaf-sized grain breaks that up
    (measured on 30 seeds: full-frame mean 0.26 → 0.08, max 0.50 → 0.37; tiles max 0.21).
    Larger leaves (radius ~1 % of the short side) make each tile see birds instead.
    """
    width, height = image.size
    pixels = np.asarray(image)
    count = width * height // LEAF_DENSITY
    xs, ys = rng.uniform(0, width, count), rng.uniform(0, height, count)
    radii = rng.uniform(0.0015, 0.004, count) * min(width, height)
    flatness, tint = rng.uniform(0.35, 0.7, count), rng.uniform(0.6, 1.4, count)
    colours = pixels[np.minimum(ys.astype(int), height - 1), np.minimum(xs.astype(int), width - 1)] * tint[:, None]
    colours = np.clip(colours, 0, 255).astype(np.uint8)
    draw = ImageDraw.Draw(image)
    for x, y, r, e, colour in zip(xs, ys, radii, flatness, colours):
        draw.ellipse([x - r, y - r * e, x + r, y + r * e], fill=tuple(int(v) for v in colour))


# -- pasting ----------------------------------------------------------------------------------


def species_photos(birds25_dir: Path) -> dict[str, list[Path]]:
    """Species folder name -> its photos (sorted), for every folder holding at least one JPEG."""
    folders = sorted(p for p in Path(birds25_dir).iterdir() if p.is_dir())
    found = {f.name: sorted(f.glob("*.jpg")) for f in folders}
    found = {name: paths for name, paths in found.items() if paths}
    if not found:
        raise ValueError(f"{birds25_dir}: no species folders with .jpg photos")
    return found


def _elliptical_mask(side: int) -> Image.Image:
    """An 'L' mask: an ellipse inscribed in the square, feathered so the paste fades in."""
    scale = 4 if side < 512 else 1  # supersample small masks for a smooth rim
    big = side * scale
    mask = Image.new("L", (big, big), 0)
    inset = round(big * MASK_FEATHER)
    ImageDraw.Draw(mask).ellipse([inset, inset, big - 1 - inset, big - 1 - inset], fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(radius=big * MASK_FEATHER / 2))
    return mask.resize((side, side), Image.BILINEAR) if scale > 1 else mask


def _bird_patch(source: Path, side: int) -> Image.Image:
    """The photo's square centre crop (CROP_FRACTION of its short side), scaled to `side`."""
    with Image.open(source) as photo:
        photo = photo.convert("RGB")
        w, h = photo.size
        crop = round(min(w, h) * CROP_FRACTION)
        left, top = (w - crop) // 2, (h - crop) // 2
        return photo.crop((left, top, left + crop, top + crop)).resize((side, side), Image.LANCZOS)


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int) -> bool:
    """Pixel boxes (left, top, right, bottom) closer than `gap` on both axes."""
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def _place(rng: np.random.Generator, size: tuple[int, int], sides: Sequence[int]) -> list[tuple[int, int, int, int]] | None:
    """Non-overlapping random positions for squares of `sides` (largest first), or None."""
    width, height = size
    gap = max(4, min(size) // 100)
    order = sorted(range(len(sides)), key=lambda i: -sides[i])
    placed: dict[int, tuple[int, int, int, int]] = {}
    for index in order:
        side = sides[index]
        if side > width or side > height:
            return None
        for _ in range(PLACEMENT_TRIES):
            left = int(rng.integers(0, width - side + 1))
            top = int(rng.integers(0, height - side + 1))
            box = (left, top, left + side, top + side)
            if not any(_overlaps(box, other, gap) for other in placed.values()):
                placed[index] = box
                break
        else:
            return None
    return [placed[i] for i in range(len(sides))]


def compose(
    birds25_dir: Path,
    size: tuple[int, int] = (1920, 1080),
    n_birds: int = 1,
    area_fractions: Sequence[float] = (0.08,),
    seed: int = 0,
    *,
    sources: Sequence[Path] | None = None,
    name: str | None = None,
    backdrop: Image.Image | None = None,
    boxes: Sequence[tuple[int, int, int, int]] | None = None,
) -> Scene:
    """A background frame with `n_birds` photos pasted at the given fractions of the frame area.

    `area_fractions` gives one fraction per bird (a single value is used for all). Photos are
    drawn at random from all species folders unless `sources` names them (one per bird; the
    species is the photo's folder name). Positions are random and non-overlapping (a small
    gap between pastes); raises ValueError where the pastes cannot fit.

    `backdrop`: a real frame to paste onto instead of the generated foliage (resized to `size`;
    a monochrome one, an infrared night, gets grey birds); `boxes`: the pixel boxes (left, top,
    right, bottom) to paste into, given instead of drawn (a burst's birds moving a little).
    """
    width, height = size
    fractions = list(area_fractions)
    if len(fractions) == 1 and n_birds > 1:
        fractions *= n_birds
    if n_birds < 0 or len(fractions) != n_birds:
        raise ValueError(f"compose: n_birds={n_birds} needs that many area_fractions, got {len(fractions)}")
    if any(not 0.0 < f < 1.0 for f in fractions):
        raise ValueError(f"compose: area_fractions must lie in (0, 1), got {fractions}")
    rng = np.random.default_rng([seed, 0x5C3])
    if sources is None:
        photos = species_photos(birds25_dir)
        names = sorted(photos)
        chosen = []
        for _ in range(n_birds):
            species = names[int(rng.integers(len(names)))]
            chosen.append(photos[species][int(rng.integers(len(photos[species])))])
    else:
        chosen = [Path(p) for p in sources]
        if len(chosen) != n_birds:
            raise ValueError(f"compose: n_birds={n_birds} but {len(chosen)} sources given")
    sides = [max(8, round(np.sqrt(f * width * height))) for f in fractions]
    if boxes is None:
        boxes = _place(rng, size, sides)
    else:
        sides = [right - left for left, _, right, _ in boxes]
    if boxes is None:
        raise ValueError(f"compose: {n_birds} pastes of {fractions} of the frame do not fit in {width}x{height}")
    image = background(size, seed) if backdrop is None else backdrop.convert("RGB").resize(size, Image.BICUBIC)
    grey = backdrop is not None and _monochrome(image)
    birds = []
    for source, side, (left, top, right, bottom) in zip(chosen, sides, boxes):
        patch = _bird_patch(source, side)
        if grey:  # an infrared night frame: the camera sees no colour
            patch = patch.convert("L").convert("RGB")
        image.paste(patch, (left, top), _elliptical_mask(side))
        birds.append(PastedBird(
            species=source.parent.name,
            source=source,
            box=(top / height, left / width, bottom / height, right / width),
            area_fraction=(right - left) * (bottom - top) / (width * height),
        ))
    return Scene(image=image, birds=birds, name=name or f"scene-{seed}-{width}x{height}")


def scene_set(
    birds25_dir: Path,
    size: tuple[int, int] = (1920, 1080),
    count: int = 60,
    seed: int = 0,
    empty_fraction: float = 0.3,
    fractions: Sequence[float] = (0.03, 0.08, 0.20),
    max_birds: int = 3,
) -> list[Scene]:
    """`count` scenes: round(count*empty_fraction) empty, the rest 1..max_birds birds each.

    Each bird's size is drawn from `fractions`; photos come from one shuffled pass over every
    photo of every species (then another pass), so all species appear about equally. A layout
    that does not fit (three large birds) is redrawn. Deterministic from `seed`; a 12 MP set
    is `size=(4000, 3000)`.
    """
    if not 0.0 <= empty_fraction <= 1.0:
        raise ValueError(f"scene_set: empty_fraction must lie in [0, 1], got {empty_fraction}")
    if max_birds < 1:
        raise ValueError(f"scene_set: max_birds must be >= 1, got {max_birds}")
    rng = np.random.default_rng([seed, 0x5E7])
    photos = species_photos(birds25_dir)
    pool = [p for name in sorted(photos) for p in photos[name]]
    queue: list[Path] = []

    def next_photo() -> Path:
        if not queue:
            queue.extend(pool[i] for i in rng.permutation(len(pool)))
        return queue.pop()

    empty = set(rng.permutation(count)[: round(count * empty_fraction)].tolist())
    scenes = []
    for index in range(count):
        scene_seed = int(rng.integers(2**31))
        name = f"scene-{seed}-{index:03d}"
        if index in empty:
            scenes.append(Scene(image=background(size, scene_seed), birds=[], name=name))
            continue
        n = int(rng.integers(1, max_birds + 1))
        sources = [next_photo() for _ in range(n)]
        for _attempt in range(20):
            drawn = [float(fractions[int(rng.integers(len(fractions)))]) for _ in range(n)]
            try:
                scenes.append(compose(birds25_dir, size, n, drawn, scene_seed, sources=sources, name=name))
                break
            except ValueError:
                scene_seed = int(rng.integers(2**31))
        else:
            raise ValueError(f"scene_set: no layout of {n} birds from {fractions} fits in {size}")
    return scenes


def _monochrome(image: Image.Image) -> bool:
    """An infrared night frame: its channels agree almost everywhere."""
    small = np.asarray(image.resize((64, 48)).convert("RGB"), dtype=np.int16)
    return float(np.abs(small[..., 0] - small[..., 1]).mean() + np.abs(small[..., 1] - small[..., 2]).mean()) < 6.0


# Frames of ../shared/data/trailcam-nobird that do hold a bird, whatever its manifest says
# (`birds: 0`): ENA24 49 and 7951, labelled American Crow by ENA24, show a crow in plain view.
FRAMES_WITH_A_BIRD = frozenset({"zamba__tests_assets_images_ena24_small_49.jpg",
                                "zamba__tests_assets_images_ena24_small_7951.jpg"})


def real_backgrounds(nobird_dir: Path, *, with_birds: bool = False) -> list[Path]:
    """The real camera-trap frames without a bird (../shared/data/trailcam-nobird), sorted; the
    two with a crow (FRAMES_WITH_A_BIRD) only with `with_birds`."""
    found = sorted(p for p in Path(nobird_dir).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
                   and (with_birds or p.name not in FRAMES_WITH_A_BIRD))
    if not found:
        raise ValueError(f"{nobird_dir}: no frames")
    return found


def real_bursts(
    birds25_dir: Path,
    nobird_dir: Path,
    bursts: int = 20,
    seed: int = 0,
    *,
    frames: int = 3,
    width_fractions: tuple[float, float] = (0.02, 0.10),
    max_birds: int = 3,
    empty_fraction: float = 0.2,
    size: tuple[int, int] | None = None,
    margin: float = 0.12,
) -> list[list[Scene]]:
    """`bursts` bursts of `frames` scenes pasted on the real bird-free camera-trap frames.

    Each burst keeps one real background (its banner, infrared look and noise; `size` resizes it,
    e.g. (4000, 3000) for 12 MP; None keeps each frame's own size) and 0..max_birds birds whose
    width is drawn in `width_fractions` of the frame's width; from frame to frame of a burst each
    bird moves a little (up to 2 % of the width) and may not leave the frame. Birds stay out of the
    top and bottom `margin` of the height, where trail cameras burn their banner. A burst is
    empty with probability `empty_fraction` (a vegetation trigger). Deterministic from `seed`.
    """
    rng = np.random.default_rng([seed, 0xB0B])
    photos = species_photos(birds25_dir)
    pool = [p for name in sorted(photos) for p in photos[name]]
    backs = real_backgrounds(nobird_dir)
    result: list[list[Scene]] = []
    for index in range(bursts):
        back_path = backs[int(rng.integers(len(backs)))]
        with Image.open(back_path) as opened:
            backdrop = opened.convert("RGB")
            backdrop.load()
        frame_size = size or backdrop.size
        width, height = frame_size
        n = 0 if rng.random() < empty_fraction else int(rng.integers(1, max_birds + 1))
        sources = [pool[int(rng.integers(len(pool)))] for _ in range(n)]
        sides = [max(8, round(float(rng.uniform(*width_fractions)) * width)) for _ in range(n)]
        top_limit, bottom_limit = round(height * margin), round(height * (1 - margin))
        usable = (width, max(16, bottom_limit - top_limit))
        placed = _place(rng, usable, sides) if n else []
        if placed is None:  # too many big birds for this frame: one bird instead
            sources, sides = sources[:1], sides[:1]
            placed = _place(rng, usable, sides) or []
        start = [(left, top + top_limit, right, bottom + top_limit) for left, top, right, bottom in placed]
        # Each bird keeps its direction through the burst: a hop, not a jitter.
        steps = [(int(rng.integers(-1, 2)) * max(1, round(width * 0.007)),
                  int(rng.integers(-1, 2)) * max(1, round(width * 0.004))) for _ in start]
        burst: list[Scene] = []
        for frame in range(frames):
            moved = []
            for (left, top, right, _bottom), (step_x, step_y) in zip(start, steps):
                side = right - left
                dx, dy = step_x * frame, step_y * frame
                new_left = min(max(0, left + dx), width - side)
                new_top = min(max(top_limit, top + dy), max(top_limit, bottom_limit - side))
                moved.append((new_left, new_top, new_left + side, new_top + side))
            name = f"real-{seed}-{index:03d}-{frame}"
            if not moved:
                image = backdrop.resize(frame_size, Image.BICUBIC) if frame_size != backdrop.size else backdrop.copy()
                burst.append(Scene(image=image, birds=[], name=name))
                continue
            fractions = [((b[2] - b[0]) ** 2) / (width * height) for b in moved]
            burst.append(compose(birds25_dir, frame_size, len(moved), fractions, seed=index * 10 + frame,
                                 sources=sources[:len(moved)], name=name, backdrop=backdrop, boxes=moved))
        result.append(burst)
    return result
