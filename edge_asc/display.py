"""Rich rendering for people: the model card (and, later, the live view).

At a terminal the card is a table whose long values wrap; on a pipe or in a file it is plain
`key  value` lines, never wrapped or cut (rich would fold them to 80 columns and end a path
with an ellipsis), so grep and scripts see whole values.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from edge_asc.modelcard import ModelCard


def _pct(value: object) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "-"


def _reference_rows(training: dict) -> list[tuple[str, str]]:
    """A model trained on every split quotes the validated run of its configuration."""
    ref = training.get("reference_run")
    if not ref:
        return []
    if ref.get("kind") == "rotation":
        return [
            (
                "reference run",
                f"same pipeline, each of folds {', '.join(map(str, ref['val_splits']))} "
                f"validated in turn: INT8 {_pct(ref['int8_accuracy'])} on average "
                f"(FP32 {_pct(ref['fp32_accuracy'])}), DCASE 2022 baseline "
                f"{_pct(ref['baseline_accuracy'])}",
            )
        ]
    return [
        (
            "reference run",
            f"same pipeline on splits {ref['train_splits']}, validated on {ref['val_splits']}: "
            f"FP32 {_pct(ref['fp32_accuracy'])}, INT8 {_pct(ref['int8_accuracy'])}, "
            f"DCASE 2022 baseline {_pct(ref['baseline_accuracy'])}",
        )
    ]


def _validation(training: dict) -> str:
    """The card's own validation, or why there is none (a model trained on every split)."""
    accuracy = training.get("accuracy") or {}
    splits = training.get("val_splits")
    if not splits or not any(isinstance(accuracy.get(k), (int, float)) for k in ("fp32", "int8")):
        reason = "trained on every split" if not splits else "no figures in the card"
        ref = " (see the reference run)" if training.get("reference_run") else ""
        return f"not validated: {reason}{ref}"
    return f"splits {splits}: FP32 {_pct(accuracy.get('fp32'))}, INT8 {_pct(accuracy.get('int8'))}"


def print_card(card: ModelCard, path: Path, model_id: str, console: Console | None = None) -> None:
    console = console or Console()
    plain = not console.is_terminal
    fe = card.frontend
    console.print(f"[bold]{card.name}[/bold]  ({model_id})", soft_wrap=plain)
    if card.description:
        console.print(card.description, soft_wrap=plain, markup=False)
    training = card.training
    rows = [
        ("file", f"{path} ({card.file_size_bytes:,} bytes)"),
        ("format", f"version {card.format_version}, {card.quantization}"),
        ("classes", f"{len(card.labels)}: {', '.join(card.labels)}"),
        (
            "input",
            f"{fe.n_mels} mel bands x {card.window_frames} frames "
            f"({card.window_seconds:g} s at {fe.sample_rate} Hz)",
        ),
        (
            "front-end",
            f"window {fe.win_length}, hop {fe.hop_length}, n_fft {fe.n_fft}, "
            f"{fe.window}, {fe.fmin:g}-{fe.fmax:g} Hz",
        ),
        ("complexity", f"{card.parameters:,} parameters, {card.macs:,} MACs per window"),
        ("members", ", ".join(m.get("name", "?") for m in card.members) or "-"),
        ("trained on", f"{training.get('data', '-')} splits {training.get('train_splits', '-')}"),
        ("validated on", _validation(training)),
        *_reference_rows(training),
        ("pipeline", card.pipeline_version or "-"),
        ("licence", card.license or "-"),
    ]
    if plain:
        for key, value in rows:
            console.print(f"{key:<14} {value}", soft_wrap=True, markup=False, highlight=False)
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")  # a long path wraps, never ends in an ellipsis
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
