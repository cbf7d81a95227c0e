"""The run report: report.json (every figure), report.md (for people), confusion.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge_asc.training.stats import RESAMPLES


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}" if isinstance(value, (int, float)) else "-"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def markdown(results: dict[str, Any]) -> str:
    t = results["timings_s"]
    ens = results["ensemble"]
    lines = [
        "# edge-asc training report",
        "",
        f"Data: `{results['data']}` ({results['layout']}); training splits "
        f"{results['train_splits']} ({results['clips']['train']} clips, "
        f"{results['windows']['train']} windows), validation {results['val_splits']} "
        f"({results['clips']['val']} clips). Accuracy is clip-level: the mean of each clip's "
        "1-s window probabilities.",
        "",
        f"Total time: {t['total'] / 60:.1f} min "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in t.items() if k != 'total')}).",
        "",
        *_how_it_ran(results.get("run")),
        *_recipe(results["schedule"]),
        "## Filter size (trained on part of the training splits, judged on the rest)",
        "",
    ]
    ref = results.get("reference_run")
    if ref:
        lines += [
            f"Chosen by the validated reference run (train {ref['train_splits']}, validation "
            f"{ref['val_splits']}: fused INT8 {_pct(ref['int8_accuracy'])} %, FP32 "
            f"{_pct(ref['fp32_accuracy'])} %, DCASE 2022 baseline "
            f"{_pct(ref['baseline_accuracy'])} %); this run trains on every split with it.",
            "",
        ]
    lines += _table(
        [
            "kernel",
            "parameters",
            "MACs",
            "members in budget",
            "selection accuracy % (mean)",
            "each way %",
            "selected",
        ],
        [
            [
                f"{r['kernel']}x{r['kernel']}",
                f"{r['parameters']:,}",
                f"{r['macs']:,}",
                ", ".join(r.get("members", [])) or "none",
                _pct(r["selection_clip_accuracy"]),
                " / ".join(_pct(a) for a in r.get("selection_clip_accuracies", [])) or "-",
                "yes" if r["selected"] else "",
            ]
            for r in results["filter_size"]
        ],
    )
    lines += ["## Pruning: filters per layer and accuracy", ""]
    rows = [
        [
            parent["name"],
            "/".join(map(str, parent["channels"])),
            f"{parent['parameters']:,}",
            f"{parent['macs']:,}",
            "-",
            _pct(parent.get("accuracy")),
        ]
        for parent in results.get("parents", [results["parent"]])
    ]
    rows += [
        [
            m["name"],
            "/".join(map(str, m["channels"])),
            f"{m['parameters']:,}",
            f"{m['macs']:,}",
            _pct(m.get("pruned_before_finetune_accuracy")),
            _pct(m.get("accuracy")),
        ]
        for m in results["members"]
    ]
    lines += _table(
        [
            "model",
            "filters conv1/2/3",
            "parameters",
            "MACs",
            "accuracy % pruned, before fine-tune",
            "accuracy % after fine-tune",
        ],
        rows,
    )
    lines += ["## Members, ensemble and the DCASE 2022 baseline", ""]
    rows = []
    if "baseline" in results:
        b = results["baseline"]
        rows.append(
            [
                "DCASE 2022 baseline (FP32)",
                f"{b['parameters']:,}",
                f"{b['macs']:,}",
                "-",
                _pct(b.get("accuracy")),
                _fmt(b.get("log_loss")),
            ]
        )
    rows += [
        [
            f"member {m['name']} (FP32)",
            f"{m['parameters']:,}",
            f"{m['macs']:,}",
            "-",
            _pct(m.get("accuracy")),
            _fmt(m.get("log_loss")),
        ]
        for m in results["members"]
    ]
    rows.append(
        [
            "members summed (unfused)",
            f"{ens['members_parameters']:,}",
            f"{ens['members_macs']:,}",
            "-",
            "-",
            "-",
        ]
    )
    for tag in ("fp32", "int8"):
        rows.append(
            [
                f"fused ensemble {tag.upper()}",
                f"{ens['parameters']:,}",
                f"{ens['macs']:,}",
                f"{ens[f'{tag}_file_bytes']:,}",
                _pct(ens.get(f"{tag}_accuracy")),
                _fmt(ens.get(f"{tag}_log_loss")),
            ]
        )
    lines += _table(
        ["model", "parameters", "MACs / window", "file bytes", "accuracy %", "log loss"], rows
    )
    gap = results.get("ensemble_minus_baseline")
    if gap:
        lines += [
            f"Fused INT8 ensemble minus baseline: {100 * gap['difference']:+.1f} points; paired "
            f"bootstrap 95 % interval [{100 * gap['low']:+.1f}, {100 * gap['high']:+.1f}] "
            f"({RESAMPLES:,} resamples of the validation clips: how far the choice of clips alone "
            "could move it).",
            "",
        ]
    if "ensemble_of_first_parent_members_fp32" in results:
        lines += [
            "The first parent's members alone, averaged in FP32: "
            f"{_pct(results['ensemble_of_first_parent_members_fp32'])} %.",
            "",
        ]
    if "ensemble_adds_over_best_member" in results:
        lines += [
            "Fused INT8 ensemble minus its best member: "
            f"{100 * results['ensemble_adds_over_best_member']:+.1f} points.",
            "",
        ]
    sharing = ens.get("sharing", {})
    if sharing:
        lines += [
            "Shared-filter deduplication in the fused graph: "
            + json.dumps(sharing, sort_keys=True),
            "",
        ]
    if "int8_confusion" in ens:
        labels = results["labels"]
        matrix = ens["int8_confusion"]
        lines += ["## Per-class accuracy (fused INT8 ensemble)", ""]
        lines += _table(
            ["class", "clips", "accuracy %"],
            [
                [lab, sum(row), _pct(row[i] / sum(row) if sum(row) else None)]
                for i, (lab, row) in enumerate(zip(labels, matrix, strict=False))
            ],
        )
        lines += ["![confusion matrix](confusion.png)", ""]
    lines += ["## Acceptance checks", ""]
    lines += _table(["check", "holds"], [[k, v] for k, v in results["checks"].items()])
    env = results["environment"]
    lines += ["Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), ""]
    return "\n".join(lines)


def _how_it_ran(run: dict[str, Any] | None) -> list[str]:
    """Device, processes, precision and each trained step's time per epoch."""
    if not run:
        return []
    processes = run["world_size"]
    lines = [
        f"Ran on {run['device_name']} ({run['device']}), {processes} "
        f"process{'es' if processes > 1 else ''}"
        + (f" ({run['backend']})" if run.get("backend") else "")
        + f", {run['precision']}.",
        "",
    ]
    per_epoch = run.get("seconds_per_epoch") or {}
    if per_epoch:
        lines += ["Time per epoch of each step trained in this run:", ""]
        lines += _table(["step", "s per epoch"], [[k, f"{v:.1f}"] for k, v in per_epoch.items()])
    return lines


def _recipe(schedule: dict[str, Any]) -> list[str]:
    """One line per training step: what was trained how, so a run can be repeated by hand."""

    def describe(how: dict[str, Any]) -> str:
        parts = [f"{how['epochs']} epochs", f"lr {how['lr']}", f"batch {how['batch_size']}"]
        if how.get("mixup"):
            parts.append(f"mixup alpha {how['mixup']}")
        if how.get("mask_bands") or how.get("mask_frames"):
            parts.append(f"masks <= {how['mask_bands']} bands, <= {how['mask_frames']} frames")
        if how.get("gain_db"):
            parts.append(f"gain +-{how['gain_db']} dB")
        if how.get("mixstyle"):
            share, alpha = how["mixstyle"], how["mixstyle_alpha"]
            parts.append(f"Freq-MixStyle on {share:.0%} of batches, alpha {alpha}")
        if how.get("distill"):
            parts.append(f"distillation {how['distill']} at T={how['temperature']}")
        if how.get("frozen_convs"):
            parts.append(f"conv{','.join(map(str, how['frozen_convs']))} frozen")
        return ", ".join(parts)

    steps = (
        ("filter-size candidates", "selection"),
        ("parent and DCASE 2022 baseline", "full"),
        ("member fine-tuning", "finetune"),
    )
    lines = ["Training recipe (AdamW, one-cycle schedule, random window starts):", ""]
    lines += [f"- {label}: {describe(schedule[key])}" for label, key in steps]
    speeds = schedule.get("speeds") or []
    lines.append(
        "- each training clip also played at speed "
        + ", ".join(f"{s:g}x" for s in speeds)
        + " (pitch and tempo together)"
        if speeds
        else "- no speed variants"
    )
    return [*lines, ""]


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def confusion_png(
    matrix: list[list[int]],
    labels: list[str],
    path: Path,
    title: str = "Fused INT8 ensemble, validation clips",
) -> None:
    """Rows true, columns predicted, cells clip counts; the title says whose and on what clips."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max((max(r) for r in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            if v:
                ax.text(
                    j,
                    i,
                    str(v),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v > top / 2 else "black",
                )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(results: dict[str, Any], out: Path) -> None:
    (out / "report.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (out / "report.md").write_text(markdown(results))
    if "int8_confusion" in results["ensemble"]:
        confusion_png(
            results["ensemble"]["int8_confusion"], results["labels"], out / "confusion.png"
        )
