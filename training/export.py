"""Fuse the members, quantize, and write the card: the file the app loads and what it says."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edge_asc import __version__
from edge_asc.features import FrontEndConfig
from edge_asc.model import Model
from edge_asc.modelcard import ModelCard, save
from edge_asc.training import complexity, data, fit, fuse, quantize
from edge_asc.training.nets import Cnn
from edge_asc.training.splits import Split

LICENSE_NOTE = (
    "Code MIT. Weights trained on UrbanSound8K (CC BY-NC 3.0, Salamon et al. 2014): "
    "non-commercial use only, with attribution."
)


@dataclass(frozen=True)
class Export:
    """What the card needs besides the run's results: the front-end and its normalisation."""

    out: Path
    name: str
    seed: int
    dataset: data.Dataset
    frontend: FrontEndConfig
    mean: np.ndarray
    std: np.ndarray
    window_frames: int
    description: str


def export(
    members: list[Cnn], train: Split, val: Split, spec: Export, results: dict[str, Any]
) -> dict[str, Any]:
    """Fuse, quantize, attach the card, and measure both files the way the app will run them."""
    fused = fuse.fuse(members)
    fp32_path, int8_path = spec.out / "model-fp32.onnx", spec.out / "model.onnx"
    fuse.export_onnx(fused, fp32_path)
    calibration = quantize.calibration_windows(train.x, train.y, per_class=32, seed=spec.seed)
    quantize.quantize_int8(fp32_path, int8_path, calibration)
    fused_cost = complexity.count_onnx(fp32_path)
    members_cost = sum(
        (complexity.count_cnn(m.config) for m in members), complexity.Complexity(0, 0, [])
    )
    summary: dict[str, Any] = {
        "members": [m["name"] for m in results["members"]],
        "sharing": fused.sharing(),
        "parameters": fused_cost.parameters,
        "macs": fused_cost.macs,
        "members_parameters": members_cost.parameters,
        "members_macs": members_cost.macs,
    }
    files = {"fp32": fp32_path, "int8": int8_path}

    def write_card(tag: str, path: Path) -> None:
        quantization = "fp32" if tag == "fp32" else "int8-static-qdq-per-channel"
        card = model_card(spec, results, summary, quantization)
        summary[f"{tag}_file_bytes"] = save(onnx.load(str(path)), card, path)

    for tag, path in files.items():
        write_card(tag, path)  # a first card: the app's Model needs one to load the file
        if not val.empty:
            probs = Model(path).predict(val.x_raw)  # exactly the app's path, card included
            clip = fit.clip_probabilities(probs, val.clip_index)
            pred = clip.argmax(1)
            summary[f"{tag}_accuracy"] = float(np.mean(pred == val.clip_labels))
            summary[f"{tag}_log_loss"] = fit.log_loss(clip, val.clip_labels)
            summary[f"{tag}_clip_predictions"] = pred.tolist()
            summary[f"{tag}_confusion"] = confusion(pred, val.clip_labels, len(spec.dataset.labels))
    for tag, path in files.items():
        write_card(tag, path)  # the final card, with the accuracies just measured
    return summary


def model_card(
    spec: Export, results: dict[str, Any], summary: dict[str, Any], quantization: str
) -> ModelCard:
    accuracy = {k: summary.get(f"{k}_accuracy") for k in ("fp32", "int8")}
    return ModelCard(
        name=spec.name,
        labels=list(spec.dataset.labels),
        frontend=spec.frontend,
        norm_mean=[float(v) for v in spec.mean],
        norm_std=[float(v) for v in spec.std],
        window_frames=spec.window_frames,
        quantization=quantization,
        members=[
            {k: m[k] for k in ("name", "kernel", "channels", "parameters", "macs")}
            for m in results["members"]
        ],
        parameters=summary["parameters"],
        macs=summary["macs"],
        training={
            "data": Path(spec.dataset.root).name,
            "layout": spec.dataset.layout,
            "train_splits": results["train_splits"],
            "val_splits": results["val_splits"],
            "clips": results["clips"],
            "accuracy": accuracy,
            "baseline_accuracy": results.get("baseline", {}).get("accuracy"),
            "members_macs": summary["members_macs"],
            "augmentation": results["augmentation"],
            "reference_run": {
                k: v for k, v in (results.get("reference_run") or {}).items() if k != "filter_size"
            }
            or None,
            "seed": spec.seed,
            **_how_it_ran(results),
        },
        pipeline_version=f"edge-asc {__version__}",
        license=LICENSE_NOTE,
        description=spec.description,
    )


def _how_it_ran(results: dict[str, Any]) -> dict[str, Any]:
    """Device, processes and precision, where they are not one CPU process in fp32 (a card
    without them was made that way): so a laptop's run still gives the same file, byte for byte,
    as before the card could say it. The time per epoch is in the report only: in the card it
    would make every run's file different."""
    run = results.get("run") or {}
    if not run or (run["device"], run["world_size"], run["precision"]) == ("cpu", 1, "fp32"):
        return {}
    keys = ("device", "device_name", "world_size", "backend", "precision")
    return {"run": {k: run[k] for k in keys}}


def confusion(pred: np.ndarray, true: np.ndarray, n: int) -> list[list[int]]:
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    return matrix.tolist()
