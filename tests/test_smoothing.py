"""Smoothing rules: mean and EMA spans, hysteresis, the threshold, the config's checks."""

from __future__ import annotations

import numpy as np
import pytest

from edge_asc.modelcard import UNCERTAIN
from edge_asc.smoothing import Smoother, SmoothingConfig


def probs(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def test_mean_smoothing_over_n_windows():
    smoother = Smoother(SmoothingConfig("mean", windows=2, margin=0.0, threshold=0.0))
    smoother.update(probs(1, 0))
    smoothed, _, _ = smoother.update(probs(0, 1))
    np.testing.assert_allclose(smoothed, [0.5, 0.5])
    smoothed, _, _ = smoother.update(probs(0, 1))  # the first window has left the span
    np.testing.assert_allclose(smoothed, [0, 1])


def test_ema_smoothing():
    smoother = Smoother(SmoothingConfig("ema", windows=3, margin=0.0, threshold=0.0))
    smoother.update(probs(1, 0))
    smoothed, _, _ = smoother.update(probs(0, 1))
    np.testing.assert_allclose(smoothed, [0.5, 0.5])  # alpha = 2 / (3 + 1)


def test_hysteresis_and_threshold():
    smoother = Smoother(SmoothingConfig("mean", windows=1, margin=0.2, threshold=0.5))
    assert smoother.update(probs(0.7, 0.3))[1] == 0
    assert smoother.update(probs(0.45, 0.55))[1] is None  # 0.55 does not beat 0.45 by 0.2
    _, shown, confidence = smoother.update(probs(0.4, 0.58))  # still class 0, too low to show
    assert (shown, confidence) == (None, pytest.approx(0.4))
    assert smoother.update(probs(0.2, 0.8))[1] == 1  # beats it by 0.6: switches


def test_smoothing_config_is_checked():
    with pytest.raises(ValueError):
        SmoothingConfig("median")
    with pytest.raises(ValueError):
        SmoothingConfig(windows=0)
    assert UNCERTAIN == "uncertain"
