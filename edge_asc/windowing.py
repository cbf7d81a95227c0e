"""Cuts a stream of samples into the model's log-mel windows, aligned with the offline ones.

Windows line up exactly with the offline path (`Classifier.window_probabilities`): the stream's
front-end starts with the same half-window of zeros, window k spans frames
[k * hop_frames, k * hop_frames + window_frames), and a finite stream ends with the same
trailing pad. So a file streamed from its first sample gives the offline windows, however the
audio was chunked; only the new STFT frames are computed at each hop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_asc.features import FrontEndConfig, LogMel, windows
from edge_asc.level import dbfs


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
    def wanted(self) -> int:
        """Samples still to push before the next window is complete (its last frame is
        centred on a sample and needs half an analysis window after it)."""
        last = self._next * self.hop_frames + self.window_frames - 1
        win = self.config.win_length
        return max(0, last * self.config.hop_length + win - win // 2 - self.pushed)

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
