"""The `edge-asc` command: a thin typer layer over the library API.

User errors (EdgeAscError) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from edge_asc.errors import EdgeAscError
from edge_asc.events import DEFAULT_EVENT_THRESHOLD, DEFAULT_GAP_S, DEFAULT_MIN_DURATION_S

if TYPE_CHECKING:
    from edge_asc.dashboard.command import ListenDashboard
    from edge_asc.events import EventConfig
    from edge_asc.history import Sinks
    from edge_asc.hook import HookOptions
    from edge_asc.live import Display
    from edge_asc.model import Model
    from edge_asc.mqtt import MqttOptions
    from edge_asc.sinks import PredictionLog
    from edge_asc.smoothing import SmoothingConfig
    from edge_asc.sources import Source

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="On-device acoustic scene classification.",
)


def _version() -> str:
    """The installed distribution's version; the package's own when run from a source tree."""
    from importlib import metadata

    try:
        return metadata.version("edge-asc")
    except metadata.PackageNotFoundError:
        from edge_asc import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"edge-asc {_version()}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """On-device acoustic scene classification."""


def check_number(
    name: str, value: float, low: float, high: float, low_open: bool = False, unit: str = ""
) -> None:
    """EdgeAscError naming the option unless `value` is finite and in [low, high] ((low, high]
    with `low_open`): NaN passes every comparison, so it is tested for, not compared."""
    finite = math.isfinite(value)
    if finite and (low < value if low_open else low <= value) and value <= high:
        return
    above = "more than" if low_open else "at least"
    raise EdgeAscError(
        f"{name} must be {above} {_plain(low)} and at most {_plain(high)}{unit} (got {value})"
    )


def _plain(number: float) -> str:
    """1000000 as 1,000,000 and 0.001 as 0.001: no exponent in a limit a person reads."""
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


def bounded(
    low: float, high: float, low_open: bool = False, unit: str = ""
) -> Callable[[typer.CallbackParam, float | None], float | None]:
    """An option callback that refuses a value out of range while the line is parsed, before
    anything is loaded or opened, naming the option in one line (check_number)."""

    def check(param: typer.CallbackParam, value: float | None) -> float | None:
        if value is not None:
            check_number(param.opts[0], value, low, high, low_open, unit)
        return value

    return check


def _audio_format(param: typer.CallbackParam, value: int | None) -> int | None:
    """--rate and --channels: within what the pipeline takes (audio_io's limits)."""
    from edge_asc.audio_io import MAX_CHANNELS, MAX_RATE, MIN_RATE

    if value is not None:
        is_rate = param.name == "rate"
        low, high = (MIN_RATE, MAX_RATE) if is_rate else (1, MAX_CHANNELS)
        check_number(param.opts[0], value, low, high, unit=" Hz" if is_rate else "")
    return value


def _thread_count(param: typer.CallbackParam, value: int) -> int:
    """1 up to the CPUs this process may run on: more threads only compete for them."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    check_number(param.opts[0], value, 1, cpus or 1, unit=" (the CPUs here)")
    return value


ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model",
        "-m",
        help="ONNX model file (default: the shipped model).",
        readable=False,  # checked when loaded: one line, not click's usage box
    ),
]


HopOption = Annotated[
    float,
    typer.Option(
        help="Seconds between windows.", callback=bounded(0, 60, low_open=True, unit=" s")
    ),
]


SilenceOption = Annotated[
    float | None,
    typer.Option(
        "--silence-dbfs",
        help="A window whose RMS level is below this is 'silence' (default: the model card's, "
        "else -90 dBFS; -200: never).",
        callback=bounded(-200, 0, unit=" dBFS"),
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
    hop: HopOption = 0.5,
    threshold: Annotated[
        float,
        typer.Option(
            help="Below this mean probability the label is 'uncertain'.", callback=bounded(0, 1)
        ),
    ] = 0.3,
    silence_dbfs: SilenceOption = None,
) -> None:
    """Classify whole files: the mean of their 1-s windows' probabilities."""
    from edge_asc.api import Classifier

    classifier = Classifier(model)
    failed = 0
    for file in files:
        try:
            result = classifier.classify_file(
                file, hop, threshold, silence_dbfs, keep_windows=False
            )
        except EdgeAscError as err:
            failed += 1
            typer.echo(f"edge-asc: {err}", err=True)
            continue
        if as_json:
            typer.echo(json.dumps({"file": str(file), **result.to_dict()}))
        else:
            typer.echo(f"{file}\t{result.verdict}\t{result.confidence:.3f}")
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
    epochs: Annotated[
        int, typer.Option(help="Epochs for each full training.", callback=bounded(0, 10_000))
    ] = 0,
    quick: Annotated[
        bool, typer.Option("--quick", help="A small, fast run (tests, smoke checks).")
    ] = False,
    seed: Annotated[
        int, typer.Option(help="Seed for every random choice.", callback=bounded(0, 2**32 - 1))
    ] = 0,
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
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Validate every fold in turn (the others train) and report the mean; "
            "resumable: finished steps are kept.",
        ),
    ] = False,
    device: Annotated[
        str,
        typer.Option(
            help="auto (a GPU when there is one), cpu, cuda or cuda:N; under torchrun each "
            "process takes its own GPU."
        ),
    ] = "auto",
    backgrounds: Annotated[
        Path | None,
        typer.Option(
            help="Folder of recorded scenes (a street, a park, a room) to mix under half of the "
            "second parent's training windows."
        ),
    ] = None,
) -> None:
    """Build a model: select the filter size, train, prune, fine-tune, quantize, fuse."""
    try:
        from edge_asc.training.pipeline import PipelineOptions, run_pipeline
        from edge_asc.training.rotation import run_rotation
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
        device=device,
        backgrounds=backgrounds,
    )
    if rotate and "WORLD_SIZE" in os.environ:
        raise EdgeAscError("--rotate runs in one process: start it without torchrun")
    if rotate and (train_splits or val_splits or reference):
        raise EdgeAscError("--rotate chooses the folds itself: drop --train, --val and --reference")
    (run_rotation if rotate else run_pipeline)(options)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="ONNX model file.", readable=False)],
    data: Annotated[
        Path,
        typer.Argument(help="Labelled data: meta.csv with folds, TAU 2022, or class folders."),
    ],
    folds: Annotated[
        str, typer.Option("--folds", help="Comma-separated folds/splits (default: every clip).")
    ] = "",
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for confusion.png and reliability.png.")
    ] = Path("runs/evaluate"),
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object, not tables.")] = False,
) -> None:
    """Score a model on labelled clips, each decided as classify: accuracy, log loss, per class."""
    from edge_asc.training.evaluate import run

    run(model, data, folds.split(","), out, as_json)


HttpTokenOption = Annotated[
    str | None,
    typer.Option(
        "--http-token",
        envvar="EDGE_ASC_HTTP_TOKEN",
        show_envvar=False,
        help="The dashboard's token or password (every request must give it).",
    ),
]


DisplayOption = Annotated[
    str,
    typer.Option(
        "--display",
        help="auto (a live panel at a terminal, plain lines otherwise), rich, plain or none.",
    ),
]


def _live_options(
    display: str, method: str, windows: int, margin: float, threshold: float
) -> SmoothingConfig:
    """Check the live options before a device is opened; return the smoothing they describe.
    The numbers were checked one by one as they were parsed (`bounded`)."""
    from edge_asc.live import DISPLAYS
    from edge_asc.smoothing import SmoothingConfig

    if display not in DISPLAYS:
        raise EdgeAscError(f"--display must be one of {', '.join(DISPLAYS)}")
    try:
        return SmoothingConfig(method, windows, margin, threshold)
    except ValueError as err:
        raise EdgeAscError(str(err)) from err


def is_terminal(stream: BinaryIO) -> bool:
    """Whether a person, not a pipe, is at the other end (nothing to read from there)."""
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


def open_source(
    device: str | None = None,
    rate: int | None = None,
    channels: int | None = None,
    from_file: str | Path | None = None,
    fast: bool = False,
    stdin: bool = False,
    pcm: str | None = None,
    default_rate: int = 16000,
    stdin_stream: BinaryIO | None = None,
) -> Source:
    """The one source the `listen` options name (the microphone unless told otherwise).

    An option that does not apply to the chosen source is refused, never ignored: a file says
    its own rate, channels and format; raw PCM says none of them, so --stdin needs --rate.
    """
    from edge_asc.audio_io import check_format
    from edge_asc.sources import FileSource, MicSource, StdinSource

    if from_file is not None and stdin:
        raise EdgeAscError("choose one of --from-file and --stdin")
    if fast and from_file is None:
        raise EdgeAscError("--fast replays a file: use it with --from-file")
    if pcm is not None and not stdin:
        raise EdgeAscError("--format describes raw PCM: it applies to --stdin only")
    if from_file is not None:
        if device is not None or rate is not None or channels is not None:
            raise EdgeAscError("--device, --rate and --channels do not apply to --from-file")
        return FileSource(from_file, realtime=not fast)
    channels = channels if channels is not None else 1
    if stdin:
        if device is not None:
            raise EdgeAscError("--device does not apply to --stdin")
        if rate is None:
            raise EdgeAscError(
                "--stdin needs --rate: raw PCM does not say its sample rate, and read at "
                "another one it is classified wrong without a sign (arecord's -r)"
            )
        stream = stdin_stream if stdin_stream is not None else sys.stdin.buffer
        if is_terminal(stream):
            raise EdgeAscError(
                "--stdin reads raw PCM from a pipe, but standard input is a terminal: e.g. "
                f"arecord -f S16_LE -r {rate} -c {channels} | edge-asc listen --stdin --rate {rate}"
            )
        return StdinSource(rate, channels, "S16_LE" if pcm is None else pcm, stream)
    rate = rate if rate is not None else default_rate  # an explicit 0 is refused, not defaulted
    check_format(rate, channels, "--rate/--channels")  # before any device is opened
    return MicSource(device, rate, channels)


def _check_top_k(top_k: int, loaded: Model) -> None:
    """--top-k names at most the model's classes (the CSV log has a column pair for each)."""
    check_number("--top-k", top_k, 1, len(loaded.card.labels), unit=" (the model's classes)")


def _open_log(
    log: Path | None, log_format: str, top_k: int, log_max_mb: float, log_keep: int
) -> PredictionLog | None:
    """The prediction log, opened before the device: an unwritable path fails at once."""
    from edge_asc.sinks import PredictionLog

    if log is None:
        return None
    return PredictionLog(log, log_format, top_k, round(log_max_mb * 2**20), log_keep)


def _load_config(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """--config: the file's options become the defaults of the others (eager: read before
    them), so the command line still overrides it."""
    if value is not None:
        from edge_asc.config import listen_defaults

        ctx.default_map = {**(ctx.default_map or {}), **listen_defaults(value, ctx.command)}
    return value


def _event_config(
    loaded: Model,
    wanted: bool,
    threshold: float,
    class_thresholds: list[str],
    include: list[str],
    exclude: list[str],
    gap: float,
    min_duration: float,
) -> EventConfig:
    """What makes an event, checked against the model's classes; the event options apply to
    --db, --mqtt and --on-event only (refused without, like any option that does not apply)."""
    from edge_asc.events import EventConfig

    defaults = EventConfig()
    given = (threshold, gap, min_duration) != (
        defaults.threshold,
        defaults.gap_s,
        defaults.min_duration_s,
    )
    if not wanted and (given or class_thresholds or include or exclude):
        raise EdgeAscError(
            "the --event-* and --class-threshold options apply to --db, --mqtt and --on-event only"
        )
    thresholds = {}
    for pair in class_thresholds:
        label, sep, number = pair.partition("=")
        try:
            value = float(number) if sep else math.nan
        except ValueError:
            value = math.nan
        if not sep or not label.strip():
            raise EdgeAscError(f"--class-threshold takes CLASS=P, e.g. siren=0.7 (got {pair!r})")
        check_number(f"--class-threshold {label.strip()}", value, 0, 1)
        thresholds[label.strip()] = value
    try:
        config = EventConfig(
            threshold,
            thresholds,
            frozenset(include) if include else None,
            frozenset(exclude),
            gap,
            min_duration,
        )
        config.check_labels(loaded.labels)
    except ValueError as err:
        raise EdgeAscError(str(err)) from err
    return config


def _add_events(
    log: PredictionLog | None,
    db: Path | None,
    events: EventConfig,
    keep_days: float | None,
    window_every: float,
    mqtt: MqttOptions | None,
    hook: HookOptions | None = None,
    board: ListenDashboard | None = None,
) -> Sinks:
    """The event history, MQTT and the --on-event hook next to the log, opened before the
    device (a bad path fails at once; the broker is connected to in the background)."""
    from edge_asc.events import EventDetector
    from edge_asc.history import EventSink, EventWatcher, History, Sinks

    history = None
    try:
        watchers: list[EventWatcher] = []
        history = History(db, keep_days) if db is not None else None
        if mqtt is not None:
            from edge_asc.mqtt import MqttPublisher

            watchers.append(MqttPublisher(mqtt, events.min_duration_s))
        if hook is not None:
            from edge_asc.hook import EventHook

            watchers.append(EventHook(hook, events.min_duration_s))
        if board is not None:
            watchers += board.watchers()
    except BaseException:
        if board is not None:
            board.close()
        for watcher in watchers:
            watcher.close()
        if history is not None:
            history.close()
        if log is not None:
            log.close()
        raise
    sink = EventSink(history, EventDetector(events), window_every, watchers)
    return Sinks([*([log] if log else []), sink])


def _mqtt_options(
    url: str | None,
    name: str | None,
    loaded: Model,
    ha_prefix: str,
    tls_files: tuple[Path | None, Path | None, Path | None],
    cooldown: float,
    min_confidence: float,
) -> MqttOptions | None:
    """--mqtt and its options, checked before anything is opened (None: no --mqtt)."""
    if url is None:
        if name is not None or any(tls_files):
            raise EdgeAscError("--name, --mqtt-ca, --mqtt-cert and --mqtt-key apply to --mqtt only")
        return None
    try:
        from edge_asc.mqtt import MqttOptions, node_id, parse_url
    except ImportError as err:  # pragma: no cover - a dependency of the package
        raise EdgeAscError(f"--mqtt needs paho-mqtt ({err.name} is missing)") from err
    prefix = ha_prefix.strip("/")
    if not prefix or any(c in prefix for c in "#+"):
        raise EdgeAscError(f"--ha-prefix must be a topic without # or + (got {ha_prefix!r})")
    for path in tls_files:
        if path is not None and not path.is_file():
            raise EdgeAscError(f"--mqtt TLS: no such file {path}")
    return MqttOptions(
        parse_url(url),
        node_id(name),
        tuple(loaded.labels),
        loaded.id,
        prefix,
        *tls_files,
        cooldown_s=cooldown,
        min_confidence=min_confidence,
        version=_version(),
    )


def _hook_options(
    command: str | None, timeout: float, cooldown: float, min_confidence: float
) -> HookOptions | None:
    """--on-event and its timeout, checked before anything is opened (None: no --on-event)."""
    from edge_asc.hook import DEFAULT_TIMEOUT_S, HookOptions

    if command is None:
        if timeout != DEFAULT_TIMEOUT_S:
            raise EdgeAscError("--on-event-timeout applies to --on-event only")
        return None
    if not command.strip():
        raise EdgeAscError("--on-event takes a command, e.g. --on-event 'cat >> events.jsonl'")
    return HookOptions(command, timeout, cooldown, min_confidence)


def _run_live(
    source: Source,
    loaded: Model,
    display: str,
    top_k: int,
    sink: PredictionLog | Sinks | None,
    hop: float,
    smoothing: SmoothingConfig,
    stuck_after: float = 10.0,
    shown: Display | None = None,
) -> None:
    """Run the live pipeline into the log and the display (`shown`, else the `display` mode's)."""
    from edge_asc.live import make_display, run

    try:
        with source:
            summary = run(
                source,
                loaded,
                shown or make_display(display, top_k),
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
            "--stdin: the PCM's rate, required (raw PCM does not say it).",
            callback=_audio_format,
        ),
    ] = None,
    channels: Annotated[
        int | None,
        typer.Option(
            "--channels", "-c", help="Channels to capture (default 1).", callback=_audio_format
        ),
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
        str | None,
        typer.Option(
            "--format",
            help="--stdin sample format: S16_LE (default), S24_3LE, S32_LE, FLOAT_LE.",
        ),
    ] = None,
    model: ModelOption = None,
    threads: Annotated[
        int, typer.Option(help="onnxruntime intra-op threads.", callback=_thread_count)
    ] = 1,
    hop: HopOption = 0.5,
    smoothing: Annotated[str, typer.Option(help="mean or ema of recent windows.")] = "mean",
    smooth_windows: Annotated[
        int, typer.Option(help="Windows the smoothing spans.", callback=bounded(1, 10_000))
    ] = 4,
    margin: Annotated[
        float,
        typer.Option(
            help="A new label must beat the shown one by this (hysteresis).",
            callback=bounded(0, 0.99),
        ),
    ] = 0.1,
    threshold: Annotated[
        float,
        typer.Option(
            help="Below this smoothed probability the label is 'uncertain'.",
            callback=bounded(0, 1),
        ),
    ] = 0.3,
    top_k: Annotated[
        int,
        typer.Option(
            help="Classes shown and logged per window (at most the model's).",
            callback=bounded(1, 1000),
        ),
    ] = 3,
    log: Annotated[
        Path | None, typer.Option("--log", help="Append one record per window to this file.")
    ] = None,
    log_format: Annotated[str, typer.Option(help="jsonl or csv.")] = "jsonl",
    log_max_mb: Annotated[
        float,
        typer.Option(
            help="Rotate the log at this size.", callback=bounded(0.001, 10**6, unit=" MB")
        ),
    ] = 10.0,
    log_keep: Annotated[
        int,
        typer.Option(help="Rotated logs kept (older are deleted).", callback=bounded(0, 1000)),
    ] = 5,
    stuck_after: Annotated[
        float,
        typer.Option(
            help="Warn when the input stays constant (all zeros: muted; another value: stuck) "
            "for this many seconds; 0: never.",
            callback=bounded(0, 86_400, unit=" s"),
        ),
    ] = 10.0,
    silence_dbfs: SilenceOption = None,
    display: DisplayOption = "auto",
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Store each detection event in this SQLite file as it ends."),
    ] = None,
    db_keep_days: Annotated[
        float | None,
        typer.Option(
            help="Delete events that ended more than this many days ago (default: keep all).",
            callback=bounded(0, 36_500, low_open=True, unit=" days"),
        ),
    ] = None,
    db_windows: Annotated[
        float,
        typer.Option(
            help="Also store one window every this many seconds (0: none).",
            callback=bounded(0, 86_400, unit=" s"),
        ),
    ] = 0.0,
    event_confidence: Annotated[
        float,
        typer.Option(
            help="Smoothed confidence a class needs for an event (unless --class-threshold).",
            callback=bounded(0, 1),
        ),
    ] = DEFAULT_EVENT_THRESHOLD,
    class_threshold: Annotated[
        list[str] | None,
        typer.Option(
            help="CLASS=P: that class's own event threshold (repeatable).", show_default=False
        ),
    ] = None,
    event_class: Annotated[
        list[str] | None,
        typer.Option(help="Only this class makes events (repeatable; default: every class)."),
    ] = None,
    event_exclude: Annotated[
        list[str] | None,
        typer.Option(help="This class makes no events (repeatable)."),
    ] = None,
    event_gap: Annotated[
        float,
        typer.Option(
            help="An event ends after this many seconds without its class.",
            callback=bounded(0, 86_400, unit=" s"),
        ),
    ] = DEFAULT_GAP_S,
    event_min_duration: Annotated[
        float,
        typer.Option(help="Shorter events are dropped.", callback=bounded(0, 86_400, unit=" s")),
    ] = DEFAULT_MIN_DURATION_S,
    mqtt: Annotated[
        str | None,
        typer.Option(
            "--mqtt",
            help="Publish to this broker: mqtt://[user[:password]@]host[:port] or mqtts://...",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="This listener's node id in MQTT (default: the host name)."),
    ] = None,
    mqtt_ca: Annotated[
        Path | None, typer.Option(help="mqtts: CA certificate file.", readable=False)
    ] = None,
    mqtt_cert: Annotated[
        Path | None, typer.Option(help="mqtts: client certificate file.", readable=False)
    ] = None,
    mqtt_key: Annotated[
        Path | None, typer.Option(help="mqtts: client key file.", readable=False)
    ] = None,
    ha_prefix: Annotated[
        str, typer.Option(help="Home Assistant's discovery prefix.")
    ] = "homeassistant",
    notify_cooldown: Annotated[
        float,
        typer.Option(
            help="MQTT and --on-event: after an event's start, that class's next start waits "
            "this many seconds.",
            callback=bounded(0, 86_400, unit=" s"),
        ),
    ] = 30.0,
    notify_min_confidence: Annotated[
        float,
        typer.Option(
            help="MQTT and --on-event: events whose peak confidence is lower are not told.",
            callback=bounded(0, 1),
        ),
    ] = 0.0,
    on_event: Annotated[
        str | None,
        typer.Option(
            "--on-event",
            help="Run this shell command at each event's start, with the event as JSON on stdin "
            "(one at a time; after --notify-cooldown and --notify-min-confidence).",
        ),
    ] = None,
    on_event_timeout: Annotated[
        float,
        typer.Option(
            help="Kill an --on-event command still running after this many seconds.",
            callback=bounded(0.1, 3600, unit=" s"),
        ),
    ] = 10.0,
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            help="Serve the dashboard at HOST:PORT (e.g. 127.0.0.1:8080; beyond loopback it "
            "needs --http-token).",
        ),
    ] = None,
    http_token: HttpTokenOption = None,
    clips: Annotated[
        bool,
        typer.Option(
            "--clips", help="Save each event's audio as FLAC next to --db (off: no audio stored)."
        ),
    ] = False,
    clips_max_mb: Annotated[
        float,
        typer.Option(
            help="The clips folder's size limit (the most common class's oldest go first).",
            callback=bounded(1, 10**6, unit=" MB"),
        ),
    ] = 500.0,
    clips_keep_days: Annotated[
        float,
        typer.Option(
            help="Delete clips older than this many days.",
            callback=bounded(0, 36_500, low_open=True, unit=" days"),
        ),
    ] = 30.0,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file of options: a [listen] table with the long option names as keys "
            "and a [thresholds] table (CLASS = P); the command line overrides it.",
            is_eager=True,
            callback=_load_config,
            readable=False,
        ),
    ] = None,
) -> None:
    """Classify live audio: a microphone, a replayed file or raw PCM on stdin. Stop: Ctrl-C."""
    from edge_asc.model import Model

    config = _live_options(display, smoothing, smooth_windows, margin, threshold)
    config = dataclasses.replace(config, silence_dbfs=silence_dbfs)
    loaded = Model(model, threads=threads)
    _check_top_k(top_k, loaded)
    clip_defaults = (500.0, 30.0)
    served = kept = None
    # The dashboard's modules (http.server, hmac and libcrypto, sqlite3) add about 8 MiB to a
    # listener: they are imported only when one of its options is given.
    asked = http is not None or http_token is not None or clips
    if asked or (clips_max_mb, clips_keep_days) != clip_defaults:
        from edge_asc.dashboard.command import clip_options, http_options

        served = http_options(http, http_token)
        kept = clip_options(clips, db, clips_max_mb, clips_keep_days, clip_defaults)
    events = _event_config(
        loaded,
        db is not None or mqtt is not None or on_event is not None or served is not None,
        event_confidence,
        class_threshold or [],
        event_class or [],
        event_exclude or [],
        event_gap,
        event_min_duration,
    )
    publish = _mqtt_options(
        mqtt,
        name,
        loaded,
        ha_prefix,
        (mqtt_ca, mqtt_cert, mqtt_key),
        notify_cooldown,
        notify_min_confidence,
    )
    hook = _hook_options(on_event, on_event_timeout, notify_cooldown, notify_min_confidence)
    board = None
    if served is not None or kept is not None:
        from edge_asc.dashboard.command import ListenDashboard

        # Binds --http here, before the device: a port in use fails at once.
        board = ListenDashboard(served, kept, loaded, top_k, db)
    try:
        sink = _open_log(log, log_format, top_k, log_max_mb, log_keep)
    except BaseException:
        if board is not None:
            board.close()
        raise
    if db is not None or publish is not None or hook is not None or served is not None:
        sink = _add_events(sink, db, events, db_keep_days, db_windows, publish, hook, board)
    try:
        source = open_source(
            device, rate, channels, from_file, fast, stdin, pcm, loaded.card.frontend.sample_rate
        )
    except BaseException:
        if sink is not None:
            sink.close()
        raise
    if board is not None:
        board.start()
        source = board.tap(source)
    _run_live(source, loaded, display, top_k, sink, hop, config, stuck_after)


DbArgument = Annotated[
    Path, typer.Option("--db", help="The SQLite history `listen --db` writes.", readable=False)
]
SinceOption = Annotated[
    str | None,
    typer.Option(help="Only events since: a span (30m, 1h, 2d, 1w) or a date/time (UTC)."),
]
LabelOption = Annotated[str | None, typer.Option("--label", help="Only events of this class.")]


@app.command()
def events(
    db: DbArgument,
    since: SinceOption = None,
    label: LabelOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line and event.")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
) -> None:
    """Print the detection events stored by `listen --db`, oldest first (times in UTC)."""
    from edge_asc.history import read_events
    from edge_asc.history_view import events_text, parse_since

    if as_json and as_csv:
        raise EdgeAscError("choose one of --json and --csv")
    found = read_events(db, parse_since(since) if since else None, label)
    fmt = "json" if as_json else "csv" if as_csv else "text"
    typer.echo(events_text(found, fmt), nl=False)


@app.command()
def summary(
    db: DbArgument,
    by: Annotated[
        str | None, typer.Option("--by", help="Counts per hour or day (default: in all).")
    ] = None,
    since: SinceOption = None,
    label: LabelOption = None,
    png: Annotated[
        Path | None, typer.Option("--png", help="Also draw the counts into this PNG file.")
    ] = None,
) -> None:
    """Count the stored events per class (per hour or day with --by), with bars."""
    from rich.console import Console

    from edge_asc.history import read_events
    from edge_asc.history_view import BUCKETS, check_png_support, parse_since, print_summary

    if by is not None and by not in BUCKETS:
        raise EdgeAscError(f"--by must be one of {', '.join(BUCKETS)} (got {by!r})")
    if png is not None:
        check_png_support()
    found = read_events(db, parse_since(since) if since else None, label)
    print_summary(found, by, Console())
    if png is not None:
        from edge_asc.history_view import write_png

        write_png(found, by, png)
        typer.echo(f"edge-asc: wrote {png}", err=True)


@app.command()
def serve(
    db: DbArgument,
    http: Annotated[
        str,
        typer.Option(
            "--http", help="HOST:PORT to serve at (beyond loopback it needs --http-token)."
        ),
    ] = "127.0.0.1:8080",
    http_token: HttpTokenOption = None,
    model: ModelOption = None,
) -> None:
    """Serve the dashboard of a history alone (no audio): today's timeline, the events, the
    model card. Stop: Ctrl-C."""
    import threading

    from edge_asc.dashboard.command import http_options
    from edge_asc.dashboard.command import serve as run_serve
    from edge_asc.live import stop_on_signals
    from edge_asc.model import Model

    served = http_options(http, http_token)
    assert served is not None
    loaded = Model(model)
    stop = threading.Event()
    with stop_on_signals(stop, threading.Event()):
        run_serve(db, served, loaded, stop)
    typer.echo("edge-asc: stopped", err=True)


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
    """Replay the bundled recording (four street sounds) through the live pipeline, each
    window shown with the class that is playing, and a tally of right answers at the end."""
    from edge_asc.live import DemoScore, ScoredDisplay, demo_segments, make_display
    from edge_asc.model import Model
    from edge_asc.sources import FileSource

    smoothing = _live_options(display, "mean", 4, 0.1, 0.3)
    loaded = Model(model)
    score = DemoScore(
        demo_segments(sample("ATTRIBUTION.md").read_text()), loaded.card.window_seconds
    )
    shown = ScoredDisplay(make_display(display, 3, annotate=score.note), score)
    sink = _open_log(log, "jsonl", 3, 10.0, 5)
    source = FileSource(demo_recording(), realtime=not fast)
    _run_live(source, loaded, display, 3, sink, 0.5, smoothing, shown=shown)
    typer.echo(f"edge-asc: {score.line()}", err=True)


def sample(name: str) -> Path:
    """A file of the bundled samples (package data): the demo clip and its attribution."""
    from importlib import resources

    return Path(str(resources.files("edge_asc").joinpath("samples", name)))


def demo_recording() -> Path:
    """The bundled demo clip (see samples/ATTRIBUTION.md)."""
    return sample("demo.flac")


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
    runs: Annotated[
        int,
        typer.Option(help="Timed runs per candidate (median, p99).", callback=bounded(1, 10**6)),
    ] = 200,
    fast_seconds: Annotated[
        float,
        typer.Option(help="Audio replayed with --fast.", callback=bounded(2, 86_400, unit=" s")),
    ] = 300.0,
    realtime_seconds: Annotated[
        float,
        typer.Option(help="Audio replayed in real time.", callback=bounded(2, 3600, unit=" s")),
    ] = 20.0,
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
