"""Training loop guarantees the pipeline relies on: seeds, frozen layers, distillation,
augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edge_asc.features import LogMel, windows
from edge_asc.training import backgrounds, data, fit
from edge_asc.training.nets import CnnConfig, singh_config
from edge_asc.training.splits import band_stats, make_split


@pytest.fixture(scope="module")
def real_windows(shared_data):
    torch.set_num_threads(1)
    dataset = data.load_dataset(shared_data / "urbansound8k-16k")
    clips = [c for c in dataset.subset({"1"}) if c.label in ("siren", "drilling", "dog_bark")][:24]
    frames = [LogMel().compute(data.read_audio(c.path, 16000)) for c in clips]
    x = np.concatenate([windows(f, 51, 25) for f in frames])
    y = np.repeat(dataset.label_indices(clips), [len(windows(f, 51, 25)) for f in frames])
    return ((x - x.mean()) / x.std()).astype(np.float32), y


@pytest.fixture(scope="module")
def real_clips(shared_data):
    """The same kind of clips as `real_windows`, kept whole: windows on the fixed grid and the
    clips' frames to draw random starts from."""
    dataset = data.load_dataset(shared_data / "urbansound8k-16k")
    clips = [c for c in dataset.subset({"1"}) if c.label in ("siren", "drilling", "dog_bark")][:24]
    frames = [LogMel().compute(data.read_audio(c.path, 16000)) for c in clips]
    mean, std = np.concatenate(frames).mean(), np.concatenate(frames).std()
    frames = [((f - mean) / std).astype(np.float32) for f in frames]
    x, y, _ = data.window_dataset(frames, dataset.label_indices(clips))
    return x, y, data.ClipFrames.of(frames, 51, 25)


def small() -> CnnConfig:
    return singh_config(3)


def test_same_seed_same_model(real_windows):
    x, y = real_windows
    how = fit.FitOptions(epochs=1, seed=3)
    a = fit.predict(fit.fit(fit.new_model(small(), 3), x, y, how), x[:8])
    b = fit.predict(fit.fit(fit.new_model(small(), 3), x, y, how), x[:8])
    np.testing.assert_array_equal(a, b)


def test_frozen_conv_keeps_filters_and_statistics(real_windows):
    x, y = real_windows
    model = fit.new_model(small(), 0)
    conv, bn = model.convs()[0]
    before = [t.clone() for t in (conv.weight, conv.bias, bn.running_mean, bn.running_var)]
    fit.fit(model, x, y, fit.FitOptions(epochs=1, frozen_convs=(1,)))
    after = (conv.weight, conv.bias, bn.running_mean, bn.running_var)
    assert all(torch.equal(u, v) for u, v in zip(before, after, strict=True))
    fresh = fit.new_model(small(), 0)
    assert not torch.equal(model.convs()[1][0].weight, fresh.convs()[1][0].weight)


def test_distillation_pulls_the_student_towards_the_teacher(real_windows):
    x, y = real_windows
    teacher = fit.fit(fit.new_model(small(), 1), x, y, fit.FitOptions(epochs=3, seed=1))
    target = fit.predict(teacher, x)

    def gap(distill: float) -> float:
        student = fit.new_model(small(), 2)
        how = fit.FitOptions(epochs=2, seed=2, distill=distill)
        probs = fit.predict(fit.fit(student, x, y, how, teacher=teacher), x)
        return float(np.abs(probs - target).mean())

    assert gap(0.9) < gap(0.0)


def test_clip_accuracy_averages_windows():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]], dtype=np.float32)
    clip_index = np.array([0, 0, 1, 1])
    assert fit.clip_probabilities(probs, clip_index)[0, 0] == pytest.approx(0.55)
    assert fit.clip_accuracy(probs, clip_index, np.array([0, 1])) == 1.0
    assert fit.clip_accuracy(probs, clip_index, np.array([1, 0])) == 0.0


def test_a_handful_of_windows_still_trains(real_windows):
    # 5 steps in all: the one-cycle schedule's warm-up is then exactly one step
    x, y = real_windows
    how = fit.FitOptions(epochs=1, batch_size=32)
    model = fit.fit(fit.new_model(small(), 0), x[:160], y[:160], how)
    assert np.isfinite(fit.predict(model, x[:4])).all()


def test_masks_blank_one_run_of_bands_and_one_of_frames():
    x = torch.ones((64, 1, 40, 51))
    how = fit.FitOptions(mask_bands=8, mask_frames=10)
    out = fit._augment(x, how, torch.Generator().manual_seed(0))
    assert torch.equal(x, torch.ones_like(x))  # the batch itself is left alone
    widths = set()
    for window in out[:, 0]:
        blank_bands = torch.nonzero((window == 0).all(dim=1)).flatten().tolist()
        blank_frames = torch.nonzero((window == 0).all(dim=0)).flatten().tolist()
        for run, widest in ((blank_bands, 8), (blank_frames, 10)):
            assert len(run) <= widest
            assert run == list(range(run[0], run[0] + len(run))) if run else True
        # nothing outside those runs is touched
        keep = torch.ones_like(window, dtype=torch.bool)
        keep[blank_bands, :] = False
        keep[:, blank_frames] = False
        assert (window[keep] == 1).all()
        widths.add(len(blank_bands))
    assert len(widths) > 3  # widths are drawn, not fixed


def test_augmented_training_is_reproducible_and_mixup_softens(real_windows):
    x, y = real_windows
    how = fit.FitOptions(epochs=15, seed=4, mixup=0.4, mask_bands=6, mask_frames=8)
    a = fit.predict(fit.fit(fit.new_model(small(), 4), x, y, how), x)
    b = fit.predict(fit.fit(fit.new_model(small(), 4), x, y, how), x)
    np.testing.assert_array_equal(a, b)
    plain = fit.FitOptions(epochs=15, seed=4)
    c = fit.predict(fit.fit(fit.new_model(small(), 4), x, y, plain), x)
    # mixup trains on blended targets: the model is less sure of itself on the same windows
    assert a.max(axis=1).mean() < c.max(axis=1).mean() - 0.02


def test_random_starts_train_on_other_windows_reproducibly(real_clips):
    x, y, clips = real_clips
    how = fit.FitOptions(epochs=2, seed=2)
    a = fit.predict(fit.fit(fit.new_model(small(), 2), x, y, how, clips=clips), x)
    b = fit.predict(fit.fit(fit.new_model(small(), 2), x, y, how, clips=clips), x)
    np.testing.assert_array_equal(a, b)
    grid = fit.predict(fit.fit(fit.new_model(small(), 2), x, y, how), x)
    assert np.abs(a - grid).max() > 1e-3  # the epochs saw windows off the grid
    with pytest.raises(ValueError, match="labels"):
        fit.fit(fit.new_model(small(), 2), x[:-7], y[:-7], how, clips=clips)


def test_freq_mixstyle_swaps_band_statistics_and_keeps_each_band_shape(real_windows):
    x = torch.from_numpy(real_windows[0][:64])
    how = fit.FitOptions(mixstyle=1.0, mixstyle_alpha=0.3)
    out = fit._mixstyle(x, how, torch.Generator().manual_seed(0), np.random.default_rng(0))
    again = fit._mixstyle(x, how, torch.Generator().manual_seed(0), np.random.default_rng(0))
    assert torch.equal(out, again)  # reproducible by seed
    assert torch.equal(x, torch.from_numpy(real_windows[0][:64]))  # the batch is left alone

    def standardised(t: torch.Tensor) -> torch.Tensor:
        return (t - t.mean(dim=3, keepdim=True)) / (t.var(dim=3, keepdim=True) + 1e-6).sqrt()

    # each band's course over time is the window's own; only its level and spread moved
    torch.testing.assert_close(standardised(out), standardised(x), atol=2e-3, rtol=0)
    moved = (out.mean(dim=3) - x.mean(dim=3)).abs().amax(dim=(1, 2))
    assert (moved > 0.05).sum() > 32  # most windows took another's band statistics
    off = fit.FitOptions(mixstyle=0.0)
    rng = np.random.default_rng(0)
    assert fit._mixstyle(x, off, torch.Generator().manual_seed(0), rng) is x
    assert rng.random() == np.random.default_rng(0).random()  # off draws nothing: old runs hold


def test_freq_mixstyle_training_is_reproducible(real_windows):
    x, y = real_windows
    how = fit.FitOptions(epochs=3, seed=5, mixstyle=1.0)
    a = fit.predict(fit.fit(fit.new_model(small(), 5), x, y, how), x)
    b = fit.predict(fit.fit(fit.new_model(small(), 5), x, y, how), x)
    np.testing.assert_array_equal(a, b)
    plain_how = fit.FitOptions(epochs=3, seed=5)
    plain = fit.predict(fit.fit(fit.new_model(small(), 5), x, y, plain_how), x)
    assert np.abs(a - plain).max() > 1e-3  # it changed what was learnt


def test_background_mixing_trains_reproducibly_and_only_when_asked(shared_data):
    dataset = data.load_dataset(shared_data / "urbansound8k-16k")
    clips = [c for c in dataset.subset({"1"}) if c.label in ("siren", "drilling", "dog_bark")][:24]
    frames = [LogMel().compute(data.read_audio(c.path, 16000)) for c in clips]
    scenes = [
        LogMel().compute(data.read_audio(p, 16000))
        for p in backgrounds.find(shared_data / "tut-urban-2018-demo")[:3]
    ]
    mean, std = band_stats(frames)
    labels = dataset.label_indices(clips)
    bank = backgrounds.bank(scenes, mean, std, 51)
    over = make_split(labels, frames, mean, std, 51, 25, background=bank)
    alone = make_split(labels, frames, mean, std, 51, 25)

    def trained(side, how):
        model = fit.fit(fit.new_model(small(), 5), None, side.draw_labels, how, clips=side.clips)
        return fit.predict(model, side.x)

    mixed, plain = (
        fit.FitOptions(epochs=2, seed=5, background_share=0.5),
        fit.FitOptions(epochs=2, seed=5),
    )
    a, b = trained(over, mixed), trained(over, mixed)
    np.testing.assert_array_equal(a, b)
    c = trained(alone, plain)
    assert np.abs(a - c).max() > 1e-3  # the mixed windows changed what it learned
    # No share, or no recordings: the plain run, bit for bit (runs before mixing still hold).
    np.testing.assert_array_equal(trained(over, plain), c)
    np.testing.assert_array_equal(trained(alone, mixed), c)
