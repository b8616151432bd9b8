"""The imports point one way, so the architecture in the folder names cannot rot.

The edge's frame path is ingest → classify → detect → store → publish; operate hooks into the
running daemon; daemon wires them together; cli is the operator's front door. A package may
import from its own layer and from the layers before it, never from a later one (configuration
is the foundation every layer reads). Beside the edge: `fleet/` (the central database, its
reports and the fleet web view: server code), `collector/` (the fleet's receiver) and
`trainer/` (TensorFlow). Nothing on the device imports `fleet` except the operator's front door,
and that only inside the function that serves a central database, so `edge run` never loads it.
The trainer and the collector never import each other. No module is part of an import circle,
in any of the four packages.

Checked statically over every module's source, imports inside functions included, so a lazy
import cannot hide a wrong direction either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("edge", "fleet", "collector", "trainer")

# Index = layer. A module of layer i may import modules of layers <= i.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("edge", "edge.config"),   # the package root (version) and the configuration models
    ("edge.ingest", "edge.live"),  # noticing and reading frames: watching, safe opening, decoding, EXIF time;
                                   # live cameras (streams → frames in a folder)
    ("edge.classify",),        # models, labels, decisions
    ("edge.detect",),          # the bird detector, tiles, box merging, crops (reuses classify's runtime and labels)
    ("edge.store",),           # the database: schema, the writer, event rules, row queries, times, outbox table
    ("edge.publish",),         # MQTT: messages, the outbox writer, the publisher, discovery
    ("edge.alerts",),          # push notifications ([notify]): rules, rendering, Apprise targets, delivery thread
    ("edge.operate",),         # field operation: notify, health, metrics, retention, service files
    ("edge.ecology",),         # deployments, the media selection, `edge report` analyses
    ("edge.exports",),         # what leaves the station as a file: Camtrap DP, COCO-CT, events, training set,
                               # eBird, iNaturalist
    ("edge.web",),             # `edge web`: pages, charts, pictures by id, review endpoints
    ("fleet",),                # the central database (schema, engines, reports) and the fleet web view; server code
    ("edge.daemon",),          # the frame pipeline, preflight, lifecycle and wiring
    ("edge.cli", "edge.__main__"),
    ("collector",),            # the fleet's receiver: MQTT → the central database
    ("trainer",),              # TensorFlow: data, training, tuning, export (reads the edge's model contract)
)

# (importer prefix, imported prefix) pairs that never happen, whatever the layers say.
FORBIDDEN: tuple[tuple[str, str], ...] = (
    ("collector", "trainer"),
    ("trainer", "collector"),
    ("trainer", "fleet"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _layer(module: str) -> int:
    best, depth = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if _within(module, prefix) and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    assert best is not None, f"{module} belongs to no layer: add its package to LAYERS"
    return best


def _exists(module: str) -> bool:
    base = ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported project module, inside a function) for every import in the file."""
    found: list[tuple[int, str, bool]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((child.lineno, a.name, nested) for a in child.names if a.name.split(".")[0] in PACKAGES)
            elif (isinstance(child, ast.ImportFrom) and child.level == 0 and child.module
                  and child.module.split(".")[0] in PACKAGES):
                for alias in child.names:
                    # `from edge.store import outbox` imports the module edge.store.outbox.
                    sub = f"{child.module}.{alias.name}"
                    found.append((child.lineno, sub if _exists(sub) else child.module, nested))
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), False)
    return found


MODULES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_every_module_is_in_a_layer() -> None:
    assert len(MODULES) > 30
    assert {_module_name(p).split(".")[0] for p in MODULES} == set(PACKAGES)
    for path in MODULES:
        _layer(_module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_point_one_way(path: Path) -> None:
    importer = _module_name(path)
    wrong = []
    for line, imported, _nested in _imports(path):
        assert _exists(imported), f"{path}:{line} imports {imported}, which does not exist"
        if _layer(imported) > _layer(importer):
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {importer} (layer {_layer(importer)}) imports "
                         f"{imported} (layer {_layer(imported)})")
        wrong += [f"{path.relative_to(ROOT)}:{line}: {importer} imports {imported}: {a} never imports {b}"
                  for a, b in FORBIDDEN if _within(importer, a) and _within(imported, b)]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_the_device_never_loads_the_fleet() -> None:
    """`fleet` is server code: only the front door (edge.cli) imports it, inside the function that
    serves a central --db; no module that `edge run` or `edge web` on a device loads does."""
    wrong = []
    for path in MODULES:
        importer = _module_name(path)
        if not _within(importer, "edge"):
            continue
        for line, imported, nested in _imports(path):
            if _within(imported, "fleet") and not (_within(importer, "edge.cli") and nested):
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {importer} imports {imported}"
                             + (" at module level" if not nested else ""))
    assert not wrong, "the device imports the fleet's server code:\n" + "\n".join(wrong)


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): {imported for _line, imported, _nested in _imports(p)} for p in MODULES}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    return circles


def test_no_import_circles() -> None:
    """A module that imports a module that imports it back (at any depth, lazily or not) hides
    a shared piece that wants its own module (edge/cli/common.py, trainer/run_folder.py)."""
    circles = _circles(_graph())
    assert not circles, "import circles:\n" + "\n".join(" ↔ ".join(c) for c in circles)


def test_the_checkers_see_a_wrong_direction_and_a_circle() -> None:
    """The rules themselves can fail: a store module importing the publisher is reported, and a
    circle of three modules is found."""
    assert _layer("edge.store.writer") < _layer("edge.publish.mqtt")
    assert _layer("edge.cli.commands") > _layer("fleet.reports") > _layer("edge.web.app")
    assert _layer("edge.config.cameras") == 0
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_the_nested_flag_tells_lazy_from_module_level(tmp_path: Path) -> None:
    source = tmp_path / "probe.py"
    source.write_text("import edge.store\n\ndef f():\n    from fleet import db\n")
    assert _imports(source) == [(1, "edge.store", False), (4, "fleet.db", True)]
