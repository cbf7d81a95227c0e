"""Background scenes mixed under training windows: the sound on top of a street, a park, a bus.

A microphone on a Pi hears the event over whatever the place sounds like, and UrbanSound8K's
clips carry their own recordings' backgrounds, a cue that does not travel to the next fold.
Salamon & Bello (2017) mixed their clips with recorded acoustic scenes; here a window of a
background recording is added in power to a share of the drawn windows, at a random
signal-to-background ratio, so the model learns the event over many backgrounds.

Mixing is done on the log-mel frames, not on the waveforms: mel power adds when two sounds add
(the cross terms of uncorrelated sources average out within a mel band), so
`log(exp(a) + g exp(b))` is the front-end's output for the mixed sound to within that averaging,
and it costs an epoch no decoding or new front-end pass. The recordings' frames come from the
feature cache like the clips'.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_asc.errors import EdgeAscError
from edge_asc.training.data import AUDIO_SUFFIXES

LN_DB = np.log(10.0) / 10.0  # one dB in natural-log power


@dataclass(frozen=True)
class Backgrounds:
    """Background recordings' log-mel frames and the normalisation of the windows they go under."""

    frames: np.ndarray  # (total frames, n_mels) natural-log mel power, recording after recording
    mean: np.ndarray  # (n_mels,) the training frames' band means the windows were normalised by
    std: np.ndarray  # (n_mels,) and their band spreads

    def __post_init__(self) -> None:
        if self.frames.ndim != 2 or not self.frames.shape[1] == len(self.mean) == len(self.std):
            raise ValueError(
                f"background frames {self.frames.shape} do not match {len(self.mean)} bands"
            )

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """What decides a mix: hashed into the key of every step trained with it."""
        return self.frames, self.mean, self.std


def find(folder: Path) -> list[Path]:
    """The audio files under `folder`, sorted, so a run reads them in the same order anywhere."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise EdgeAscError(f"background folder not found: {folder}")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not paths:
        raise EdgeAscError(
            f"no background recordings ({', '.join(sorted(AUDIO_SUFFIXES))}) in {folder}"
        )
    return paths


def bank(
    frames: list[np.ndarray], mean: np.ndarray, std: np.ndarray, window_frames: int
) -> Backgrounds:
    """The recordings end to end; a mixed window is cut from anywhere in them."""
    joined = np.concatenate(frames).astype(np.float32)
    if len(joined) < window_frames:
        raise EdgeAscError(
            f"the background recordings hold {len(joined)} frames; a window needs {window_frames}"
        )
    return Backgrounds(joined, mean.astype(np.float32), std.astype(np.float32))


def mix(
    x: np.ndarray,
    backgrounds: Backgrounds,
    share: float,
    snr_db: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """`share` of the normalised windows `x` (n, 1, n_mels, frames), each over a random
    background window at a signal-to-background ratio uniform in `snr_db` (mean mel power of the
    window against the background's); the others, and `x` itself, are left as they are."""
    n, _, _, width = x.shape
    pick = np.flatnonzero(rng.random(n) < share)
    if not len(pick):
        return x
    starts = rng.integers(0, len(backgrounds.frames) - width + 1, size=len(pick))
    rows = starts[:, None] + np.arange(width)
    under = backgrounds.frames[rows].transpose(0, 2, 1)  # (k, n_mels, frames)
    mean, std = backgrounds.mean[None, :, None], backgrounds.std[None, :, None]
    over = x[pick, 0] * std + mean
    power_over = np.log(np.mean(np.exp(over.astype(np.float64)), axis=(1, 2)))
    power_under = np.log(np.mean(np.exp(under.astype(np.float64)), axis=(1, 2)))
    snr = rng.uniform(snr_db[0], snr_db[1], size=len(pick))
    offset = (power_over - power_under - snr * LN_DB).astype(np.float32)
    mixed = np.logaddexp(over, under + offset[:, None, None])
    out = x.copy()
    out[pick, 0] = (mixed - mean) / std
    return out
