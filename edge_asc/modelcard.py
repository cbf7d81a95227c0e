"""The metadata contract between training and the app, stored inside the ONNX file.

The model file is the single source of truth: labels, front-end, normalisation, window, members,
complexity and provenance all travel in `metadata_props` under one key as JSON, so a model never
needs a sidecar file. Training writes it (with the `onnx` package); the app reads it back through
onnxruntime alone, so the live side does not need `onnx` installed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from edge_asc.errors import EdgeAscError
from edge_asc.features import FrontEndConfig

FORMAT_VERSION = 1
METADATA_KEY = "edge_asc.card"


@dataclass
class ModelCard:
    """Everything the live side must agree on, and what a user needs to trust the model."""

    name: str
    labels: list[str]
    frontend: FrontEndConfig
    norm_mean: list[float]  # per mel band, subtracted before the model
    norm_std: list[float]  # per mel band, divided after the mean
    window_frames: int  # model input width in frames (51 = 1 s)
    format_version: int = FORMAT_VERSION
    quantization: str = "fp32"
    members: list[dict[str, Any]] = field(default_factory=list)
    parameters: int = 0
    macs: int = 0  # per window, of the fused (deduplicated) graph
    file_size_bytes: int = 0
    training: dict[str, Any] = field(default_factory=dict)  # data, folds, accuracy, timings
    pipeline_version: str = ""
    license: str = ""
    description: str = ""

    @property
    def window_seconds(self) -> float:
        return (self.window_frames - 1) * self.frontend.hop_length / self.frontend.sample_rate

    def normalise(self, windows: np.ndarray) -> np.ndarray:
        """(n, 1, n_mels, frames) log-mel -> the model's input scale, float32."""
        mean = np.asarray(self.norm_mean, dtype=np.float32)[:, None]
        std = np.asarray(self.norm_std, dtype=np.float32)[:, None]
        return ((windows - mean) / std).astype(np.float32, copy=False)

    def to_json(self) -> str:
        data = asdict(self)
        data["frontend"] = self.frontend.to_dict()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise EdgeAscError(f"{source}: model card metadata is not valid JSON ({err})") from err
        if not isinstance(data, dict):
            raise EdgeAscError(f"{source}: model card metadata is not a JSON object")
        version = data.get("format_version")
        if not isinstance(version, int):
            raise EdgeAscError(f"{source}: model card has no format_version")
        if version > FORMAT_VERSION:
            raise EdgeAscError(
                f"{source}: model format version {version} is newer than this edge-asc reads "
                f"({FORMAT_VERSION}); upgrade edge-asc"
            )
        # Fields added later within one format version are informational: skip what we don't know.
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        try:
            data["frontend"] = FrontEndConfig.from_dict(data["frontend"])
            card = cls(**data)
        except (KeyError, TypeError, ValueError) as err:
            raise EdgeAscError(f"{source}: model card is incomplete or invalid ({err})") from err
        n_mels = card.frontend.n_mels
        if len(card.labels) < 2 or len(card.norm_mean) != n_mels or len(card.norm_std) != n_mels:
            raise EdgeAscError(f"{source}: model card labels or normalisation are inconsistent")
        return card


def attach(model: Any, card: ModelCard) -> None:
    """Write the card into an onnx.ModelProto's metadata_props (replacing an older card)."""
    keep = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    prop = model.metadata_props.add()
    prop.key, prop.value = METADATA_KEY, card.to_json()


def save(model: Any, card: ModelCard, path: Any) -> int:
    """Save with the card attached; the card's file_size_bytes is the final file's exact size.

    The size is part of the file it describes, so iterate until writing the size changes nothing
    (two or three rounds: only the number's digit count can move it).
    """
    import onnx  # training-side only

    size = -1
    for _ in range(5):
        card.file_size_bytes = max(size, 0)
        attach(model, card)
        data = model.SerializeToString()
        if len(data) == size:
            break
        size = len(data)
    with open(path, "wb") as fh:
        fh.write(data)
    onnx.checker.check_model(str(path))
    return size


def from_metadata(metadata: dict[str, str], source: str) -> ModelCard:
    if METADATA_KEY not in metadata:
        raise EdgeAscError(f"{source}: not an edge-asc model (no '{METADATA_KEY}' metadata)")
    return ModelCard.from_json(metadata[METADATA_KEY], source)
