"""`edge-asc train DATA --rotate`: every fold validated in turn, one report over them all.

One validation fold is a few hundred clips: a single run's margin moves by a couple of points
with the seed. The rotation trains the same recipe once per fold (the others train) and reports
each rotation and the mean with its standard error, the baseline and every member trained in the
same runs. Each run keeps its finished steps on disk (`steps`), so a stopped rotation resumes
where it stopped and a finished one reruns in the time its exports take.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

from edge_asc.errors import EdgeAscError
from edge_asc.training import data
from edge_asc.training.pipeline import PipelineOptions, run_pipeline


def run_rotation(options: PipelineOptions) -> dict[str, Any]:
    """One pipeline run per split held out; the report goes to `options.out`."""
    dataset = data.load_dataset(options.data)
    folds = dataset.splits()
    if len(folds) < 2:
        raise EdgeAscError(
            f"--rotate needs at least 2 splits to hold out in turn; {dataset.root} has "
            f"{', '.join(folds)}"
        )
    runs = []
    for fold in folds:
        run = replace(
            options,
            train_splits=[f for f in folds if f != fold],
            val_splits=[fold],
            out=options.out / f"val-{fold}",
            reference=None,
        )
        runs.append(run_pipeline(run))
    summary = summarise(runs)
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "rotation.json").write_text(json.dumps(summary, indent=2))
    (options.out / "rotation.md").write_text(markdown(summary))
    return summary


def _rows(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Accuracy and log loss of every model of one run, by name."""
    ens = run["ensemble"]
    rows = {
        "fused ensemble INT8": {"accuracy": ens["int8_accuracy"], "log_loss": ens["int8_log_loss"]},
        "fused ensemble FP32": {"accuracy": ens["fp32_accuracy"], "log_loss": ens["fp32_log_loss"]},
        "DCASE 2022 baseline": _pick(run["baseline"]),
    }
    rows |= {p["name"]: _pick(p) for p in run.get("parents", [run["parent"]])}
    rows |= {f"member {m['name']}": _pick(m) for m in run["members"]}
    return rows


def _pick(row: dict[str, Any]) -> dict[str, float]:
    return {"accuracy": row["accuracy"], "log_loss": row["log_loss"]}


def _mean_se(values: list[float]) -> dict[str, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return {"mean": mean, "se": float("nan")}
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return {"mean": mean, "se": math.sqrt(var / len(values))}


def _per_class(run: dict[str, Any]) -> dict[str, float | None]:
    matrix = run["ensemble"]["int8_confusion"]
    return {
        label: (row[i] / sum(row) if sum(row) else None)
        for i, (label, row) in enumerate(zip(run["labels"], matrix, strict=True))
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per rotation and mean +- standard error of every model the runs have in common."""
    per_run = [_rows(run) for run in runs]
    names = [n for n in per_run[0] if all(n in r for r in per_run)]
    models = {
        name: {
            metric: {
                "per_rotation": [r[name][metric] for r in per_run],
                **_mean_se([r[name][metric] for r in per_run]),
            }
            for metric in ("accuracy", "log_loss")
        }
        for name in names
    }
    best_member = [
        max(v["accuracy"] for k, v in r.items() if k.startswith("member ")) for r in per_run
    ]
    ensemble = [r["fused ensemble INT8"]["accuracy"] for r in per_run]
    baseline = [r["DCASE 2022 baseline"]["accuracy"] for r in per_run]
    fp32 = [r["fused ensemble FP32"]["accuracy"] for r in per_run]
    ens = runs[0]["ensemble"]
    return {
        "data": runs[0]["data"],
        "rotations": [
            {
                "train_splits": run["train_splits"],
                "val_splits": run["val_splits"],
                "val_clips": run["clips"]["val"],
                "minutes": run["timings_s"]["total"] / 60,
                "selected_kernel": next(r["kernel"] for r in run["filter_size"] if r["selected"]),
                "filter_size": run["filter_size"],
                "members": [m["name"] for m in run["members"]],
                "ensemble_minus_baseline": run.get("ensemble_minus_baseline"),
                "int8_per_class_recall": _per_class(run),
            }
            for run in runs
        ],
        "models": models,
        "ensemble_minus_baseline": _mean_se(
            [e - b for e, b in zip(ensemble, baseline, strict=True)]
        ),
        "ensemble_minus_best_member": _mean_se(
            [e - m for e, m in zip(ensemble, best_member, strict=True)]
        ),
        "int8_minus_fp32": _mean_se([e - f for e, f in zip(ensemble, fp32, strict=True)]),
        "size": {k: ens[k] for k in ("parameters", "macs", "int8_file_bytes")},
        "augmentation": runs[0]["augmentation"],
    }


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}"


def markdown(summary: dict[str, Any]) -> str:
    rotations = summary["rotations"]
    heads = [f"val {','.join(r['val_splits'])}" for r in rotations]
    lines = [
        "# edge-asc rotation report",
        "",
        f"Data: `{summary['data']}`. Each fold validated in turn, the others trained; clip "
        "accuracy (mean of each clip's 1-s window probabilities) and log loss; mean +- standard "
        "error over the rotations.",
        "",
        "| model | " + " | ".join(heads) + " | mean +- SE % | log loss (mean) |",
        "|---|" + "---|" * (len(heads) + 2),
    ]
    for name, metrics in summary["models"].items():
        acc, loss = metrics["accuracy"], metrics["log_loss"]
        cells = [_pct(v) for v in acc["per_rotation"]]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {_pct(acc['mean'])} +- {_pct(acc['se'])} "
            f"| {loss['mean']:.3f} |"
        )
    lines.append("")
    for key, label in (
        ("ensemble_minus_baseline", "INT8 ensemble minus the DCASE 2022 baseline"),
        ("ensemble_minus_best_member", "INT8 ensemble minus its best member"),
        ("int8_minus_fp32", "INT8 minus FP32"),
    ):
        gap = summary[key]
        lines.append(f"- {label}: {100 * gap['mean']:+.1f} +- {_pct(gap['se'])} points")
    size = summary["size"]
    lines += [
        f"- size: {size['parameters']:,} parameters, {size['macs']:,} MACs per 1-s window, "
        f"{size['int8_file_bytes']:,} bytes (INT8 file)",
        "",
        "| rotation | train | kernel | members | minutes (this run; kept steps cost none) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {h} | {','.join(r['train_splits'])} | {r['selected_kernel']}x{r['selected_kernel']} "
        f"| {', '.join(r['members'])} | {r['minutes']:.1f} |"
        for h, r in zip(heads, rotations, strict=True)
    ]
    labels = list(rotations[0]["int8_per_class_recall"])
    lines += ["", "Per-class recall of the INT8 ensemble, %:", ""]
    lines += ["| class | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    lines += [
        f"| {label} | "
        + " | ".join(_pct(r["int8_per_class_recall"][label]) for r in rotations)
        + " |"
        for label in labels
    ]
    return "\n".join([*lines, ""])
