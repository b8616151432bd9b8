"""The edge's imports point one way, so the architecture in the folder names cannot rot.

The frame's path is ingest → classify → detect → store → publish; operate hooks into the running
daemon; daemon wires them together; cli is the operator's front door. A package may import
from its own layer and from the layers before it, never from a later one (configuration is
the foundation every layer reads). Checked statically over every module's source, imports
inside functions included, so a lazy import cannot hide a wrong direction either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

EDGE = Path(__file__).resolve().parents[2] / "edge"

# Index = layer. A module of layer i may import edge modules of layers <= i.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("edge", "edge.config"),   # the package root (version) and the configuration models
    ("edge.ingest", "edge.live"),  # noticing and reading frames: watching, safe opening, decoding, EXIF time;
                                   # live cameras (streams → frames in a folder)
    ("edge.classify",),        # models, labels, decisions
    ("edge.detect",),          # the bird detector, tiles, box merging, crops (reuses classify's runtime and labels)
    ("edge.store",),           # the database: schema, the writer, event rules, reports, times, outbox table
    ("edge.fleet",),           # the central database (collector + fleet readers): schema, engines; psycopg lazily
    ("edge.publish",),         # MQTT: messages, the outbox writer, the publisher, discovery
    ("edge.alerts",),          # push notifications ([notify]): rules, rendering, Apprise targets, delivery thread
    ("edge.operate",),         # field operation: notify, health, metrics, retention, service files
    ("edge.ecology",),         # deployments, Camtrap DP / COCO Camera Traps exports, `edge report` analyses
    ("edge.web",),             # `edge web`: pages, charts, pictures by id, review endpoints
    ("edge.daemon",),          # the frame pipeline, preflight, lifecycle and wiring
    ("edge.cli", "edge.__main__"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(EDGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best, depth = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    assert best is not None, f"{module} belongs to no layer: add its package to LAYERS"
    return best


def _edge_imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported edge module) for every import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "edge"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "edge":
            for alias in node.names:
                # `from edge.store import outbox` imports the module edge.store.outbox.
                sub = f"{node.module}.{alias.name}"
                found.append((node.lineno, sub if _exists(sub) else node.module))
    return found


def _exists(module: str) -> bool:
    base = EDGE.parent.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


MODULES = sorted(EDGE.rglob("*.py"))


def test_every_module_is_in_a_layer() -> None:
    assert len(MODULES) > 30
    for path in MODULES:
        _layer(_module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_point_one_way(path: Path) -> None:
    importer = _module_name(path)
    wrong = []
    for line, imported in _edge_imports(path):
        assert _exists(imported), f"{path}:{line} imports {imported}, which does not exist"
        if _layer(imported) > _layer(importer):
            wrong.append(f"{path.relative_to(EDGE.parent)}:{line}: {importer} (layer {_layer(importer)}) imports "
                         f"{imported} (layer {_layer(imported)})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_the_checker_sees_a_wrong_direction(tmp_path: Path) -> None:
    """The rule itself can fail: a store module importing the publisher is reported."""
    assert _layer("edge.store.writer") < _layer("edge.publish.mqtt")
    assert _layer("edge.cli.commands") == len(LAYERS) - 1
    assert _layer("edge.config.cameras") == 0
