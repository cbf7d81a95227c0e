"""Rich rendering for people: the model card (and, later, the live view)."""

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
    return [
        (
            "reference run",
            f"same pipeline on splits {ref['train_splits']}, validated on {ref['val_splits']}: "
            f"FP32 {_pct(ref['fp32_accuracy'])}, INT8 {_pct(ref['int8_accuracy'])}, "
            f"DCASE 2022 baseline {_pct(ref['baseline_accuracy'])}",
        )
    ]


def print_card(card: ModelCard, path: Path, model_id: str, console: Console | None = None) -> None:
    console = console or Console()
    fe = card.frontend
    console.print(f"[bold]{card.name}[/bold]  ({model_id})")
    if card.description:
        console.print(card.description)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    training = card.training
    accuracy = training.get("accuracy", {})
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
        (
            "validated on",
            f"splits {training.get('val_splits', '-')}: "
            f"FP32 {_pct(accuracy.get('fp32'))}, INT8 {_pct(accuracy.get('int8'))}",
        ),
        *_reference_rows(training),
        ("pipeline", card.pipeline_version or "-"),
        ("licence", card.license or "-"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
