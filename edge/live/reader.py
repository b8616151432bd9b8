"""One live camera's stream: connect, decode, gate, sample; reconnect with backoff when it fails.

A thread per camera (PyAV, imported here only, releases the GIL while FFmpeg reads and
decodes). It never blocks the daemon: frames go to the FrameWriter's bounded hand-off, which
drops and counts rather than waits; the watchdog is fed by the processing loop, which this thread
never holds up.

Connection: `av.open(url, options, timeout=(connect_timeout_s, read_timeout_s))`; RTSP over
`transport` (TCP by default). A stream that ends, fails or delivers nothing for read_timeout_s is
reconnected after reconnect_min_s, doubling with each failed attempt up to reconnect_max_s; a
session that delivered frames starts the backoff again from the minimum. Every state change is
logged (WARNING when the stream is lost or refused, INFO when it is back) and reported by
`status()` (`edge status`, status.json, the metrics): connected, connecting, or reconnecting with
the next try in N seconds.

Frames are timed by this device's clock when they are decoded (an IP camera's stream time
is not a wall clock, and restarts at every reconnect). The motion gate looks at `motion_fps`
frames a second; a motion episode opens when it sees motion and closes `tail_s` after the last
motion (or after `max_episode_s`, when the background is learnt anew). During an episode
`sample_fps` frames a second are handed to the writer, each with the episode's number.

The URL is shown only redacted (edge.redact): in the log, in status and in errors, which FFmpeg
words with the URL it failed on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from edge.config.cameras import CameraConfig
from edge.live.motion import MotionGate
from edge.live.writer import FrameWriter, Sample, utc_text
from edge.redact import redact_text, redact_url, url_secrets

log = logging.getLogger(__name__)

STATES = ("starting", "connecting", "connected", "reconnecting", "stopped")


def grey_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """The motion gate's frame size: `target_width` wide (never wider than the frame), the
    frame's aspect, even numbers (what swscale likes)."""
    out_w = max(2, min(target_width, width) // 2 * 2)
    out_h = max(2, round(out_w * height / max(1, width) / 2) * 2)
    return out_w, out_h


class StreamReader:
    """Reads one `[[cameras]]` table with a `source`; hands sampled frames to `writer`."""

    def __init__(self, camera: CameraConfig, writer: FrameWriter, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        assert camera.source is not None
        self.camera = camera.name
        self._url = camera.source
        self.shown = redact_url(camera.source)
        self._secrets = url_secrets(camera.source)
        self.live = camera.live
        self.writer = writer
        self.clock, self.monotonic = clock, monotonic
        self.gate = MotionGate.of(camera.live)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"trailcam-live-{camera.name}", daemon=True)
        # What status() reports.
        self.state = "starting"
        self.next_try_at: float | None = None  # monotonic
        self.last_error: str | None = None
        self.connects = 0
        self.reconnects = 0  # sessions that ended and attempts that failed, since start
        self.failed_attempts = 0  # attempts since the stream was last delivering (0 while it does)
        self.frames_read = 0
        self.frames_gated = 0
        self.episodes = 0
        self.connected_since: str | None = None
        self.last_frame_at: str | None = None
        self.video: str | None = None  # codec and size, as the stream announced them
        # The episode in progress (monotonic times).
        self.in_episode = False
        self._episode_start = 0.0
        self._last_motion = 0.0
        self._last_gate = float("-inf")
        self._last_sample = float("-inf")
        self._episode_samples = 0
        self._grey: tuple[int, int] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to end; a read in progress ends within read_timeout_s at most."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout if timeout is not None else self.live.read_timeout_s + 5)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        """This camera's stream as `edge status` shows it (the URL redacted)."""
        with self._lock:
            next_in = (round(max(0.0, self.next_try_at - self.monotonic()), 1)
                       if self.state == "reconnecting" and self.next_try_at is not None else None)
            data = {"camera": self.camera, "source": self.shown, "state": self.state, "next_try_in_s": next_in,
                    "last_error": self.last_error, "connects": self.connects,
                    "reconnects": self.reconnects, "failed_attempts": self.failed_attempts,
                    "connected_since": self.connected_since, "last_frame_at": self.last_frame_at,
                    "video": self.video, "frames_read": self.frames_read, "frames_gated": self.frames_gated,
                    "motion": round(self.gate.last_changed, 4), "episodes": self.episodes,
                    "in_episode": self.in_episode}
        writer = self.writer.figures()
        data.update(frames_written=writer["written"], frames_dropped=writer["dropped"],
                    last_written_at=writer["last_written_at"])
        return data

    # -- the thread -------------------------------------------------------------------------
    def _set(self, **values: Any) -> None:
        with self._lock:
            for key, value in values.items():
                setattr(self, key, value)

    def _redact(self, text: str) -> str:
        return redact_text(text, self._secrets)

    def _run(self) -> None:
        delay = self.live.reconnect_min_s
        while not self._stop.is_set():
            self._set(state="connecting", next_try_at=None)
            delivered = False
            try:
                delivered = self._read_once()
                error = "the stream ended"
            except Exception as failure:  # noqa: BLE001 - any failure of one session means: reconnect
                error = self._redact(f"{type(failure).__name__}: {failure}")
            self._end_episode("the stream stopped")
            if self._stop.is_set():
                break
            if delivered:
                delay = self.live.reconnect_min_s
            with self._lock:
                self.failed_attempts = 0 if delivered else self.failed_attempts + 1
                self.reconnects += 1
                self.state, self.last_error = "reconnecting", error
                self.next_try_at = self.monotonic() + delay
                self.connected_since = None
                attempts = self.failed_attempts
            if delivered:
                log.warning("camera %s: stream %s lost (%s); reconnecting in %.3g s", self.camera, self.shown,
                            error, delay)
            else:
                log.warning("camera %s: cannot read stream %s (%s); attempt %d failed, next try in %.3g s",
                            self.camera, self.shown, error, attempts, delay)
            self._stop.wait(delay)
            delay = min(delay * 2, self.live.reconnect_max_s)
        self._set(state="stopped", next_try_at=None)

    def _open(self):
        """The stream opened by PyAV (imported here: the daemon without live cameras never loads it)."""
        import av

        options = {}
        if self._url.lower().startswith("rtsp"):
            options["rtsp_transport"] = self.live.transport
        return av.open(self._url, options=options, timeout=(self.live.connect_timeout_s, self.live.read_timeout_s))

    def _read_once(self) -> bool:
        """One session: open, decode until the stream ends or a stop; True when it delivered frames."""
        container = self._open()
        delivered = False
        try:
            if not container.streams.video:
                raise ValueError("the stream has no video")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            context = stream.codec_context
            rate = stream.average_rate or stream.guessed_rate
            video = f"{context.name} {context.width}x{context.height}" + (f" {float(rate):.3g} fps" if rate else "")
            self.gate.reset()
            for frame in container.decode(stream):
                if not delivered:
                    delivered = True
                    with self._lock:
                        self.state, self.connects, self.video = "connected", self.connects + 1, video
                        self.connected_since = utc_text(datetime.fromtimestamp(self.clock(), UTC))
                        after, self.failed_attempts = self.failed_attempts, 0
                    log.info("camera %s: reading %s (%s)%s", self.camera, self.shown, video,
                             f"; back after {after} failed attempt(s)" if after else "")
                self._frame(frame)
                if self._stop.is_set():
                    break
        finally:
            container.close()
        return delivered

    def _frame(self, frame: Any) -> None:
        """One decoded frame: count it, gate it (motion_fps a second), sample it in an episode."""
        wall = self.clock()
        now = self.monotonic()
        with self._lock:
            self.frames_read += 1
            self.last_frame_at = utc_text(datetime.fromtimestamp(wall, UTC))
        live = self.live
        if now - self._last_gate >= 1.0 / live.motion_fps:
            self._last_gate = now
            if self._grey is None:
                self._grey = grey_size(frame.width, frame.height, live.motion_width)
            width, height = self._grey
            grey = frame.reformat(width=width, height=height, format="gray").to_ndarray()
            moving = self.gate.moving(grey)
            with self._lock:
                self.frames_gated += 1
            if moving:
                self._last_motion = now
                if not self.in_episode:
                    self._begin_episode(now)
            elif self.in_episode and now - self._last_motion > live.tail_s:
                self._end_episode(f"no motion for {live.tail_s:g} s")
            if self.in_episode and now - self._episode_start > live.max_episode_s:
                self._end_episode(f"longer than max_episode_s = {live.max_episode_s:g}; background learnt anew")
                self.gate.reset()
        if self.in_episode and now - self._last_sample >= 1.0 / live.sample_fps:
            self._last_sample = now
            self._episode_samples += 1
            self.writer.offer(Sample(datetime.fromtimestamp(wall, UTC), self.episodes, frame))

    def _begin_episode(self, now: float) -> None:
        with self._lock:
            self.episodes += 1
            self.in_episode = True
        self._episode_start = now
        self._last_sample = float("-inf")  # the frame that showed the motion is the first one written
        self._episode_samples = 0
        log.info("camera %s: motion (episode %d: %.1f %% of the picture changed)", self.camera, self.episodes,
                 100 * self.gate.last_changed)

    def _end_episode(self, why: str) -> None:
        if not self.in_episode:
            return
        self._set(in_episode=False)
        log.info("camera %s: episode %d over after %.0f s (%s): %d frame(s) sampled", self.camera, self.episodes,
                 self.monotonic() - self._episode_start, why, self._episode_samples)
