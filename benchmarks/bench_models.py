"""The models a training run compares, ready to time: ONNX files, member exports, torch modules.

A run folder (`edge-asc train --out RUN`) holds the fused INT8 and FP32 graphs, report.json and
RUN/torch/<name>.pt for the parent, the DCASE 2022 baseline and the members. Each torch model is
exported here to its own FP32 ONNX file (softmax included, the app's IO names) with the
pipeline's own exporter, and each member also to INT8 with the pipeline's own quantizer,
calibrated on real log-mel windows: the members "one by one" in the same formats as the fusion.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edge_asc.bench.inference import ensemble_call, onnx_call, onnx_session
from edge_asc.features import LogMel, windows
from edge_asc.model import Model
from edge_asc.training import fuse, quantize
from edge_asc.training.nets import Cnn, load_model


@dataclass
class RunModels:
    """Paths and modules of one run; `onnx_fp32`/`onnx_int8` are keyed by torch model name."""

    run: Path
    report: dict[str, Any]
    model: Model  # the fused INT8 graph, card included
    fused_int8: Path
    fused_fp32: Path
    torch_models: dict[str, Cnn] = field(default_factory=dict)
    onnx_fp32: dict[str, Path] = field(default_factory=dict)
    onnx_int8: dict[str, Path] = field(default_factory=dict)

    @property
    def members(self) -> list[str]:
        """The members the report names (the fused graph's, in its order) that are on disk."""
        names = [m["name"] for m in self.report.get("members", [])]
        return [m for m in names if m in self.torch_models]

    def singles(self) -> list[str]:
        """Every torch model the run kept: the baseline, each parent, each member."""
        parents = [p["name"] for p in self.report.get("parents", [{"name": "parent"}])]
        return ["baseline", *parents, *(m["name"] for m in self.report.get("members", []))]


def calibration(signal: np.ndarray, model: Model, count: int = 256) -> np.ndarray:
    """Normalised real windows at a 0.5-s hop, at most `count`, for INT8 calibration."""
    card = model.card
    frames = LogMel(card.frontend).compute(signal)
    hop = round(0.5 * card.frontend.sample_rate / card.frontend.hop_length)
    return card.normalise(windows(frames, card.window_frames, hop)[:count])


def load_run(run: Path, work: Path, signal: np.ndarray) -> RunModels:
    """Everything to time from `run`; ONNX exports go to `work`. Torch parts only if present."""
    for name in ("model.onnx", "model-fp32.onnx", "report.json"):
        if not (run / name).is_file():
            raise SystemExit(f"{run / name} is missing: train a run first (edge-asc train)")
    models = RunModels(
        run,
        json.loads((run / "report.json").read_text()),
        Model(run / "model.onnx"),
        run / "model.onnx",
        run / "model-fp32.onnx",
    )
    for name in models.singles():
        path = run / "torch" / f"{name}.pt"
        if path.is_file():
            models.torch_models[name] = load_model(path)
    calib = calibration(signal, models.model) if models.members else None
    for name, module in models.torch_models.items():
        fp32 = work / f"{name}-fp32.onnx"
        fuse.export_member(module, fp32)
        models.onnx_fp32[name] = fp32
        if name in models.members and calib is not None:
            int8 = work / f"{name}-int8.onnx"
            quantize.quantize_int8(fp32, int8, calib)
            models.onnx_int8[name] = int8
    return models


def torch_members_call(members: list[Cnn], x: np.ndarray) -> Callable[[], torch.Tensor]:
    """PyTorch eager, one thread: the members one after the other, mean of their softmax."""
    xt = torch.from_numpy(x)

    def call() -> torch.Tensor:
        with torch.inference_mode():
            return torch.stack([torch.softmax(m(xt), dim=1) for m in members]).mean(dim=0)

    return call


def torch_fused_call(members: list[Cnn], x: np.ndarray) -> Callable[[], torch.Tensor]:
    """PyTorch eager, one thread: the fused module (shared filters computed once)."""
    fused = fuse.fuse(members).eval()
    xt = torch.from_numpy(x)

    def call() -> torch.Tensor:
        with torch.inference_mode():
            return fused(xt)

    return call


FUSED_INT8 = "fused INT8 (shipped configuration)"
FUSED_FP32 = "fused FP32"
MEMBERS_FP32 = "members one by one, FP32"
MEMBERS_INT8 = "members one by one, INT8"
TORCH_MEMBERS = "PyTorch eager, members one by one"
TORCH_FUSED = "PyTorch eager, fused module"
ENSEMBLES = (FUSED_INT8, FUSED_FP32, MEMBERS_FP32, MEMBERS_INT8, TORCH_MEMBERS, TORCH_FUSED)


def alone(name: str) -> str:
    """The latency candidate of one torch model exported on its own."""
    return f"{name} alone, FP32"


def latency_calls(
    models: RunModels, x: np.ndarray
) -> tuple[dict[str, Callable[[], object]], dict[str, str]]:
    """Every way to run the ensemble (and each single model) on `x`, and what runs it."""
    ort = "onnxruntime"
    calls: dict[str, Callable[[], object]] = {
        FUSED_INT8: onnx_call(onnx_session(models.fused_int8), x),
        FUSED_FP32: onnx_call(onnx_session(models.fused_fp32), x),
    }
    details = {FUSED_INT8: f"{ort}, 1 graph", FUSED_FP32: f"{ort}, 1 graph"}
    members = models.members
    if members:
        n = len(members)
        sessions = {m: onnx_session(models.onnx_fp32[m]) for m in members}
        calls[MEMBERS_FP32] = ensemble_call([onnx_call(sessions[m], x) for m in members])
        details[MEMBERS_FP32] = f"{ort}, {n} graphs"
        if all(m in models.onnx_int8 for m in members):
            int8 = [onnx_call(onnx_session(models.onnx_int8[m]), x) for m in members]
            calls[MEMBERS_INT8] = ensemble_call(int8)
            details[MEMBERS_INT8] = f"{ort}, {n} graphs"
        modules = [models.torch_models[m] for m in members]
        calls[TORCH_MEMBERS] = torch_members_call(modules, x)
        calls[TORCH_FUSED] = torch_fused_call(modules, x)
        details[TORCH_MEMBERS] = f"torch {torch.__version__}, {n} modules"
        details[TORCH_FUSED] = f"torch {torch.__version__}, 1 module"
    for name, path in models.onnx_fp32.items():
        calls[alone(name)] = onnx_call(sessions[name] if name in members else onnx_session(path), x)
    return calls, details
