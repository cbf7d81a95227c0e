"""The onnxruntime session for a fused ensemble, with its card read from the same file."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_asc.errors import EdgeAscError
from edge_asc.modelcard import ModelCard, from_metadata

DEFAULT_MODEL_NAME = "default.onnx"


def default_model_path() -> Path:
    """The model shipped as package data (models/ in the repository)."""
    return Path(str(resources.files("edge_asc.models").joinpath(DEFAULT_MODEL_NAME)))


def session_options(threads: int = 1, spin: bool = False) -> ort.SessionOptions:
    """One thread, no spin-waiting by default: a 24/7 service on a Pi should idle between hops."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    spin_flag = "1" if spin else "0"
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin_flag)
    opts.add_session_config_entry("session.inter_op.allow_spinning", spin_flag)
    return opts


class Model:
    """A loaded model: `predict` takes raw log-mel windows and returns class probabilities."""

    def __init__(self, path: str | Path | None = None, threads: int = 1, spin: bool = False):
        self.path = Path(path) if path is not None else default_model_path()
        if not self.path.is_file():
            raise EdgeAscError(f"model not found: {self.path}")
        try:
            data = self.path.read_bytes()
        except OSError as err:
            raise EdgeAscError(f"cannot read model {self.path}: {err.strerror}") from err
        try:
            self.session = ort.InferenceSession(
                data,
                sess_options=session_options(threads, spin),
                providers=["CPUExecutionProvider"],
            )
        except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf types
            reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else "unreadable"
            raise EdgeAscError(f"cannot load model {self.path}: {reason}") from err
        meta = self.session.get_modelmeta().custom_metadata_map
        self.card: ModelCard = from_metadata(meta, str(self.path))
        self.id = f"{self.card.name}@{hashlib.sha256(data).hexdigest()[:12]}"
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(self.session.get_outputs()) != 1:
            raise EdgeAscError(f"{self.path}: expected one input and one output")
        self._input = inputs[0].name
        shape = inputs[0].shape
        expected = [1, self.card.frontend.n_mels, self.card.window_frames]
        if len(shape) != 4 or list(shape[1:]) != expected:
            raise EdgeAscError(f"{self.path}: input shape {shape} does not match its card")

    @property
    def labels(self) -> list[str]:
        return self.card.labels

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """(n, 1, n_mels, frames) raw log-mel -> (n, n_classes) probabilities, float32."""
        if windows.shape[0] == 0:
            return np.empty((0, len(self.labels)), dtype=np.float32)
        (out,) = self.session.run(None, {self._input: self.card.normalise(windows)})
        return out
