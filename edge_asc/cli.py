"""The `edge-asc` command: a thin typer layer over the library API.

User errors (EdgeAscError) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from edge_asc.errors import EdgeAscError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="On-device acoustic scene classification.",
)

ModelOption = Annotated[
    Path | None,
    typer.Option("--model", "-m", help="ONNX model file (default: the shipped model)."),
]


@app.command()
def classify(
    files: Annotated[list[Path], typer.Argument(help="Audio files (any rate, channels, format).")],
    model: ModelOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line and file.")
    ] = False,
    hop: Annotated[float, typer.Option(help="Seconds between windows.")] = 0.5,
) -> None:
    """Classify whole files: the mean of their 1-s windows' probabilities."""
    from edge_asc.api import Classifier

    classifier = Classifier(model)
    failed = 0
    for file in files:
        try:
            result = classifier.classify_file(file, hop_seconds=hop)
        except EdgeAscError as err:
            failed += 1
            typer.echo(f"edge-asc: {err}", err=True)
            continue
        if as_json:
            typer.echo(json.dumps({"file": str(file), **result.to_dict()}))
        else:
            confidence = result.probabilities[result.label]
            typer.echo(f"{file}\t{result.label}\t{confidence:.3f}")
    if failed:
        raise typer.Exit(2)


@app.command()
def info(
    model: Annotated[
        Path | None,
        typer.Argument(help="ONNX model file (default: the shipped model)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw card as JSON.")] = False,
) -> None:
    """Print a model's card: what it is, its classes, its figures and its provenance."""
    from edge_asc.display import print_card
    from edge_asc.model import Model

    loaded = Model(model)
    if as_json:
        typer.echo(loaded.card.to_json())
    else:
        print_card(loaded.card, loaded.path, loaded.id)


@app.command()
def train(
    data: Annotated[
        Path,
        typer.Argument(help="Data set: meta.csv with folds, TAU 2022, or one folder per class."),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder: report, members, models.")
    ] = Path("runs/latest"),
    train_splits: Annotated[
        str,
        typer.Option(
            "--train", help="Comma-separated training folds/splits (default: all but --val)."
        ),
    ] = "",
    val_splits: Annotated[
        str,
        typer.Option(
            "--val", help="Comma-separated validation folds/splits ('none': train on every split)."
        ),
    ] = "",
    epochs: Annotated[int, typer.Option(help="Epochs for each full training.")] = 0,
    quick: Annotated[
        bool, typer.Option("--quick", help="A small, fast run (tests, smoke checks).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for every random choice.")] = 0,
    cache: Annotated[
        Path | None, typer.Option(help="Feature cache folder (default: OUT/../.cache).")
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(
            help="report.json of a validated run, recorded in the card of a model "
            "trained on every split."
        ),
    ] = None,
) -> None:
    """Build a model: select the filter size, train, prune, fine-tune, quantize, fuse."""
    try:
        from edge_asc.training.pipeline import PipelineOptions, run_pipeline
    except ImportError as err:
        raise EdgeAscError(
            f"training needs the 'train' extra ({err.name} is missing): "
            "pip install 'edge-asc[train]'"
        ) from err
    options = PipelineOptions(
        data=data,
        out=out,
        train_splits=[s for s in train_splits.split(",") if s],
        val_splits=[s for s in val_splits.split(",") if s],
        epochs=epochs or None,
        quick=quick,
        seed=seed,
        cache=cache,
        reference=reference,
    )
    run_pipeline(options)


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit code 2."""
    try:
        app()
    except EdgeAscError as err:
        print(f"edge-asc: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("edge-asc: interrupted", file=sys.stderr)
        sys.exit(130)
