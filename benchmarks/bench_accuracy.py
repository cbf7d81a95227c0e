"""Accuracy per cost: every model the pipeline compares, with its size, cost, accuracy and speed.

Parameters and MACs are the pipeline's own counts (report.json, DCASE convention); accuracy is
the run's clip-level validation accuracy; file sizes and latencies are measured here on the ONNX
files (single models exported here as FP32, softmax included; fused graphs as the run wrote them).
"""

from __future__ import annotations

from collections.abc import Mapping

from bench_models import FUSED_FP32, FUSED_INT8, MEMBERS_FP32, MEMBERS_INT8, RunModels, alone

from edge_asc.bench.report import Table
from edge_asc.bench.timing import Stats


def accuracy_column(report: dict) -> str:
    splits = ", ".join(str(s) for s in report.get("val_splits", [])) or "none"
    where = f"fold {splits}" if report.get("layout") == "folds" else splits
    return f"clip accuracy % ({where})"


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def fmt_percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def accuracy_table(models: RunModels, stats: Mapping[str, Stats]) -> Table:
    report = models.report
    acc = accuracy_column(report)
    table = Table(
        "accuracy_cost",
        "Accuracy per cost: every model the pipeline compares",
        ["model", "parameters", "MACs / window", "file KB", acc, "median ms", "p99 ms"],
    )

    def add(name: str, row: dict | None, key: str, file_bytes: int | None) -> None:
        s = stats.get(alone(key)) if key in models.onnx_fp32 else stats.get(key)
        row = row or {}
        table.add(
            name,
            row.get("parameters"),
            row.get("macs"),
            None if file_bytes is None else file_bytes / 1000,
            _percent(row.get("accuracy")),
            None if s is None else s.median_ms,
            None if s is None else s.p99_ms,
        )

    def size(key: str) -> int | None:
        path = models.onnx_fp32.get(key)
        return path.stat().st_size if path is not None else None

    add("DCASE 2022 baseline (same pipeline)", report.get("baseline"), "baseline", size("baseline"))
    parent = report.get("parent") or {}
    kernel = parent.get("kernel", "?")
    add(f"Singh & Plumbley parent {kernel}x{kernel}", parent, "parent", size("parent"))
    for member in report.get("members", []):
        add(f"member {member['name']}", member, member["name"], size(member["name"]))
    ens = report["ensemble"]
    members_fp32 = [models.onnx_fp32[m] for m in models.members]
    members_int8 = [models.onnx_int8[m] for m in models.members if m in models.onnx_int8]
    unfused = {"parameters": ens["members_parameters"], "macs": ens["members_macs"]}
    add(
        "members one by one, FP32",
        {**unfused, "accuracy": ens.get("fp32_accuracy")},
        MEMBERS_FP32,
        sum(p.stat().st_size for p in members_fp32) if members_fp32 else None,
    )
    add(
        "members one by one, INT8",
        unfused,
        MEMBERS_INT8,
        sum(p.stat().st_size for p in members_int8) if members_int8 else None,
    )
    fused = {"parameters": ens["parameters"], "macs": ens["macs"]}
    add(
        "fused ensemble, FP32",
        {**fused, "accuracy": ens.get("fp32_accuracy")},
        FUSED_FP32,
        models.fused_fp32.stat().st_size,
    )
    add(
        "fused ensemble, INT8 (shipped configuration)",
        {**fused, "accuracy": ens.get("int8_accuracy")},
        FUSED_INT8,
        models.fused_int8.stat().st_size,
    )
    table.notes += [
        f"Run: {models.run}; parameters and MACs from its report.json (DCASE convention: batch "
        "norm folded; the fused graph counts each shared filter once).",
        "Members one by one compute the same function as the fused FP32 graph (the fusion is "
        "exact), hence the same accuracy; their INT8 copies were quantized here for latency "
        "only (accuracy not measured).",
        "Latency: batch 1, one thread, the same interleaved runs as the inference table.",
    ]
    candidates = report.get("filter_size") or []
    if candidates:
        scored = ", ".join(
            f"{c['kernel']}x{c['kernel']} {fmt_percent(c.get('selection_clip_accuracy'))} at "
            f"{c['macs'] / 1e6:.1f} M MACs{' (chosen)' if c.get('selected') else ''}"
            for c in candidates
        )
        two_ways = len(candidates[0].get("selection_clip_accuracies", [])) == 2
        how = "the mean of two ways" if two_ways else "one way"
        table.notes.append(
            f"Filter-size candidates, judged on inner splits of the training folds ({how}; "
            f"never on the validation split above) and not kept as files: {scored}."
        )
    if not models.torch_models:
        table.notes.append(
            f"{models.run / 'torch'} is missing: single-model files and latencies are n/a "
            "(runs trained before torch models were kept; re-run edge-asc train)."
        )
    return table
