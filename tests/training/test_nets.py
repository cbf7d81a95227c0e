"""The input views: what conv1 reads is made from the log-mel window inside the model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from edge_asc.training.nets import (
    VIEWS,
    Cnn,
    CnnConfig,
    InputView,
    load_model,
    save_model,
    singh_config,
)

torch.set_num_threads(1)

CENTRED = replace(singh_config(5), view="logmel+centred")


def test_centred_channel_drops_each_bands_steady_level() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 1, 40, 51)
    y = InputView("logmel+centred")(x)
    assert y.shape == (4, 2, 40, 51)
    assert torch.equal(y[:, :1], x)  # the window itself, untouched
    assert y[:, 1].mean(dim=-1).abs().max() < 1e-6  # each band's mean over the frames is gone
    # a level added per band (a room's or a microphone's colour) leaves the centred channel be
    tilted = x + torch.linspace(-3.0, 3.0, 40).view(1, 1, 40, 1)
    torch.testing.assert_close(InputView("logmel+centred")(tilted)[:, 1], y[:, 1])
    # ...and it is not a channel that ignores its input
    assert (InputView("logmel+centred")(x * 2.0)[:, 1] - y[:, 1]).abs().max() > 0.5


def test_plain_view_is_the_window() -> None:
    x = torch.randn(2, 1, 40, 51)
    assert InputView("logmel")(x) is x


def test_conv1_reads_one_channel_per_view_part() -> None:
    for view, parts in VIEWS.items():
        model = Cnn(replace(singh_config(3), view=view))
        assert model.features[0].in_channels == len(parts)
        assert model(torch.zeros(2, 1, 40, 51)).shape == (2, 10)


def test_unknown_view_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown input view"):
        Cnn(replace(singh_config(3), view="mfcc"))


def test_a_saved_view_model_comes_back_the_same(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = Cnn(CENTRED).eval()
    save_model(model, tmp_path / "m.pt")
    again = load_model(tmp_path / "m.pt")
    assert again.config.view == "logmel+centred"
    x = torch.randn(3, 1, 40, 51)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


def test_a_config_from_before_views_reads_the_plain_window() -> None:
    saved = singh_config(5).to_dict()
    del saved["view"]
    assert CnnConfig.from_dict(saved).view == "logmel"
