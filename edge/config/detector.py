"""[detector] section: find the birds in a wide frame before naming them (edge/detect/).

Unset `path` keeps the whole-frame route exactly as before: the frame is shrunk to the
classifier's input and counts as one bird at most. That is right for a photo-booth feeder
camera whose bird fills the picture, and wrong for a trail camera's wide scene, where a bird is
a few percent of the frame and two or three may be in it.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from edge.config.base import Section, TomlPath

TILES_PATTERN = re.compile(r"^(auto|off|[1-9][0-9]?x[1-9][0-9]?)$")


class DetectorConfig(Section):
    path: TomlPath | None = Field(
        default=None,
        description="An object detector: a .tflite (TFLite), a .onnx (ONNX Runtime, the `onnx` extra: "
                    "pip install 'trailcam[onnx]'), or a folder holding one: the TF object-detection "
                    "post-processing outputs (SSD, EfficientDet-Lite), a YOLO-style raw output "
                    "(YOLOv5/v8/v9, MegaDetector v5a and v6 exports), RT-DETR, or an end-to-end [1,N,6] "
                    "output with NMS inside. Unset: no detector, each frame is classified "
                    "whole, as a feeder camera whose bird fills the frame wants (`edge models pull "
                    "ssd-mobilenet-v1-coco` fetches one)")
    labels: TomlPath | None = Field(
        default=None,
        description="The detector's labels file, one label per line. Unset: labels.txt or labelmap.txt "
                    "beside the model, else the labels embedded in it (a .tflite's label file, an ONNX "
                    "export's `names` metadata), else animal, person, vehicle for a .onnx whose name says "
                    "MegaDetector")
    label_offset: int | None = Field(
        default=None, ge=0, le=10,
        description="Line of the labels file = class index + this. Unset: 1 when the file's first line is "
                    "\"???\" or \"background\" (the TF model zoo's `class + 1` convention), else 0")
    bird_labels: list[str] = Field(
        default_factory=lambda: ["bird"], min_length=1,
        description='Detector labels that are a bird (case-insensitive); MegaDetector users write ["animal"]. '
                    "Other detections (people, vehicles, cats) are ignored")
    person_labels: list[str] = Field(
        default_factory=lambda: ["person"],
        description="Detector labels that are a person (case-insensitive), used only where the labels have "
                    "them (MegaDetector's \"person\"): never classified nor counted, the frame is recorded "
                    "as one with a person (Camtrap DP `human`; [privacy] hide_people keeps its picture "
                    "private). COCO detectors (SSD MobileNet, EfficientDet-Lite) have a \"person\" class too. "
                    "[] records none")
    vehicle_labels: list[str] = Field(
        default_factory=lambda: ["vehicle"],
        description="Detector labels that are a vehicle (case-insensitive), used only where the labels have "
                    "them (MegaDetector's \"vehicle\"): never classified nor counted, the frame is recorded "
                    "as one with a vehicle (Camtrap DP `vehicle`). [] records none")
    layout: Literal["auto", "ssd", "yolov5", "yolov8", "rtdetr", "end2end"] = Field(
        default="auto",
        description='The detector\'s output layout. "auto": told by the output shapes, refused where they fit '
                    'two (a [1,N,6] output is end-to-end or, with 2 labels, YOLOv8); "ssd": the TF '
                    'post-processing outputs; "yolov8": [1,4+C,N] or [1,N,4+C] (YOLOv8/v9, MegaDetector v6 '
                    'yolov9); "yolov5": [1,N,5+C] with objectness (MegaDetector v5a); "rtdetr": RT-DETR '
                    "(Ultralytics [1,300,4+C], or RT-DETRv2's labels/boxes/scores: MegaDetector v6 Apache); "
                    '"end2end": [1,N,6] rows x1, y1, x2, y2, score, class with NMS inside the model')
    input_size: int | None = Field(
        default=None, ge=32, le=4096,
        description="Input side in pixels for an ONNX detector exported with dynamic input dimensions. Unset: "
                    "the model's `imgsz` metadata, else 640 (MegaDetector v6 and YOLO models); a fixed-size "
                    "model always uses its own size")
    threshold: float = Field(
        default=0.5, gt=0.0, le=1.0,
        description="Detector score a box needs to count as a bird; a frame with no box above it is empty: "
                    "recorded as such and not classified")
    resize: Literal["auto", "letterbox", "stretch"] = Field(
        default="auto",
        description='How a frame (and each tile) is fitted to the detector\'s input. "letterbox": scaled '
                    "whole, aspect ratio kept, padded with grey (114) around it, as YOLO-family models "
                    "(YOLOv5/v8, MegaDetector) are trained; \"stretch\": resized to the input, aspect ratio "
                    "lost, as the TF SSD and EfficientDet-Lite models are trained; \"auto\": letterbox for a "
                    "YOLO-style output, stretch for the SSD post-processing outputs. Boxes are mapped back "
                    "to the frame either way")
    tiles: str = Field(
        default="auto",
        description='"auto": the full frame plus overlapping tiles chosen from the frame size against the '
                    'detector\'s input (small birds are found in the tiles); "off": the full frame only; '
                    '"CxR", e.g. "3x2": that grid of tiles plus the full frame')
    tile_overlap: float = Field(
        default=0.2, ge=0.0, lt=0.5,
        description="Fraction of a tile shared with its neighbour, so a bird on a tile border is whole in one")
    iou_threshold: float = Field(
        default=0.5, gt=0.0, le=1.0,
        description="Boxes of the full frame and the tiles that overlap more than this (intersection over "
                    "union) are one bird")
    containment: float = Field(
        default=0.8, gt=0.0, le=1.0,
        description="A box lying at least this fraction inside a bigger box is part of that bird (a tile "
                    "that sees half a bird calls it a bird) and is dropped; a lower value also drops a bird "
                    "sitting partly in front of a bigger one")
    crop_margin: float = Field(
        default=0.15, ge=0.0, le=1.0,
        description="Margin around each box, as a fraction of its longer side, before the square crop the "
                    "classifier sees")
    banner: Literal["auto", "off"] = Field(
        default="auto",
        description='"auto": find the information strip trail cameras burn into the top or bottom rows '
                    "(make, temperature, moon, date and time), learn it per camera over a few frames, "
                    "and keep it from the detector and its tiles (the picture is searched without "
                    'it; no box lies in it); "off": the detector sees the whole frame')
    threads: int = Field(
        default=2, ge=1, le=64,
        description="CPU threads of the detector's runtime (TFLite interpreter or ONNX Runtime session)")
    motion: Literal["auto", "off"] = Field(
        default="auto",
        description='"auto": a frame taken within motion_window_s of its camera\'s previous frame (a burst) '
                    "is compared with it; the regions that moved, and where the previous frame's birds were, "
                    "are searched at full resolution instead of the tiles (a still frame costs one detector "
                    'pass); the first frame of a burst is searched as without motion. "off": the full frame '
                    "and its tiles, every frame")
    motion_window_s: float = Field(
        default=5.0, gt=0.0, le=3600.0,
        description="The longest time between two frames of a camera (by their capture times) that are "
                    "compared for motion")
    motion_threshold: float = Field(
        default=4.0, ge=1.0, le=50.0,
        description="How many times the frame's noise a pixel must change by to count as motion (after the "
                    "global brightness change of a flash or exposure step is taken out); lower finds fainter "
                    "motion and more leaves")
    motion_max_regions: int = Field(
        default=4, ge=1, le=16,
        description="More motion regions than this (wind in the foliage) and the frame is searched with its "
                    "tiles instead")
    night_threshold: float | None = Field(
        default=None, gt=0.0, le=1.0,
        description="Detector score a box needs on an infrared night frame (monochrome, lit by the camera's "
                    "infrared LEDs; the frame's `night` flag). Unset: `threshold`, as by day")

    @field_validator("tiles")
    @classmethod
    def _tiles(cls, value: Any) -> str:
        if not isinstance(value, str) or not TILES_PATTERN.match(value.strip().lower()):
            raise ValueError(f'expected "auto", "off" or a grid "CxR" such as "3x2", got {value!r}')
        return value.strip().lower()

    @property
    def enabled(self) -> bool:
        return self.path is not None
