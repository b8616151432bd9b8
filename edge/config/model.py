"""[model] section: which classifier to load and how to read its labels."""

from __future__ import annotations

from pydantic import Field

from edge.config.base import Section, TomlPath


class ModelConfig(Section):
    path: TomlPath | None = Field(
        default=None,
        description="A trainer bundle folder (model.tflite + labels.txt + manifest.json, from `trainer export`) "
                    "or a bare .tflite file; `edge run` and `edge check` refuse to start without one "
                    "(or `--model`)")
    labels: TomlPath | None = Field(
        default=None,
        description="A separate labels file: .txt (one label per line) or .csv (id,scientific_name,"
                    "common_name, as AIY's labelmap.csv). Unset: the bundle's labels, else the label file "
                    "embedded in the .tflite, else labels.txt, labelmap.csv or labels.csv beside it")
    no_bird_label: str | int | None = Field(
        default=None,
        description='The label (or output index) meaning "no bird": such frames are not counted (AIY: index '
                    '964, "background" in its labelmap.csv). Unset: the bundle manifest\'s value, else a '
                    "label called background, none, empty or the like")
    top_k: int = Field(
        default=5, ge=1, le=100,
        description="Predictions stored per frame (the best k labels with their scores); only the top-1 "
                    "decides the species")
    threads: int = Field(
        default=2, ge=1, le=64,
        description="CPU threads of the TFLite interpreter")
