"""`trainer data check DIR`: what is in a data tree before hours of training depend on it.

Reports per-class counts per split, unreadable/corrupt/non-image files, images that are not
the expected size (224x224 for the Kaggle set), empty classes, classes missing from a split,
and exact duplicates (same bytes) across splits, which leak test images into training (the
Kaggle bird set has some). Reading only; it never changes the tree.
"""

from __future__ import annotations

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from trainer.data import DataError, _class_folders, _files_of, check_image, find_split_dirs, is_image_name, sha256_file


@dataclass(frozen=True)
class FileResult:
    split: str
    class_name: str
    path: Path
    size: tuple[int, int] | None
    problem: str | None
    sha256: str | None


def _inspect(split: str, class_name: str, path: Path) -> FileResult:
    if not is_image_name(path):
        return FileResult(split, class_name, path, None, "not an image file name", None)
    size, problem = check_image(path)
    return FileResult(split, class_name, path, size, problem, sha256_file(path) if problem is None else None)


def check_tree(root: Path, expect_size: int | None = 224, workers: int = 4) -> dict:
    """Inspect every file under root; return a JSON-ready report (see module docstring)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist" if not root.exists() else f"{root} is not a folder")
    split_dirs = find_split_dirs(root) or {"all": root}
    jobs: list[tuple[str, str, Path]] = []
    classes_by_split: dict[str, list[str]] = {}
    for split, split_dir in split_dirs.items():
        folders = _class_folders(split_dir)
        classes_by_split[split] = [f.name for f in folders]
        for folder in folders:
            jobs += [(split, folder.name, p) for p in _files_of(folder)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda job: _inspect(*job), jobs))

    counts: dict[str, dict[str, int]] = {split: {name: 0 for name in names} for split, names in classes_by_split.items()}
    problems, wrong_size = [], []
    by_hash: dict[str, list[FileResult]] = defaultdict(list)
    for r in results:
        rel = r.path.relative_to(root).as_posix()
        if r.problem:
            problems.append({"path": rel, "problem": r.problem})
            continue
        counts[r.split][r.class_name] += 1
        if expect_size and r.size != (expect_size, expect_size):
            wrong_size.append({"path": rel, "size": list(r.size or ())})
        assert r.sha256 is not None  # _inspect hashes every file it found no problem with
        by_hash[r.sha256].append(r)

    cross: list[dict] = []
    within: list[dict] = []
    for digest, group in by_hash.items():
        if len(group) < 2:
            continue
        entry = {"sha256": digest, "paths": sorted(g.path.relative_to(root).as_posix() for g in group)}
        (cross if len({g.split for g in group}) > 1 else within).append(entry)

    reference = classes_by_split.get("train", classes_by_split.get("all", []))
    totals = {split: sum(c.values()) for split, c in counts.items()}
    return {
        "root": str(root),
        "layout": "kaggle" if "train" in split_dirs else "single",
        "splits": {split: sum(c.values()) for split, c in counts.items()},
        "classes": len(reference),
        "counts": counts,
        "empty_classes": [f"{split}/{name}" for split, c in counts.items() for name, n in c.items() if n == 0],
        "missing_classes": {split: sorted(set(reference) - set(names)) for split, names in classes_by_split.items()
                            if set(reference) - set(names)},
        "extra_classes": {split: sorted(set(names) - set(reference)) for split, names in classes_by_split.items()
                          if set(names) - set(reference)},
        "unreadable": sorted(problems, key=lambda p: p["path"]),
        "expected_size": [expect_size, expect_size] if expect_size else None,
        "wrong_size": sorted(wrong_size, key=lambda p: p["path"]),
        "cross_split_duplicates": sorted(cross, key=lambda d: d["paths"]),
        "within_split_duplicates": sorted(within, key=lambda d: d["paths"]),
        "small_splits": small_splits(totals, len(reference)),
    }


# A held-out split smaller than this measures nothing: with 20 images one image moves top-1 by
# 5 points, and a class needs a couple of images for its recall to mean anything.
MIN_HELD_OUT_IMAGES = 20
MIN_HELD_OUT_PER_CLASS = 2
# The trainer's default fractions when it splits a single tree itself (trainer train --val-fraction,
# --test-fraction).
DEFAULT_FRACTIONS = {"valid": 0.15, "test": 0.10}


def small_splits(totals: dict[str, int], classes: int) -> list[dict]:
    """The held-out splits (val, test; for a single tree, the ones the trainer will cut with its
    default fractions) too small to measure anything: each with its images and the minimum."""
    minimum = max(MIN_HELD_OUT_IMAGES, MIN_HELD_OUT_PER_CLASS * classes)
    if "all" in totals:
        held_out = {split: int(totals["all"] * fraction) for split, fraction in DEFAULT_FRACTIONS.items()}
        estimated = True
    else:
        held_out = {split: n for split, n in totals.items() if split in ("val", "valid", "test")}
        estimated = False
    return [{"split": split, "images": n, "minimum": minimum, "estimated": estimated}
            for split, n in held_out.items() if n < minimum]


def small_split_warning(entry: dict) -> str:
    """One small split in words (`trainer data check` prints it as a warning)."""
    about = "about " if entry["estimated"] else ""
    return (f"split {entry['split']!r} has {about}{entry['images']} images, fewer than {entry['minimum']}: too few to "
            "measure anything (one image moves its top-1 by "
            f"{100 / max(entry['images'], 1):.0f} points); add images or use larger fractions")


def has_problems(report: dict) -> bool:
    return any(report[key] for key in ("empty_classes", "missing_classes", "extra_classes", "unreadable",
                                       "wrong_size", "cross_split_duplicates", "within_split_duplicates"))


def format_report(report: dict, limit: int = 20) -> str:
    """Human-readable summary; lists are cut at `limit` entries (the JSON has them all)."""
    lines = [f"data check: {report['root']} ({report['layout']} layout, {report['classes']} classes)"]
    for split, total in report["splits"].items():
        counts = report["counts"][split]
        low = min(counts.values()) if counts else 0
        high = max(counts.values()) if counts else 0
        lines.append(f"  {split:<6} {total:>7} images  per class min {low} max {high}")
    if report["classes"] <= 50:
        names = sorted({n for c in report["counts"].values() for n in c})
        splits = list(report["counts"])
        lines.append("  " + f"{'class':<32}" + "".join(f"{s:>8}" for s in splits))
        for name in names:
            lines.append("  " + f"{name[:32]:<32}" + "".join(f"{report['counts'][s].get(name, 0):>8}" for s in splits))

    def section(title: str, entries: list, render) -> None:
        lines.append(f"{title}: {len(entries)}")
        for entry in entries[:limit]:
            lines.append(f"    {render(entry)}")
        if len(entries) > limit:
            lines.append(f"    ... {len(entries) - limit} more (see --json)")

    section("empty classes", report["empty_classes"], str)
    for key, title in (("missing_classes", "classes missing from a split"), ("extra_classes", "classes not in train")):
        if report[key]:
            lines.append(f"{title}: " + "; ".join(f"{s}: {', '.join(v[:limit])}" for s, v in report[key].items()))
    section("unreadable or non-image files", report["unreadable"], lambda e: f"{e['path']}: {e['problem']}")
    if report["expected_size"]:
        w, h = report["expected_size"]
        section(f"images not {w}x{h}", report["wrong_size"], lambda e: f"{e['path']}: {e['size'][0]}x{e['size'][1]}")
    section("exact duplicates across splits", report["cross_split_duplicates"], lambda e: " = ".join(e["paths"]))
    section("exact duplicates within a split", report["within_split_duplicates"], lambda e: " = ".join(e["paths"]))
    lines.append("result: " + ("problems found" if has_problems(report) else "clean"))
    return "\n".join(lines)
