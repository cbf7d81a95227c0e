"""A live session: run the stream until it ends or is stopped, feeding the log and a display.

Two displays: a rich live panel for a person at a terminal, and one plain line per prediction
when stdout is not a terminal (systemd, journald, a pipe), where redrawing would be noise.
SIGTERM and SIGINT only set a flag that the stream checks between reads, so a stop never cuts a
log line in half and the process exits 0. Faults the listener survives (a lost device, a full
disk, silent input, overflows) are one line each on stderr, the journal under systemd, and the
windows they touch carry a warning in the log and on the display.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Protocol, TextIO

from edge_asc.errors import warn
from edge_asc.guard import DEFAULT_STUCK_SECONDS
from edge_asc.model import Model
from edge_asc.modelcard import UNCERTAIN
from edge_asc.prediction import Prediction
from edge_asc.sinks import utc_iso
from edge_asc.smoothing import SmoothingConfig
from edge_asc.sources import Source
from edge_asc.stream import LiveStream

if TYPE_CHECKING:  # rich is imported by the rich display alone: a service never loads it
    from rich.console import Console
    from rich.live import Live
    from rich.panel import Panel

DISPLAYS = ("auto", "rich", "plain", "none")


class Display(Protocol):
    def start(self, source: Source, model_id: str) -> None: ...
    def update(self, pred: Prediction) -> None: ...
    def stop(self) -> None: ...


class Sink(Protocol):
    """What the loop feeds each prediction to: the prediction log, the event history, or both
    (edge_asc.history.Sinks); SIGHUP reopens it."""

    def write(self, pred: Prediction) -> None: ...
    def reopen(self) -> None: ...


Annotate = Callable[[Prediction], str]  # extra text shown with a prediction (the demo's truth)


def say_start(source: Source, model_id: str) -> None:
    """What is being listened to, with which model: stderr, so the journal has it too."""
    warn(f"listening to {source.description} with {model_id}")


class NoDisplay:
    """Nothing on stdout (the log alone: a service); the start line still goes to stderr."""

    def start(self, source: Source, model_id: str) -> None:
        say_start(source, model_id)

    def update(self, pred: Prediction) -> None:
        pass

    def stop(self) -> None:
        pass


WARNING_TEXT = {
    "silent_input": "the input is silent (all zeros): microphone muted or unplugged?",
    "stuck_input": "the input is stuck at one value: microphone faulty?",
    "nonfinite_samples": "NaN or infinite samples replaced by zeros",
    "input_overflow": "input overflow: audio was dropped",
    "reconnected": "the input device was reopened",
}


def plain_line(pred: Prediction) -> str:
    line = (
        f"{utc_iso(pred)} {pred.offset:9.1f}s  {pred.label} {pred.confidence:.3f}  "
        f"smoothed {pred.smoothed_label} {pred.smoothed_confidence:.3f}  "
        f"{pred.dbfs:6.1f} dBFS  overflows {pred.overflows}"
    )
    if pred.warnings:
        line += "  WARNING " + ",".join(pred.warnings)
    return line


class PlainDisplay:
    """One line per prediction, flushed, for journald and pipes."""

    def __init__(self, out: TextIO | None = None, annotate: Annotate | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.annotate = annotate

    def start(self, source: Source, model_id: str) -> None:
        say_start(source, model_id)

    def update(self, pred: Prediction) -> None:
        note = f"  {self.annotate(pred)}" if self.annotate else ""
        self.out.write(plain_line(pred) + note + "\n")
        self.out.flush()

    def stop(self) -> None:
        pass


class RichDisplay:
    """A live panel: the shown label, a bar per top class, time, input level, overflows."""

    def __init__(
        self, top_k: int = 3, console: Console | None = None, annotate: Annotate | None = None
    ) -> None:
        from rich.console import Console

        self.top_k = top_k
        self.console = console or Console()
        self.annotate = annotate
        self._live: Live | None = None
        self._source = "audio"
        self._model = ""
        self._t0 = time.monotonic()

    def start(self, source: Source, model_id: str) -> None:
        from rich.live import Live
        from rich.panel import Panel
        from rich.text import Text

        self._source, self._model = source.description, model_id
        self._t0 = time.monotonic()
        waiting = Panel(Text("listening... (the first window takes one second)"), title="edge-asc")
        self._live = Live(waiting, console=self.console, auto_refresh=False, transient=False)
        self._live.start(refresh=True)

    def render(self, pred: Prediction) -> Panel:
        from rich.bar import Bar
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        style = "yellow" if pred.smoothed_label == UNCERTAIN else "bold green"
        head = Text.assemble(
            (pred.smoothed_label, style), f"  {100 * pred.smoothed_confidence:.0f}%"
        )
        bars = Table.grid(padding=(0, 1))
        bars.add_column(min_width=18)
        bars.add_column()
        bars.add_column(justify="right")
        for label, p in pred.top_k(self.top_k, smoothed=True):
            bars.add_row(label, Bar(1.0, 0.0, p, width=30), f"{100 * p:5.1f}%")
        elapsed = time.monotonic() - self._t0
        audio = pred.offset + pred.window_seconds
        overflow_style = "red" if pred.overflows else "dim"
        foot = Text.assemble(
            (
                f"elapsed {elapsed:6.1f} s   audio {audio:6.1f} s   level {pred.dbfs:6.1f} dBFS   ",
                "dim",
            ),
            (f"overflows {pred.overflows}", overflow_style),
        )
        lines = [head, Text(""), bars, Text(""), foot]
        if self.annotate:
            lines[1:1] = [Text(self.annotate(pred), "cyan")]
        lines += [Text(f"warning: {WARNING_TEXT.get(w, w)}", "bold red") for w in pred.warnings]
        body = Group(*lines)
        return Panel(body, title=f"edge-asc: {self._source}", subtitle=self._model)

    def update(self, pred: Prediction) -> None:
        if self._live is not None:
            self._live.update(self.render(pred), refresh=True)

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
            if not self.console.is_terminal:
                self.console.line()  # a file or pipe gets the last panel and its newline


def make_display(mode: str = "auto", top_k: int = 3, annotate: Annotate | None = None) -> Display:
    """`auto`: the rich panel at a terminal, plain lines otherwise."""
    if mode not in DISPLAYS:
        raise ValueError(f"display must be one of {DISPLAYS}")
    if mode == "auto":
        mode = "rich" if sys.stdout.isatty() else "plain"
    if mode == "rich":
        return RichDisplay(top_k, annotate=annotate)
    if mode == "plain":
        return PlainDisplay(annotate=annotate)
    return NoDisplay()


# --- the demo: what is playing, so a person can tell a right answer from a wrong one -------------


@dataclass(frozen=True)
class Segment:
    start: float  # seconds into the recording
    end: float
    label: str


def demo_segments(attribution: str) -> list[Segment]:
    """The clips of the demo recording, from its ATTRIBUTION.md table (| 0-4 | dog_bark | ...),
    the one place that says what was joined where."""
    rows = re.findall(r"^\|\s*([\d.]+)-([\d.]+)\s*\|\s*(\w+)\s*\|", attribution, re.MULTILINE)
    segments = [Segment(float(a), float(b), label) for a, b, label in rows]
    if not segments:
        raise ValueError("no '| start-end | class |' rows in the attribution")
    return segments


class DemoScore:
    """Each window's own label against the class of the clip it lies in. A window across a
    join of two clips holds both and is not scored."""

    def __init__(self, segments: list[Segment], window_seconds: float) -> None:
        self.segments, self.window_seconds = segments, window_seconds
        self.right = self.scored = self.across = 0

    def truth(self, pred: Prediction) -> list[str]:
        """The classes playing during the window (two across a join)."""
        start, end = pred.offset, pred.offset + self.window_seconds
        return [s.label for s in self.segments if s.start < end and start < s.end]

    def note(self, pred: Prediction) -> str:
        """What the display shows next to the prediction, once it is recorded."""
        playing = self.truth(pred)
        if len(playing) != 1:
            return f"playing {' + '.join(playing) or 'nothing'} (a join: not scored)"
        verdict = "right" if pred.label == playing[0] else "wrong"
        return f"playing {playing[0]}: {verdict} ({self.right}/{self.scored} right so far)"

    def record(self, pred: Prediction) -> None:
        playing = self.truth(pred)
        if len(playing) != 1:
            self.across += 1
            return
        self.scored += 1
        self.right += pred.label == playing[0]

    def line(self) -> str:
        """The tally the demo ends with."""
        share = f" ({100 * self.right / self.scored:.0f} %)" if self.scored else ""
        return (
            f"demo: {self.right} of {self.scored} windows right{share}, by each window's own "
            f"label; {self.across} across a join of two clips not scored"
        )


class ScoredDisplay:
    """A display that tallies each prediction (DemoScore) before showing it."""

    def __init__(self, inner: Display, score: DemoScore) -> None:
        self.inner, self.score = inner, score

    def start(self, source: Source, model_id: str) -> None:
        self.inner.start(source, model_id)

    def update(self, pred: Prediction) -> None:
        self.score.record(pred)  # first: the note shows the tally with this window
        self.inner.update(pred)

    def stop(self) -> None:
        self.inner.stop()


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, reopen: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set `stop` (a second SIGINT interrupts at once); SIGHUP sets `reopen`,
    what `systemctl reload` and logrotate send. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            reopen.set()
            return
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class Summary:
    windows: int = 0
    audio_seconds: float = 0.0
    overflows: int = 0
    nonfinite: int = 0
    reconnects: int = 0
    stopped: bool = False  # by a signal, as opposed to the source ending

    def line(self) -> str:
        """What the listener says last: `done` or `stopped`, and what it went through."""
        how = "stopped" if self.stopped else "done"
        text = (
            f"{how}: {self.windows} windows, {self.audio_seconds:.1f} s of audio, "
            f"{self.overflows} overflows"
        )
        if self.nonfinite:
            text += f", {self.nonfinite} non-finite samples replaced"
        if self.reconnects:
            text += f", {self.reconnects} reconnects"
        return text


def run(
    source: Source,
    model: Model,
    display: Display,
    log: Sink | None = None,
    hop_seconds: float = 0.5,
    smoothing: SmoothingConfig | None = None,
    stop: threading.Event | None = None,
    stuck_seconds: float = DEFAULT_STUCK_SECONDS,
    notify: Callable[[str], None] = warn,
) -> Summary:
    """Stream `source` through `model` into `log` and `display` until it ends or a signal."""
    stop = stop or threading.Event()
    reopen = threading.Event()
    summary = Summary()
    window_seconds = model.card.window_seconds
    live = LiveStream(source, model, hop_seconds, smoothing, stuck_seconds, notify)
    with stop_on_signals(stop, reopen):
        display.start(source, model.id)
        try:
            for pred in live.predictions(stop):
                if log is not None:
                    if reopen.is_set():
                        reopen.clear()
                        log.reopen()
                    log.write(pred)
                display.update(pred)
                summary.windows += 1
                summary.audio_seconds = pred.offset + window_seconds
                summary.overflows = pred.overflows
                summary.reconnects = pred.reconnects
        except BrokenPipeError:
            # The reader of stdout went away (`| head`): stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            stop.set()
        finally:
            display.stop()
    summary.stopped = stop.is_set()
    summary.overflows = max(summary.overflows, source.overflows)
    summary.reconnects = max(summary.reconnects, source.reconnects)
    summary.nonfinite = live.nonfinite
    return summary
