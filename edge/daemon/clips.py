"""One video clip, start to finish: settle → hash → known? → open → time → sample → each sampled
frame through the one frame analysis and the frame's one transaction → the clip done or failed.

    ClipProcessor(frames: FrameProcessor, config: ClipsConfig, settle_s: {camera: s})
      .process(path, camera, emit, progress) -> ClipOutcome

What a feeder owner and an ecologist expect, and how it is kept:

- A clip is counted like a burst of photos of its camera: each sampled frame (edge/ingest/clips.py:
  [clips] sample_rate a second, or the keyframes) is analysed by FrameAnalyser.analyse_picture
  (the photo's detect → crop → classify → decide, without a JPEG round trip) and recorded by
  Store.record as one `frames` row (clip_id, clip_offset_s; its time the clip's start plus the
  offset), in its own transaction. Visits follow the photo rules: a clip shorter than the
  independence interval is one visit, or continues the camera's open visit; its individuals are
  the MaxN per species over its sampled frames (event_votes), as for a burst.
- The clip's row (edge/store/clips.py) is written before the first sample and finished after
  the last (done, or error with its reason): a SIGKILL in between leaves it `decoding`, and the
  restart samples the same offsets again, skipping those committed (their keys are unique), so
  nothing committed is lost and nothing is counted twice.
- A clip still being written is waited for: one modified less than its camera's settle_s ago
  is not opened, but tried again once it has settled (no row until then).
- A truncated or corrupt clip: the frames decoded before the fault count; the clip is recorded
  as an error with the reason (clips.error, and a `frames` error row at its path, so `edge
  status` and the error lists show it). A codec this FFmpeg cannot decode, or no video stream:
  an error, nothing counted.
- The watchdog: `progress()` is called after every decoded frame and between chunks of the
  hash, and says whether to go on; a stop request ends the clip after the sampled frame in
  hand (left `decoding`, resumed at the next start).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from edge.config.clips import ClipsConfig
from edge.daemon.pipeline import FrameOutcome, FrameProcessor, is_transient
from edge.detect.repeats import look_of
from edge.ingest.capture_time import CameraClock
from edge.ingest.clips import ClipDecoderMissing, ClipError, ClipReader, Sample, load_av, media_type, read_clip_time
from edge.ingest.frame_file import FrameRefused, open_frame
from edge.store.clips import sample_key
from edge.store.times import format_utc
from edge.store.writer import BirdRecord, FrameRecord, ObjectRecord

log = logging.getLogger(__name__)

_HASH_CHUNK = 4 << 20


@dataclass
class ClipOutcome:
    """What happened to one clip. `status`: done | error | interrupted (a stop request; resumed
    at the next start) | waiting (still being written; `retry_at`) | duplicate | unchanged |
    skipped (no decoder: `error` says how to get one) | vanished | retry (a transient read error).
    `frames`: the outcomes of the sampled frames committed now (each went through after_frame);
    `error_outcome`: the frames error row of a failed clip (through after_frame too)."""

    path: str
    camera: str
    status: str
    clip_id: int | None = None
    frames: list[FrameOutcome] = field(default_factory=list)
    sampled: int = 0  # sampled frames of the clip recorded (this run and before)
    decoded: int = 0  # frames decoded this run
    error: str | None = None
    retry_at: float | None = None  # monotonic time a waiting clip is due again
    error_outcome: FrameOutcome | None = None
    captured_at: datetime | None = None
    skip_reason: str | None = None

    @property
    def finished(self) -> bool:
        """The clip is recorded for good (done or error): post-processing may move it now."""
        return self.status in ("done", "error")


class ClipProcessor:
    """The clip route beside FrameProcessor's photo route, over the same analyser and store."""

    def __init__(self, frames: FrameProcessor, config: ClipsConfig, settle_s: dict[str, float] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.frames = frames
        self.config = config
        self.settle_s = settle_s or {}
        self.clock = clock

    def process(self, path: str, camera: str, emit: Callable[[FrameOutcome], object],
                progress: Callable[[], bool] = lambda: True) -> ClipOutcome:
        """Count one clip. `emit(outcome)` is called with each sampled frame's committed outcome
        (and the error row's) as it commits; `progress()` feeds the watchdog and returns False
        when the daemon is asked to stop."""
        frames, store = self.frames, self.frames.store
        try:
            handle = open_frame(path, allow_symlink_inside=frames.symlink_roots.get(camera))
        except FileNotFoundError:
            return ClipOutcome(path, camera, "vanished")
        except FrameRefused as refusal:
            log.warning("clip %s: skipped: %s", path, refusal.message)
            return ClipOutcome(path, camera, "skipped", error=refusal.message, skip_reason=refusal.reason)
        except OSError as error:
            return self._failed(path, camera, "unreadable:" + hashlib.sha256(path.encode()).hexdigest(), None, None,
                                f"unreadable: {error.strerror or error}", emit, transient=is_transient(error))
        with handle:
            stat = handle.stat
            if store.clips.finished_here(path, stat.st_size, stat.st_mtime):
                return ClipOutcome(path, camera, "unchanged")
            age = self.clock() - stat.st_mtime
            settle = self.settle_s.get(camera, 2.0)
            if 0 <= age < settle:
                # Still being written, perhaps: try again once it has been left alone for settle_s.
                log.debug("clip %s: modified %.1f s ago; waiting until it has settled", path, age)
                return ClipOutcome(path, camera, "waiting", retry_at=time.monotonic() + settle - age + 0.05)
            try:
                load_av()
            except ClipDecoderMissing as missing:
                log.warning("clip %s: skipped: %s", path, missing)
                return ClipOutcome(path, camera, "skipped", error=str(missing), skip_reason="no_decoder")
            try:
                sha = self._hash(handle.fd, progress)
            except OSError as error:
                return self._failed(path, camera, "unreadable:" + hashlib.sha256(path.encode()).hexdigest(),
                                    stat.st_size, stat.st_mtime, f"unreadable: {error.strerror or error}", emit,
                                    transient=is_transient(error))
            known = store.clips.by_sha256(sha)
            if known is not None and known.path != path and not os.path.exists(known.path):
                store.clips.move(known.id, path)  # renamed (an uploader's temporary name)
            if known is not None and known.state != "decoding":
                return ClipOutcome(path, camera, "duplicate", clip_id=known.id)
            if store.ledger.recorded_error(sha, path, stat.st_size, stat.st_mtime):
                return ClipOutcome(path, camera, "duplicate")
            os.lseek(handle.fd, 0, os.SEEK_SET)
            source = os.fdopen(os.dup(handle.fd), "rb")
        with source:
            try:
                reader = ClipReader(source)
            except ClipError as error:
                clip_id = known.id if known else store.clips.begin({
                    "path": path, "sha256": sha, "camera": camera, "size": stat.st_size, "mtime": stat.st_mtime,
                    "media_type": media_type(path), "sample_rate": self.config.sample_rate,
                    "keyframes_only": int(self.config.keyframes_only), "started_at": format_utc(store.clock())})
                return self._failed(path, camera, sha, stat.st_size, stat.st_mtime, f"clip: {error}", emit,
                                    clip_id=clip_id)
            with reader:
                return self._sample(reader, path, camera, sha, stat, known.id if known else None, emit, progress)

    # ---- the samples ---------------------------------------------------------------------

    def _sample(self, reader: ClipReader, path: str, camera: str, sha: str, stat: os.stat_result,
                clip_id: int | None, emit: Callable[[FrameOutcome], object], progress: Callable[[], bool]) -> ClipOutcome:
        frames, store, config = self.frames, self.frames.store, self.config
        info = reader.info
        clock = frames.clocks.get(camera) or CameraClock(store.station_tz)
        reading = read_clip_time(info.metadata, stat.st_mtime, info.duration_s, clock, config.container_time)
        if reading.source == "mtime":
            log.info("clip %s: no creation time in its metadata; timed by its file (%s, less its %.1f s): "
                     "time_source mtime", path, datetime.fromtimestamp(stat.st_mtime).isoformat(timespec="seconds"),
                     info.duration_s or 0.0)
        start = reading.at
        if clip_id is None:
            clip_id = store.clips.begin({
                "path": path, "sha256": sha, "camera": camera, "size": stat.st_size, "mtime": stat.st_mtime,
                "media_type": media_type(path), "container": info.container, "codec": info.codec,
                "width": info.width, "height": info.height, "duration_s": info.duration_s, "fps": info.fps,
                "captured_at": format_utc(start), "time_source": reading.source,
                "sample_rate": config.sample_rate, "keyframes_only": int(config.keyframes_only),
                "started_at": format_utc(store.clock()),
            })
            done: set[int] = set()
        else:
            done = store.clips.offsets(clip_id)
            log.info("clip %s: resuming; %d sampled frame(s) already recorded", path, len(done))
        outcome = ClipOutcome(path, camera, "done", clip_id=clip_id, sampled=len(done), captured_at=start)
        stopped = False

        def tick() -> None:
            nonlocal stopped
            if not progress():
                stopped = True

        # reader.samples is a generator function (annotated Iterator): close() runs its cleanup
        # now, when the loop stops early, rather than whenever the generator is collected.
        samples = cast(Generator[Sample, None, None],
                       reader.samples(config.sample_rate, config.keyframes_only, config.max_samples, tick))
        for sample in samples:
            if stopped:
                break
            if round(sample.offset_s * 1000) in done:
                continue
            at = start + timedelta(seconds=sample.offset_s)
            try:
                committed = self._record(sample.picture, path, camera, sha, stat, clip_id, sample.offset_s, at,
                                         reading.source, reading.flags)
            except Exception as error:  # noqa: BLE001 - one bad sample must not crash-loop the service
                log.exception("clip %s: the frame at %.3f s failed", path, sample.offset_s)
                reader.fault = f"the frame at {sample.offset_s:.3f} s failed: {type(error).__name__}: {error}"
                break
            outcome.sampled += 1
            emit(committed)
            # Kept for after_clip (the committed rows), without the crops and the analysis that
            # the after_frame hooks have had: memory must not grow with the clip's length.
            committed.crops, committed.predictions = [], []
            outcome.frames.append(committed)
            if not progress():
                stopped = True
        samples.close()
        outcome.decoded = reader.decoded
        if stopped:
            outcome.status = "interrupted"
            log.info("clip %s: stopping after %d sampled frame(s); the next start resumes it", path, outcome.sampled)
            return outcome
        decoded_s = reader.last_time_s
        if reader.capped:
            log.warning("clip %s: [clips] max_samples (%d) reached at %.1f s; the rest is not sampled", path,
                        config.max_samples, decoded_s or 0.0)
        if reader.fault is not None:
            reason = f"clip: {reader.fault}; {outcome.sampled} sampled frame(s) before it counted"
            store.clips.finish(clip_id, "error", reason, reader.decoded, outcome.sampled, decoded_s)
            failed = self._failed(path, camera, sha, stat.st_size, stat.st_mtime, reason, emit, clip_id=clip_id,
                                  finish=False)
            failed.frames, failed.sampled, failed.decoded = outcome.frames, outcome.sampled, outcome.decoded
            failed.captured_at = start
            return failed
        store.clips.finish(clip_id, "done", None, reader.decoded, outcome.sampled, decoded_s)
        log.info("clip %s: %d frame(s) sampled of %d decoded (%s, %s, %.1f s)", path, outcome.sampled,
                 reader.decoded, info.container.split(",")[0], info.codec, decoded_s or 0.0)
        return outcome

    def _record(self, picture: Any, path: str, camera: str, sha: str, stat: os.stat_result, clip_id: int,
                offset_s: float, at: datetime, source: str, flags: tuple[str, ...]) -> FrameOutcome:
        """One sampled frame through the photo's analysis and the frame's one transaction."""
        frames = self.frames
        analyser = frames._analyser
        analyser.finder, analyser.classify_config = frames.finder, frames.classify_config
        context = frames._context(camera, at)
        # The sample's time: consecutive samples (0.5 s apart at 2/s) are compared for motion like
        # a burst's photos, so a clip is searched as its frames saved as photos would be.
        analysis = analyser.analyse_picture(picture, lambda _image: context, camera, lambda _image: at)
        birds = crops = None
        if analysis.birds is not None:
            birds = [BirdRecord((b.box.ymin, b.box.xmin, b.box.ymax, b.box.xmax), b.box.score, b.box.label,
                                b.predictions, b.decision, look_of(b.crop)) for b in analysis.birds]
            crops = [b.crop for b in analysis.birds]
        objects = [ObjectRecord(o.kind, (o.ymin, o.xmin, o.ymax, o.xmax), o.score, o.label) for o in analysis.others]
        record = FrameRecord(
            path=path, sha256=sample_key(sha, offset_s), camera=camera, size=stat.st_size, mtime=stat.st_mtime,
            captured_at=at, time_source=source, time_flags=flags, model_id=frames.classifier.model_id,
            inference_ms=analysis.inference_ms, predictions=analysis.predictions, decision=analysis.decision,
            birds=birds, objects=objects,
            detector_id=frames.finder.detector.spec.model_id if frames.finder is not None else None,
            clip_id=clip_id, clip_offset_s=offset_s, night=analysis.night)
        result = frames.store.record(record)
        return FrameOutcome(path, camera, "ok", result.frame_id, result.frame.species, result.frame.confidence,
                            predictions=list(analysis.predictions), commit=result, superseded=result.superseded,
                            birds=birds, crops=crops or [], clip_id=clip_id)

    def _failed(self, path: str, camera: str, key: str, size: int | None, mtime: float | None, message: str,
                emit: Callable[[FrameOutcome], object], *, transient: bool = False, clip_id: int | None = None,
                finish: bool = True) -> ClipOutcome:
        """A clip that cannot be (fully) read: its error row at its path (FrameProcessor._error:
        the photo's rules, retries of a transient error included), and its clip row finished as an
        error where there is one."""
        if clip_id is not None and finish:
            self.frames.store.clips.finish(clip_id, "error", message, 0, 0, None)
        outcome = self.frames._error(path, camera, key, size, mtime, message, transient=transient)
        outcome.clip_id = clip_id
        if outcome.committed:
            emit(outcome)
        status = {"error": "error", "retry": "retry"}.get(outcome.status, outcome.status)
        return ClipOutcome(path, camera, status, clip_id=clip_id, error=message,
                           error_outcome=outcome if outcome.committed or outcome.status == "retry" else None)

    @staticmethod
    def _hash(fd: int, progress: Callable[[], bool]) -> str:
        """sha256 of the whole file, read in chunks (a clip may be hundreds of MB: never all in memory)."""
        os.lseek(fd, 0, os.SEEK_SET)
        digest = hashlib.sha256()
        while True:
            chunk = os.read(fd, _HASH_CHUNK)
            if not chunk:
                return digest.hexdigest()
            digest.update(chunk)
            progress()
