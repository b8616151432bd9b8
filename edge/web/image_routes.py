"""The pictures `edge web` serves: event snapshots, frames (with their boxes), crops, a repeat
place's picture and video clips, each by database id, never by a path from the request.

Why its own module: which file a picture comes from is its own question (inside a configured
camera folder, the archive, or a folder the database records; never a frame with a person in it
under [privacy] hide_people), separate from what the pages show; edge/web/images.py does the
decoding and the path checks, this module answers the requests and says at start which cameras'
pictures cannot be served.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from edge.config.cameras import CameraConfig
from edge.operate.snapshots import snapshot_folder
from edge.store import repeats as repeat_places
from edge.store.db import StoreError
from edge.web import images
from edge.web.queries import Reader
from edge.web.sessions import Context
from edge.web.site import Routes, Site

MAX_ROW_ID = 2**63 - 1  # SQLite's largest rowid
log = logging.getLogger(__name__)


def camera_folder(camera: CameraConfig) -> Path:
    """The folder of a configured camera: EdgeConfig's validation gives a live camera without
    `path` its default one, so every camera of a loaded config has a folder."""
    assert camera.path is not None  # filled in by EdgeConfig (edge/config/__init__.py)
    return Path(camera.path)


class ImageRoutes(Routes):
    """The picture handlers, and the folders pictures may be read from."""

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        self.snapshots = snapshot_folder(self.database)
        folders = [camera_folder(camera) for camera in self.config.cameras]
        if self.config.retention.archive_dir is not None:
            folders.append(Path(self.config.retention.archive_dir))
        self.frame_folders = folders
        self._unserved: set[str] = set()  # cameras whose missing pictures were logged

    async def img_snapshot(self, request: Request, ctx: Context) -> Response:
        def work(reader: Reader) -> Response:
            if self.config.privacy.hide_people and reader.snapshot_has_person(request.path_params["event_id"]):
                return self._private()
            path = images.snapshot_path(self.snapshots, reader.snapshot_name(request.path_params["event_id"]))
            if path is None:
                return Response("not found", 404)
            return Response(path.read_bytes(), media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})
        return self._read(request, ctx, work)

    async def img_frame(self, request: Request, ctx: Context) -> Response:
        if not self.web.frame_images:
            return Response("not found", 404)
        frame_id = request.path_params["frame_id"]
        if frame_id > MAX_ROW_ID:  # no such row, and past what SQLite binds (an OverflowError, a 500)
            return Response("not found", 404)
        boxes = request.query_params.get("boxes") == "1"

        def locate(reader: Reader) -> Any:
            if self.config.privacy.hide_people and reader.frame_has_person(frame_id):
                return self._private()
            row = reader.frame(frame_id)
            path = self._frame_path(row, reader)
            offset = row.get("clip_offset_s") if row else None
            if not boxes:
                return (path, [], [], offset)
            drawn = reader.frame_boxes(frame_id)
            return (path, drawn, [self._box_caption(box, ctx.taxa) for box in drawn], offset)
        found = self._read(request, ctx, locate)
        if isinstance(found, Response) or found[0] is None:
            return found if isinstance(found, Response) else Response("not found", 404)
        data = await run_in_threadpool(images.frame_jpeg, *found)
        return Response(data, media_type="image/jpeg") if data else Response("not found", 404)

    async def img_crop(self, request: Request, ctx: Context) -> Response:
        if not self.web.frame_images:
            return Response("not found", 404)

        def locate(reader: Reader) -> Any:
            detection = reader.detection(request.path_params["detection_id"])
            if detection is None:
                return (None, None)
            if self.config.privacy.hide_people and reader.frame_has_person(detection["frame_id"]):
                return self._private()
            frame = reader.frame(detection["frame_id"])
            return (self._frame_path(frame, reader), detection, frame.get("clip_offset_s") if frame else None)
        found = self._read(request, ctx, locate)
        if isinstance(found, Response) or found[0] is None:
            return found if isinstance(found, Response) else Response("not found", 404)
        data = await run_in_threadpool(images.crop_jpeg, *found)
        return Response(data, media_type="image/jpeg") if data else Response("not found", 404)

    async def clip_file(self, request: Request, ctx: Context) -> Response:
        """A video clip as its camera wrote it, for the event page's <video> (the browser plays
        what it can: H.264 MP4 everywhere, H.265 or MJPEG AVI seldom; the sampled frames above it
        are shown either way). By id, inside the camera folders or the archive, like a frame;
        never a clip with a person in it under [privacy] hide_people."""
        if not self.web.frame_images:
            return Response("not found", 404)
        clip_id = request.path_params["clip_id"]
        if clip_id > MAX_ROW_ID:
            return Response("not found", 404)

        def locate(reader: Reader) -> Any:
            row = reader.clip(clip_id)
            if row is None or (self.config.privacy.hide_people and row["has_person"]):
                return None
            path = self._frame_path(row, reader)
            return (path, row["media_type"]) if path is not None else None
        found = self._read(request, ctx, locate)
        if isinstance(found, Response):
            return found
        if found is None:
            return Response("not found", 404)
        return FileResponse(found[0], media_type=found[1], headers={"Cache-Control": "private, max-age=300"})

    async def img_repeat(self, request: Request, ctx: Context) -> Response:
        """A place's picture: its box cut from the frame of its latest detection (ids only, the
        frame read inside a camera folder or the archive, as every picture)."""
        if not self.web.frame_images:
            return Response("not found", 404)

        def locate(reader: Reader) -> Any:
            place = repeat_places.get_place(reader.conn, request.path_params["place_id"])
            detection = reader.detection(place["detection_id"]) if place and place["detection_id"] else None
            if detection is None:
                return (None, None)
            return (self._frame_path(reader.frame(detection["frame_id"]), reader), place)
        found = self._read(request, ctx, locate)
        if isinstance(found, Response) or found[0] is None:
            return found if isinstance(found, Response) else Response("not found", 404)
        data = await run_in_threadpool(images.crop_jpeg, *found)
        return Response(data, media_type="image/jpeg") if data else Response("not found", 404)

    @staticmethod
    def _private() -> Response:
        """A frame with a person, [privacy] hide_people: a placeholder, never the picture."""
        return Response(images.private_placeholder(), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=300", "X-Trailcam-Private": "person"})

    def _frame_path(self, row: dict | None, reader: Reader) -> Path | None:
        """The frame's file, when it lies inside a folder the station owns: a configured camera
        folder or archive, or one the database records (edge/store/folders.py: `edge web --db`
        alone). A frame whose file cannot be served is logged, once per camera, saying why."""
        if row is None:
            return None
        folders = [*self.frame_folders, *(f.path for f in reader.picture_folders())]
        for candidate in (row.get("stored_path"), row.get("path")):
            if candidate:
                found = images.inside(candidate, folders)
                if found is not None:
                    return found
        camera = str(row.get("camera"))
        if camera not in self._unserved:
            self._unserved.add(camera)
            log.warning("pictures of camera %s cannot be served: frame %s's file %s is gone or outside the "
                        "known picture folders (%s); the pages show a placeholder", camera, row.get("id"),
                        row.get("stored_path") or row.get("path"), ", ".join(map(str, folders)) or "none")
        return None

    def _box_caption(self, box: dict, taxa: dict[str, Any]) -> str:
        """A box's caption on the frame: its rank and the name it counts under in its visit (as
        the visit's title and the frame's caption name it), with the classifier's confidence."""
        counted = box.get("counted")
        name = self.readable(counted, taxa) if counted else box.get("reason") or "not counted"
        confidence = f" {100 * box['confidence']:.0f} %" if counted and box.get("confidence") is not None else ""
        return f"{box['rank']}: {name}{confidence}"

    def report_pictures(self) -> None:
        """Say at start where pictures are served from and which cameras' pictures cannot be
        (no folder known to the configuration or the database, or a folder that is missing):
        those show a placeholder instead of a picture."""
        try:
            reader = self._reader()
        except StoreError as error:
            log.info("pictures: the database cannot be read yet (%s)", error)
            return
        try:
            recorded = reader.picture_folders()
            cameras = reader.cameras()
        finally:
            reader.conn.close()
        known = {camera.name: camera_folder(camera) for camera in self.config.cameras}
        for folder in recorded:
            if folder.kind == "camera" and folder.name is not None:
                known.setdefault(folder.name, folder.path)
        archive = self.frame_folders[len(self.config.cameras):] + [f.path for f in recorded if f.kind == "archive"]
        log.info("pictures are served from: %s", ", ".join(
            [f"{name} {path}" for name, path in sorted(known.items())] + [f"archive {path}" for path in archive]) or "nowhere")
        for camera in cameras:
            if camera not in known:
                log.warning("pictures of camera %s cannot be served: its folder is not in the database or the "
                            "configuration (the daemon records it when it starts; or give --config with its "
                            "[[cameras]]); its pages show a placeholder", camera)
            elif not known[camera].is_dir():
                log.warning("pictures of camera %s cannot be served: its folder %s is missing; its pages show a "
                            "placeholder", camera, known[camera])
