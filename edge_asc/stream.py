"""The live stream: one source's blocks in, guarded, windowed, classified and smoothed
predictions out, with a notice for each fault of the source.

A live source misbehaves in ways a file does not: `LiveStream` guards the front-end against them
(non-finite samples, constant input, overflows, a device reopened after it was lost), reports
each through a `notify` callback and flags it in the predictions' `warnings`. Its windows are
those of the offline path (see edge_asc.windowing).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import numpy as np

from edge_asc.audio_io import to_mono
from edge_asc.errors import warn
from edge_asc.guard import DEFAULT_STUCK_SECONDS, InputGuard
from edge_asc.model import Model
from edge_asc.modelcard import SILENCE, UNCERTAIN  # what no class is called
from edge_asc.prediction import LASTING_WARNINGS, Prediction
from edge_asc.resampling import Resampler
from edge_asc.smoothing import Smoother, SmoothingConfig
from edge_asc.sources import Source
from edge_asc.windowing import Windows, WindowStream

NOTICE_INTERVAL_S = 60.0  # stream seconds between two notices of a recurring fault
# The longest one read waits for audio: how soon a stop request is seen. Every read that comes
# back empty is a wake-up that finds the caches cold; at 0.1 s a 0.5-s hop woke five times, and
# a real-time listener spent 6.3-6.8 ms of CPU per window against 5.4-6.0 ms at 0.5 s. A 48-kHz
# source's resampler wants up to 0.55 s for a 0.5-s hop, so at 0.5 s one window in three still
# woke twice; a second covers a hop's audio at any rate and still sees a SIGTERM within one.
READ_TIMEOUT_S = 1.0


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
        self, stop: threading.Event | None = None, read_timeout: float = READ_TIMEOUT_S
    ) -> Iterator[Prediction]:
        """Classify the source window by window until it ends or `stop` is set."""
        while stop is None or not stop.is_set():
            # Source frames until the next window is complete: a live source wakes us once.
            self.source.want(max(1, self._resampler.frames_for(self._windower.wanted)))
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
    read_timeout: float = READ_TIMEOUT_S,
    stuck_seconds: float = DEFAULT_STUCK_SECONDS,
    notify: Callable[[str], None] = warn,
) -> Iterator[Prediction]:
    """Classify a source window by window until it ends or `stop` is set (see LiveStream)."""
    live = LiveStream(source, model, hop_seconds, smoothing, stuck_seconds, notify)
    return live.predictions(stop, read_timeout)
