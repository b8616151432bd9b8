"""Turn a finished job's model.tar.gz into the folder the edge loads.

The entry point packs `bundle/` (model.tflite, labels.txt, manifest.json), `1/` (SavedModel)
and `report.json` into SM_MODEL_DIR, which SageMaker uploads as model.tar.gz. `fetch` needs only
the bundle and the report; the SavedModel stays in S3 for anyone serving it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
from pathlib import Path

BUNDLE_PREFIX = "bundle/"


class ArtifactError(RuntimeError):
    """The model artefact lacks a bundle, or the bundle fails its own checksum."""


def unpack_bundle(model_tar: Path, out_dir: Path, overwrite: bool = False) -> Path:
    """Extract `bundle/` (and report.json beside it) from model.tar.gz into `out_dir`.

    Extraction goes to a temporary folder first and is checked (manifest present, sha256 of
    model.tflite matches) before it replaces `out_dir`, so a bad download never half-replaces
    a bundle the edge is using.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty; choose a new --out or pass --overwrite")
    with tarfile.open(model_tar, "r:*") as archive:
        names = [m.name.removeprefix("./") for m in archive.getmembers()]
        if not any(n.startswith(BUNDLE_PREFIX) for n in names):
            raise ArtifactError(f"{model_tar} holds no bundle/ folder (found: {', '.join(sorted(names)[:8]) or 'nothing'})")
        staging = Path(tempfile.mkdtemp(prefix=".fetch-", dir=out_dir.parent if out_dir.parent.exists() else None))
        try:
            wanted = [m for m in archive.getmembers()
                      if m.name.removeprefix("./").startswith(BUNDLE_PREFIX) or m.name.removeprefix("./") == "report.json"]
            archive.extractall(staging, members=wanted, filter="data")
            root = staging
            bundle = root / "bundle"
            _verify(bundle)
            if (root / "report.json").is_file():
                shutil.copy2(root / "report.json", bundle / "report.json")
            if out_dir.exists():
                shutil.rmtree(out_dir)
            out_dir.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(bundle), str(out_dir))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _verify(bundle: Path) -> None:
    manifest_path = bundle / "manifest.json"
    model_path = bundle / "model.tflite"
    if not manifest_path.is_file() or not model_path.is_file():
        raise ArtifactError("the bundle in the artefact lacks manifest.json or model.tflite")
    manifest = json.loads(manifest_path.read_text())
    expected = manifest.get("tflite_sha256")
    actual = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if expected and expected != actual:
        raise ArtifactError(f"model.tflite sha256 {actual[:12]}… does not match the manifest's {expected[:12]}…")


def pack_model_dir(model_dir: Path, tar_path: Path) -> Path:
    """model.tar.gz the way SageMaker packs SM_MODEL_DIR (members relative to the folder)."""
    with tarfile.open(tar_path, "w:gz") as archive:
        for path in sorted(Path(model_dir).rglob("*")):
            archive.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return tar_path
