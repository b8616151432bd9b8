"""`trainer crops --coco FILE --images DIR`: a COCO Camera Traps file with boxes → bird crops.

Why: LILA's camera-trap sets, MegaDetector's tools, Timelapse and the edge's own
`edge export coco-ct` describe labelled frames as COCO Camera Traps JSON (images, annotations
with a category and a box, categories), not as folders per species. This turns such a file
into the folder-per-class crop set `trainer crops` writes from a detector's boxes, so that
`trainer train --data OUT` trains on it. The boxes are the file's (a person's or an earlier
detector's), so no detector runs; the crops are cut by edge.detect.finder.crops_of_frame, the
edge's own geometry (the box's longer side plus --margin of it each side, square, shifted
inside the frame, bilinear resize to the crop size, from the same JPEG draft decode), so a
crop looks like what the daemon classifies for a box of that size.

The file (https://github.com/agentmorris/MegaDetector/blob/main/megadetector/data_management/README.md):

    images:      [{"id", "file_name", "width", "height", ...}]   file_name relative to --images
    annotations: [{"image_id", "category_id", "bbox": [x, y, width, height]}]   absolute pixels
    categories:  [{"id", "name", "scientific_name"?, "common_name"?}]   id 0 / "empty": no animal

Output: OUT/<class>/<image>_<n>.png (n = the box's place among the image's boxes that are cut;
<image> is file_name without its extension, folders joined by "_"), where <class> is the
category's name (or what --category-map maps it to). Boxes are clipped to the image; a box
with nothing left inside it is counted as outside. Not fatal, counted and listed in OUT:
images whose file is missing (missing_images.txt), unreadable ones (unreadable.txt),
annotations of a species without a box (no_bbox.txt), images with no box of a kept category
(no_birds.txt). When the categories carry a `scientific_name` (as `edge export coco-ct` writes
them), OUT/taxonomy.csv (label,scientific_name,common_name) is written for
`trainer train --taxonomy`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.crops import CropFormat, save_crop
from trainer.data import DataError

EMPTY_NAMES = {"empty", "blank", "no animal", "nothing"}  # besides category id 0
LIST_FILES = ("no_birds.txt", "missing_images.txt", "unreadable.txt", "no_bbox.txt")
TAXONOMY_CSV = "taxonomy.csv"


@dataclass(frozen=True)
class Category:
    id: Any
    name: str
    scientific_name: str | None = None
    common_name: str | None = None


@dataclass(frozen=True)
class CocoImage:
    id: Any
    file_name: str
    width: int | None
    height: int | None


@dataclass(frozen=True)
class Annotation:
    image_id: Any
    category_id: Any
    bbox: tuple[float, float, float, float] | None  # x, y, width, height in pixels


@dataclass
class CocoSet:
    images: dict[Any, CocoImage]
    annotations: list[Annotation]
    categories: dict[Any, Category]


@dataclass
class CocoCropReport:
    """What `cut_coco_crops` did; image paths are file_name as the COCO file gives them."""

    coco: Path
    images_dir: Path
    out_dir: Path
    crop_size: tuple[int, int]
    images: int = 0  # images listed in the file
    annotations: int = 0
    crops: dict[str, int] = field(default_factory=dict)  # class folder → crops written
    empty: int = 0  # annotations of the empty category (id 0 / "empty")
    skipped: dict[str, int] = field(default_factory=dict)  # category → annotations left out (--skip-category)
    no_birds: list[str] = field(default_factory=list)  # images with no box of a kept category
    missing: list[str] = field(default_factory=list)  # image files not under --images
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    no_bbox: list[tuple[str, str]] = field(default_factory=list)  # (image, category): species without a box
    clipped: int = 0  # boxes reaching outside the image, cut to it
    outside: int = 0  # boxes with nothing inside the image: not written
    unknown_image: int = 0  # annotations naming an image id the file does not list
    unknown_category: int = 0  # annotations naming a category id the file does not list
    taxonomy_csv: Path | None = None
    taxonomy_notes: list[str] = field(default_factory=list)

    @property
    def total_crops(self) -> int:
        return sum(self.crops.values())

    def as_dict(self) -> dict:
        return {"coco": str(self.coco), "images_dir": str(self.images_dir), "out": str(self.out_dir),
                "crop_size": list(self.crop_size), "images": self.images, "annotations": self.annotations,
                "crops": self.total_crops, "crops_per_class": dict(self.crops), "empty": self.empty,
                "skipped": dict(self.skipped), "no_birds": self.no_birds, "missing_images": self.missing,
                "unreadable": [{"image": f, "problem": p} for f, p in self.unreadable],
                "no_bbox": [{"image": f, "category": c} for f, c in self.no_bbox], "clipped": self.clipped,
                "outside": self.outside, "unknown_image": self.unknown_image,
                "unknown_category": self.unknown_category,
                "taxonomy_csv": str(self.taxonomy_csv) if self.taxonomy_csv else None,
                "taxonomy_notes": self.taxonomy_notes}

    def lines(self) -> list[str]:
        out = [f"crops: {self.coco} ({self.images_dir}) → {self.out_dir} ({self.crop_size[0]}x{self.crop_size[1]})",
               f"  images {self.images}, annotations {self.annotations}, crops written {self.total_crops}"]
        out += [f"  {name}: {count}" for name, count in sorted(self.crops.items())]
        out.append(f"  empty annotations (category 0 / empty): {self.empty}")
        out += [f"  skipped ({name}): {count}" for name, count in sorted(self.skipped.items())]
        out.append(f"  images with no bird box: {len(self.no_birds)}" + (" (listed in no_birds.txt)" if self.no_birds else ""))
        if self.missing:
            out.append(f"  image files missing: {len(self.missing)} (listed in missing_images.txt)")
        if self.unreadable:
            out.append(f"  unreadable images: {len(self.unreadable)} (listed in unreadable.txt)")
            out += [f"    {name}: {why}" for name, why in self.unreadable[:20]]
        if self.no_bbox:
            out.append(f"  annotations without a bbox: {len(self.no_bbox)} (listed in no_bbox.txt)")
        if self.clipped:
            out.append(f"  boxes clipped to the image: {self.clipped}")
        if self.outside:
            out.append(f"  boxes outside the image, not written: {self.outside}")
        if self.unknown_image or self.unknown_category:
            out.append(f"  annotations of unknown images: {self.unknown_image}, of unknown categories: {self.unknown_category}")
        if self.taxonomy_csv is not None:
            out.append(f"  scientific names: {self.taxonomy_csv} (trainer train --data {self.out_dir} "
                       f"--taxonomy {self.taxonomy_csv})")
        out += [f"  taxonomy: {note}" for note in self.taxonomy_notes]
        return out


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _size(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise DataError(f"--coco: {where}: must be a positive number of pixels, got {value!r}")
    return int(value)


def read_coco(path: Path) -> CocoSet:
    """The images, annotations and categories of a COCO Camera Traps file. Raises DataError
    naming the entry (images[3].id, ...) for a file that is not such JSON."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise DataError(f"--coco: {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"--coco: {path} is not readable JSON ({error})") from None
    if not isinstance(data, dict):
        raise DataError(f"--coco: {path} must hold a JSON object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DataError(f"--coco: {path}: {key} must be a list (COCO Camera Traps: images, annotations, categories)")

    categories: dict[Any, Category] = {}
    for n, entry in enumerate(data["categories"]):
        if not isinstance(entry, dict) or "id" not in entry or _text(entry.get("name")) is None:
            raise DataError(f"--coco: categories[{n}]: needs an id and a name")
        categories[entry["id"]] = Category(entry["id"], _text(entry["name"]) or "", _text(entry.get("scientific_name")),
                                           _text(entry.get("common_name")))
    images: dict[Any, CocoImage] = {}
    for n, entry in enumerate(data["images"]):
        if not isinstance(entry, dict) or "id" not in entry or not isinstance(entry.get("file_name"), str):
            raise DataError(f"--coco: images[{n}]: needs an id and a file_name")
        images[entry["id"]] = CocoImage(entry["id"], entry["file_name"], _size(entry.get("width"), f"images[{n}].width"),
                                        _size(entry.get("height"), f"images[{n}].height"))
    annotations = []
    for n, entry in enumerate(data["annotations"]):
        if not isinstance(entry, dict) or "image_id" not in entry or "category_id" not in entry:
            raise DataError(f"--coco: annotations[{n}]: needs an image_id and a category_id")
        bbox = entry.get("bbox")
        if bbox is not None:
            if (not isinstance(bbox, list) or len(bbox) != 4
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
                raise DataError(f"--coco: annotations[{n}].bbox: must be [x, y, width, height] in pixels, got {bbox!r}")
            bbox = tuple(float(v) for v in bbox)
        annotations.append(Annotation(entry["image_id"], entry["category_id"], bbox))
    return CocoSet(images, annotations, categories)


def is_empty_category(category: Category) -> bool:
    """Category 0 or one named "empty" (or blank): no animal in the frame."""
    return category.id in (0, "0") or category.name.casefold() in EMPTY_NAMES


def folder_name(name: str) -> str:
    """A category name as a class folder: path separators and control characters replaced."""
    cleaned = re.sub(r"[/\\\x00-\x1f]+", "-", name).strip().strip(".")
    return cleaned or "unnamed"


def parse_category_map(pairs: Sequence[str]) -> dict[str, str]:
    """--category-map NAME=CLASS (repeatable) → {category name: class}. Raises DataError."""
    mapping = {}
    for pair in pairs:
        name, sep, target = pair.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise DataError(f"--category-map: {pair!r} is not NAME=CLASS")
        mapping[name.strip()] = target.strip()
    return mapping


def _check_names(given: Sequence[str], categories: Mapping[Any, Category], option: str) -> None:
    known = {c.name for c in categories.values()}
    unknown = [name for name in given if name not in known]
    if unknown:
        raise DataError(f"{option}: no category named {unknown[0]!r} in the file (categories: "
                        f"{', '.join(repr(c.name) for c in categories.values())})")


def _class_of(categories: Mapping[Any, Category], mapping: Mapping[str, str], skip: set[str]) -> dict[Any, str | None]:
    """Category id → class folder (None: empty or skipped)."""
    classes: dict[Any, str | None] = {}
    for cid, category in categories.items():
        if is_empty_category(category) or category.name in skip:
            classes[cid] = None
        else:
            classes[cid] = folder_name(mapping.get(category.name, category.name))
    return classes


def _pixel_box(bbox: tuple[float, float, float, float], width: int, height: int) -> tuple[tuple[float, ...] | None, bool]:
    """(x0, y0, x1, y1) clipped to the image, or None when nothing of it is inside; and whether it was clipped."""
    x, y, w, h = bbox
    x0, y0, x1, y1 = min(x, x + w), min(y, y + h), max(x, x + w), max(y, y + h)
    cx0, cy0 = min(max(x0, 0.0), width), min(max(y0, 0.0), height)
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    clipped = (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1)
    if cx1 - cx0 < 1.0 or cy1 - cy0 < 1.0:
        return None, clipped
    return (cx0, cy0, cx1, cy1), clipped


def _stem(file_name: str) -> str:
    """file_name without its extension, folders joined by "_": a crop name that says which image."""
    path = Path(file_name.replace("\\", "/"))
    parts = [p for p in path.with_suffix("").parts if p not in ("/", "..", ".")]
    return "_".join(parts) or "image"


def _image_path(images_dir: Path, file_name: str) -> Path | None:
    """images_dir/file_name, or None when file_name would lead outside images_dir."""
    root = images_dir.resolve()
    candidate = (images_dir / file_name.replace("\\", "/")).resolve()
    return candidate if candidate == root or root in candidate.parents else None


def cut_coco_crops(
    coco_path: Path,
    images_dir: Path,
    out_dir: Path,
    crop_size: tuple[int, int] = (224, 224),
    *,
    margin: float = 0.15,
    fmt: CropFormat = "png",
    category_map: Mapping[str, str] | None = None,
    skip_categories: Sequence[str] = (),
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> CocoCropReport:
    """Cut every box of the COCO Camera Traps file into OUT/<class>/ (see the module docstring).

    Raises DataError for a file that is not COCO Camera Traps JSON, a missing --images folder,
    a non-empty OUT without `force`, or --category-map/--skip-category naming no category."""
    from edge.detect.finder import crops_of_frame
    from edge.detect.model import Box
    from edge.ingest.imaging import FrameError, open_image, oriented_size
    from trainer.crops import check_out_dir

    coco_path, images_dir, out_dir = Path(coco_path).expanduser(), Path(images_dir).expanduser(), Path(out_dir).expanduser()
    if not images_dir.is_dir():
        raise DataError(f"--images: {images_dir} does not exist" if not images_dir.exists() else f"--images: {images_dir} is not a folder")
    if fmt not in ("png", "jpeg"):
        raise DataError(f"--format: {fmt!r} is not png or jpeg")
    check_out_dir(out_dir, images_dir, force)
    coco = read_coco(coco_path)
    mapping = dict(category_map or {})
    _check_names(list(mapping), coco.categories, "--category-map")
    _check_names(list(skip_categories), coco.categories, "--skip-category")
    classes = _class_of(coco.categories, mapping, set(skip_categories))

    report = CocoCropReport(coco_path, images_dir, out_dir, (crop_size[0], crop_size[1]), images=len(coco.images),
                            annotations=len(coco.annotations))
    per_image: dict[Any, list[Annotation]] = {image_id: [] for image_id in coco.images}
    for annotation in coco.annotations:
        category = coco.categories.get(annotation.category_id)
        if annotation.image_id not in coco.images:
            report.unknown_image += 1
        elif category is None:
            report.unknown_category += 1
        elif is_empty_category(category):
            report.empty += 1
        elif classes[annotation.category_id] is None:
            report.skipped[category.name] = report.skipped.get(category.name, 0) + 1
        elif annotation.bbox is None:
            report.no_bbox.append((coco.images[annotation.image_id].file_name, category.name))
        else:
            per_image[annotation.image_id].append(annotation)

    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".png" if fmt == "png" else ".jpg"
    used_names: set[str] = set()
    for image_id, image in coco.images.items():
        boxes = per_image[image_id]
        if not boxes:
            report.no_birds.append(image.file_name)
            continue
        path = _image_path(images_dir, image.file_name)
        if path is None or not path.is_file():
            report.missing.append(image.file_name)
            continue
        try:
            data = path.read_bytes()
            width, height = (image.width, image.height) if image.width and image.height else oriented_size(open_image(data))
            kept: list[tuple[str, Box]] = []
            for annotation in boxes:
                pixels, clipped = _pixel_box(annotation.bbox, width, height)  # type: ignore[arg-type]
                if pixels is None:
                    report.outside += 1
                    continue
                report.clipped += int(clipped)
                x0, y0, x1, y1 = pixels
                kept.append((classes[annotation.category_id] or "",
                             Box(ymin=y0 / height, xmin=x0 / width, ymax=y1 / height, xmax=x1 / width, score=1.0,
                                 class_index=0, label="bird")))
            crops = crops_of_frame(data, [box for _, box in kept], (crop_size[0], crop_size[1]), margin) if kept else []
        except (OSError, FrameError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            report.unreadable.append((image.file_name, reason))
            continue
        stem = _stem(image.file_name)
        for rank, ((label, _), crop) in enumerate(zip(kept, crops), start=1):
            folder = out_dir / label
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{label}/{stem}_{rank}"
            while name in used_names:  # two file_names with one stem (a.jpg, a.png)
                name += "_"
            used_names.add(name)
            save_crop(crop, out_dir / f"{name}{suffix}", fmt)
            report.crops[label] = report.crops.get(label, 0) + 1
        if progress is not None:
            progress(f"{image.file_name}: {len(crops)} crop(s)")
    _write_lists(report)
    _write_taxonomy(report, coco.categories, classes)
    return report


def _write_lists(report: CocoCropReport) -> None:
    """The lists in OUT, always written (maybe empty) so a rerun with --force leaves none stale."""
    out = report.out_dir
    (out / "no_birds.txt").write_text("".join(f"{name}\n" for name in report.no_birds), encoding="utf-8")
    (out / "missing_images.txt").write_text("".join(f"{name}\n" for name in report.missing), encoding="utf-8")
    (out / "unreadable.txt").write_text("".join(f"{name}\t{why}\n" for name, why in report.unreadable), encoding="utf-8")
    (out / "no_bbox.txt").write_text("".join(f"{name}\t{cat}\n" for name, cat in report.no_bbox), encoding="utf-8")


def _write_taxonomy(report: CocoCropReport, categories: Mapping[Any, Category], classes: Mapping[Any, str | None]) -> None:
    """OUT/taxonomy.csv when any kept category has a scientific name: one row per class written.
    Categories mapped into one class with different names give that class none (noted)."""
    path = report.out_dir / TAXONOMY_CSV
    by_class: dict[str, set[tuple[str | None, str | None]]] = {}
    for cid, label in classes.items():
        if label is not None and label in report.crops:
            category = categories[cid]
            by_class.setdefault(label, set()).add((category.scientific_name, category.common_name))
    if not any(scientific for names in by_class.values() for scientific, _ in names):
        path.unlink(missing_ok=True)
        return
    rows = []
    for label in sorted(by_class):
        names = {n for n in by_class[label] if n != (None, None)}
        if len(names) > 1:
            report.taxonomy_notes.append(f"class {label!r} merges categories with different names "
                                         f"({', '.join(sorted(str(s) for s, _ in names))}): left without a name")
            continue
        scientific, common = next(iter(names), (None, None))
        rows.append((label, scientific or "", common or ""))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "scientific_name", "common_name"])
        writer.writerows(rows)
    report.taxonomy_csv = path
