"""One frame, start to finish: hash → skip if known → decode → time → classify → decide → store.

The middle (decode → find → crop → classify → decide) is edge/detect/analyse.py, the one frame
analysis `edge classify` runs too. With a detector ([detector] path) it is detect → crop →
classify each bird: the detector looks at the whole frame and its tiles (edge/detect/finder.py), each bird's square
crop is classified and decided on its own, and the frame records one detection row per bird.
A frame with no bird is recorded as empty without a classifier call (the common case on a
trail camera: wind, leaves, light). Without a detector the frame is classified whole, exactly
as before.

The content hash is taken from the bytes that are then decoded (the file is read once), so
what is recorded is exactly what was classified even if the file changes afterwards.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from edge.classify.decision import DecisionContext, label_aliases
from edge.classify.model import Classifier, Prediction
from edge.config.classify import ClassifyConfig
from edge.detect.analyse import FrameAnalyser
from edge.detect.repeats import look_of
from edge.ingest.capture_time import (
    AMBIGUOUS,
    MALFORMED_OFFSET,
    NONEXISTENT,
    CameraClock,
    CaptureReading,
    Neighbour,
    read_capture_time,
    resolve_ambiguous,
)
from edge.ingest.frame_file import FrameRefused, FrameTooLarge, open_frame
from edge.ingest.imaging import FrameError
from edge.store.writer import BirdRecord, Commit, CommittedFrame, FrameRecord, ObjectRecord, Store

if TYPE_CHECKING:
    from edge.classify.labels import Label
    from edge.classify.prior import StationPrior
    from edge.classify.taxonomy import RollUp
    from edge.detect.finder import BirdFinder

log = logging.getLogger(__name__)

# A "frame" larger than this is not read into memory (a misplaced video or disk image).
MAX_FRAME_BYTES = 256 * 1024 * 1024

# OS errors that say nothing about the frame itself and may pass: permissions (an uploader
# that fixes them after the rename, a share's ACLs), I/O errors of a flaky card or network
# mount, a file vanishing or replaced mid-read. Frames failing with them are retried
# ([storage] retry_max_attempts); all other errors are final.
TRANSIENT_ERRNOS = frozenset({
    errno.EACCES, errno.EPERM, errno.EIO, errno.ENOENT, errno.ESTALE, errno.EAGAIN, errno.EBUSY,
    errno.EINTR, errno.ETIMEDOUT, errno.ENXIO, errno.ENODEV, errno.ENOTCONN, errno.EHOSTDOWN,
    errno.EHOSTUNREACH, errno.ECONNRESET, errno.ECONNABORTED,
})


def is_transient(error: OSError) -> bool:
    """Whether a failure to stat or read a frame may pass, so the frame is tried again."""
    return error.errno in TRANSIENT_ERRNOS


@dataclass
class FrameOutcome:
    """What happened to one path. `status`: ok | error | retry | duplicate | vanished | unchanged | skipped.

    `retry`: a transient error, recorded, with attempts left; `retry_at` says when the next try
    is due. The file is not done: no post-processing (it is not `committed`). `skipped`: a
    symlink, FIFO, device or socket under an image name; no row (`skip_reason` says which)."""

    path: str
    camera: str
    status: str
    frame_id: int | None = None
    species: str | None = None
    confidence: float | None = None
    error: str | None = None
    predictions: list[Prediction] = field(default_factory=list)
    # What the store committed for this frame (ok, error, retry): the frame row, its event
    # changes and outbox rows. The hooks take it from here; nothing re-reads the row.
    commit: Commit | None = None
    # A duplicate: the recorded frame whose copy this is (post-processing treats the copy alike).
    known: CommittedFrame | None = None
    retry_at: datetime | None = None
    # (id, processed_at) of the error rows at this path that this frame replaced.
    superseded: list[tuple[int, str]] = field(default_factory=list)
    skip_reason: str | None = None  # "symlink" | "not_regular" when status is "skipped"
    # Detect, then classify: the birds found (None: classified whole) and each bird's crop as
    # the classifier saw it (rank order), for the events' best-crop snapshots.
    birds: list[BirdRecord] | None = None
    crops: list[Any] = field(default_factory=list)
    # A video clip's sampled frame or error row (edge/daemon/clips.py): its clip's row. The file
    # is the clip's, so post-processing waits for the clip to finish (Daemon.after_clip).
    clip_id: int | None = None

    @property
    def committed(self) -> bool:
        """The frame is done and its row written (post-processing may now move or delete the
        file). A `retry` wrote its error row too, but the file must stay for the next try."""
        return self.status in ("ok", "error")


class _Analysed(NamedTuple):
    """What FrameProcessor._analyse hands to _record: the analysis, the capture time it read
    (UTC time, time_source, time_flags) and the rows it makes."""

    analysis: Any  # edge.detect.analyse.FrameAnalysis
    timed: tuple[datetime, str, tuple[str, ...]]
    birds: list[BirdRecord] | None
    crops: list[Any]
    objects: list[ObjectRecord]


@dataclass
class FrameProcessor:
    classifier: Classifier
    store: Store
    classify_config: ClassifyConfig = field(default_factory=ClassifyConfig)
    top_k: int = 5
    draft: bool = True
    # Camera name → its folder, for cameras with `symlinks = "inside"`; others refuse every symlink.
    symlink_roots: dict[str, Path] = field(default_factory=dict)
    # The detector route; None classifies each frame whole.
    finder: BirdFinder | None = None
    # The taxonomic roll-up for a model's labels (rebuilt at every reload); None: off.
    rollup_for: Callable[[list[Label]], RollUp | None] | None = None
    # The species prior ([prior], edge/classify/prior.py); None: every label as before.
    prior: StationPrior | None = None
    # Camera name → how to read its clock ([[cameras]] timezone, clock_offset_s, clock_reference);
    # a camera not named here keeps the station's zone, uncorrected.
    clocks: dict[str, CameraClock] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.set_classifier(self.classifier)
        # Per camera, what the log has already said about its doubtful times (once per burst).
        self._said: dict[str, set[tuple]] = {}

    def set_classifier(self, classifier: Classifier) -> None:
        """Swap the model (SIGHUP) between two frames."""
        self.classifier = classifier
        spec = classifier.spec
        self._aliases = label_aliases(spec.labels)
        self._no_bird = frozenset({spec.no_bird_label}) if spec.no_bird_label else frozenset()
        rollup = self.rollup_for(spec.labels) if self.rollup_for is not None else None
        self._rollup = rollup
        # The one frame analysis `edge classify` runs too (edge/detect/analyse.py); it classifies
        # with every score where the roll-up or the not-a-bird veto needs them, keeps top_k.
        self._analyser = FrameAnalyser(classifier, self.classify_config, self.finder, self.top_k, rollup, self.draft)

    def process(self, path: str | Path, camera: str) -> FrameOutcome:
        """One frame from its file to its committed row: read it (safely, bounded), recognise a
        copy of a frame already recorded, analyse it and record it. Every failure on the way is
        an outcome (an error row where the frame is known by a key), never an exception."""
        path = str(path)
        read = self._read(path, camera)
        if isinstance(read, FrameOutcome):
            return read
        data, stat = read
        sha = hashlib.sha256(data).hexdigest()
        seen = self._seen_before(path, camera, sha)
        if seen is not None:
            return seen
        analysed = self._analyse(path, camera, data, stat.st_mtime, sha)
        if isinstance(analysed, FrameOutcome):
            return analysed
        return self._record(path, camera, data, stat.st_mtime, sha, analysed)

    def _read(self, path: str, camera: str) -> FrameOutcome | tuple[bytes, os.stat_result]:
        """The file's bytes and the fstat of what was opened, or the outcome that ends the frame
        here: vanished, refused, unchanged since its tries were spent, unreadable, too large."""
        try:
            # Never blocks (FIFO), never follows a symlink out of the folder, fstat of what was opened.
            handle = open_frame(path, allow_symlink_inside=self.symlink_roots.get(camera))
        except FileNotFoundError:
            return FrameOutcome(path, camera, "vanished")
        except FrameRefused as refusal:
            return self._skipped(path, camera, refusal)
        except OSError as error:  # lstat or open failed (EACCES, EIO, ELOOP on the way ...)
            # The error row needs a key; the path's hash stands in for unreadable content. Its
            # size and mtime (lstat works without read permission) let a retry, a restart and a
            # rescan tell this file from a changed one.
            size, mtime = _size_and_mtime(path)
            if size is not None and mtime is not None and self.store.ledger.unchanged_known(path, size, mtime):
                return FrameOutcome(path, camera, "unchanged")  # tries spent, file unchanged
            return self._error(path, camera, "unreadable:" + hashlib.sha256(path.encode()).hexdigest(), size, mtime,
                               f"unreadable: {error.strerror or error}", transient=is_transient(error))
        with handle:
            stat = handle.stat
            if self.store.ledger.unchanged_known(path, stat.st_size, stat.st_mtime):
                return FrameOutcome(path, camera, "unchanged")
            try:
                return handle.read(MAX_FRAME_BYTES), stat  # at most MAX_FRAME_BYTES + 1, whatever fstat said
            except FrameTooLarge as error:
                # Keyed by path, size and mtime: hashing the content would mean reading all of it.
                key = "too-large:" + hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime}".encode()).hexdigest()
                return self._error(path, camera, key, stat.st_size, stat.st_mtime, error.message)
            except OSError as error:
                # The error row needs a key; the path's hash stands in for unreadable content.
                return self._error(path, camera, "unreadable:" + hashlib.sha256(path.encode()).hexdigest(),
                                   stat.st_size, stat.st_mtime, f"unreadable: {error.strerror or error}", transient=is_transient(error))

    def _seen_before(self, path: str, camera: str, sha: str) -> FrameOutcome | None:
        """A duplicate outcome when these bytes were recorded already (a copy, or the same file
        moved: the row follows it when the old file is gone) or already failed at this path;
        None for a frame to analyse."""
        known, error_here = self.store.ledger.lookup(sha, path)
        if known is not None:
            if known.path != path and not os.path.exists(known.path):
                self.store.ledger.update_path(known.id, path)
                known = replace(known, path=path)
            # The file here failed before and is now a valid copy of a recorded frame.
            superseded = self.store.ledger.supersede_errors(path, known.id)
            return FrameOutcome(path, camera, "duplicate", frame_id=known.id, superseded=superseded, known=known)
        if error_here:
            return FrameOutcome(path, camera, "duplicate")
        return None

    def _analyse(self, path: str, camera: str, data: bytes, mtime: float,
                 sha: str) -> FrameOutcome | _Analysed:
        """The frame analysis (edge/detect/analyse.py) with the capture time it read and the rows
        it makes, or the error outcome of a frame that cannot be decoded or that made the
        analysis (or its rows) fail."""
        timed: list[tuple[datetime, str, tuple[str, ...]]] = []

        def taken_at(image: Any) -> datetime:
            """The capture time by the camera's clock, read once (kept for the frame row): the
            finder compares the frames of a burst by it (motion), before its detector runs."""
            if not timed:
                timed.append(self._capture_time(image, path, camera, mtime))
            return timed[0][0]

        def context_for(image: Any) -> DecisionContext | None:
            """From the capture time, the prior's week: what the decisions know beyond the scores."""
            return self._context(camera, taken_at(image))

        try:
            analyser = self._analyser
            # A reload swaps the finder after the classifier (Daemon.reload_model): follow it.
            analyser.finder, analyser.classify_config = self.finder, self.classify_config
            analysis = analyser.analyse(data, context_for, camera, taken_at)
            birds: list[BirdRecord] | None = None
            crops: list[Any] = []
            if analysis.birds is not None:
                # Each crop's look goes with it: the store's repeat memory (edge/store/repeats.py)
                # tells a rock seen again and again from a bird perching at the same place.
                birds = [BirdRecord((b.box.ymin, b.box.xmin, b.box.ymax, b.box.xmax), b.box.score, b.box.label,
                                    b.predictions, b.decision, look_of(b.crop)) for b in analysis.birds]
                crops = [b.crop for b in analysis.birds]
            objects = [ObjectRecord(o.kind, (o.ymin, o.xmin, o.ymax, o.xmax), o.score, o.label)
                       for o in analysis.others]
            return _Analysed(analysis, timed[0], birds, crops, objects)
        except FrameError as error:
            return self._error(path, camera, sha, len(data), mtime, str(error))
        except Exception as error:  # noqa: BLE001 - a poison frame must not crash-loop the service
            # Anything else a decoder or the interpreter throws on one frame is recorded with
            # that frame; otherwise systemd would restart us onto the same frame forever.
            log.exception("frame %s: unexpected failure", path)
            return self._error(path, camera, sha, len(data), mtime,
                               f"processing failed: {type(error).__name__}: {error}")

    def _record(self, path: str, camera: str, data: bytes, mtime: float, sha: str,
                analysed: _Analysed) -> FrameOutcome:
        """Commit the analysed frame (its birds with their looks, people and vehicles) and say
        what was counted."""
        analysis, birds, crops, objects = analysed.analysis, analysed.birds, analysed.crops, analysed.objects
        captured_at, source, time_flags = analysed.timed
        predictions, decision, inference_ms = analysis.predictions, analysis.decision, analysis.inference_ms
        result = self.store.record(
            FrameRecord(
                path=path, sha256=sha, camera=camera, size=len(data), mtime=mtime,
                captured_at=captured_at, time_source=source, time_flags=time_flags, model_id=self.classifier.model_id,
                inference_ms=inference_ms, predictions=predictions, decision=decision, birds=birds, objects=objects,
                detector_id=self.finder.detector.spec.model_id if self.finder is not None else None,
                night=analysis.night,
            )
        )
        if result.superseded:
            log.info("frame %s: recorded; replaces %d earlier error row(s) of this path", path, len(result.superseded))
        return FrameOutcome(path, camera, "ok", result.frame_id, result.frame.species, result.frame.confidence,
                            predictions=predictions, commit=result, superseded=result.superseded, birds=birds,
                            crops=crops)

    def _capture_time(self, image: Any, path: str, camera: str, mtime: float) -> tuple[datetime, str, tuple[str, ...]]:
        """(UTC capture time, time_source, time_flags) by the camera's clock. An ambiguous wall
        time (the repeated hour) takes the reading that keeps the camera's own order against
        its frames already recorded in that hour (the store has them, so a restart between two
        frames of a burst changes nothing); doubtful times are logged once per burst."""
        clock = self.clocks.get(camera) or CameraClock(self.store.station_tz)
        reading = read_capture_time(image, mtime, clock)
        at, second, because = reading.at, False, None
        if reading.later is not None:
            neighbours = [Neighbour(when, where, their_mtime) for when, where, their_mtime
                          in self.store.camera_clocks.recorded_times(camera, reading.at, reading.later)]
            resolution = resolve_ambiguous(reading, path, mtime, neighbours)
            at, second, because = resolution.at, resolution.second, resolution.because
        if reading.flags:
            self._say_time(camera, path, reading, at, second, because)
        return at, reading.source, reading.flags

    def _say_time(self, camera: str, path: str, reading: CaptureReading, at: datetime, second: bool,
                  because: Neighbour | None) -> None:
        """One WARNING per camera and burst of doubtful times, not one per frame: per repeated
        or skipped hour and choice (a fall-back burst read partly as the first, partly as the
        second hour says both), and once per camera for a malformed offset."""
        said = self._said.setdefault(camera, set())
        wall = reading.wall
        zone = getattr(reading.zone, "key", None) or str(reading.zone)
        if MALFORMED_OFFSET in reading.flags and (MALFORMED_OFFSET,) not in said:
            said.add((MALFORMED_OFFSET,))
            log.warning("camera %s: EXIF OffsetTimeOriginal %r of %s is not an offset (+HH:MM); its time %s is "
                        "read in %s instead; such frames are flagged %r (said once per camera)",
                        camera, reading.offset_text, path, wall, zone, MALFORMED_OFFSET)
        local = at.astimezone(reading.zone) if reading.zone is not None else at
        if AMBIGUOUS in reading.flags and wall is not None and (AMBIGUOUS, wall.date(), second) not in said:
            said.add((AMBIGUOUS, wall.date(), second))
            why = (f"so that it is not earlier than the camera's frame {because.path} ({because.at:%H:%M:%SZ})"
                   if second and because is not None else
                   f"so that it is not later than the camera's frame {because.path} ({because.at:%H:%M:%SZ})"
                   if because is not None else "nothing recorded of this camera in that hour says otherwise")
            log.warning("camera %s: %s is in the repeated hour of %s (the clocks went back); read as the %s one "
                        "(%s), %s; such frames are flagged %r (%s)", camera, wall, zone,
                        "second" if second else "first", local.isoformat(), why, AMBIGUOUS, path)
        if NONEXISTENT in reading.flags and wall is not None and (NONEXISTENT, wall.date()) not in said:
            said.add((NONEXISTENT, wall.date()))
            log.warning("camera %s: %s does not exist in %s (the clocks went forward); read with the offset before "
                        "the gap, as %s; such frames are flagged %r (%s). A camera that keeps winter time all "
                        "year wants its [[cameras]] timezone (e.g. \"+01:00\")", camera, wall, zone,
                        local.isoformat(), NONEXISTENT, path)
        if len(said) > 64:  # a long-running daemon: keep the memory bounded
            said.clear()

    def _context(self, camera: str, captured_at: datetime) -> DecisionContext | None:
        """What decide() knows beyond the scores for this frame: the species prior at the
        camera's place in the week of its capture (the range model runs once per place and
        week, edge/classify/prior.py caches it), and the taxonomic roll-up. None: neither,
        decisions as before."""
        if self.prior is None and self._rollup is None:
            return None
        occurrence = self.prior.occurrence_at(camera, captured_at) if self.prior is not None else None
        return DecisionContext(occurrence=occurrence, rollup=self._rollup)

    def _skipped(self, path: str, camera: str, refusal: FrameRefused) -> FrameOutcome:
        """A symlink, FIFO, device or socket under an image name: not a frame, so no row (it has
        no content of its own to key one by); a log line, and the daemon counts it by reason."""
        log.warning("frame %s: skipped: %s", path, refusal.message)
        return FrameOutcome(path, camera, "skipped", error=refusal.message, skip_reason=refusal.reason)

    def _error(self, path: str, camera: str, sha: str, size: int | None, mtime: float | None, message: str,
               transient: bool = False) -> FrameOutcome:
        if self.store.ledger.recorded_error(sha, path, size, mtime):
            return FrameOutcome(path, camera, "duplicate", error=message)
        result = self.store.record(
            FrameRecord(path=path, sha256=sha, camera=camera, size=size, mtime=mtime, status="error",
                        error=message, model_id=self.classifier.model_id, transient=transient)
        )
        limit = self.store.ledger.retry_max_attempts
        if result.retry_at is not None:
            delay = (result.retry_at - self.store.clock()).total_seconds()
            log.warning("frame %s: %s (attempt %d of %d; next try in %.0f s)", path, message, result.attempts, limit, delay)
            return FrameOutcome(path, camera, "retry", result.frame_id, error=message, commit=result,
                                retry_at=result.retry_at, superseded=result.superseded)
        if transient:
            log.warning("frame %s: %s (attempt %d of %d; giving up: it stays an error until the file changes)",
                        path, message, result.attempts, limit)
        else:
            log.warning("frame %s: %s", path, message)
        return FrameOutcome(path, camera, "error", result.frame_id, error=message, commit=result,
                            superseded=result.superseded)


def _size_and_mtime(path: str) -> tuple[int | None, float | None]:
    """(size, mtime) of the entry itself, or (None, None) when even lstat fails."""
    try:
        info = os.lstat(path)
    except OSError:
        return None, None
    return info.st_size, info.st_mtime
