"""The onnxruntime session for a fused ensemble, with its card read from the same file."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_asc.errors import EdgeAscError, check_regular_file
from edge_asc.modelcard import ModelCard, from_metadata

DEFAULT_MODEL_NAME = "default.onnx"
PROBABILITY_TOLERANCE = 1e-3  # outputs must be >= -this and sum to 1 within this


def default_model_path() -> Path:
    """The model shipped as package data (models/ in the repository)."""
    return Path(str(resources.files("edge_asc.models").joinpath(DEFAULT_MODEL_NAME)))


def sha256_hex(data: bytes) -> str:
    """The file's SHA-256 from CPython's own built-in implementation where it has one.

    hashlib loads OpenSSL's libcrypto for it, 3.6 MiB of resident memory for one digest at load
    in a process that never hashes again; the digest is the same either way.
    """
    try:
        from _sha2 import sha256  # CPython >= 3.12
    except ImportError:
        try:
            from _sha256 import sha256  # CPython 3.11
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()


def max_threads() -> int:
    """The CPUs this process may run on: more intra-op threads only compete for them."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cpus or 1


def session_options(threads: int = 1, spin: bool = False) -> ort.SessionOptions:
    """One thread, no spin-waiting by default: a 24/7 service on a Pi should idle between hops.

    `threads` is checked here, for the library as for the CLI: onnxruntime starts as many as it
    is told (a million held 3.4 GB and never finished loading) and reads 0 as "one per core".
    """
    if (
        not isinstance(threads, (int, np.integer))
        or isinstance(threads, bool)
        or not 1 <= threads <= max_threads()
    ):
        raise ValueError(
            f"threads must be a whole number from 1 to {max_threads()} (the CPUs here), "
            f"not {threads!r}"
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
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
        options = session_options(threads, spin)
        data = _read_model(self.path)
        try:
            self.session = ort.InferenceSession(
                data,
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
        except Exception as err:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise EdgeAscError(f"cannot load model {self.path}: {_first_line(err)}") from err
        try:
            meta = self.session.get_modelmeta().custom_metadata_map
        except UnicodeDecodeError as err:  # protobuf strings are bytes; the card must be text
            raise EdgeAscError(f"{self.path}: the model's metadata is not UTF-8 text") from err
        self.card: ModelCard = from_metadata(meta, str(self.path))
        self.id = f"{self.card.name}@{sha256_hex(data)[:12]}"
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise EdgeAscError(f"{self.path}: expected one input and one output")
        self._input = inputs[0].name
        shape = inputs[0].shape
        expected = [1, self.card.frontend.n_mels, self.card.window_frames]
        if len(shape) != 4 or list(shape[1:]) != expected or inputs[0].type != "tensor(float)":
            raise EdgeAscError(
                f"{self.path}: input {inputs[0].type} {shape} does not match its card "
                f"(float, [batch, {', '.join(map(str, expected))}])"
            )
        out_shape = outputs[0].shape
        n_labels = len(self.labels)
        if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] != n_labels):
            raise EdgeAscError(
                f"{self.path}: output shape {out_shape} does not match the card's {n_labels} labels"
            )
        self._probe()

    @property
    def labels(self) -> list[str]:
        return self.card.labels

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """(n, 1, n_mels, frames) raw log-mel -> (n, n_classes) probabilities, float32.

        A graph that gives NaN or infinities for some input is refused rather than passed on:
        the prediction log would get NaN, which is not JSON, and every label would be a guess.
        """
        if windows.shape[0] == 0:
            return np.empty((0, len(self.labels)), dtype=np.float32)
        try:
            (out,) = self.session.run(None, {self._input: self.card.normalise(windows)})
        except Exception as err:  # onnxruntime's own error types: the graph cannot run
            raise EdgeAscError(
                f"{self.path}: the model failed to run ({_first_line(err)})"
            ) from err
        out = np.asarray(out)
        if out.shape != (windows.shape[0], len(self.labels)):
            raise EdgeAscError(
                f"{self.path}: the model gave outputs of shape {out.shape} for "
                f"{windows.shape[0]} windows of {len(self.labels)} labels"
            )
        if not np.issubdtype(out.dtype, np.floating) or not np.isfinite(out).all():
            raise EdgeAscError(f"{self.path}: the model gave non-finite or non-float outputs")
        return out.astype(np.float32, copy=False)

    def _probe(self) -> None:
        """Run two real windows at load: the outputs must be a probability vector per window.

        Digital silence (every band at the log floor) and a fixed noise window; a card whose
        labels, normalisation or input scale disagree with the graph shows up here at once.
        """
        fe, frames = self.card.frontend, self.card.window_frames
        silence = np.full((fe.n_mels, frames), np.log(fe.log_floor), dtype=np.float32)
        # Fixed pseudo-random values (the fractional part of a scaled sine), not numpy.random:
        # importing that loads hashlib and OpenSSL's libcrypto, 4 MiB for one window at load.
        n = np.arange(fe.n_mels * frames, dtype=np.float64)
        noise = (3.4 * np.modf(np.sin(n) * 43758.5453)[0]).reshape(fe.n_mels, frames)
        noise = noise.astype(np.float32)
        probs = self.predict(np.stack([silence, noise - 5.0])[:, None])
        if (probs < -PROBABILITY_TOLERANCE).any() or (
            np.abs(probs.sum(axis=1) - 1.0) > PROBABILITY_TOLERANCE
        ).any():
            raise EdgeAscError(
                f"{self.path}: the model's outputs are not probabilities (they must be >= 0 and "
                f"sum to 1; got sums {', '.join(f'{x:.4g}' for x in probs.sum(axis=1))})"
            )


def _read_model(path: Path) -> bytes:
    """The file's bytes, or one EdgeAscError line saying why not (missing, a directory or other
    non-file, or not readable: a folder of another user's raises PermissionError from stat)."""
    check_regular_file(path, "model", "model not found", "a model file")
    try:
        return path.read_bytes()
    except OSError as err:
        raise EdgeAscError(f"cannot read model {path}: {err.strerror}") from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__
