"""The input level of a stretch of samples, in dBFS.

Windows carry their level (the log's `dbfs`, the silence rule); digital silence has no finite
dB, so it is floored at FLOOR_DBFS.
"""

from __future__ import annotations

import numpy as np

FLOOR_DBFS = -120.0  # the level reported for digital silence (JSON has no -inf)


def dbfs(samples: np.ndarray) -> float:
    """RMS level in dB relative to full scale, floored at FLOOR_DBFS."""
    if samples.size == 0:
        return FLOOR_DBFS
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    if power <= 0.0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 10.0 * float(np.log10(power)))
