"""Video clips made from real photographs for tests and the clip benchmark: birds25 photos moving
over a real bird-free trail-camera frame (../shared/data/trailcam-nobird), encoded with PyAV.

    moving_frames(birds25_dir, backdrop, plan, size, fps) -> list[(PIL image, birds in it)]
    write_clip(path, pictures, fps, codec="h264", container=None, metadata=None, gop=None)

A plan is a list of segments (seconds, [(photo, (left, top) at the start, (left, top) at the
end, side)]): in each segment every listed bird slides linearly from its start to its end
position, so consecutive frames differ as in a real clip (and a detector must find the bird
anew in each)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from benchmarks.scenes import compose

Point = tuple[int, int]


@dataclass(frozen=True)
class Move:
    """One bird in a segment: its photo, where it starts and ends (top-left, pixels), its side."""

    photo: Path
    start: Point
    end: Point
    side: int = 300


@dataclass(frozen=True)
class Segment:
    seconds: float
    birds: Sequence[Move] = ()


def moving_frames(birds25_dir: Path, backdrop: Image.Image, plan: Sequence[Segment], size: tuple[int, int] = (1280, 720),
                  fps: int = 10) -> list[tuple[Image.Image, list[str]]]:
    """Every frame of the clip the plan describes, with the species (folder names) in it."""
    frames = []
    still = backdrop.convert("RGB").resize(size, Image.BICUBIC)
    for segment in plan:
        count = max(1, round(segment.seconds * fps))
        for i in range(count):
            t = i / max(1, count - 1)
            if not segment.birds:
                frames.append((still.copy(), []))
                continue
            boxes = []
            for move in segment.birds:
                left = round(move.start[0] + (move.end[0] - move.start[0]) * t)
                top = round(move.start[1] + (move.end[1] - move.start[1]) * t)
                boxes.append((left, top, left + move.side, top + move.side))
            scene = compose(birds25_dir, size, len(segment.birds), (0.05,), seed=i,
                            sources=[m.photo for m in segment.birds], backdrop=still, boxes=boxes)
            frames.append((scene.image, [b.species for b in scene.birds]))
    return frames


def write_clip(path: Path, pictures: Sequence[Image.Image], fps: int = 10, codec: str = "h264",
               container: str | None = None, metadata: Mapping[str, str] | None = None,
               gop: int | None = None) -> Path:
    """Encode `pictures` as a clip at `path` (the container from its suffix unless given)."""
    import av

    output = av.open(str(path), mode="w", format=container)
    if metadata:
        output.metadata.update(dict(metadata))
    stream = output.add_stream(codec, rate=fps)
    width, height = pictures[0].size
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    if gop is not None:
        stream.codec_context.gop_size = gop
    if codec in ("h264", "libx264"):
        stream.options = {"preset": "ultrafast", "crf": "23"}
    for picture in pictures:
        for packet in stream.encode(av.VideoFrame.from_image(picture.convert("RGB"))):
            output.mux(packet)
    for packet in stream.encode():
        output.mux(packet)
    output.close()
    return path
