"""Banners: the information strip trail cameras burn into their frames, found on the 27 real
frames of ../shared/data/trailcam-nobird, learned per camera, and kept from the detector.

Expected rows, by inspection at full resolution (the first row whose median leaves the strip's
background): every one of the 27 frames has a banner, though manifest.json names it on only 10
(its notes say "IR" or nothing for the Reconyx frames of ENA24 and SpeciesNet):
  Reconyx (HyperFire, 1920x1080 and 2048x1536): black, 32 rows at the top and 32 at the bottom;
  the 800x450 Reconyx of MegaDetector's failure examples: 12 and 12 (a re-saved, blurred copy);
  Bushnell: white, the bottom 100 rows (2048x1536, 2592x1944 and 3264x2448 alike);
  Stealth Cam (1280x1024): white, the bottom 64 rows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from edge.config import EdgeConfig
from edge.detect.banner import NO_BANNER, Banner, BannerMemory, find_banner, uncrop
from edge.detect.finder import BirdFinder, FinderSettings
from edge.detect.model import Box, Placement, fit_input

RECONYX, RECONYX_SMALL, BUSHNELL, STEALTH = (32, 32), (12, 12), (0, 100), (0, 64)
EXPECTED = {  # file → (top, bottom) rows of the full-resolution, oriented frame
    "md__images_failure-examples_sample-dzf-07.jpg": RECONYX_SMALL,
    "md__test_images_island_conservation_camera_traps_dominicanrepublic_camara04_cam0425abril2015_"
    "dominicanrepublic_cam0425abril2015_20130824_043601_sunp5152.jpg": STEALTH,
    "md__test_images_wellington_camera_traps_261215104310005bs372.JPG": BUSHNELL,
    "speciesnet__test_data_blank.jpg": RECONYX,
    "speciesnet__test_data_blank2.jpg": BUSHNELL,
    "speciesnet__test_data_blank3.jpg": BUSHNELL,
    "zamba__tests_assets_images_ena24_small_2480.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_2573.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_2595.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_2968.jpg": BUSHNELL,
    "zamba__tests_assets_images_ena24_small_2999.jpg": BUSHNELL,
    "zamba__tests_assets_images_ena24_small_3084.jpg": BUSHNELL,
    "zamba__tests_assets_images_ena24_small_352.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_422.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_4330.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_4383.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_4451.jpg": BUSHNELL,
    "zamba__tests_assets_images_ena24_small_49.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_5840.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_5899.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_596.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_6039.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_7951.jpg": BUSHNELL,
    "zamba__tests_assets_images_ena24_small_8200.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_8786.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_8831.jpg": RECONYX,
    "zamba__tests_assets_images_ena24_small_9455.jpg": RECONYX,
}
TOLERANCE = 3  # full-resolution rows: the strip is covered and the picture is not eaten beyond this
PICTURE_MARGIN = 2  # rows past the strip also cut off when the picture alone is tested


def _frame(folder: Path, name: str, scale: int = 1) -> Image.Image:
    """The oriented RGB frame, decoded at a JPEG draft scale as BirdFinder decodes it."""
    image = Image.open(folder / name)
    if scale > 1:
        image.draft("RGB", (image.width // scale, image.height // scale))
    return ImageOps.exif_transpose(image).convert("RGB")


def test_the_manifest_is_the_one_the_rows_were_read_from(trailcam_nobird_dir: Path) -> None:
    manifest = json.loads((trailcam_nobird_dir / "manifest.json").read_text(encoding="utf-8"))
    assert sorted(entry["file"] for entry in manifest) == sorted(EXPECTED)


@pytest.mark.parametrize("scale", [1, 2])
def test_every_real_banner_is_found_to_within_a_few_rows(trailcam_nobird_dir: Path, scale: int) -> None:
    misses = []
    for name, (top, bottom) in EXPECTED.items():
        image = _frame(trailcam_nobird_dir, name, scale)
        found = find_banner(image)
        height = Image.open(trailcam_nobird_dir / name).height  # full resolution (none is rotated)
        rows = (round(found.top * height), round(found.bottom * height))
        if abs(rows[0] - top) > TOLERANCE or abs(rows[1] - bottom) > TOLERANCE:
            misses.append((name, rows, (top, bottom)))
    assert misses == []


@pytest.mark.parametrize("scale", [1, 2])
def test_the_pictures_without_their_banners_have_none(trailcam_nobird_dir: Path, scale: int) -> None:
    """The 27 pictures with their strips cut off (night skies, blown-out skies, foliage at the
    edges): not one strip is found in them."""
    found = {}
    for name, (top, bottom) in EXPECTED.items():
        image = _frame(trailcam_nobird_dir, name)
        picture = image.crop((0, top + PICTURE_MARGIN, image.width, image.height - bottom - PICTURE_MARGIN))
        if scale > 1:
            picture = picture.reduce(scale)
        if banner := find_banner(picture):
            found[name] = banner
    assert found == {}


def test_a_uniform_edge_without_text_or_taller_than_the_limit_is_not_a_banner() -> None:
    rng = np.random.default_rng(0)
    picture = rng.integers(60, 200, (480, 640, 3), dtype=np.uint8)
    picture[:30] = 0  # a black night sky: no text in it
    assert find_banner(Image.fromarray(picture)) == NO_BANNER
    tall = _strip_frame(top=90, bottom=0)  # a "strip" of 19 %: a uniform picture, not a banner
    assert find_banner(tall) == NO_BANNER
    assert find_banner(_strip_frame(top=24, bottom=20)) == Banner(24 / 480, 20 / 480)


# ---- learning per camera --------------------------------------------------------------------

SIZE = (2048, 1536)
STRIP = Banner(32 / 1536, 32 / 1536)
SKY = Banner(0.08, 0.0)  # what one frame's dark sky might look like


def test_a_camera_learns_its_banner_after_three_agreeing_frames() -> None:
    memory = BannerMemory()
    assert memory.observe("a", SIZE, STRIP) == STRIP  # not learned yet: the frame's own finding
    assert memory.learned("a") is None
    memory.observe("a", SIZE, STRIP)
    assert memory.learned("a") is None
    assert memory.observe("a", SIZE, Banner(33 / 1536, 31 / 1536)) == Banner(33 / 1536, 32 / 1536)  # the widest
    assert memory.learned("a") == Banner(33 / 1536, 32 / 1536)
    assert memory.learned("b") is None


def test_one_odd_frame_neither_sets_nor_clears_a_learned_banner() -> None:
    memory = BannerMemory()
    for _ in range(3):
        memory.observe("reconyx", SIZE, STRIP)
        memory.observe("plain", SIZE, NO_BANNER)
    assert memory.observe("plain", SIZE, SKY) == NO_BANNER  # one dark sky does not become a banner
    assert memory.observe("reconyx", SIZE, NO_BANNER) == STRIP  # one frame that misses it keeps it
    assert memory.observe("reconyx", SIZE, SKY) == STRIP
    for _ in range(2):
        memory.observe("plain", SIZE, NO_BANNER)
        memory.observe("plain", SIZE, SKY)
    assert memory.learned("plain") == NO_BANNER  # alternating findings never agree three times
    for _ in range(3):
        used = memory.observe("reconyx", SIZE, SKY)
    assert used == SKY and memory.learned("reconyx") == SKY  # three in a row: the camera changed


def test_a_frame_of_another_size_starts_the_learning_again() -> None:
    memory = BannerMemory()
    for _ in range(3):
        memory.observe("a", SIZE, STRIP)
    assert memory.observe("a", (1920, 1080), NO_BANNER) == NO_BANNER
    assert memory.learned("a") is None


def test_the_finder_learns_each_camera_from_real_frames(trailcam_nobird_dir: Path) -> None:
    """Three real Reconyx frames teach camera "r" its 32-row strips; a fourth frame of the same
    size whose top strip was painted over with picture still has the learned strip cut away,
    while a lone frame (no camera) uses its own finding."""

    class Nothing:
        input_size = (300, 300)
        last_ms = 0.0

        def detect(self, rgb: np.ndarray) -> list[Box]:
            return []

        def fit(self, picture: Image.Image) -> tuple[Image.Image, Placement]:  # stretched to the input, as the SSD
            return fit_input(picture, self.input_size, False)

        def detect_picture(self, picture: Image.Image, fitted: tuple[Image.Image, Placement] | None = None) -> list[Box]:
            image, _ = fitted if fitted is not None else self.fit(picture)
            return self.detect(np.asarray(image))

    finder = BirdFinder(Nothing(), FinderSettings(tiles="off"))  # type: ignore[arg-type]
    names = [n for n, rows in EXPECTED.items() if rows == RECONYX and Image.open(trailcam_nobird_dir / n).size == SIZE]
    for name in names[:3]:
        located = finder.locate((trailcam_nobird_dir / name).read_bytes(), (224, 224), camera="r")
    assert finder.banners.learned("r") == located.banner and located.banner.rows(1536) == RECONYX
    odd = _frame(trailcam_nobird_dir, names[3])
    odd.paste(odd.crop((0, 40, odd.width, 72)), (0, 0))  # the top strip hidden under picture rows
    data = _jpeg(odd)
    assert finder.locate(data, (224, 224)).banner.rows(1536)[0] == 0  # alone: no top strip
    assert finder.locate(data, (224, 224), camera="r").banner.rows(1536) == RECONYX
    off = BirdFinder(Nothing(), FinderSettings(tiles="off", banner="off"))  # type: ignore[arg-type]
    assert off.locate(data, (224, 224), camera="r").banner == NO_BANNER


# ---- the detector never sees the banner; boxes mapped back exactly --------------------------

TEXT = "2024-05-01 06:12:33  M 3/4  12C  CAM7  2024-05-01 06:12:33  M 3/4  12C"


def _strip_frame(top: int, bottom: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """Noise (a picture: no row is uniform), a black strip of `top` rows with white text and a
    white strip of `bottom` rows with black text, as Reconyx and Bushnell draw theirs."""
    width, height = size
    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(60, 200, (height, width, 3), dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    if top:
        draw.rectangle((0, 0, width - 1, top - 1), fill=(0, 0, 0))
        draw.text((4, max(0, top // 2 - 6)), TEXT, fill=(255, 255, 255))
    if bottom:
        draw.rectangle((0, height - bottom, width - 1, height - 1), fill=(255, 255, 255))
        draw.text((4, height - bottom + max(0, bottom // 2 - 6)), TEXT, fill=(0, 0, 0))
    return image


def _png(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


class ColourFinder:
    """A stand-in detector that boxes the pixels of one colour in what it is shown, and keeps
    every input: a red square is a bird, pure white or black pixels are the banner's letters."""

    def __init__(self, input_size: tuple[int, int], match) -> None:
        self.input_size = input_size
        self.match = match
        self.last_ms = 0.0
        self.seen: list[np.ndarray] = []

    def detect(self, rgb: np.ndarray) -> list[Box]:
        self.seen.append(rgb)
        ys, xs = np.nonzero(self.match(rgb.astype(int)))
        if not len(ys):
            return []
        height, width = rgb.shape[:2]
        return [Box(ys.min() / height, xs.min() / width, (ys.max() + 1) / height, (xs.max() + 1) / width, 0.9, 15, "bird")]

    def fit(self, picture: Image.Image) -> tuple[Image.Image, Placement]:
        """Stretched to the input, as edge.detect.model.Detector does for an SSD layout."""
        return fit_input(picture, self.input_size, False)

    def detect_picture(self, picture: Image.Image, fitted: tuple[Image.Image, Placement] | None = None) -> list[Box]:
        image, _ = fitted if fitted is not None else self.fit(picture)
        return self.detect(np.asarray(image, dtype=np.uint8))


def _red(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] > 220) & (rgb[..., 1] < 30) & (rgb[..., 2] < 30)


def _letters(rgb: np.ndarray) -> np.ndarray:
    return (rgb.min(axis=2) >= 250) | (rgb.max(axis=2) <= 5)


def test_a_box_is_mapped_back_to_the_whole_frame_exactly() -> None:
    image = _strip_frame(top=24, bottom=20)
    ImageDraw.Draw(image).rectangle((300, 200, 339, 239), fill=(255, 0, 0))  # rows 200..239 of 480
    detector = ColourFinder((640, 480 - 24 - 20), _red)  # the picture's own size: no resize
    located = BirdFinder(detector, FinderSettings(tiles="off")).locate(_png(image), (64, 64))  # type: ignore[arg-type]
    assert located.banner == Banner(24 / 480, 20 / 480)
    assert len(detector.seen) == 1 and detector.seen[0].shape == (436, 640, 3)
    assert not _letters(detector.seen[0]).any()  # not one letter of either strip reached the detector
    (bird,) = located.birds
    assert bird.box.coords == pytest.approx((200 / 480, 300 / 640, 240 / 480, 340 / 640), abs=1e-12)


def test_neither_the_full_pass_nor_a_tile_sees_the_banner() -> None:
    image = _strip_frame(top=30, bottom=24, size=(1200, 900))
    for banner, expect_boxes in (("auto", False), ("off", True)):
        detector = ColourFinder((300, 300), _letters)
        located = BirdFinder(detector, FinderSettings(tiles=(2, 2), banner=banner)).locate(_png(image), (64, 64))  # type: ignore[arg-type]
        assert located.invokes == 5  # the full pass and 2x2 tiles, with or without the banner
        assert bool(located.birds) is expect_boxes
        assert any(_letters(seen).any() for seen in detector.seen) is expect_boxes


def test_uncrop_is_the_identity_without_a_banner() -> None:
    box = Box(0.1, 0.2, 0.3, 0.4, 0.5, 1, "bird")
    assert uncrop(box, 0, 100, 100) is box
    assert uncrop(box, 10, 80, 100).coords == pytest.approx((0.18, 0.2, 0.34, 0.4))


def test_banner_is_configured_under_detector(ssd_detector_dir: Path) -> None:
    from pydantic import ValidationError

    from edge.daemon.preflight import load_configured_finder

    assert EdgeConfig.model_validate({}).detector.banner == "auto"
    with pytest.raises(ValidationError, match="banner"):
        EdgeConfig.model_validate({"detector": {"banner": "sometimes"}})
    finder = load_configured_finder(EdgeConfig.model_validate({"detector": {"path": str(ssd_detector_dir), "banner": "off"}}))
    assert finder is not None and finder.settings.banner == "off"


# ---- the real SSD through `edge classify --detector` ----------------------------------------

def test_edge_classify_returns_no_box_inside_a_real_banner(trailcam_nobird_dir: Path, aiy_model_dir: Path,
                                                          ssd_detector_dir: Path, cli_env) -> None:
    images = [str(trailcam_nobird_dir / name) for name in EXPECTED]
    run = subprocess.run([sys.executable, "-m", "edge", "classify", "--model", str(aiy_model_dir), "--detector",
                          str(ssd_detector_dir), "--format", "json", *images],
                         check=False, env=cli_env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    inside = []
    for entry in json.loads(run.stdout)["images"]:
        name = Path(entry["path"]).name
        top, bottom = EXPECTED[name]
        height = Image.open(trailcam_nobird_dir / name).height
        for detection in entry["detections"]:
            ymin, _, ymax, _ = detection["box"]
            if ymin * height < top - 0.5 or ymax * height > height - bottom + 0.5:  # the JSON rounds to 4 places
                inside.append((name, detection["box"]))
    assert inside == []
