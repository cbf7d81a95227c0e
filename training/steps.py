"""Finished training steps kept on disk, keyed by everything that made them.

A step's key covers the architecture, the training options, the exact data it drew from, the
model it started from, its teacher and the training code itself, so a stopped run resumes where
it stopped and a rerun of an unchanged step loads its model instead of training it again, while
any change to one of those inputs trains afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from edge_asc.training import augment, backgrounds, data, fit, nets, prune
from edge_asc.training.nets import Cnn, CnnConfig

# The modules whose code decides what a step trains to.
_CODE = (augment, backgrounds, data, fit, nets, prune)


class StepCache:
    """Trained models under `directory`, one file per step key, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).expanduser()
        self._code = _code_version()
        self._digests: dict[int, tuple[object, str]] = {}
        self.hits = 0
        self.misses = 0

    def key(
        self,
        config: CnnConfig,
        how: fit.FitOptions,
        frames: data.ClipFrames,
        labels: np.ndarray,
        start: Cnn | None = None,
        teacher: Cnn | None = None,
    ) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps([self._code, config.to_dict(), asdict(how)]).encode())
        digest.update(self._data_digest(frames, labels).encode())
        for model in (start, teacher):
            digest.update(_state_digest(model).encode())
        return digest.hexdigest()[:32]

    def load(self, key: str) -> Cnn | None:
        path = self.directory / f"{key}.pt"
        if not path.is_file():
            return None
        try:
            model = nets.load_model(path)
        except (OSError, RuntimeError, ValueError, KeyError, EOFError):
            return None  # a half-written or foreign file: train again rather than trust it
        self.hits += 1
        return model

    def save(self, key: str, model: Cnn) -> None:
        self.misses += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{key}-", suffix=".tmp")
        os.close(fd)
        try:
            nets.save_model(model, Path(tmp))
            Path(tmp).replace(self.directory / f"{key}.pt")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _data_digest(self, frames: data.ClipFrames, labels: np.ndarray) -> str:
        """Hashing a few hundred MB of frames takes a moment: once per data set per run."""
        known = self._digests.get(id(frames))
        if known is not None and known[0] is frames:
            return known[1]
        digest = hashlib.sha256()
        mixed = frames.background.arrays if frames.background is not None else (None,)
        for array in (frames.frames, frames.lengths, frames.counts, labels, frames.db_step, *mixed):
            digest.update(b"-" if array is None else np.ascontiguousarray(array).tobytes())
        value = digest.hexdigest()
        self._digests[id(frames)] = (frames, value)
        return value


def _state_digest(model: Cnn | None) -> str:
    if model is None:
        return "none"
    digest = hashlib.sha256(json.dumps(model.config.to_dict()).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to(torch.float64).contiguous().numpy().tobytes())
    return digest.hexdigest()


def _code_version() -> str:
    digest = hashlib.sha256(torch.__version__.encode())
    for module in _CODE:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]
