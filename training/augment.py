"""Waveform augmentation that changes pitch and time: the clip played faster or slower.

Salamon & Bello (2017) found time stretching and pitch shifting the only augmentations that
helped every UrbanSound8K class. Resampling a clip by a factor and playing it back at the model's
rate does both at once (a tape played fast: higher and shorter), with soxr's streaming-quality
resampler the app already ships, so no new dependency and no phase-vocoder artefacts.

The app's own front-end then turns each variant into log-mel frames, so a variant is what the
device would compute from that sound; the feature cache keys them by the factor, so an epoch
decodes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr


@dataclass(frozen=True)
class Speed:
    """One variant: `factor` > 1 plays faster and higher, < 1 slower and lower."""

    factor: float

    def __post_init__(self) -> None:
        if not 0.5 <= self.factor <= 2.0:
            raise ValueError(f"speed factor {self.factor} outside 0.5 to 2.0")

    @property
    def key(self) -> str:
        """What the feature cache keys the variant by: the factor, exactly."""
        return f"speed={self.factor!r}"

    def apply(self, signal: np.ndarray, rate: int) -> np.ndarray:
        """The signal resampled so that, played at `rate`, it runs `factor` times as fast."""
        if self.factor == 1.0:
            return signal
        # Reading `rate * factor` samples per second as `rate`: n samples become n / factor.
        out = soxr.resample(signal, rate * self.factor, rate, quality="HQ")
        return np.asarray(out, dtype=np.float32)


def speeds(factors: tuple[float, ...]) -> list[Speed]:
    """The variants to train on besides the originals (1.0 is the original, so it is skipped)."""
    return [Speed(f) for f in factors if f != 1.0]
