"""`trainer crops`: labelled wide trail-camera frames → a folder-per-species set of bird crops.

Why: with a detector the edge classifies each bird's crop, not the whole frame, so a model
trained on whole frames (or on photos framed unlike those crops) sees at the edge pictures it
never saw in training. This command cuts the training pictures the way the edge cuts what it
classifies: every frame goes through edge.detect's BirdFinder.locate, the very function the
daemon calls (same decode with its JPEG draft scale, same full-frame and tile passes, same
merging, same square crop with its margin, same bilinear resize to the crop size), so each
crop is bit-identical to what the daemon would feed the classifier for that frame.

Layout: DATA's folder tree is kept as it is (`<species>/` or `train|valid|test/<species>/`,
or deeper): every image file in a folder becomes crops in the same relative folder under OUT,
named `<frame stem>_<rank>.png` (rank 1 = the detector's best box). A crop takes its folder's
label: a frame holding two species gives both crops the folder's species, which only a person
can sort out (`several_birds.txt` lists those frames). Frames with no bird are listed in
`no_birds.txt`, unreadable ones in `unreadable.txt`, both in OUT.

PNG is the default because it is lossless: the edge classifies the crop's pixels straight
from the decode, and a JPEG crop would add an encode step (and its artefacts) the edge never
has. `--format jpeg` (quality 95) is there for size.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from PIL import Image

from trainer.data import DataError, is_image_name

if TYPE_CHECKING:
    from edge.detect.finder import BirdFinder

CropFormat = Literal["png", "jpeg"]
JPEG_QUALITY = 95
LIST_FILES = ("no_birds.txt", "several_birds.txt", "unreadable.txt")


@dataclass
class CropReport:
    """What `cut_crops` did; paths are relative to DATA (frames) or OUT (folders), POSIX style."""

    data_dir: Path
    out_dir: Path
    crop_size: tuple[int, int]
    frames: int = 0  # image files read (corrupt ones included)
    crops: dict[str, int] = field(default_factory=dict)  # OUT folder → crops written into it
    no_birds: list[str] = field(default_factory=list)  # frames where the detector found no bird
    several_birds: list[tuple[str, int]] = field(default_factory=list)  # frames with > 1 bird written
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (frame, why)
    below_min_score: int = 0  # birds found but not written (score below min_score)
    outside_folders: list[str] = field(default_factory=list)  # images directly in DATA: no label

    @property
    def total_crops(self) -> int:
        return sum(self.crops.values())

    def as_dict(self) -> dict:
        return {"data": str(self.data_dir), "out": str(self.out_dir), "crop_size": list(self.crop_size),
                "frames": self.frames, "crops": self.total_crops, "crops_per_folder": dict(self.crops),
                "no_birds": self.no_birds, "several_birds": [{"frame": f, "birds": n} for f, n in self.several_birds],
                "unreadable": [{"frame": f, "problem": p} for f, p in self.unreadable],
                "below_min_score": self.below_min_score, "outside_folders": self.outside_folders}

    def lines(self) -> list[str]:
        """The human summary printed at the end of `trainer crops`."""
        out = [f"crops: {self.data_dir} → {self.out_dir} ({self.crop_size[0]}x{self.crop_size[1]})",
               f"  frames read {self.frames}, crops written {self.total_crops}"]
        out += [f"  {folder}: {count}" for folder, count in sorted(self.crops.items())]
        out.append(f"  frames with no bird: {len(self.no_birds)}" + (" (listed in no_birds.txt)" if self.no_birds else ""))
        if self.several_birds:
            out.append(f"  frames with more than one bird: {len(self.several_birds)} (listed in several_birds.txt; "
                       "each crop has its folder's label: sort mixed-species frames by hand)")
        if self.unreadable:
            out.append(f"  unreadable frames: {len(self.unreadable)} (listed in unreadable.txt)")
            out += [f"    {frame}: {why}" for frame, why in self.unreadable[:20]]
        if self.below_min_score:
            out.append(f"  birds below --min-score, not written: {self.below_min_score}")
        if self.outside_folders:
            out.append(f"  images directly in the data folder, skipped (no species folder): {len(self.outside_folders)}")
        return out


def load_finder(detector: Path, labels: Path | None = None, *, tiles: str = "auto", threshold: float = 0.5,
                margin: float = 0.15) -> BirdFinder:
    """The edge's BirdFinder for these settings, built by the daemon's own loader
    (edge.detect.analyse.load_configured_finder) from a [detector] section, so every other
    setting (tile overlap, NMS, containment, threads) is the edge's default. Raises DataError
    naming the option for a detector that cannot be used."""
    from pydantic import ValidationError

    from edge.config import EdgeConfig
    from edge.detect.analyse import load_configured_finder
    from edge.detect.model import DetectorError

    section = {"path": str(detector), "tiles": tiles, "threshold": threshold, "crop_margin": margin}
    if labels is not None:
        section["labels"] = str(labels)
    options = {"path": "--detector", "labels": "--detector-labels", "tiles": "--tiles", "threshold": "--threshold",
               "crop_margin": "--margin"}
    try:
        config = EdgeConfig.model_validate({"detector": section})
    except ValidationError as error:
        first = error.errors()[0]
        key = str(first["loc"][-1]) if first.get("loc") else "detector"
        raise DataError(f"{options.get(key, key)}: {first['msg']}") from None
    try:
        finder = load_configured_finder(config)
    except DetectorError as error:
        key, _, message = str(error).partition(": ")
        option = {"detector.path": "--detector", "detector.labels": "--detector-labels"}.get(key, key)
        raise DataError(f"{option}: {message}") from None
    assert finder is not None
    return finder


def classifier_input_size(model: Path) -> tuple[int, int]:
    """(width, height) of a bundle's or .tflite's input: the size the edge resizes crops to."""
    from edge.classify.model import Classifier, ModelError, resolve_model

    if not model.exists():
        raise DataError(f"--model: {model} does not exist (a bundle folder or a .tflite file)")
    try:
        return Classifier(resolve_model(model, None, None), threads=1).input_size
    except ModelError as error:
        raise DataError(f"--model: {error}") from None


def _frames(data_dir: Path, out_dir: Path) -> tuple[dict[Path, list[Path]], list[Path]]:
    """Folder (relative to DATA) → its image files, sorted; and images lying directly in DATA.
    Hidden files and folders are skipped, and so is OUT when it lies inside DATA."""
    folders: dict[Path, list[Path]] = {}
    loose: list[Path] = []
    out_resolved = out_dir.resolve()
    for current, dirnames, filenames in os.walk(data_dir):
        here = Path(current)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() != out_resolved)
        images = sorted(here / f for f in filenames if not f.startswith(".") and is_image_name(Path(f)))
        if not images:
            continue
        relative = here.relative_to(data_dir)
        if relative == Path("."):
            loose += images
        else:
            folders[relative] = images
    return folders, loose


def _crop_names(images: list[Path]) -> dict[Path, str]:
    """Each frame's crop name stem: its own stem, or stem plus extension where two frames of
    one folder share a stem (IMG_1.jpg and IMG_1.png), so no crop overwrites another."""
    stems: dict[str, int] = {}
    for image in images:
        stems[image.stem] = stems.get(image.stem, 0) + 1
    return {image: image.stem if stems[image.stem] == 1 else f"{image.stem}_{image.suffix.lstrip('.').lower()}"
            for image in images}


def check_out_dir(out_dir: Path, data_dir: Path, force: bool) -> None:
    """OUT must be new or empty (or --force), and must not be DATA itself. Raises DataError."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--out: {out_dir} is a file, not a folder")
    if out_dir.resolve() == data_dir.resolve():
        raise DataError(f"--out: {out_dir} is the data folder itself; choose another folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise DataError(f"--out: {out_dir} exists and is not empty; choose a new folder or pass --force "
                        "(files of the same name are replaced, others left as they are)")


def save_crop(pixels, path: Path, fmt: CropFormat) -> None:
    """One crop: PNG (lossless, the default) or JPEG at quality 95."""
    image = Image.fromarray(pixels, mode="RGB")
    if fmt == "png":
        image.save(path, format="PNG")
    else:
        image.save(path, format="JPEG", quality=JPEG_QUALITY)


def cut_crops(
    finder: BirdFinder,
    data_dir: Path,
    out_dir: Path,
    crop_size: tuple[int, int] = (224, 224),
    *,
    fmt: CropFormat = "png",
    min_score: float | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> CropReport:
    """Cut every bird of every frame under DATA into OUT (see the module docstring).

    Raises DataError for a missing DATA, a non-empty OUT without `force`, or no image at all;
    a frame that cannot be decoded is counted and listed, never fatal."""
    from edge.ingest.imaging import FrameError

    data_dir, out_dir = Path(data_dir).expanduser(), Path(out_dir).expanduser()
    if not data_dir.is_dir():
        raise DataError(f"--data: {data_dir} does not exist" if not data_dir.exists() else f"--data: {data_dir} is not a folder")
    if fmt not in ("png", "jpeg"):
        raise DataError(f"--format: {fmt!r} is not png or jpeg")
    check_out_dir(out_dir, data_dir, force)
    folders, loose = _frames(data_dir, out_dir)
    if not folders:
        raise DataError(f"--data: no images in species folders under {data_dir} (expected <species>/ or train/<species>/ ...)")
    report = CropReport(data_dir, out_dir, (crop_size[0], crop_size[1]))
    report.outside_folders = [p.relative_to(data_dir).as_posix() for p in loose]
    suffix = ".png" if fmt == "png" else ".jpg"
    out_dir.mkdir(parents=True, exist_ok=True)
    for relative, images in sorted(folders.items()):
        target = out_dir / relative
        target.mkdir(parents=True, exist_ok=True)
        folder = relative.as_posix()
        report.crops.setdefault(folder, 0)
        names = _crop_names(images)
        for image in images:
            shown = image.relative_to(data_dir).as_posix()
            report.frames += 1
            try:
                located = finder.locate(image.read_bytes(), (crop_size[0], crop_size[1]))
            except (OSError, FrameError) as error:
                reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
                report.unreadable.append((shown, reason))
                continue
            if not located.birds:
                report.no_birds.append(shown)
                continue
            written = 0
            for rank, bird in enumerate(located.birds, start=1):
                if min_score is not None and bird.box.score < min_score:
                    report.below_min_score += 1
                    continue
                save_crop(bird.crop, target / f"{names[image]}_{rank}{suffix}", fmt)
                written += 1
            report.crops[folder] += written
            if written > 1:
                report.several_birds.append((shown, written))
            if progress is not None:
                progress(f"{shown}: {len(located.birds)} bird(s)")
    _write_lists(report)
    return report


def _write_lists(report: CropReport) -> None:
    """no_birds.txt, several_birds.txt, unreadable.txt in OUT (always written, maybe empty, so a
    rerun with --force never leaves an earlier run's list behind)."""
    out = report.out_dir
    (out / "no_birds.txt").write_text("".join(f"{frame}\n" for frame in report.no_birds), encoding="utf-8")
    (out / "several_birds.txt").write_text("".join(f"{frame}\t{n}\n" for frame, n in report.several_birds), encoding="utf-8")
    (out / "unreadable.txt").write_text("".join(f"{frame}\t{why}\n" for frame, why in report.unreadable), encoding="utf-8")
