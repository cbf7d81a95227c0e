"""A training step on real clips is trained once, then loaded: the same weights, no second
timing, and a changed option trains afresh."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from rich.console import Console

from edge_asc.features import FrontEndConfig
from edge_asc.training import data, distributed, fit, trainer
from edge_asc.training.nets import singh_config
from edge_asc.training.splits import band_stats, make_split
from edge_asc.training.steps import StepCache


def test_a_finished_step_is_loaded_not_retrained(shared_data: Path, tmp_path: Path):
    dataset = data.load_dataset(shared_data / "urbansound8k-16k")
    clips = [c for c in dataset.clips if c.split == "1"][:16]
    frames = data.FeatureCache(tmp_path / "features", FrontEndConfig()).load_all(
        clips, progress=False
    )
    mean, std = band_stats(frames)
    side = make_split(dataset.label_indices(clips), frames, mean, std, 51, 25)
    config, how = singh_config(3, len(dataset.labels)), fit.FitOptions(epochs=1, batch_size=32)
    run = distributed.start("cpu")
    console = Console(quiet=True)
    timings: dict[str, float] = {}
    steps = StepCache(tmp_path / "steps")
    with trainer.progress(console, run) as bar:
        step = trainer.StepTrainer(steps, run, console, bar, timings)
        first = step(config, side, how, "first")
        again = step(config, side, how, "again")
        other = step(config, side, replace(how, seed=1), "other seed")
    distributed.stop(run)
    assert (steps.misses, steps.hits) == (2, 1)
    assert set(timings) == {"first", "other seed"}  # a loaded step has no training time
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(
        first.state_dict()["features.0.weight"], other.state_dict()["features.0.weight"]
    )
