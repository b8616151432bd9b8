"""Validate a Camtrap DP package with frictionless, offline, and fetch the official files once.

The package names its profile and table schemas by URL (raw.githubusercontent.com/tdwg/
camtrap-dp/1.0.2/...), and the profile itself `$ref`s two more online schemas: the Frictionless
Data Package schema and GeoJSON. Validation here never touches the network: the four Camtrap DP
files come from a local folder (a copy, or the cache `fetch_standards` fills once), and the two
references are rewritten to local files: the folder's own `data-package.json` / `geojson.json`
when it has them, else frictionless's shipped GeoJSON schema (frictionless/assets/profiles/) and
frictionless's own Data Package profile (the rules frictionless applies to every package anyway).

Three checks, all listed (not just the first):
1. datapackage.json against the Camtrap DP profile (JSON Schema, through frictionless);
2. each table against its schema (types, formats, required, enums, bounds, patterns, unique keys),
   by frictionless streaming the CSVs;
3. the foreign keys (media.deploymentID, observations.deploymentID and mediaID), checked here in
   one pass each with a clear message naming the missing ids (frictionless's own foreign-key
   check is skipped: it would say less and hold more in memory).

frictionless is an optional dependency (`pip install 'trailcam[ecology]'`), imported only here and
only when validating: the daemon never imports it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from edge.exports.camtrap_dp import BASE_URL, PROFILE_URL, SCHEMA_URLS, TABLES, VERSION

PROFILE_FILE = "camtrap-dp-profile.json"
STANDARD_FILES = (PROFILE_FILE, *(f"{name}-table-schema.json" for name in TABLES))
DATA_PACKAGE_REF = "https://specs.frictionlessdata.io/schemas/data-package.json"
GEOJSON_REF = "http://json.schemastore.org/geojson.json"
BASE_URL_ENV = "TRAILCAM_CAMTRAP_DP_URL"  # where `fetch_standards` fetches from (tests: a local server)
SOURCES_FILE = "SOURCES.json"  # in the cache: each file's URL, sha256 and when it was fetched
MIN_FRICTIONLESS = (5, 20)  # pyproject's [ecology] floor
MAX_LISTED = 50  # errors listed per check; the rest are counted
FOREIGN_KEYS = (("media", "deploymentID", "deployments", "deploymentID"),
                ("observations", "deploymentID", "deployments", "deploymentID"),
                ("observations", "mediaID", "media", "mediaID"))


class ValidationSetupError(Exception):
    """Validation could not run: frictionless missing, standards folder incomplete, fetch failed."""


@dataclass
class ValidationReport:
    """Every error found, grouped by where (datapackage.json, a table, a foreign key)."""

    folder: Path
    standards: Path
    errors: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        tables = ", ".join(f"{name} {n} rows" for name, n in self.rows.items())
        if self.valid:
            return [f"valid Camtrap DP {VERSION} package ({tables}; standards from {self.standards})"]
        return [f"INVALID Camtrap DP {VERSION} package {self.folder}: {len(self.errors)} problem(s) "
                f"(standards from {self.standards})", *(f"  {error}" for error in self.errors)]


# -- the standards: a local folder, or the cache filled from the official URLs ----------------


def cache_dir() -> Path:
    """~/.cache/trailcam/camtrap-dp-1.0.2 ($XDG_CACHE_HOME honoured)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trailcam" / f"camtrap-dp-{VERSION}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cached(folder: Path) -> bool:
    """All four files are there and still what was fetched (sha256 recorded at fetch time)."""
    try:
        sources = json.loads((folder / SOURCES_FILE).read_text(encoding="utf-8"))
        return all((folder / name).is_file() and _sha256(folder / name) == sources["files"][name]["sha256"]
                   for name in STANDARD_FILES)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def fetch_standards(cache: Path | None = None, base_url: str | None = None, *, timeout_s: float = 30.0) -> tuple[Path, bool]:
    """The cache folder with the official profile and table schemas, fetched over HTTP(S) the
    first time (or when a file changed or is missing); returns (folder, fetched now). Each file is
    parsed as JSON before it is kept, and the cache is replaced as a whole, never half-written."""
    cache = cache or cache_dir()
    base = (base_url or os.environ.get(BASE_URL_ENV) or BASE_URL).rstrip("/") + "/"
    if _cached(cache):
        return cache, False
    cache.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{cache.name}.", dir=cache.parent))
    try:
        files = {}
        for name in STANDARD_FILES:
            url = base + name
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (http(s) only)
                    body = response.read()
            except (urllib.error.URLError, OSError) as error:
                raise ValidationSetupError(f"cannot fetch {url}: {getattr(error, 'reason', error)} (--validate FOLDER "
                                           "takes a local copy of the Camtrap DP files instead)") from None
            try:
                json.loads(body)
            except ValueError:
                raise ValidationSetupError(f"{url}: not JSON (is {base} the Camtrap DP {VERSION} folder?)") from None
            (work / name).write_bytes(body)
            files[name] = {"url": url, "sha256": hashlib.sha256(body).hexdigest()}
        (work / SOURCES_FILE).write_text(json.dumps(
            {"fetched_at": datetime.now(UTC).isoformat(timespec="seconds"), "files": files}, indent=2) + "\n")
        if cache.exists():
            shutil.rmtree(cache)
        os.replace(work, cache)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return cache, True


def _frictionless():
    try:
        import frictionless
    except ImportError:
        raise ValidationSetupError("validation needs the frictionless package: pip install 'trailcam[ecology]'") from None
    version = tuple(int(part) for part in frictionless.__version__.split(".")[:2] if part.isdigit())
    if version < MIN_FRICTIONLESS:
        # 5.19 and older cannot resolve a local profile's relative "$ref"s ("Unresolvable").
        raise ValidationSetupError(f"validation needs frictionless >= {'.'.join(map(str, MIN_FRICTIONLESS))} "
                                   f"(installed: {frictionless.__version__}): pip install 'trailcam[ecology]'")
    return frictionless


def _resolved_standards(standards: Path, into: Path) -> Path:
    """Copy the profile into `into` with its two online `$ref`s pointing at local files beside it,
    and the table schemas; returns the local profile's path."""
    frictionless = _frictionless()
    missing = [name for name in STANDARD_FILES if not (standards / name).is_file()]
    if missing:
        raise ValidationSetupError(f"{standards}: not a Camtrap DP {VERSION} folder (missing {', '.join(missing)})")
    text = (standards / PROFILE_FILE).read_text(encoding="utf-8")
    text = text.replace(f'"{DATA_PACKAGE_REF}"', '"data-package.json"').replace(f'"{GEOJSON_REF}"', '"geojson.json"')
    (into / PROFILE_FILE).write_text(text, encoding="utf-8")
    for name in STANDARD_FILES[1:]:
        # Foreign keys are checked by _check_foreign_keys (frictionless checks them only inside a
        # package, holding every referenced key): the copies validated table by table leave them out.
        schema = json.loads((standards / name).read_text(encoding="utf-8"))
        schema.pop("foreignKeys", None)
        (into / name).write_text(json.dumps(schema), encoding="utf-8")
    if (standards / "data-package.json").is_file():
        shutil.copyfile(standards / "data-package.json", into / "data-package.json")
    else:
        (into / "data-package.json").write_text(json.dumps(frictionless.Package.metadata_ensure_profile()))
    geojson = standards / "geojson.json"
    if not geojson.is_file():
        geojson = Path(frictionless.__file__).parent / "assets" / "profiles" / "geojson.json"
    shutil.copyfile(geojson, into / "geojson.json")
    return into / PROFILE_FILE


# -- validation ----------------------------------------------------------------------------


def validate_package(folder: Path, standards: Path) -> ValidationReport:
    """Validate the package in `folder` against the Camtrap DP files in `standards`, offline."""
    frictionless = _frictionless()
    report = ValidationReport(folder, standards)
    try:
        descriptor = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    except OSError as error:
        report.errors.append(f"datapackage.json: cannot read it ({error.strerror or error})")
        return report
    except ValueError as error:
        report.errors.append(f"datapackage.json: not JSON ({error})")
        return report
    if not isinstance(descriptor, dict):
        report.errors.append("datapackage.json: not a JSON object")
        return report
    if descriptor.get("profile") != PROFILE_URL:
        report.errors.append(f"datapackage.json: profile is {descriptor.get('profile')!r}, not Camtrap DP {VERSION} "
                             f"({PROFILE_URL})")
    with tempfile.TemporaryDirectory(prefix="camtrap-dp-") as scratch:
        local = Path(scratch)
        profile = _resolved_standards(standards, local)
        _check_descriptor(frictionless, descriptor, profile, report)
        resources = {r.get("name"): r for r in descriptor.get("resources", []) if isinstance(r, dict)}
        tables = {}
        for name in TABLES:
            resource = resources.get(name)
            if resource is None:
                report.errors.append(f"datapackage.json: no {name!r} resource")
                continue
            if resource.get("schema") != SCHEMA_URLS[name]:
                report.errors.append(f"datapackage.json: resource {name!r} has schema {resource.get('schema')!r}, "
                                     f"not Camtrap DP {VERSION}'s ({SCHEMA_URLS[name]})")
            path = resource.get("path")
            if not isinstance(path, str) or not (folder / path).is_file():
                report.errors.append(f"{name}: its file {path!r} is not in {folder}")
                continue
            tables[name] = folder / path
            _check_table(frictionless, name, folder / path, local / f"{name}-table-schema.json", report)
        _check_foreign_keys(tables, report)
    return report


def _listed(errors: list[str], found: Iterable[str], where: str) -> None:
    found = list(found)
    errors.extend(found[:MAX_LISTED])
    if len(found) > MAX_LISTED:
        errors.append(f"{where}: ... and {len(found) - MAX_LISTED} more")


def _check_descriptor(frictionless, descriptor: dict, profile: Path, report: ValidationReport) -> None:
    """datapackage.json against the profile (the copy whose online `$ref`s are local files)."""
    from frictionless import Metadata, system

    found = []
    with system.use_context(trusted=True):
        try:
            for error in Metadata.metadata_validate(descriptor, profile=str(profile)):
                found.append(f"datapackage.json: {error.note}")
        except frictionless.FrictionlessException as error:
            found.append(f"datapackage.json: {error.error.note}")
    _listed(report.errors, found, "datapackage.json")


def _check_table(frictionless, name: str, path: Path, schema: Path, report: ValidationReport) -> None:
    """One CSV against its table schema, streamed by frictionless (foreign keys: see below)."""
    from frictionless import Resource, system

    found: list[str] = []
    with system.use_context(trusted=True):
        try:
            resource = Resource(path=str(path), schema=str(schema), format="csv", encoding="utf-8")
            result = resource.validate(limit_errors=MAX_LISTED + 1)
        except frictionless.FrictionlessException as error:
            report.errors.append(f"{path.name}: {error.error.note}")
            return
    task = result.tasks[0] if result.tasks else None
    if task is not None:
        report.rows[name] = task.stats.get("rows") or 0
    for cells in result.flatten(["rowNumber", "fieldName", "type", "note"]) if task is not None else []:
        row, column, kind, note = cells
        where = path.name + (f" row {row}" if row else "") + (f", {column}" if column else "")
        found.append(f"{where}: {kind}: {note}")
    for problem in result.errors:  # errors of the validation itself (a schema it could not read)
        found.append(f"{path.name}: {problem.note}")
    _listed(report.errors, found, path.name)


def _column(path: Path, column: str) -> Iterable[tuple[int, str]]:
    """(row number as frictionless counts it: the header is row 1, value) of one column."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or column not in reader.fieldnames:
            return
        for number, row in enumerate(reader, start=2):
            yield number, row[column]


def _check_foreign_keys(tables: dict[str, Path], report: ValidationReport) -> None:
    """Every referencing value names a row of the referenced table: one line per missing id, with
    how many rows name it and the first of them."""
    keys: dict[tuple[str, str], set[str]] = {}
    for table, column, target, key in FOREIGN_KEYS:
        if table not in tables or target not in tables:
            continue
        if (target, key) not in keys:
            keys[(target, key)] = {value for _, value in _column(tables[target], key) if value}
        known = keys[(target, key)]
        missing: dict[str, list[int]] = {}
        for number, value in _column(tables[table], column):
            if value and value not in known:
                entry = missing.setdefault(value, [number, 0])
                entry[1] += 1
        found = [f"{tables[table].name}: {column} {value!r} is not a {key} of {tables[target].name} "
                 f"({count} row{'s' if count != 1 else ''}, first row {first})"
                 for value, (first, count) in missing.items()]
        _listed(report.errors, found, f"{tables[table].name} {column}")
