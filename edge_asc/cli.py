"""The `edge-asc` command: a thin typer layer over the library API.

User errors (EdgeAscError) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edge_asc.errors import EdgeAscError

if TYPE_CHECKING:
    from edge_asc.model import Model
    from edge_asc.sinks import PredictionLog
    from edge_asc.sources import Source
    from edge_asc.stream import SmoothingConfig

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="On-device acoustic scene classification.",
)

ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model",
        "-m",
        help="ONNX model file (default: the shipped model).",
        readable=False,  # checked when loaded: one line, not click's usage box
    ),
]


@app.command()
def classify(
    files: Annotated[
        list[Path],
        typer.Argument(help="Audio files (any rate, channels, format).", readable=False),
    ],
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
        typer.Argument(help="ONNX model file (default: the shipped model).", readable=False),
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


DisplayOption = Annotated[
    str,
    typer.Option(
        "--display",
        help="auto (a live panel at a terminal, plain lines otherwise), rich, plain or none.",
    ),
]


def _live_options(
    display: str, hop: float, top_k: int, method: str, windows: int, margin: float, threshold: float
) -> SmoothingConfig:
    """Check the live options before a device is opened; return the smoothing they describe."""
    from edge_asc.live import DISPLAYS
    from edge_asc.stream import SmoothingConfig

    if display not in DISPLAYS:
        raise EdgeAscError(f"--display must be one of {', '.join(DISPLAYS)}")
    if hop <= 0 or top_k < 1:
        raise EdgeAscError("--hop must be positive and --top-k at least 1")
    try:
        return SmoothingConfig(method, windows, margin, threshold)
    except ValueError as err:
        raise EdgeAscError(str(err)) from err


def _open_log(
    log: Path | None, log_format: str, top_k: int, log_max_mb: float, log_keep: int
) -> PredictionLog | None:
    """The prediction log, opened before the device: an unwritable path fails at once."""
    from edge_asc.sinks import PredictionLog

    if log is None:
        return None
    return PredictionLog(log, log_format, top_k, round(log_max_mb * 2**20), log_keep)


def _run_live(
    source: Source,
    loaded: Model,
    display: str,
    top_k: int,
    sink: PredictionLog | None,
    hop: float,
    smoothing: SmoothingConfig,
    stuck_after: float = 10.0,
) -> None:
    from edge_asc.live import make_display, run

    try:
        with source:
            summary = run(
                source,
                loaded,
                make_display(display, top_k),
                sink,
                hop,
                smoothing,
                stuck_seconds=stuck_after,
            )
    finally:
        if sink is not None:
            sink.close()
    typer.echo(f"edge-asc: {summary.line()}", err=True)


@app.command()
def listen(
    device: Annotated[
        str | None,
        typer.Option("--device", "-d", help="Input device: index or name substring."),
    ] = None,
    rate: Annotated[
        int | None,
        typer.Option(
            "--rate",
            "-r",
            help="Hz. Microphone: the model's rate if the device takes it, else its default. "
            "--stdin: the PCM's rate (default: the model's).",
        ),
    ] = None,
    channels: Annotated[
        int | None, typer.Option("--channels", "-c", help="Channels to capture (default 1).")
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="Replay an audio file instead.", readable=False),
    ] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="With --from-file: as fast as possible.")
    ] = False,
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Raw interleaved PCM on standard input.")
    ] = False,
    pcm: Annotated[
        str,
        typer.Option("--format", help="--stdin sample format: S16_LE, S24_3LE, S32_LE, FLOAT_LE."),
    ] = "S16_LE",
    model: ModelOption = None,
    threads: Annotated[int, typer.Option(help="onnxruntime intra-op threads.")] = 1,
    hop: Annotated[float, typer.Option(help="Seconds between windows.")] = 0.5,
    smoothing: Annotated[str, typer.Option(help="mean or ema of recent windows.")] = "mean",
    smooth_windows: Annotated[int, typer.Option(help="Windows the smoothing spans.")] = 4,
    margin: Annotated[
        float, typer.Option(help="A new label must beat the shown one by this (hysteresis).")
    ] = 0.1,
    threshold: Annotated[
        float, typer.Option(help="Below this smoothed probability the label is 'uncertain'.")
    ] = 0.3,
    top_k: Annotated[int, typer.Option(help="Classes shown and logged per window.")] = 3,
    log: Annotated[
        Path | None, typer.Option("--log", help="Append one record per window to this file.")
    ] = None,
    log_format: Annotated[str, typer.Option(help="jsonl or csv.")] = "jsonl",
    log_max_mb: Annotated[float, typer.Option(help="Rotate the log at this size.")] = 10.0,
    log_keep: Annotated[int, typer.Option(help="Rotated logs kept (older are deleted).")] = 5,
    stuck_after: Annotated[
        float,
        typer.Option(
            help="Warn when the input stays constant (all zeros: muted; another value: stuck) "
            "for this many seconds; 0: never."
        ),
    ] = 10.0,
    display: DisplayOption = "auto",
) -> None:
    """Classify live audio: a microphone, a replayed file or raw PCM on stdin. Stop: Ctrl-C."""
    from edge_asc.model import Model
    from edge_asc.sources import open_source

    config = _live_options(display, hop, top_k, smoothing, smooth_windows, margin, threshold)
    if stuck_after < 0:
        raise EdgeAscError("--stuck-after must be >= 0")
    loaded = Model(model, threads=threads)
    sink = _open_log(log, log_format, top_k, log_max_mb, log_keep)
    try:
        source = open_source(
            device, rate, channels, from_file, fast, stdin, pcm, loaded.card.frontend.sample_rate
        )
    except BaseException:
        if sink is not None:
            sink.close()
        raise
    _run_live(source, loaded, display, top_k, sink, hop, config, stuck_after)


@app.command()
def devices() -> None:
    """List the input devices: index, channels, default rate (* marks the default)."""
    from edge_asc.sources import input_devices

    found = input_devices()
    if not found:
        raise EdgeAscError(
            "no input devices found: connect a microphone (is the sound server running?)"
        )
    for dev in found:
        mark = "*" if dev.is_default else " "
        typer.echo(
            f"{mark}{dev.index:3d}  {dev.name}  ({dev.hostapi}, {dev.channels} ch, "
            f"{dev.default_rate:g} Hz)"
        )


@app.command()
def demo(
    fast: Annotated[bool, typer.Option("--fast", help="As fast as possible.")] = False,
    model: ModelOption = None,
    log: Annotated[Path | None, typer.Option("--log", help="Also log to this file.")] = None,
    display: DisplayOption = "auto",
) -> None:
    """Replay the bundled recording (a few street sounds) through the live pipeline."""
    from edge_asc.model import Model
    from edge_asc.sources import FileSource

    smoothing = _live_options(display, 0.5, 3, "mean", 4, 0.1, 0.3)
    loaded = Model(model)
    sink = _open_log(log, "jsonl", 3, 10.0, 5)
    _run_live(
        FileSource(demo_recording(), realtime=not fast), loaded, display, 3, sink, 0.5, smoothing
    )


def demo_recording() -> Path:
    """The bundled demo clip (package data; see samples/ATTRIBUTION.md)."""
    from importlib import resources

    return Path(str(resources.files("edge_asc").joinpath("samples", "demo.flac")))


@app.command()
def bench(
    model: ModelOption = None,
    compare: Annotated[
        list[Path] | None,
        typer.Option("--compare", help="Another ONNX model for the latency table (repeatable)."),
    ] = None,
    audio: Annotated[
        Path | None, typer.Option(help="Real audio to measure with (default: the demo recording).")
    ] = None,
    runs: Annotated[int, typer.Option(help="Timed runs per candidate (median, p99).")] = 200,
    fast_seconds: Annotated[float, typer.Option(help="Audio replayed with --fast.")] = 300.0,
    realtime_seconds: Annotated[float, typer.Option(help="Audio replayed in real time.")] = 20.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, not tables.")] = False,
) -> None:
    """Measure this machine: front-end vs librosa, model latency, listen's CPU and memory."""
    from edge_asc.bench.command import BenchOptions, run_bench

    options = BenchOptions(model, compare or [], audio, runs, fast_seconds, realtime_seconds)
    report = run_bench(options, progress=lambda message: typer.echo(message, err=True))
    typer.echo(report.to_json() if as_json else report.to_markdown())


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
