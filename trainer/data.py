"""Finding the images: class folders, splits, unreadable files, the training-data fingerprint.

No TensorFlow here (the tf.data pipeline is trainer/pipeline.py), so `trainer data check`
starts fast and the rules about what counts as an image live in one place.
"""

from __future__ import annotations

import hashlib
import logging
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from edge.classify.model import sha256_file  # one file hash for trainer and edge (the edge never imports trainer)

log = logging.getLogger(__name__)

# Formats tf.io.decode_image reads as a still image (GIF is excluded: animations).
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
DECODABLE_FORMATS = frozenset({"JPEG", "PNG", "BMP", "MPO"})
SPLIT_ALIASES = {"train": ("train",), "valid": ("valid", "val", "validation"), "test": ("test",)}


class DataError(ValueError):
    """The data tree cannot be used as given (missing folder, too few classes, an empty class)."""


@dataclass(frozen=True)
class Item:
    path: Path
    label: int


@dataclass
class DataSplits:
    """Class names (sorted folder names = label order) and the items of each split."""

    root: Path
    layout: str  # "kaggle" (train/valid/test folders) or "single" (split here, seeded)
    class_names: list[str]
    splits: dict[str, list[Item]] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason)

    def split(self, name: str) -> list[Item]:
        if name not in self.splits or not self.splits[name]:
            available = ", ".join(k for k, v in self.splits.items() if v) or "none"
            raise DataError(f"split {name!r} has no images in {self.root} (available: {available})")
        return self.splits[name]


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def check_image(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """Fully decode one file. Returns ((width, height), None) or (None, reason).

    A full decode (not just Image.verify) is what catches truncated JPEGs; draft mode keeps
    it cheap because the entropy-coded data is still read to the end.
    """
    try:
        with Image.open(path) as image:
            size = image.size
            fmt = image.format
            if fmt not in DECODABLE_FORMATS:
                return None, f"unsupported format {fmt}"
            if fmt in ("JPEG", "MPO"):
                image.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))
            image.load()
        return size, None
    except UnidentifiedImageError:
        return None, "not an image"
    except (OSError, SyntaxError, ValueError) as exc:
        return None, f"corrupt: {exc}"


def is_class_folder_name(name: str) -> bool:
    """Folders named `.x` (hidden) or `_x` are not classes: `edge export training-set` keeps its
    hard negatives in `_negatives/` beside the species folders, so a training set can carry
    them without them silently becoming a class (rename the folder to train a no-bird class)."""
    return not name.startswith((".", "_"))


def _class_folders(tree: Path) -> list[Path]:
    return sorted((p for p in tree.iterdir() if p.is_dir() and is_class_folder_name(p.name)), key=lambda p: p.name)


def _files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def find_split_dirs(root: Path) -> dict[str, Path]:
    """The Kaggle layout's split folders present under root (train is required for that layout)."""
    found: dict[str, Path] = {}
    for split, names in SPLIT_ALIASES.items():
        for name in names:
            if (root / name).is_dir():
                found[split] = root / name
                break
    return found if "train" in found else {}


def _validate_classes(tree: Path, folders: list[Path]) -> None:
    if len(folders) < 2:
        names = ", ".join(f.name for f in folders) or "none"
        raise DataError(f"{tree} needs at least 2 class folders, found {len(folders)} ({names})")
    for folder in folders:
        if not any(is_image_name(p) for p in _files_of(folder)):
            raise DataError(f"class folder {folder} has no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")


def _stratified_split(
    per_class: dict[int, list[Path]], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[Item]]:
    """Seeded, per-class split so each class keeps its share in every split."""
    splits: dict[str, list[Item]] = {"train": [], "valid": [], "test": []}
    for label, paths in sorted(per_class.items()):
        shuffled = sorted(paths)
        random.Random(f"{seed}:{label}").shuffle(shuffled)
        n = len(shuffled)
        n_test = int(round(n * test_fraction)) if n >= 3 else 0
        n_val = int(round(n * val_fraction)) if n >= 2 else 0
        if test_fraction > 0 and n_test == 0 and n >= 3:
            n_test = 1
        if val_fraction > 0 and n_val == 0 and n >= 2:
            n_val = 1
        test, valid, train = shuffled[:n_test], shuffled[n_test : n_test + n_val], shuffled[n_test + n_val :]
        splits["test"] += [Item(p, label) for p in test]
        splits["valid"] += [Item(p, label) for p in valid]
        splits["train"] += [Item(p, label) for p in train]
    return splits


def discover(
    root: Path,
    val_fraction: float = 0.15,
    test_fraction: float = 0.10,
    seed: int = 42,
    verify: bool = True,
) -> DataSplits:
    """Read a folder-per-class tree (Kaggle layout or a single tree split here, seeded).

    With verify=True every image is decoded once and unreadable files are dropped with a
    warning, so training never crashes on a corrupt file.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"data folder {root} is not a folder")
    split_dirs = find_split_dirs(root)
    if split_dirs:
        train_folders = _class_folders(split_dirs["train"])
        _validate_classes(split_dirs["train"], train_folders)
        class_names = [f.name for f in train_folders]
        data = DataSplits(root=root, layout="kaggle", class_names=class_names)
        for split, split_dir in split_dirs.items():
            items: list[Item] = []
            for folder in _class_folders(split_dir):
                if folder.name not in class_names:
                    raise DataError(f"{folder} is a class that {split_dirs['train']} does not have")
                label = class_names.index(folder.name)
                items += [Item(p, label) for p in _files_of(folder)]
            data.splits[split] = items
        if "valid" not in split_dirs:
            # No valid/ folder: hold out a seeded, stratified share of train for validation.
            per_class: dict[int, list[Path]] = {}
            for item in data.splits["train"]:
                per_class.setdefault(item.label, []).append(item.path)
            carved = _stratified_split(per_class, val_fraction, 0.0, seed)
            data.splits["train"], data.splits["valid"] = carved["train"], carved["valid"]
    else:
        folders = _class_folders(root)
        _validate_classes(root, folders)
        class_names = [f.name for f in folders]
        per_class = {i: [p for p in _files_of(f)] for i, f in enumerate(folders)}
        data = DataSplits(root=root, layout="single", class_names=class_names)
        data.splits = _stratified_split(per_class, val_fraction, test_fraction, seed)
    _drop_unusable(data, verify)
    return data


def order_classes(data: DataSplits, class_names: list[str]) -> DataSplits:
    """The same images labelled by the index of their class in `class_names`.

    A fine-tuned model (`trainer train --init-from`) keeps its parent's output order and adds
    new classes after it, so its labels are not the data's sorted folder order. Every class of
    the data must be in `class_names`; classes of `class_names` the data lacks simply have no
    images (the model keeps them from its parent).
    """
    missing = [name for name in data.class_names if name not in class_names]
    if missing:
        raise DataError(f"the data's classes {missing} are not among the model's {class_names}")
    index = {name: class_names.index(name) for name in data.class_names}
    splits = {split: [Item(item.path, index[data.class_names[item.label]]) for item in items]
              for split, items in data.splits.items()}
    return DataSplits(root=data.root, layout=data.layout, class_names=list(class_names), splits=splits,
                      skipped=list(data.skipped))


def _drop_unusable(data: DataSplits, verify: bool) -> None:
    for split, items in data.splits.items():
        kept: list[Item] = []
        candidates = []
        for item in items:
            if is_image_name(item.path):
                candidates.append(item)
            else:
                data.skipped.append((item.path, "not an image file name"))
        if verify and candidates:
            with ThreadPoolExecutor(max_workers=4) as pool:
                results = list(pool.map(lambda it: check_image(it.path), candidates))
            for item, (_, reason) in zip(candidates, results):
                if reason is None:
                    kept.append(item)
                else:
                    data.skipped.append((item.path, reason))
        else:
            kept = candidates
        data.splits[split] = kept
    for path, reason in data.skipped:
        if is_image_name(path):
            log.warning("skipping %s: %s", path, reason)
    non_images = sum(1 for p, _ in data.skipped if not is_image_name(p))
    if non_images:
        log.warning("ignoring %d non-image files in %s", non_images, data.root)


def fingerprint(root: Path, items: list[Item]) -> str:
    """sha256 over sorted (relative path, file sha256): names the exact training data of a model."""
    digest = hashlib.sha256()
    for rel, file_hash in sorted((p.path.relative_to(root).as_posix(), sha256_file(p.path)) for p in items):
        digest.update(f"{rel}\0{file_hash}\n".encode())
    return digest.hexdigest()
