"""[repeats] section: repeat-detection elimination, "things that never move are not birds"
(the rule: edge/detect/repeats.py; the memory of each camera's places: edge/store/repeats.py).

Only the detector route has boxes to compare, so without [detector] path this section does
nothing. The defaults follow MegaDetector's repeat detection elimination (IoU 0.9, 20
occurrences, boxes of at most a fifth of the frame) and add what an unattended station needs
before it may drop anything on its own: the same *look* (a bird perching at the same place
every day is a different picture each time; a rock is not) over several *days*.
"""

from __future__ import annotations

from pydantic import Field

from edge.config.base import Section


class RepeatsConfig(Section):
    enabled: bool = Field(
        default=True,
        description="Suppress a detection that recurs at the same place of a camera's frame with the same look "
                    "over many frames and days (a rock, a stump, a sign): recorded with flag `repeat`, never "
                    "counted. Needs [detector] path; `edge repeats list` and the web app's Repeats page show the "
                    "places, and a person may release one (`edge repeats release ID`)")
    iou_threshold: float = Field(
        default=0.9, gt=0.5, le=1.0,
        description="Boxes overlapping at least this much (intersection over union) are the same place "
                    "(MegaDetector's iouThreshold, 0.9)")
    min_similarity: float = Field(
        default=0.85, gt=0.0, le=1.0,
        description="How alike two detections at the same place must look to be the same thing: the correlation "
                    "of 16x16 grey thumbnails of their crops (1 = identical up to brightness and contrast). The "
                    "same patch of a real scene under other light, JPEG noise and a box a few pixels off scored "
                    "0.87 or more, two photos of one species (another bird or pose) 0.80 at most; lower it and "
                    "real birds may be taken for a rock, raise it and a rock is counted more often")
    min_repeats: int = Field(
        default=20, ge=2, le=100000,
        description="Detections of the same thing at the same place before it is suppressed "
                    "(MegaDetector's occurrenceThreshold, 20); the ones before are counted as usual")
    min_days: int = Field(
        default=3, ge=1, le=366,
        description="Distinct station-local days it must have been seen on as well, so that a bird sitting still "
                    "for an afternoon is never suppressed")
    max_box_area: float = Field(
        default=0.2, gt=0.0, le=1.0,
        description="Boxes larger than this fraction of the frame are never suppressed (MegaDetector's "
                    "maxSuspiciousDetectionSize, 0.2): a bird close to the lens fills the frame the same way "
                    "every time")
    forget_after_days: float = Field(
        default=30.0, gt=0.0, le=3660.0,
        description="A candidate place not seen again for this many days (capture time) is forgotten; suppressed "
                    "and released places are kept until a person changes them")
