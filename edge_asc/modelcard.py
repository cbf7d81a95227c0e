"""The metadata contract between training and the app, stored inside the ONNX file.

The model file is the single source of truth: labels, front-end, normalisation, window, members,
complexity and provenance all travel in `metadata_props` under one key as JSON, so a model never
needs a sidecar file. Training writes it (with the `onnx` package); the app reads it back through
onnxruntime alone, so the live side does not need `onnx` installed.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from edge_asc.errors import EdgeAscError
from edge_asc.features import FrontEndConfig

FORMAT_VERSION = 1
METADATA_KEY = "edge_asc.card"
# What a window or clip is called when it is not a class: too quiet to be anything, or no class
# probable enough. Reserved, so no model may name a class either.
SILENCE = "silence"
UNCERTAIN = "uncertain"
# A window whose RMS level is below this is silence. Measured on the shared data: the quietest
# UrbanSound8K window the shipped model classifies correctly is at -81.4 dBFS, the quietest TUT
# scene window at -55.4 dBFS; -90 dBFS is about one least significant bit of 16-bit audio.
DEFAULT_SILENCE_DBFS = -90.0
MIN_SILENCE_DBFS = -200.0  # below the -120 dBFS reported for digital zeros: never silence
# Bounds that a card's window and labels must respect (see ModelCard.check).
MAX_LABELS = 1000
MAX_WINDOW_FRAMES = 10000
MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS = 0.05, 60.0
# The shipped card is ~3 KB. A far larger one is not a card: it only slows every reader down
# (`info` took minutes to print a 50 MB description) and holds memory for the whole run.
MAX_CARD_CHARS = 1 << 20
# The normalisation runs in float32, as the graph does.
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


def check_silence_dbfs(value: object, what: str = "silence_dbfs") -> float:
    """The level as a float, or ValueError: finite and in [MIN_SILENCE_DBFS, 0] dBFS."""
    if isinstance(value, (int, float)) and _is_number(value) and MIN_SILENCE_DBFS <= value <= 0:
        return float(value)
    raise ValueError(f"{what} must be a level in [{MIN_SILENCE_DBFS:g}, 0] dBFS, not {value!r}")


def _has_control(text: str) -> bool:
    """A C0/C1 control character (newline, ESC, DEL ...): labels and the name go into one-line
    outputs, the CSV log and the journal, where one would split a line or drive a terminal."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def _is_number(value: object) -> bool:
    """A finite real number; bools are ints to Python but never a level or a count here."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


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
    silence_dbfs: float | None = None  # None: DEFAULT_SILENCE_DBFS; older cards have none

    @property
    def window_seconds(self) -> float:
        return (self.window_frames - 1) * self.frontend.hop_length / self.frontend.sample_rate

    def silence_level(self, override: float | None = None) -> float:
        """The level below which a window is silence: the option, else the card's, else -90."""
        if override is not None:
            return check_silence_dbfs(override)
        return DEFAULT_SILENCE_DBFS if self.silence_dbfs is None else float(self.silence_dbfs)

    def check(self) -> None:
        """ValueError naming the first field that cannot be right, whatever JSON put there.

        The card drives the front-end and the reading of the outputs, so a wrong type or an
        absurd value must stop the load instead of crashing or misleading later.
        """
        labels = self.labels
        if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
            raise ValueError("labels must be a list of non-empty strings")
        if not 2 <= len(labels) <= MAX_LABELS or len(set(labels)) != len(labels):
            raise ValueError(f"labels must be 2 to {MAX_LABELS} distinct names")
        if any(_has_control(x) for x in labels):
            raise ValueError("labels must hold no control characters (newline, ESC, ...)")
        reserved = {SILENCE, UNCERTAIN} & set(labels)
        if reserved:
            raise ValueError(f"label {sorted(reserved)[0]!r} is reserved by edge-asc")
        n_mels = self.frontend.n_mels
        for name in ("norm_mean", "norm_std"):
            values = getattr(self, name)
            if not isinstance(values, list) or len(values) != n_mels:
                raise ValueError(f"{name} must be a list of {n_mels} numbers (one per mel band)")
            # The model computes in float32: a number beyond its range would become inf there.
            if not all(_is_number(v) and abs(v) <= FLOAT32_MAX for v in values):
                raise ValueError(f"{name} must hold finite float32 numbers")
        if not all(v >= FLOAT32_TINY for v in self.norm_std):
            raise ValueError(f"norm_std must be at least {FLOAT32_TINY:.3g} in every band")
        frames = self.window_frames
        if not _is_count(frames) or not 2 <= frames <= MAX_WINDOW_FRAMES:
            raise ValueError(f"window_frames must be an integer in [2, {MAX_WINDOW_FRAMES}]")
        if not MIN_WINDOW_SECONDS <= self.window_seconds <= MAX_WINDOW_SECONDS:
            raise ValueError(
                f"a window of {self.window_seconds:g} s is outside "
                f"{MIN_WINDOW_SECONDS:g}-{MAX_WINDOW_SECONDS:g} s"
            )
        for name in ("name", "quantization", "pipeline_version", "license", "description"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string")
        if _has_control(self.name):
            raise ValueError("name must hold no control characters (newline, ESC, ...)")
        for name in ("parameters", "macs", "file_size_bytes"):
            if not _is_count(getattr(self, name)):
                raise ValueError(f"{name} must be a non-negative integer")
        if not isinstance(self.members, list) or not all(isinstance(m, dict) for m in self.members):
            raise ValueError("members must be a list of objects")
        if not isinstance(self.training, dict):
            raise ValueError("training must be an object")
        if self.silence_dbfs is not None:
            check_silence_dbfs(self.silence_dbfs)

    def normalise(self, windows: np.ndarray) -> np.ndarray:
        """(n, 1, n_mels, frames) log-mel -> the model's input scale, float32."""
        mean = np.asarray(self.norm_mean, dtype=np.float32)[:, None]
        std = np.asarray(self.norm_std, dtype=np.float32)[:, None]
        return ((windows - mean) / std).astype(np.float32, copy=False)

    def to_json(self) -> str:
        data = asdict(self)
        data["frontend"] = self.frontend.to_dict()
        if data["silence_dbfs"] is None:  # unset: older cards, and their files, stay byte-identical
            del data["silence_dbfs"]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ModelCard:
        if len(text) > MAX_CARD_CHARS:
            raise EdgeAscError(
                f"{source}: model card metadata is {len(text):,} characters, more than the "
                f"{MAX_CARD_CHARS:,} edge-asc reads"
            )
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as err:
            # ValueError: JSONDecodeError, or a number of over 4300 digits; RecursionError:
            # nesting deeper than the decoder's stack. Either way not a card, and one line.
            reason = " ".join(str(err).split())[:200]
            raise EdgeAscError(
                f"{source}: model card metadata is not valid JSON ({reason})"
            ) from err
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
            card.check()
        except (KeyError, TypeError, ValueError) as err:
            reason = " ".join(str(err).split())[:300]  # one line, whatever the card held
            raise EdgeAscError(f"{source}: model card is incomplete or invalid ({reason})") from err
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
