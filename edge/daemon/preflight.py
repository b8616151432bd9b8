"""The one start-up validation, shared by `edge check` and `edge run`.

Why one function: when `edge check` and `edge run` each had their own checks, they drifted
apart (check said a database under /etc/hostname/ "will be created", run then failed with a
misleading "File exists"). Both now call `preflight()`, so check passes exactly what run
accepts, and run refuses exactly what check reports.

It checks everything only the operator can get wrong, and reports every problem at once,
each naming its dotted configuration key:

* cameras: at least one, each path a folder (a missing one is a warning unless --once: a card
  mounted later is not a mistake);
* model.path / model.labels: the model loads with its labels (the classifier is returned, so
  run does not load it twice);
* detector.*: with [detector] path, the detector loads, its outputs are understood and its
  bird labels are among its labels (the detect-then-classify route is returned too);
* classify.allow / deny / thresholds: every name is one of the model's labels;
* taxonomy.file: the taxonomy file reads (the roll-up needs it for families and orders);
  station.language: the names pack has that language (a warning: scientific names are shown);
* prior.* / station.latitude: with [prior] source "birdnet" the coordinates are there (station or
  every camera's deployment) and the range model loads; with "checklist" the file reads; the
  labels that found no name in the prior are listed (they have no prior opinion, never excluded);
* storage.database: its folder (also the state folder, where status.json lives) is a folder
  and writable, an existing file is a trailcam database.

It has no side effects: nothing is created (no database, no state folder, no status.json),
so a refused start leaves the machine as it was. A write probe file is created and removed.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from edge.classify.decision import unknown_species
from edge.classify.model import Classifier, ModelError, resolve_model
from edge.classify.names import ENGLISH, NamesError, load_names, pack_folder, with_common_names
from edge.classify.taxonomy import TaxonomyError, rollup_from_config
from edge.config import EdgeConfig
from edge.detect.analyse import load_configured_finder
from edge.store.db import StoreError, check_database, stored_timezone, timezone_change, user_name

if TYPE_CHECKING:
    from edge.detect.finder import BirdFinder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """One result line: `key` is the dotted configuration key it is about."""

    key: str
    message: str
    level: Literal["ok", "warning", "error"] = "error"

    def line(self) -> str:
        if self.level == "ok":
            return f"{self.key}: ok ({self.message})"
        if self.level == "warning":
            return f"{self.key}: warning: {self.message}"
        return f"{self.key}: {self.message}"


@dataclass
class Preflight:
    findings: list[Finding] = field(default_factory=list)
    classifier: Classifier | None = None
    finder: BirdFinder | None = None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]


def _model_key(config: EdgeConfig, message: str) -> str:
    """Which key a model error is about: the labels file when it names it, else the model."""
    labels = config.model.labels
    if labels is not None and str(labels) in message:
        return "model.labels"
    return "model.path"


def load_configured_classifier(config: EdgeConfig) -> Classifier:
    """The configured classifier; a ModelError's message starts with the key it is about.

    Used at start (through preflight) and at every model reload (SIGHUP).
    """
    model = config.model
    if model.path is None:
        raise ModelError("model.path: no model configured (set [model] path or pass --model)")
    if not model.path.exists():
        raise ModelError(f"model.path: {model.path}: model not found (a bundle folder or a .tflite file)")
    if model.labels is not None and not model.labels.is_file():
        raise ModelError(f"model.labels: {model.labels}: labels file not found (a .txt or .csv file)")
    try:
        spec = resolve_model(model.path, model.labels, model.no_bird_label)
        return Classifier(_with_english_names(config, spec), threads=model.threads)
    except ModelError as error:
        message = str(error)
        if message.startswith("model."):
            raise
        raise ModelError(f"{_model_key(config, message)}: {message}") from None


def _with_english_names(config: EdgeConfig, spec):
    """The spec with the names pack's English names for labels the model names not (the
    catalogue's AIY model has scientific names only); unchanged without a pulled pack. A pack
    that cannot be read costs the names, not the start."""
    try:
        english = load_names(pack_folder(config), ENGLISH)
    except NamesError as error:
        log.warning("taxonomy.names: %s; labels keep the model's own names", error)
        return spec
    if english is None:
        return spec
    return replace(spec, labels=with_common_names(spec.labels, english))


def check_taxonomy(config: EdgeConfig, classifier: Classifier) -> list[Finding]:
    """The roll-up's taxonomy file reads; the station's language has names."""
    findings: list[Finding] = []
    try:
        rollup = rollup_from_config(classifier.spec.labels, config.taxonomy)
    except TaxonomyError as error:
        return [Finding("taxonomy.file", str(error))]
    if rollup is not None:
        ranks = [r for r in ("genus", "family", "order") if rollup.taxonomy.has_rank(r)]
        unplaced = len(rollup.taxonomy.unplaced)
        findings.append(Finding("taxonomy", f"roll-up to {', '.join(ranks)}" + (
            f" ({unplaced} labels the file gives no family: they roll up to genus only)" if unplaced else ""), "ok"))
    language = config.station.language
    if language != ENGLISH:
        folder = pack_folder(config)
        try:
            names = load_names(folder, language)
        except NamesError as error:
            names = None
            findings.append(Finding("station.language", str(error), "warning"))
        if names is None:
            findings.append(Finding("station.language", f"no {language!r} names in {folder} (`edge models pull "
                                    f"birdnet-names`): scientific names are shown", "warning"))
    return findings


def check_detector(config: EdgeConfig) -> tuple[list[Finding], BirdFinder | None]:
    """The detector loads, its outputs are understood and its bird labels exist."""
    if config.detector.path is None:
        return [], None
    from edge.detect.model import DetectorError

    try:
        finder = load_configured_finder(config)
    except DetectorError as error:
        key, _, message = str(error).partition(": ")
        return [Finding(key, message)], None
    assert finder is not None
    detector, spec = finder.detector, finder.detector.spec
    birds = ", ".join(sorted(spec.bird_labels))
    summary = (f"{spec.model_id}, {detector.output_format} outputs, input {detector.input_size[0]}x"
               f"{detector.input_size[1]} {detector.input_dtype}, {len(spec.labels)} labels (offset "
               f"{spec.label_offset}), birds: {birds}, resize {detector.resize}, tiles {config.detector.tiles}, "
               f"runtime {detector.runtime}")
    return [Finding("detector", summary, "ok")], finder


def check_cameras(config: EdgeConfig, *, once: bool = False) -> list[Finding]:
    """Camera folders: a file (or a file above the folder) is an error; a folder that is not
    there yet is a warning for the daemon (a card or share mounted after the service started
    is watched as soon as it appears) and an error for --once (nothing could be processed)."""
    if not config.cameras:
        return [Finding("cameras", "no camera folder configured (add a [[cameras]] table or pass --watch DIR)")]
    findings = []
    for index, camera in enumerate(config.cameras):
        key, path = f"cameras[{index}].path", camera.path
        if camera.source is not None:
            findings += check_live_camera(index, camera, once=once)
            continue
        if path is None:  # EdgeConfig's validation refuses a camera with neither path nor source
            findings.append(Finding(key, "no folder configured"))
            continue
        if path.is_dir():
            findings.append(Finding(f"cameras[{index}] {camera.name}", f"{path}, {camera.mode}", "ok"))
            continue
        ancestor = path
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            findings.append(Finding(key, f"{ancestor} is not a folder"))
        elif once:
            findings.append(Finding(key, f"{path} does not exist"))
        else:
            findings.append(Finding(key, f"{path} does not exist (yet); watching starts when it appears", "warning"))
    return findings


def check_live_camera(index: int, camera, *, once: bool = False) -> list[Finding]:
    """A live camera (`source`): PyAV is there (the `video` extra) and its frames' folder can be
    made. No connection is tried: a check must not hang on a camera that is off (many are at
    night), and the daemon reconnects anyway; `edge status` says whether the stream is read. The
    URL is shown redacted."""
    from importlib.util import find_spec

    from edge.redact import redact_url

    findings = []
    if find_spec("av") is None:
        findings.append(Finding(f"cameras[{index}].source", "reading a stream needs PyAV: pip install "
                                "'trailcam[video]' (or python3-av)"))
    path = camera.path
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        findings.append(Finding(f"cameras[{index}].path", f"{ancestor} is not a folder"))
    elif not findings:
        findings.append(Finding(f"cameras[{index}] {camera.name}",
                                f"live {redact_url(camera.source)} (not connected by the check), frames in {path}"
                                + ("; not read with --once" if once else ""), "ok"))
    return findings


def check_species(config: EdgeConfig, classifier: Classifier) -> list[Finding]:
    """Names in [classify] allow, deny and thresholds against the model's labels."""
    problems = unknown_species(config.classify, classifier.spec.labels)
    findings = []
    for problem in problems:
        key, _, message = problem.partition(": ")
        findings.append(Finding(key, message))
    named = len(config.classify.allow) + len(config.classify.deny) + len(config.classify.thresholds)
    if named and not problems:
        findings.append(Finding("classify", f"{named} species name(s) are labels of the model", "ok"))
    return findings


def check_model(config: EdgeConfig) -> tuple[list[Finding], Classifier | None]:
    try:
        classifier = load_configured_classifier(config)
    except ModelError as error:
        key, _, message = str(error).partition(": ")
        return [Finding(key, message)], None
    spec = classifier.spec
    summary = (f"{classifier.model_id}, {len(spec.labels)} labels from {spec.labels_source}, "
               f"input {classifier.input_size[0]}x{classifier.input_size[1]} {classifier.input_dtype}, "
               f"no-bird label {spec.no_bird_label!r}, runtime {classifier.runtime}")
    return [Finding("model", summary, "ok"), *check_species(config, classifier),
            *check_taxonomy(config, classifier)], classifier


def check_prior(config: EdgeConfig, classifier: Classifier | None) -> list[Finding]:
    """[prior]: the source loads for this model's labels (its coordinates, model or checklist);
    a summary line and a warning naming the labels that found no match. Without a classifier
    (it failed to load) the files and coordinates are still checked, against no labels."""
    if config.prior.source == "none":
        return []
    from edge.classify.prior import ChecklistPrior, PriorError, load_prior

    labels = classifier.spec.labels if classifier is not None else []
    no_bird = classifier.spec.no_bird_label if classifier is not None else None
    try:
        station = load_prior(config, labels, no_bird)
    except PriorError as error:
        key, _, message = str(error).partition(": ")
        return [Finding(key, message)]
    assert station is not None
    prior = station.prior
    findings = [Finding("prior", f"{prior.summary()}, threshold {prior.threshold}, rarity confidence "
                                 f"{prior.rarity_confidence}", "ok")] if classifier is not None else []
    unmatched = prior.unmatched_labels()
    if unmatched and classifier is not None:
        shown = ", ".join(repr(m.label) for m in unmatched[:8]) + (", ..." if len(unmatched) > 8 else "")
        effect = ("no prior opinion: never out of range for it" if prior.source == "birdnet"
                  else "not on the checklist unless spelt as there")
        findings.append(Finding("prior", f"{len(unmatched)} label(s) found no name in the {prior.source} "
                                         f"({effect}): {shown}", "warning"))
    if isinstance(prior, ChecklistPrior) and classifier is not None:
        names = prior.unmatched_names()
        if names:
            shown = ", ".join(repr(e.name.scientific) for e in names[:8]) + (", ..." if len(names) > 8 else "")
            findings.append(Finding("prior.checklist", f"{len(names)} listed species match no label of the model "
                                                       f"(spelt another way, or unknown to it): {shown}", "warning"))
    return findings


def check_notify(config: EdgeConfig) -> list[Finding]:
    """[notify]: Apprise importable (the `notify` extra) and every URL one it understands; each
    problem names its key (`notify.urls[i]`), never the URL (it may hold a token)."""
    if not config.notify.enabled:
        return []
    from edge.alerts.targets import TargetError, check_urls

    try:
        problems = check_urls(config.notify.urls)
    except TargetError as error:
        return [Finding("notify.enabled", str(error))]
    if problems:
        return [Finding(f"notify.urls[{index}]", message) for index, message in problems]
    return [Finding("notify", f"{len(config.notify.urls)} target(s), triggers {', '.join(config.notify.triggers)}"
                    + (f", digest at {config.notify.digest_at}" if config.notify.digest_at else ""), "ok")]


def check_storage(config: EdgeConfig) -> list[Finding]:
    try:
        return [Finding("storage.database", check_database(Path(config.storage.database)), "ok")]
    except StoreError as error:
        return [Finding("storage.database", str(error))]


def check_timezone(config: EdgeConfig, *, force: bool = False) -> list[Finding]:
    """The zone the station will use, said (a warning when it is the UTC default nobody chose),
    and refused when the existing database was written in another one, unless `force`
    (`edge run --force-timezone`): the store then records the new zone and logs the change."""
    zone = config.station.timezone
    change = timezone_change(Path(config.storage.database), zone)
    if change is not None:
        if not force:
            return [Finding("station.timezone", change)]
        stored = stored_timezone(Path(config.storage.database))
        return [Finding("station.timezone", f"{zone}, replacing {stored}, the zone the database was written in "
                                            "(--force-timezone)", "warning")]
    if "timezone" not in config.station.model_fields_set:
        return [Finding("station.timezone", "UTC, the default: hours and days are UTC's, and EXIF times without an "
                                            "offset are read as UTC; set [station] timezone (e.g. \"Europe/Berlin\")",
                        "warning")]
    return [Finding("station.timezone", zone, "ok")]


def preflight(config: EdgeConfig, *, once: bool = False, force_timezone: bool = False) -> Preflight:
    """Every start-up check, in the order an operator fixes them; no side effects."""
    result = Preflight()
    result.findings += check_cameras(config, once=once)
    model_findings, result.classifier = check_model(config)
    result.findings += model_findings
    detector_findings, result.finder = check_detector(config)
    result.findings += detector_findings
    result.findings += check_prior(config, result.classifier)
    result.findings += check_notify(config)
    result.findings += check_storage(config)
    result.findings += check_timezone(config, force=force_timezone)
    return result


class StateDirError(RuntimeError):
    """The state directory cannot hold the database: the daemon must not start."""


def make_state_dir(directory: Path | str) -> None:
    """Make the state folder and prove we can create, write and fsync a file where the database
    lives: `edge run` calls it once every check passed (a refused start creates nothing), just
    before the store opens the database (see edge/daemon/wiring.py).

    Why a probe and not os.access(): root passes every access() check, and a read-only mount
    or a full disk only shows on an actual write. Called before the database is opened, so the
    operator sees one clear message instead of a SQLite traceback.
    """
    directory = Path(directory).absolute()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".trailcam-write-test-{os.getpid()}"
        with open(probe, "wb") as handle:
            handle.write(b"ok")
            handle.flush()
            os.fsync(handle.fileno())
        probe.unlink()
    except OSError as exc:
        user = user_name()
        raise StateDirError(
            f"state directory {directory} is not writable by user {user}: {exc.strerror or exc}. "
            f"The database lives there; check its owner and mount (under systemd: StateDirectory=trailcam "
            f"creates /var/lib/trailcam for the service user)") from exc


__all__ = ["Finding", "Preflight", "check_cameras", "check_model", "check_prior", "check_species", "check_storage",
           "check_timezone",
           "load_configured_classifier", "load_configured_finder", "make_state_dir", "preflight", "StateDirError"]
