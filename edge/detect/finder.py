"""From a frame's bytes to square crops of the birds in it, at the classifier's input size.

    locate(data, crop_size)
      open_image (format, size, decompression-bomb checks)
      → decode once with a JPEG draft scale: the largest power of two (<= 8) that keeps every
        tile (or the whole frame when there are no tiles) >= the detector's input; from a
        quarter scale on (12 MP and up), one step finer, the detection picture being its 2x2
        box reduction (Image.reduce). Why: libjpeg's entropy decoding, the bulk of a big
        frame's cost, is the same at every scale (12 MP: 15 ms at a quarter, 16 at half size),
        while most birds' crops need the half-size pixels: one decode instead of two
      → the camera's banner (edge/detect/banner.py: the strip of make, temperature and time
        burned into the top or bottom rows) cut away: the picture is the frame without it
      → the detector on the whole picture fitted to its input (Detector.detect_picture:
        stretched, or letterboxed for a YOLO-family model; BILINEAR), and on every tile of the
        picture, fitted the same way (the grid is chosen from the whole frame's size, so a
        banner never changes it; a tile may come out up to 15 % shorter than the draft scale
        assumed; each next tile is fitted on the finder's worker thread while the detector runs,
        `fit_ahead`)
      → is the picture an infrared night (edge/detect/night.py: LocatedFrame.night, judged on
        the full-frame pass's fitted input, one full-picture resize fewer; with a
        night_threshold, each pass keeps the boxes scoring at least the frame's own threshold)
      → motion (edge/detect/motion.py), with a camera, its frames' capture times (`taken_at`)
        and motion "auto": a frame within the window of the camera's previous one is compared
        with it; when that measures motion, the tiles are skipped and each region that moved (or
        held a bird before) is searched instead, cut from a decode at which it is at least the
        detector's input (usually the full resolution: one more decode, which the crops use too)
      → boxes mapped to the picture, merged: NMS across all passes, then suppress_contained
        (a tile's half-bird inside the full pass's whole bird goes), then mapped to the whole
        frame (exactly: the picture is the frame's rows top..height-bottom); so no box lies
        in the banner
      → no bird: done (the common, cheap case: one decode, no crops)
      → crops: the detection decode when it is fine enough that the smallest crop is still
        >= crop_size, else the finer first decode (or a motion region's) when that is, else
        one more decode from the bytes at the draft scale that is; square
        crops with crop_margin, resized to crop_size with Image.resize(size, BILINEAR).

Decoding goes through edge.ingest.imaging.load_oriented, the function decode() uses (draft,
load, EXIF orientation, RGB, in that order), so a crop is made the way the classifier's
training pictures were. The trainer cuts its crops with crop_birds, the same code as here.

Crop geometry (crop_box): the box's longer side plus crop_margin of it on each side, centred
on the box, in the aspect of crop_size (square for a square classifier). A square that pokes
out of the frame is shifted back inside; one bigger than the frame along an axis is clamped to
the frame along that axis and becomes a rectangle (stretched by the resize), never padded:
padding would show the classifier borders it never saw in training.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from PIL import Image

from edge.detect.banner import NO_BANNER, Banner, BannerMemory, BannerSetting, find_banner, uncrop
from edge.detect.boxes import CUT_TOLERANCE, Cuts, join_tile_cuts, nms, suppress_contained
from edge.detect.model import Box, Detector, Placement
from edge.detect.motion import Motion, MotionMemory, MotionSettings, Region, Seen, compare, grey_of
from edge.detect.night import is_night
from edge.detect.tiles import Tile, TileSetting, plan_tiles, tile_grid
from edge.ingest.imaging import load_oriented, open_image, oriented_size

DRAFT_SCALES = (8, 4, 2, 1)  # what a JPEG decoder can shrink by in the IDCT
# The detection draft scale from which the frame is decoded one DCT step finer up front (see the
# module docstring: "decode once").
FINER_FIRST_DECODE_FROM = 4


@dataclass(frozen=True)
class FinderSettings:
    """How a frame is searched: `tiles` "auto" | "off" | (cols, rows) (see edge.detect.tiles),
    `tile_overlap` shared between neighbouring tiles, `iou_threshold` of the NMS across passes,
    `containment` of suppress_contained, `crop_margin` (fraction of the box's longer side added
    on each side), `draft` (JPEG draft decoding; off decodes every pixel, for comparisons),
    `banner` "auto" (find each camera's information strip and keep it from the detector) |
    "off"; `motion` (edge/detect/motion.py: with a camera and its frames' capture times, the
    regions that moved since its previous frame are searched at full resolution instead of the
    tiles); `threshold`/`night_threshold`: the detector score a box needs on a day / an infrared
    night frame (edge/detect/night.py); night_threshold None keeps the detector's own threshold
    for every frame (the detector must then be built with the lower of the two)."""

    tiles: TileSetting = "auto"
    tile_overlap: float = 0.2
    iou_threshold: float = 0.5
    containment: float = 0.8
    crop_margin: float = 0.15
    draft: bool = True
    banner: BannerSetting = "auto"
    motion: MotionSettings = field(default_factory=MotionSettings)
    threshold: float | None = None
    night_threshold: float | None = None


@dataclass
class Bird:
    box: Box  # normalised to the whole (EXIF-oriented) frame
    crop: np.ndarray  # uint8 RGB (height, width, 3) exactly crop_size
    crop_box: tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels of the full-resolution oriented frame


@dataclass
class LocatedFrame:
    original_size: tuple[int, int]  # (width, height) as stored in the file
    image: Image.Image  # the opened image, for EXIF (capture time), like DecodedFrame.image
    birds: list[Bird] = field(default_factory=list)  # best score first
    invokes: int = 0  # detector invokes: 1 + the number of tiles
    detector_ms: float = 0.0  # summed detect() times
    decode_sizes: list[tuple[int, int]] = field(default_factory=list)  # (w, h) of each decode, oriented
    banner: Banner = NO_BANNER  # the strip kept from the detector (fractions of the height)
    others: list[Box] = field(default_factory=list)  # person / vehicle boxes (Box.kind), normalised to the frame
    night: bool = False  # an infrared night frame (edge/detect/night.py)
    motion: Motion = field(default_factory=lambda: Motion("off"))  # what motion made of it: its outcome, regions, ms
    tiles: int = 0  # tile passes run
    regions: int = 0  # motion region passes run


# The capture time of a frame, read by the caller from the opened image (EXIF, or the file's
# mtime, by the camera's clock); None: unknown, the frame is not compared with others.
TakenAt = Callable[[Image.Image], "datetime | None"]


@dataclass(frozen=True)
class _RegionPass:
    """A motion region, cut from a finer decode (`image`, the whole frame at that scale) than the
    picture the full-frame pass saw, and how to map its boxes to that picture."""

    image: Image.Image
    tile: Tile  # pixels of `image`
    picture: Tile  # the picture (the frame without its banner) in pixels of `image`
    top: int  # banner rows of the detection decode ...
    picture_height: int  # ... and its picture's rows
    height: int  # the detection decode's rows

    def to_picture(self, y: float) -> float:
        """A row of a box in the region (0..1) as a fraction of the detection decode's picture:
        region pixels of the fine decode → the whole frame's fraction → that picture's."""
        tile = self.tile
        return ((tile.y0 + y * tile.height) / self.image.size[1] * self.height - self.top) / self.picture_height


def crop_box(box: Box, image_size: tuple[int, int], margin: float, aspect: float = 1.0) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) pixels of an image of `image_size` (w, h) to crop for `box`: its
    longer side plus `margin` of it on each side, of width/height `aspect`, centred on the
    box, shifted to stay inside the image, clamped to it where it is bigger."""
    width, height = image_size
    left, right = box.xmin * width, box.xmax * width
    top, bottom = box.ymin * height, box.ymax * height
    longer = max(right - left, (bottom - top) * aspect, 1.0)
    crop_w = longer * (1 + 2 * margin)
    crop_h = crop_w / aspect

    def place(centre: float, size: float, limit: int) -> tuple[int, int]:
        if size >= limit:
            return 0, limit
        start = min(max(centre - size / 2, 0.0), limit - size)
        x0 = round(start)
        x1 = min(limit, max(x0 + 1, round(start + size)))
        return x0, x1

    x0, x1 = place((left + right) / 2, crop_w, width)
    y0, y1 = place((top + bottom) / 2, crop_h, height)
    return x0, y0, x1, y1


def crop_birds(image: Image.Image, boxes: Sequence[Box], crop_size: tuple[int, int], margin: float = 0.15) -> list[np.ndarray]:
    """Crops of `boxes` (normalised to `image`) from a decoded, oriented RGB image, each resized
    to `crop_size` (w, h) with Image.resize(size, BILINEAR), as the edge classifies them. The
    trainer's crop command uses this function so that it cuts what the edge cuts."""
    aspect = crop_size[0] / crop_size[1]
    crops = []
    for box in boxes:
        region = image.crop(crop_box(box, image.size, margin, aspect))
        if region.size != tuple(crop_size):
            region = region.resize((crop_size[0], crop_size[1]), Image.Resampling.BILINEAR)
        crops.append(np.asarray(region, dtype=np.uint8))
    return crops


def crops_of_frame(data: bytes, boxes: Sequence[Box], crop_size: tuple[int, int], margin: float = 0.15,
                   draft: bool = True) -> list[np.ndarray]:
    """The crops of boxes already found (a recorded detection's), from a frame's bytes, cut as
    BirdFinder.locate cuts them when it decodes for the crops: at the coarsest JPEG draft scale
    that keeps every crop >= crop_size, then crop_birds. (When the detection's own decode was
    already fine enough, locate cut from that one, which can be a finer scale: the crop is then
    a resize of a few more pixels, the same box; for a 12 MP frame that picture is the half-size
    decode's 2x2 reduction, within a few grey levels of the decoder's own quarter scale.)
    Raises edge.ingest.imaging.FrameError."""
    image = open_image(data)
    stored, full = image.size, oriented_size(image)
    aspect = crop_size[0] / crop_size[1]
    jpeg = draft and image.format in ("JPEG", "MPO")
    scale = _crop_scale(boxes, full, crop_size, margin, aspect) if jpeg else 1
    return crop_birds(load_oriented(image, _draft_request(stored, scale)), boxes, crop_size, margin)


def _fine_enough(boxes: Sequence[Box], size: tuple[int, int], crop_size: tuple[int, int], margin: float,
                 aspect: float) -> bool:
    """Whether every box's crop cut from an image of `size` is at least crop_size."""
    for box in boxes:
        x0, y0, x1, y1 = crop_box(box, size, margin, aspect)
        if x1 - x0 < crop_size[0] or y1 - y0 < crop_size[1]:
            return False
    return True


def _crop_scale(boxes: Sequence[Box], full: tuple[int, int], crop_size: tuple[int, int], margin: float,
                aspect: float) -> int:
    """The largest draft scale at which the smallest crop is still >= crop_size (what locate
    decodes for the crops, and crops_of_frame with it)."""
    for scale in DRAFT_SCALES:
        if _fine_enough(boxes, _scaled(full, scale), crop_size, margin, aspect):
            return scale
    return 1


def _draft_request(stored: tuple[int, int], scale: int) -> tuple[int, int] | None:
    """The size to pass Image.draft so that it picks exactly `scale` (None: no draft)."""
    if scale <= 1:
        return None
    return max(1, stored[0] // scale), max(1, stored[1] // scale)


def _content(fitted: tuple[Image.Image, Placement]) -> Image.Image:
    """The picture's pixels in a fitted detector input: the input itself when stretched, the
    letterbox's grey padding cut away otherwise (it is no part of the scene)."""
    image, placement = fitted
    if placement.whole:
        return image
    return image.crop((placement.x0, placement.y0, placement.x0 + placement.width, placement.y0 + placement.height))


def _decoded_at(data: bytes | Image.Image, scale: int, on_hand: dict[int, Image.Image],
                located: LocatedFrame) -> Image.Image:
    """The whole frame at draft `scale` or finer: the coarsest decode on hand that is fine
    enough (a finer one is only a resize of a few more pixels away from the same crop), else
    one more decode from the bytes at exactly that scale, kept on hand and counted in
    `located.decode_sizes`."""
    finer = [known for known in on_hand if known <= scale]
    if finer:
        return on_hand[max(finer)]
    image = data if isinstance(data, Image.Image) else open_image(data)
    decoded = load_oriented(image, _draft_request(located.original_size, scale))
    on_hand[scale] = decoded
    located.decode_sizes.append(decoded.size)
    return decoded


def _scaled(size: tuple[int, int], scale: int) -> tuple[int, int]:
    """A JPEG's size at a draft scale (the decoder rounds up)."""
    return -(-size[0] // scale), -(-size[1] // scale)


def _check(settings: FinderSettings) -> None:
    """A bad setting fails when the finder is built, not on every frame. Raises ValueError."""
    tile_grid((1, 1), (1, 1), settings.tiles)
    plan_tiles((1, 1), (1, 1), "off", settings.tile_overlap)
    if not 0.0 < settings.iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold {settings.iou_threshold!r} must be in (0, 1]")
    if not 0.0 < settings.containment <= 1.0:
        raise ValueError(f"containment {settings.containment!r} must be in (0, 1]")
    if not 0.0 <= settings.crop_margin <= 2.0:
        raise ValueError(f"crop_margin {settings.crop_margin!r} must be in 0..2 (a fraction of the box's longer side)")
    if settings.banner not in ("auto", "off"):
        raise ValueError(f'banner {settings.banner!r} must be "auto" or "off"')
    settings.motion.check()
    for name in ("threshold", "night_threshold"):
        value = getattr(settings, name)
        if value is not None and not 0.0 < value <= 1.0:
            raise ValueError(f"{name} {value!r} must be in (0, 1]")


class BirdFinder:
    """A Detector, the settings it searches frames with, and what it learned of each camera's
    banner (`banners`, kept as long as the finder: a reload starts learning again)."""

    def __init__(self, detector: Detector, settings: FinderSettings = FinderSettings(),
                 fit_ahead: bool | None = None) -> None:
        """`fit_ahead`: fit each next tile on a worker thread during the current invoke
        (`_fitted_ahead`); None: where the machine has more than one core."""
        self.detector = detector
        self.settings = settings
        self.banners = BannerMemory()
        self.motions = MotionMemory()
        _check(settings)
        if fit_ahead is None:
            fit_ahead = (os.cpu_count() or 1) > 1
        # One thread for the whole finder, idle between frames; a reload builds a new finder.
        self._fit_worker = ThreadPoolExecutor(1, thread_name_prefix="trailcam-fit") if fit_ahead else None

    def locate(self, data: bytes, crop_size: tuple[int, int], camera: str | None = None,
               taken_at: TakenAt | None = None) -> LocatedFrame:
        """Every bird in the frame (best first) with its crop at `crop_size` (w, h). `camera`
        names whose frame it is, so that its banner is learned over its frames; None (a lone
        frame) uses the frame's own finding. `taken_at(image)`: the frame's capture time, asked
        once the image is opened, before the detector runs; with a camera and motion "auto",
        frames of a camera within the motion window are compared (edge/detect/motion.py).
        Raises edge.ingest.imaging.FrameError for a frame that cannot be decoded."""
        settings, detector = self.settings, self.detector
        image = data if isinstance(data, Image.Image) else open_image(data)  # a picture: locate_picture
        stored = image.size
        full = oriented_size(image)
        grid = tile_grid(full, detector.input_size, settings.tiles)
        jpeg = image.format in ("JPEG", "MPO") and settings.draft
        scale = self._detection_scale(full, grid) if jpeg else 1
        # From a quarter scale on, one DCT step finer costs little more (module docstring): the
        # frame is decoded at half the detection scale, which the crops of most birds can use,
        # and the detection picture is its 2x2 box reduction (Image.reduce), no second decode.
        first = scale // 2 if scale >= FINER_FIRST_DECODE_FROM else scale
        decoded = load_oriented(image, _draft_request(stored, first))
        frame = decoded.reduce(scale // first) if first != scale else decoded
        on_hand = {first: decoded, scale: frame}  # draft scale → the whole frame decoded at it
        located = LocatedFrame(stored, image, decode_sizes=[decoded.size])

        located.banner = self._banner(frame, full, camera)
        top, bottom = located.banner.rows(frame.size[1])
        picture = frame.crop((0, top, frame.size[0], frame.size[1] - bottom)) if top or bottom else frame
        # The whole picture fitted to the detector's input, once: its full-frame pass, and the
        # night judged on it (a full-picture resize fewer than judging the picture itself).
        overview = detector.fit(picture)
        located.night = is_night(_content(overview))
        seen, passes = None, []
        if settings.motion.mode == "auto" and camera is not None:
            grey = grey_of(frame)
            rows = (top / frame.size[1], (frame.size[1] - bottom) / frame.size[1])
            seen = Seen((full[0], full[1], grey.shape[1], grey.shape[0]), grey,
                        taken_at(image) if taken_at is not None else None, located.night, rows)
            located.motion = compare(self.motions.last(camera), seen, settings.motion,
                                     (float(full[0]), float(full[1])), float(max(detector.input_size)))
            if located.motion.outcome == "measured":
                grid = None  # the regions instead of the tiles
                passes = self._region_passes(data, frame, located, full, jpeg, on_hand)
        found = self._search(picture, grid, located, passes, overview)
        boxes = [uncrop(box, top, picture.size[1], frame.size[1]) for box in found]
        # People and vehicles (a MegaDetector's other classes) are recorded, never cropped or classified.
        located.others = [box for box in boxes if box.kind != "bird"]
        boxes = [box for box in boxes if box.kind == "bird"]
        if seen is not None:
            birds = tuple(Region(b.xmin, b.ymin, b.xmax, b.ymax) for b in boxes)
            self.motions.keep(camera, Seen(seen.key, seen.grey, seen.at, seen.night, seen.rows, birds))  # type: ignore[arg-type]
        if not boxes:
            return located

        aspect = crop_size[0] / crop_size[1]
        crop_image = frame
        if passes and passes[0].image.size[0] > frame.size[0]:
            crop_image = passes[0].image  # the regions' finer decode
        if not _fine_enough(boxes, crop_image.size, crop_size, settings.crop_margin, aspect):
            fine = _crop_scale(boxes, full, crop_size, settings.crop_margin, aspect) if jpeg else 1
            if _scaled(full, fine)[0] > crop_image.size[0]:
                crop_image = _decoded_at(data, fine, on_hand, located)
        crops = crop_birds(crop_image, boxes, crop_size, settings.crop_margin)
        located.birds = [
            Bird(box, crop, crop_box(box, full, settings.crop_margin, aspect)) for box, crop in zip(boxes, crops)
        ]
        return located

    def locate_picture(self, picture: Image.Image, crop_size: tuple[int, int], camera: str | None = None,
                       taken_at: TakenAt | None = None) -> LocatedFrame:
        """locate() for a picture already decoded (RGB, upright: a video clip's sampled frame),
        so that it is not encoded to JPEG and decoded again: no draft scale (every pixel is
        there already), the same banner, motion, detection passes, merging and crops after that."""
        return self.locate(picture, crop_size, camera, taken_at)  # type: ignore[arg-type]

    def _banner(self, frame: Image.Image, full: tuple[int, int], camera: str | None) -> Banner:
        """The strip to keep from the detector: none with banner "off", this frame's own
        finding for a lone frame, else what the camera's frames taught (edge/detect/banner.py)."""
        if self.settings.banner == "off":
            return NO_BANNER
        found = find_banner(frame)
        return found if camera is None else self.banners.observe(camera, full, found)

    # ---- decoding scales -----------------------------------------------------------------

    def _detection_scale(self, full: tuple[int, int], grid: tuple[int, int] | None) -> int:
        """The largest draft scale at which every tile (or the frame) is >= the detector input."""
        det_w, det_h = self.detector.input_size
        for scale in DRAFT_SCALES:
            size = _scaled(full, scale)
            if grid is None:
                regions = [Tile(0, 0, *size)]
            else:
                regions = plan_tiles(size, self.detector.input_size, grid, self.settings.tile_overlap)
            if all(t.width >= det_w and t.height >= det_h for t in regions):
                return scale
        return 1

    # ---- detection passes ----------------------------------------------------------------

    def _run(self, frame: Image.Image, located: LocatedFrame, tile: Tile | None = None,
             fitted: tuple[Image.Image, Placement] | None = None) -> list[Box]:
        """One detector pass over the frame or one tile of it, fitted to the detector's input
        (its `resize`; `fitted`: that fitting of the frame or the tile, already made); the boxes
        come back normalised to the frame or the tile. With a night_threshold, a box needs the
        frame's own threshold (day or night)."""
        if fitted is None:
            region = frame if tile is None else frame.crop((tile.x0, tile.y0, tile.x1, tile.y1))
            fitted = self.detector.fit(region)
        boxes = self.detector.detect_picture(fitted[0], fitted)
        located.invokes += 1
        located.detector_ms += self.detector.last_ms
        settings = self.settings
        if settings.night_threshold is not None:
            floor = settings.night_threshold if located.night else settings.threshold
            if floor is not None:
                boxes = [box for box in boxes if box.score >= floor]
        return boxes

    def _region_passes(self, data: bytes, frame: Image.Image, located: LocatedFrame, full: tuple[int, int],
                       jpeg: bool, on_hand: dict[int, Image.Image]) -> list[_RegionPass]:
        """The motion regions as passes over the coarsest decode at which each region is still at
        least the detector's input (the detection decode when it is fine enough, else a finer
        one: the first decode when it is that one, else one more decode, which the crops then
        use too)."""
        found = located.motion.regions
        if not found:
            return []
        det_w, det_h = self.detector.input_size
        banner = located.banner

        def picture_rows(height: int) -> tuple[int, int]:
            top, bottom = banner.rows(height)
            return top, height - bottom

        def pixels(r: Region, size: tuple[int, int]) -> Tile:
            """The region in pixels of a decode of `size`, inside its picture rows."""
            top, end = picture_rows(size[1])
            x0, x1 = round(r.x0 * size[0]), round(r.x1 * size[0])
            y0 = min(max(round(r.y0 * size[1]), top), end - 1)
            y1 = min(max(round(r.y1 * size[1]), y0 + 1), end)
            return Tile(x0, y0, max(x1, x0 + 1), y1)

        def fits(size: tuple[int, int]) -> bool:
            return all(t.width >= det_w and t.height >= det_h for t in (pixels(r, size) for r in found))

        scale = next((s for s in DRAFT_SCALES if fits(_scaled(full, s))), 1) if jpeg else 1
        fine = frame
        if jpeg and _scaled(full, scale)[0] > frame.size[0]:
            fine = _decoded_at(data, scale, on_hand, located)
        top_c, end_c = picture_rows(frame.size[1])
        top_f, end_f = picture_rows(fine.size[1])
        return [_RegionPass(fine, pixels(r, fine.size), Tile(0, top_f, fine.size[0], end_f), top_c, end_c - top_c,
                            frame.size[1]) for r in found]

    def _search(self, frame: Image.Image, grid: tuple[int, int] | None, located: LocatedFrame,
                regions: Sequence[_RegionPass] = (), overview: tuple[Image.Image, Placement] | None = None) -> list[Box]:
        """The full-frame pass (on `overview`, the frame fitted to the input, when given), the
        tile passes and the motion region passes over `frame` (the picture without its banner),
        merged, normalised to it."""
        width, height = frame.size
        tiles = plan_tiles(frame.size, self.detector.input_size, grid, self.settings.tile_overlap) if grid else []
        located.tiles = len(tiles)
        fitted_tiles = self._fitted_ahead(frame, tiles)  # the first tile is fitted during the full-frame pass
        found: list[Box] = list(self._run(frame, located, fitted=overview))
        cuts: list[Cuts] = [(False, False, False, False)] * len(found)
        for tile, fitted in zip(tiles, fitted_tiles):
            # Which of this tile's edges are inner borders (not the frame's own edges).
            inner = (tile.y0 > 0, tile.x0 > 0, tile.y1 < height, tile.x1 < width)
            for box in self._run(frame, located, tile, fitted):
                found.append(Box(
                    ymin=(tile.y0 + box.ymin * tile.height) / height,
                    xmin=(tile.x0 + box.xmin * tile.width) / width,
                    ymax=(tile.y0 + box.ymax * tile.height) / height,
                    xmax=(tile.x0 + box.xmax * tile.width) / width,
                    score=box.score, class_index=box.class_index, label=box.label, kind=box.kind,
                ))
                cuts.append(_cut(inner, box))
        located.regions = len(regions)
        for region in regions:
            tile, picture = region.tile, region.picture
            inner = (tile.y0 > picture.y0, tile.x0 > picture.x0, tile.y1 < picture.y1, tile.x1 < picture.x1)
            for box in self._run(region.image, located, tile):
                found.append(Box(
                    ymin=region.to_picture(box.ymin), xmin=(tile.x0 + box.xmin * tile.width) / picture.width,
                    ymax=region.to_picture(box.ymax), xmax=(tile.x0 + box.xmax * tile.width) / picture.width,
                    score=box.score, class_index=box.class_index, label=box.label, kind=box.kind,
                ))
                cuts.append(_cut(inner, box))
        # Each kind (birds; people and vehicles of a MegaDetector) is merged on its own: a person
        # box never swallows the bird in front of them, nor a bird box a person.
        merged: list[Box] = []
        for kind in dict.fromkeys(box.kind for box in found):
            members = [i for i, box in enumerate(found) if box.kind == kind]
            merged.extend(self._merge([found[i] for i in members], [cuts[i] for i in members]))
        return merged

    def _fitted_ahead(self, frame: Image.Image, tiles: Sequence[Tile]) -> Iterator[tuple[Image.Image, Placement]]:
        """Each tile cut from `frame` and fitted to the detector's input, in order; with a
        worker (`fit_ahead`), the next one is fitted on it while the caller runs the detector on
        the one it has. Pillow's crop and resize and the interpreter's invoke all release the
        GIL, so on a device with a core to spare the tiles' fitting (1-1.5 ms each) hides behind
        the invokes instead of adding to them. The pixels are the same either way."""
        def fit(tile: Tile) -> tuple[Image.Image, Placement]:
            return self.detector.fit(frame.crop((tile.x0, tile.y0, tile.x1, tile.y1)))

        worker = self._fit_worker
        if worker is None or not tiles:
            return map(fit, tiles)
        first = worker.submit(fit, tiles[0])

        def in_turn() -> Iterator[tuple[Image.Image, Placement]]:
            pending = first
            for following in tiles[1:]:
                ready = pending.result()
                pending = worker.submit(fit, following)
                yield ready
            yield pending.result()

        return in_turn()

    def _merge(self, found: list[Box], cuts: list[Cuts]) -> list[Box]:
        """Boxes of one kind from every pass, one per object: tile-cut pieces joined, NMS across
        passes, boxes lying inside a bigger one dropped; best score first."""
        if len(found) <= 1:
            return found
        coords = np.asarray([b.coords for b in found])
        scores = np.asarray([b.score for b in found])
        if any(any(c) for c in cuts):
            # The pieces of a bird that tile borders cut apart become one box (its union).
            joined, joined_scores, origins = join_tile_cuts(coords, scores, cuts)
            if len(joined) != len(coords):
                found = [Box(float(row[0]), float(row[1]), float(row[2]), float(row[3]), score=float(score),
                             class_index=found[k].class_index, label=found[k].label, kind=found[k].kind)
                         for row, score, k in zip(joined, joined_scores, origins)]
                coords, scores = joined, joined_scores
        kept = nms(coords, scores, self.settings.iou_threshold)
        inner_kept = suppress_contained(coords[kept], scores[kept], self.settings.containment)
        return [found[int(kept[i])] for i in inner_kept]


def _cut(inner: tuple[bool, bool, bool, bool], box: Box) -> Cuts:
    """Which sides of a tile's (or region's) box an inner border may have cut: near the border."""
    near = (box.ymin <= CUT_TOLERANCE, box.xmin <= CUT_TOLERANCE,
            box.ymax >= 1 - CUT_TOLERANCE, box.xmax >= 1 - CUT_TOLERANCE)
    return tuple(a and b for a, b in zip(inner, near))  # type: ignore[return-value]
