"""The live pipeline's consumer side: resample, frame, window, predict, smooth.

Windows line up exactly with the offline path (`Classifier.window_probabilities`): the stream's
front-end starts with the same half-window of zeros, window k spans frames
[k * hop_frames, k * hop_frames + window_frames), and a finite stream ends with the same
trailing pad. So a file streamed from its first sample gives the offline windows, however the
audio was chunked; only the new STFT frames are computed at each hop.

A live source misbehaves in ways a file does not: `LiveStream` guards the front-end against them
(non-finite samples, constant input, overflows, a device reopened after it was lost), reports
each through a `notify` callback and flags it in the predictions' `warnings`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import soxr

from edge_asc.audio_io import SAMPLE_LIMIT, to_mono
from edge_asc.errors import warn
from edge_asc.features import FrontEndConfig, LogMel, windows
from edge_asc.model import Model
from edge_asc.modelcard import SILENCE, UNCERTAIN, check_silence_dbfs  # what no class is called
from edge_asc.sources import Source

FLOOR_DBFS = -120.0  # the level reported for digital silence (JSON has no -inf)
DEFAULT_THRESHOLD = 0.3  # below this probability a label is "uncertain" (listen and classify)
DEFAULT_STUCK_SECONDS = 10.0  # identical samples for this long: a muted or stuck microphone
NOTICE_INTERVAL_S = 60.0  # stream seconds between two notices of a recurring fault
# Warnings a window can carry. The first two hold for as long as the input stays constant; the
# others go on the first window after the event (see LiveStream).
LASTING_WARNINGS = ("silent_input", "stuck_input")
WARNINGS = (*LASTING_WARNINGS, "nonfinite_samples", "input_overflow", "reconnected")


class Resampler:
    """Streaming soxr resampling to the model's rate (identical to one-shot soxr.resample)."""

    def __init__(self, rate: int, target: int) -> None:
        self.rate, self.target = rate, target
        self._soxr = (
            None
            if rate == target
            else soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")
        )

    def push(self, mono: np.ndarray) -> np.ndarray:
        if self._soxr is None:
            return mono
        return self._soxr.resample_chunk(mono, last=False)

    def flush(self) -> np.ndarray:
        if self._soxr is None:
            return np.empty(0, dtype=np.float32)
        return self._soxr.resample_chunk(np.empty(0, dtype=np.float32), last=True)


def dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale, floored at FLOOR_DBFS."""
    if samples.size == 0:
        return FLOOR_DBFS
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    if power <= 0.0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 10.0 * float(np.log10(power)))


@dataclass
class Windows:
    """Model inputs completed by one push, with their stream positions and input levels."""

    inputs: np.ndarray  # (n, 1, n_mels, window_frames) raw log-mel
    indices: list[int]  # window k starts at frame k * hop_frames
    levels: list[float]  # dBFS of each window's samples


class WindowStream:
    """Samples at the model's rate in, complete model windows out, aligned with the offline ones.

    A finite stream shorter than one window gives one window, tiled as the offline path and the
    training data do, but only from `min_samples` (half a window) on: a handful of samples, or
    none, is no sound to classify, and the tiled pad would be labelled like silence.
    """

    def __init__(self, config: FrontEndConfig, window_frames: int, hop_frames: int) -> None:
        self.config = config
        self.window_frames, self.hop_frames = window_frames, hop_frames
        self._logmel = LogMel(config)
        self._frames = np.empty((0, config.n_mels), dtype=np.float32)
        self._frame0 = 0  # absolute index of self._frames[0]
        self._samples = np.empty(0, dtype=np.float32)
        self._sample0 = 0  # absolute index of self._samples[0]
        self._next = 0  # index of the next window to emit
        # Window k's audio: samples [k * hop, k * hop + span), centred like its frames.
        self._hop_samples = hop_frames * config.hop_length
        self._span = (window_frames - 1) * config.hop_length
        self.min_samples = min_window_samples(config, window_frames)
        self.pushed = 0  # samples pushed since the start

    def push(self, samples: np.ndarray) -> Windows:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        self.pushed += samples.size
        self._samples = np.concatenate((self._samples, samples))
        # At most one hop of new frames per front-end call, however much audio arrived: a
        # bigger matrix product makes OpenBLAS start threads, which cost 10-70x more CPU on a
        # busy machine (measured) than the single-threaded product of one hop's frames.
        step = self._hop_samples
        if samples.size <= step:
            return self._add(self._logmel.push(samples), final=False)
        parts = [self._logmel.push(samples[i : i + step]) for i in range(0, samples.size, step)]
        return self._add(np.concatenate(parts), final=False)

    @property
    def held(self) -> tuple[int, int]:
        """(samples, frames) kept for windows still to come: never more than one window's."""
        return self._samples.size, self._frames.shape[0]

    def flush(self) -> Windows:
        """End of a finite stream: the trailing pad's frames and the last windows."""
        return self._add(self._logmel.flush(), final=True)

    def _add(self, frames: np.ndarray, final: bool) -> Windows:
        if frames.size:
            self._frames = np.concatenate((self._frames, frames))
        end = self._frame0 + self._frames.shape[0]
        ready = []
        while self._next * self.hop_frames + self.window_frames <= end:
            ready.append(self._next)
            self._next += 1
        if not ready and final and self._next == 0 and self.pushed >= self.min_samples:
            # A stream shorter than one window: tile it, as the offline path does.
            inputs = windows(self._frames, self.window_frames, self.hop_frames)[:1]
            out = Windows(inputs, [0], [dbfs(self._samples)])
            self._next = 1
            return out
        starts = [k * self.hop_frames - self._frame0 for k in ready]
        inputs = np.empty((len(ready), 1, self.config.n_mels, self.window_frames), np.float32)
        for i, start in enumerate(starts):
            inputs[i, 0] = self._frames[start : start + self.window_frames].T
        levels = [self._level(k) for k in ready]
        self._drop()
        return Windows(inputs, ready, levels)

    def _level(self, k: int) -> float:
        start = k * self._hop_samples - self._sample0
        return dbfs(self._samples[max(start, 0) : start + self._span])

    def _drop(self) -> None:
        """Forget frames and samples no future window needs."""
        first_frame = self._next * self.hop_frames
        cut = first_frame - self._frame0
        if cut > 0:
            self._frames = self._frames[cut:]
            self._frame0 = first_frame
        first_sample = self._next * self._hop_samples
        cut = first_sample - self._sample0
        if cut > 0:
            self._samples = self._samples[cut:]
            self._sample0 = first_sample


def min_window_samples(config: FrontEndConfig, window_frames: int) -> int:
    """Samples (at the model's rate) a finite input needs for a window: half of one."""
    return max(1, (window_frames - 1) * config.hop_length // 2)


def check_threshold(threshold: float) -> float:
    """ValueError unless `threshold` is a probability in [0, 1] (0: never "uncertain")."""
    if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:  # NaN fails too
        raise ValueError(f"threshold must be in [0, 1], not {threshold!r}")
    return float(threshold)


@dataclass(frozen=True)
class SmoothingConfig:
    """How the shown label follows the per-window probabilities, and when it is no class.

    A window below the silence level (None: the model card's, else DEFAULT_SILENCE_DBFS) is
    "silence" and restarts the smoothing; a smoothed probability below `threshold` is
    "uncertain".
    """

    method: str = "mean"  # "mean" of the last `windows` windows, or "ema" with span `windows`
    windows: int = 4  # 2 s at the default 0.5-s hop
    margin: float = 0.1  # a new label must beat the shown one's smoothed probability by this
    threshold: float = DEFAULT_THRESHOLD  # below this smoothed probability: "uncertain"
    silence_dbfs: float | None = None  # a window's RMS level below this: "silence"

    def __post_init__(self) -> None:
        if self.method not in {"mean", "ema"}:
            raise ValueError("smoothing method must be 'mean' or 'ema'")
        if self.windows < 1:
            raise ValueError("smoothing needs at least one window")
        if not 0 <= self.margin < 1 or not 0 <= self.threshold <= 1:
            raise ValueError("margin must be in [0, 1) and threshold in [0, 1]")
        if self.silence_dbfs is not None:
            check_silence_dbfs(self.silence_dbfs)


class Smoother:
    """Mean or EMA of probabilities, hysteresis on label changes, a confidence threshold."""

    def __init__(self, config: SmoothingConfig | None = None) -> None:
        self.config = config or SmoothingConfig()
        self._recent: deque[np.ndarray] = deque(maxlen=self.config.windows)
        self._ema: np.ndarray | None = None
        self._current: int | None = None

    def update(self, probs: np.ndarray) -> tuple[np.ndarray, int | None, float]:
        """Smoothed probabilities, the shown class (None: uncertain), its smoothed probability."""
        probs = np.asarray(probs, dtype=np.float64)
        if self.config.method == "mean":
            self._recent.append(probs)
            # One array, not np.mean(deque): that raises and catches an AttributeError per call.
            smoothed = np.stack(self._recent).mean(axis=0)
        else:
            alpha = 2.0 / (self.config.windows + 1)
            ema = self._ema
            smoothed = probs if ema is None else alpha * probs + (1 - alpha) * ema
            self._ema = smoothed
        best = int(np.argmax(smoothed))
        current = self._current
        if current is None or (
            best != current and smoothed[best] >= smoothed[current] + self.config.margin
        ):
            current = self._current = best
        confidence = float(smoothed[current])
        shown = current if confidence >= self.config.threshold else None
        return smoothed.astype(np.float32), shown, confidence


@dataclass
class Prediction:
    """One window's verdict, as the sinks and displays see it."""

    index: int  # window number in the stream (0 = the first second)
    offset: float  # stream seconds at the window's start (the centre of its first frame)
    time: datetime  # UTC, when the window was classified
    labels: list[str]
    probabilities: np.ndarray  # this window's, (n_classes,)
    smoothed: np.ndarray  # after smoothing, (n_classes,)
    smoothed_label: str  # UNCERTAIN below the threshold, SILENCE for a silent window
    smoothed_confidence: float
    dbfs: float  # input level of the window's samples
    overflows: int  # input overflows of the source so far
    model_id: str
    window_seconds: float = 1.0  # the window's length, so offset + this is its end
    nonfinite: int = 0  # NaN or infinite input samples replaced by zeros so far
    reconnects: int = 0  # times the input device was lost and opened again so far
    warnings: tuple[str, ...] = ()  # WARNINGS that hold for this window
    silent: bool = False  # below the silence level: labelled SILENCE, whatever the model said

    @property
    def label(self) -> str:
        """The window's top class, or SILENCE: the model's guess at nothing is no sound."""
        if self.silent:
            return SILENCE
        return self.labels[int(np.argmax(self.probabilities))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probabilities))

    def top_k(self, k: int, smoothed: bool = False) -> list[tuple[str, float]]:
        probs = self.smoothed if smoothed else self.probabilities
        order = np.argsort(-probs, kind="stable")[: max(k, 0)]
        return [(self.labels[i], float(probs[i])) for i in order]


class InputGuard:
    """What the front-end must never see, and what a person must hear about.

    `clean` replaces NaN and infinite samples with zeros (counted) and limits the rest to
    +-SAMPLE_LIMIT, so sums, the resampler and the log stay finite whatever a float source sends.
    `watch` follows runs of identical samples: a real microphone's noise never repeats one value
    for seconds, so a run longer than `stuck_seconds` is a muted, unplugged or stuck input (all
    zeros: "silent_input"; any other constant: "stuck_input"), said once when it starts and once
    when it ends, and flagged on every window in between.
    """

    def __init__(self, rate: int, stuck_seconds: float, notify: Callable[[str], None]) -> None:
        self.notify = notify
        self.warning: str | None = None  # "silent_input" or "stuck_input" while a run lasts
        self._value = 0.0  # the constant of the current warning
        self._last: float | None = None  # the last sample seen
        self._run = 0  # identical samples ending with the last one
        self.reset(rate, stuck_seconds)

    def clean(self, block: np.ndarray) -> tuple[np.ndarray, int]:
        """(block with nothing non-finite or out of range, number of samples replaced)."""
        if block.size == 0:
            return block, 0
        finite = np.isfinite(block)
        bad = 0
        if not finite.all():
            bad = int(block.size - np.count_nonzero(finite))
            block = np.where(finite, block, np.float32(0.0))
        if block.max() > SAMPLE_LIMIT or block.min() < -SAMPLE_LIMIT:
            block = np.clip(block, -SAMPLE_LIMIT, SAMPLE_LIMIT)
        return block, bad

    def watch(self, mono: np.ndarray) -> None:
        """Follow the runs of identical samples through the next mono samples."""
        n = mono.size
        if n == 0 or not self.stuck_samples:
            return
        starts = np.flatnonzero(mono[1:] != mono[:-1]) + 1  # where a new value begins
        continues = self._last is not None and float(mono[0]) == self._last
        edges = np.concatenate(([0], starts, [n]))
        lengths = np.diff(edges)
        if continues:
            lengths[0] += self._run
        active = self.warning is not None
        if active and not continues:
            self._end(self._run)
        elif active and lengths.size > 1:
            self._end(int(lengths[0]))
        for j in np.flatnonzero(lengths >= self.stuck_samples):
            if j == 0 and continues and active:
                continue  # the run already reported
            self._start(float(mono[edges[j]]), int(lengths[j]))
            if j < lengths.size - 1:
                self._end(int(lengths[j]))
        self._run, self._last = int(lengths[-1]), float(mono[-1])

    def reset(self, rate: int, stuck_seconds: float) -> None:
        """A new device (or the same one reopened): forget the last run."""
        self.rate = rate
        self.stuck_samples = round(stuck_seconds * rate) if stuck_seconds > 0 else 0
        self.warning, self._value, self._last, self._run = None, 0.0, None, 0

    def _describe(self) -> str:
        if self._value == 0.0:
            return "silence (all zeros)"
        return f"one constant value ({self._value:.6g})"

    def _start(self, value: float, length: int) -> None:
        self._value = value
        self.warning = "silent_input" if value == 0.0 else "stuck_input"
        self.notify(
            f"warning: the input has been {self._describe()} for {length / self.rate:.1f} s: "
            "is the microphone muted, unplugged or stuck?"
        )

    def _end(self, length: int) -> None:
        seconds = length / self.rate
        self.notify(f"the input varies again after {seconds:.1f} s of {self._describe()}")
        self.warning = None


class LiveStream:
    """The consumer side of one source: guard, downmix, resample, window, predict, smooth.

    Faults of a live source are reported (through `notify`, once per episode or at most once per
    NOTICE_INTERVAL_S of audio for recurring ones) and flagged in the predictions, never raised:
    overflows, non-finite samples, constant input, a device that was lost and reopened. After a
    reopen the audio is not continuous, so windowing and smoothing start afresh, while window
    numbers and stream offsets go on counting.
    """

    def __init__(
        self,
        source: Source,
        model: Model,
        hop_seconds: float = 0.5,
        smoothing: SmoothingConfig | None = None,
        stuck_seconds: float = DEFAULT_STUCK_SECONDS,
        notify: Callable[[str], None] = warn,
    ) -> None:
        self.source, self.model = source, model
        fe = self.frontend = model.card.frontend
        self.hop_frames = max(1, round(hop_seconds * fe.sample_rate / fe.hop_length))
        self.hop_seconds = self.hop_frames * fe.hop_length / fe.sample_rate
        self.smoothing, self.stuck_seconds, self.notify = smoothing, stuck_seconds, notify
        self.labels = list(model.labels)
        self.nonfinite = 0
        self._reconnects = source.reconnects
        self._overflows = source.overflows
        self._flags: set[str] = set()  # one-shot warnings for the next window
        self._consumed = 0.0  # stream seconds read so far
        self._quiet_until: dict[str, float] = {}  # notice kind -> stream seconds
        self._emitted = 0
        self.silence_dbfs = model.card.silence_level(smoothing.silence_dbfs if smoothing else None)
        self._guard = InputGuard(source.rate, stuck_seconds, notify)
        self._start_segment()

    def _start_segment(self) -> None:
        """Continuous audio starts: at the beginning, and after the device was reopened."""
        fe = self.frontend
        self._rate = self.source.rate
        self._chunk = max(1, round(self.hop_seconds * self._rate))
        self._resampler = Resampler(self._rate, fe.sample_rate)
        self._windower = WindowStream(fe, self.model.card.window_frames, self.hop_frames)
        self._smoother = Smoother(self.smoothing)
        self._guard.reset(self._rate, self.stuck_seconds)
        self._index0, self._offset0 = self._emitted, self._consumed

    @property
    def backlog(self) -> dict[str, int]:
        """What the consumer holds between reads: bounded by one window plus one hop."""
        samples, frames = self._windower.held
        return {"samples": samples, "frames": frames, "flags": len(self._flags)}

    def predictions(
        self, stop: threading.Event | None = None, read_timeout: float = 0.1
    ) -> Iterator[Prediction]:
        """Classify the source window by window until it ends or `stop` is set."""
        while stop is None or not stop.is_set():
            block = self.source.read(read_timeout)
            for message in self.source.take_notices():
                self.notify(message)
            self._check_source()
            if block is None:
                yield from self._emit([self._add(self._resampler.flush()), self._add(None)])
                if not self._emitted:
                    self._say_no_window()
                return
            if block.shape[0]:
                yield from self._emit(self._push(block))

    def _say_no_window(self) -> None:
        """The input ended before a window's worth of audio: say so, rather than guess."""
        need = self._windower.min_samples / self.frontend.sample_rate
        if self._consumed == 0:
            self.notify("no audio: the input ended before any sample arrived; nothing classified")
        else:
            self.notify(
                f"no window: the input ended after {self._consumed:.3g} s of audio, less than "
                f"the {need:g} s a window needs; nothing classified"
            )

    def _due(self, kind: str) -> bool:
        """Whether a recurring notice may be said now (at most once per NOTICE_INTERVAL_S)."""
        if self._consumed < self._quiet_until.get(kind, -1.0):
            return False
        self._quiet_until[kind] = self._consumed + NOTICE_INTERVAL_S
        return True

    def _check_source(self) -> None:
        if self.source.reconnects != self._reconnects:
            self._reconnects = self.source.reconnects
            self._flags.add("reconnected")
            self._start_segment()
        overflows = self.source.overflows
        if overflows > self._overflows:
            self._flags.add("input_overflow")
            if self._due("overflow"):
                self.notify(
                    f"warning: input overflow, audio was dropped ({overflows} overflows so far): "
                    "the pipeline fell behind the device"
                )
            self._overflows = overflows

    def _push(self, block: np.ndarray) -> list[tuple[Windows, tuple[str, ...]]]:
        """Hop-sized pieces, so that a window's warnings are those of the audio it ends on."""
        ready = []
        for start in range(0, block.shape[0], self._chunk):
            raw, bad = self._guard.clean(block[start : start + self._chunk])
            if bad:
                self.nonfinite += bad
                self._flags.add("nonfinite_samples")
                if self._due("nonfinite"):
                    self.notify(
                        f"warning: {bad} NaN or infinite input samples replaced by zeros "
                        f"({self.nonfinite} so far); the model never sees them"
                    )
            mono = to_mono(raw)
            self._guard.watch(mono)
            self._consumed += raw.shape[0] / self._rate
            ready.append(self._add(self._resampler.push(mono)))
        return ready

    def _add(self, samples: np.ndarray | None) -> tuple[Windows, tuple[str, ...]]:
        """Windows completed by `samples` (None: the end of the stream), with their warnings."""
        windows = self._windower.flush() if samples is None else self._windower.push(samples)
        flags = set(self._flags)
        if self._guard.warning is not None:
            flags.add(self._guard.warning)
        if windows.indices:
            self._flags.clear()  # one-shot warnings go on the first window after the event
        return windows, tuple(sorted(flags))

    def _emit(self, ready: list[tuple[Windows, tuple[str, ...]]]) -> Iterator[Prediction]:
        """Every window completed by one read, through the model in one batch, in order."""
        parts = [(w, flags) for w, flags in ready if w.indices]
        if not parts:
            return
        probs = self.model.predict(np.concatenate([w.inputs for w, _ in parts]))
        now = datetime.now(timezone.utc)
        card = self.model.card
        row = 0
        for done, flags in parts:
            for i, (k, level) in enumerate(zip(done.indices, done.levels, strict=True)):
                p = probs[row]
                row += 1
                silent = level < self.silence_dbfs
                if silent:  # nothing to follow: smoothing starts afresh when sound returns
                    self._smoother = Smoother(self.smoothing)
                    smoothed, confidence = p, float(np.max(p))
                    smoothed_label = SILENCE
                else:
                    smoothed, shown, confidence = self._smoother.update(p)
                    smoothed_label = UNCERTAIN if shown is None else self.labels[shown]
                self._emitted += 1
                yield Prediction(
                    index=self._index0 + k,
                    offset=self._offset0 + k * self.hop_seconds,
                    time=now,
                    labels=self.labels,
                    probabilities=p,
                    smoothed=smoothed,
                    smoothed_label=smoothed_label,
                    smoothed_confidence=confidence,
                    dbfs=level,
                    overflows=self._overflows,
                    model_id=self.model.id,
                    window_seconds=card.window_seconds,
                    nonfinite=self.nonfinite,
                    reconnects=self._reconnects,
                    warnings=flags if i == 0 else self._lasting(flags),
                    silent=silent,
                )

    @staticmethod
    def _lasting(flags: tuple[str, ...]) -> tuple[str, ...]:
        """The warnings that hold for every window (not the one-shot ones)."""
        return tuple(f for f in flags if f in LASTING_WARNINGS)


def stream_predictions(
    source: Source,
    model: Model,
    hop_seconds: float = 0.5,
    smoothing: SmoothingConfig | None = None,
    stop: threading.Event | None = None,
    read_timeout: float = 0.1,
    stuck_seconds: float = DEFAULT_STUCK_SECONDS,
    notify: Callable[[str], None] = warn,
) -> Iterator[Prediction]:
    """Classify a source window by window until it ends or `stop` is set (see LiveStream)."""
    live = LiveStream(source, model, hop_seconds, smoothing, stuck_seconds, notify)
    return live.predictions(stop, read_timeout)
