"""A validated run's figures, read from its report.json (one run or a rotation), for a model
trained on everything: that model has no validation of its own, so its card carries these."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge_asc.errors import EdgeAscError


def load(path: Path | None) -> dict[str, Any] | None:
    """None without a path; a one-line error for a file that is not such a report."""
    if path is None:
        return None
    try:
        ref = json.loads(Path(path).read_text())
        if "rotations" in ref:
            return _rotation(ref)
        ens = ref["ensemble"]
        return {
            "train_splits": ref["train_splits"],
            "val_splits": ref["val_splits"],
            "fp32_accuracy": ens["fp32_accuracy"],
            "int8_accuracy": ens["int8_accuracy"],
            "baseline_accuracy": ref["baseline"]["accuracy"],
            "members": {m["name"]: m["accuracy"] for m in ref["members"]},
            "parent_accuracy": ref["parent"]["accuracy"],
            "selected_kernel": next(r["kernel"] for r in ref["filter_size"] if r["selected"]),
            "filter_size": ref["filter_size"],
        }
    except (OSError, ValueError, KeyError, StopIteration) as err:
        raise EdgeAscError(f"cannot use reference report {path}: {err}") from err


def _rotation(ref: dict[str, Any]) -> dict[str, Any]:
    """A rotation's means: the kernel most of its runs chose (the smaller on a tie), and that
    run's filter-size table."""
    rotations = ref["rotations"]
    kernels = [r["selected_kernel"] for r in rotations]
    kernel = min(set(kernels), key=lambda k: (-kernels.count(k), k))
    models = ref["models"]
    members = [name for name in models if name.startswith("member ")]

    def mean(name: str) -> float:
        return models[name]["accuracy"]["mean"]

    return {
        "kind": "rotation",
        "train_splits": [r["train_splits"] for r in rotations],
        "val_splits": [v for r in rotations for v in r["val_splits"]],
        "fp32_accuracy": mean("fused ensemble FP32"),
        "int8_accuracy": mean("fused ensemble INT8"),
        "int8_accuracy_se": models["fused ensemble INT8"]["accuracy"]["se"],
        "int8_per_rotation": models["fused ensemble INT8"]["accuracy"]["per_rotation"],
        "baseline_accuracy": mean("DCASE 2022 baseline"),
        "members": {name.removeprefix("member "): mean(name) for name in members},
        "parent_accuracy": mean("parent"),
        "ensemble_minus_best_member": ref["ensemble_minus_best_member"]["mean"],
        "selected_kernel": kernel,
        "filter_size": next(r["filter_size"] for r in rotations if r["selected_kernel"] == kernel),
    }
