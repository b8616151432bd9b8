"""A clip's memory is bounded by one sample, not by its length: the sampled frames' crops reach
the after_frame hooks (snapshots) as they commit, and are not kept until the clip ends (the clip
benchmark found the daemon's peak RSS growing with the clip's length before this was so)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from edge.config import load_config
from edge.daemon.clips import ClipProcessor
from edge.daemon.wiring import build
from tests.edge.daemon.clips.conftest import FPS, write_clip, write_config


def test_committed_samples_hand_their_crops_to_the_hooks_and_keep_none(
        tmp_path: Path, goldfinch_pictures, aiy_model_dir: Path, ssd_detector_dir: Path) -> None:
    camera = tmp_path / "feeder"
    camera.mkdir()
    clip = write_clip(camera / "CLIP0001.MP4", goldfinch_pictures, FPS)
    os.utime(clip, (time.time() - 60, time.time() - 60))  # settled
    config = load_config(write_config(tmp_path / "edge.toml", camera, tmp_path / "edge.db", aiy_model_dir,
                                      ssd_detector_dir), environ={})
    daemon = build(config, once=True, field=False)
    daemon.start()
    try:
        crops_seen: list[int] = []
        outcome = ClipProcessor(daemon.processor, config.clips, {"feeder": 1.0}).process(
            str(clip), "feeder", lambda committed: crops_seen.append(len(committed.crops)))
    finally:
        daemon.stop()
    assert outcome.status == "done", outcome.error
    assert len(crops_seen) == outcome.sampled == 6  # 3 s at 2 a second
    assert sum(crops_seen) >= 5  # the goldfinch's crop reached the hooks in (nearly) every sample
    assert [len(f.crops) for f in outcome.frames] == [0] * 6
    assert all(f.commit is not None for f in outcome.frames)  # what after_clip needs is kept
