"""The paired bootstrap that puts an interval on the ensemble-minus-baseline figure."""

from __future__ import annotations

import numpy as np

from edge_asc.training.stats import paired_bootstrap


def test_models_right_on_the_same_clips_differ_by_exactly_nothing():
    correct = np.random.default_rng(1).random(387) < 0.55
    gap = paired_bootstrap(correct, correct)
    assert gap == {"difference": 0.0, "low": 0.0, "high": 0.0}


def test_interval_brackets_the_difference_and_shrinks_with_more_clips():
    rng = np.random.default_rng(2)

    def width(n: int) -> float:
        base = rng.random(n) < 0.5
        better = base | (rng.random(n) < 0.1)  # right wherever the baseline is, and then some
        gap = paired_bootstrap(better, base, resamples=2000)
        assert gap["low"] <= gap["difference"] <= gap["high"]
        assert gap["difference"] > 0 and gap["low"] >= 0  # never worse on any clip
        return gap["high"] - gap["low"]

    assert width(4000) < width(400) / 2


def test_same_seed_same_interval():
    rng = np.random.default_rng(3)
    a, b = rng.random(200) < 0.6, rng.random(200) < 0.5
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap(a, b, seed=5)
