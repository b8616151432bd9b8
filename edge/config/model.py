"""[model] section: which classifier to load and how to read its labels."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from edge.config.base import SECTION_CONFIG, TomlPath


class ModelConfig(BaseModel):
    model_config = SECTION_CONFIG

    # A trainer bundle folder (model.tflite + labels.txt + manifest.json) or a bare .tflite.
    path: TomlPath | None = None
    # Separate labels: .txt (one per line) or .csv (id,scientific_name,common_name as AIY's
    # labelmap.csv). Default: the bundle's labels, else the label file embedded in the .tflite.
    labels: TomlPath | None = None
    # The label (or output index) meaning "no bird" (AIY: index 964, "background" in its
    # labelmap.csv); default: the bundle manifest's value, else a label called background/none.
    no_bird_label: str | int | None = None
    top_k: int = Field(default=5, ge=1, le=100)
    threads: int = Field(default=2, ge=1, le=64)
