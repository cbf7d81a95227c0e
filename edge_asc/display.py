"""Rich rendering for people: the model card (and, later, the live view).

At a terminal the card is a table whose long values wrap; on a pipe or in a file it is plain
`key  value` lines, never wrapped or cut (rich would fold them to 80 columns and end a path
with an ellipsis), so grep and scripts see whole values.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edge_asc.modelcard import ModelCard

# C0 and C1 controls (ESC, BEL, CR, NUL ...): a card's text must not drive the terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """`text` with each control character shown as its Python escape (\\n, \\x1b)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def _object(value: object) -> dict:
    """A card's informational field as a dict: the trainer's JSON may hold anything there."""
    return value if isinstance(value, dict) else {}


def _pct(value: object) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "-"


def _names(values: object) -> str:
    return ", ".join(map(str, values)) if isinstance(values, list) else str(values)


def _reference_rows(training: dict) -> list[tuple[str, str]]:
    """A model trained on every split quotes the validated run of its configuration."""
    ref = _object(training.get("reference_run"))
    if not ref:
        return []
    if ref.get("kind") == "rotation":
        return [
            (
                "reference run",
                f"same pipeline, each of folds {_names(ref.get('val_splits', '-'))} "
                f"validated in turn: INT8 {_pct(ref.get('int8_accuracy'))} on average "
                f"(FP32 {_pct(ref.get('fp32_accuracy'))}), DCASE 2022 baseline "
                f"{_pct(ref.get('baseline_accuracy'))}",
            )
        ]
    return [
        (
            "reference run",
            f"same pipeline on splits {ref.get('train_splits', '-')}, validated on "
            f"{ref.get('val_splits', '-')}: FP32 {_pct(ref.get('fp32_accuracy'))}, INT8 "
            f"{_pct(ref.get('int8_accuracy'))}, DCASE 2022 baseline "
            f"{_pct(ref.get('baseline_accuracy'))}",
        )
    ]


def _validation(training: dict) -> str:
    """The card's own validation, or why there is none (a model trained on every split)."""
    accuracy = _object(training.get("accuracy"))
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
    name = escape(_printable(f"{card.name}  ({model_id})"))  # a '[/x]' in it is text, not markup
    console.print(f"[bold]{name}[/bold]", soft_wrap=plain)
    if card.description:
        console.print(_printable(card.description), soft_wrap=plain, markup=False)
    training = _object(card.training)
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
        ("members", ", ".join(str(_object(m).get("name", "?")) for m in card.members) or "-"),
        ("trained on", f"{training.get('data', '-')} splits {training.get('train_splits', '-')}"),
        ("validated on", _validation(training)),
        *_reference_rows(training),
        ("pipeline", card.pipeline_version or "-"),
        ("licence", card.license or "-"),
    ]
    rows = [(key, _printable(value)) for key, value in rows]
    if plain:
        for key, value in rows:
            console.print(f"{key:<14} {value}", soft_wrap=True, markup=False, highlight=False)
        return
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")  # a long path wraps, never ends in an ellipsis
    for key, value in rows:
        table.add_row(key, escape(value))
    console.print(table)
