"""Helpers for the trainer's tests: running the CLI and building small broken data trees."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def run_trainer(cli_env, repo_root):
    """Run `python -m trainer ARGS` against this checkout; returns the CompletedProcess."""

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "trainer", *map(str, args)], cwd=repo_root, env=cli_env,
                              capture_output=True, text=True, timeout=timeout)

    return run


def add_broken_files(class_dir: Path, good_jpeg: Path) -> dict[str, Path]:
    """A corrupt JPEG (garbage after a JPEG header), a truncated JPEG and a non-image file."""
    data = good_jpeg.read_bytes()
    corrupt = class_dir / "corrupt.jpg"
    corrupt.write_bytes(data[:20] + b"\x00garbage" * 50)
    truncated = class_dir / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    notes = class_dir / "notes.txt"
    notes.write_text("not an image\n")
    fake = class_dir / "fake.png"
    fake.write_text("plain text with an image name\n")
    return {"corrupt": corrupt, "truncated": truncated, "notes": notes, "fake": fake}


@pytest.fixture(scope="session")
def broken_dataset(synthetic_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """A copy of the synthetic set with broken files in train/ and one duplicate across splits."""
    root = tmp_path_factory.mktemp("broken") / "dataset"
    shutil.copytree(synthetic_dataset, root)
    class_dir = sorted((root / "train").iterdir())[0]
    good = sorted(class_dir.glob("*.jpg"))[0]
    broken = add_broken_files(class_dir, good)
    duplicate = root / "test" / class_dir.name / "leaked.jpg"
    shutil.copy(good, duplicate)
    broken["duplicate_of"] = good
    broken["duplicate"] = duplicate
    return root, broken
