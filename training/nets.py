"""One CNN family covering the DCASE 2022 baseline and Singh & Plumbley's low-complexity models."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
# What conv1 reads, as channels built from the log-mel window inside the graph (so the app's
# front-end and the model's input stay the same): the window itself, and the window with each
# band's mean over its frames removed, which keeps the sound's changes and drops the steady
# spectral balance a recording's room and microphone put on it.
VIEWS = {"logmel": ("logmel",), "logmel+centred": ("logmel", "centred")}


@dataclass(frozen=True)
class CnnConfig:
    """Architecture of one member: three convs ('same' padding), two poolings, two dense layers."""

    kernel: int = 3
    channels: tuple[int, int, int] = (16, 16, 32)
    conv_activations: tuple[str, str, str] = ("tanh", "relu", "tanh")
    dense_activation: str = "tanh"
    pool: str = "avg"  # "avg" (Singh & Plumbley) or "max" (DCASE baseline)
    pool1: tuple[int, int] = (5, 5)
    pool2: tuple[int, int] = (4, 10)
    dense: int = 100
    dropout: float = 0.0
    n_classes: int = 10
    n_mels: int = 40
    n_frames: int = 51
    view: str = "logmel"  # a key of VIEWS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CnnConfig:
        data = dict(data)
        for key in ("channels", "conv_activations", "pool1", "pool2"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def with_channels(self, channels: tuple[int, int, int]) -> CnnConfig:
        return replace(self, channels=tuple(channels))

    def in_channels(self) -> int:
        return len(VIEWS[self.view])

    def pooled_shape(self) -> tuple[int, int]:
        h = self.n_mels // self.pool1[0] // self.pool2[0]
        w = self.n_frames // self.pool1[1] // self.pool2[1]
        return h, w


def baseline_config(n_classes: int = 10) -> CnnConfig:
    """The DCASE 2022 Task 1 baseline: 7x7 kernels, ReLU, max pooling, dropout 0.3."""
    return CnnConfig(
        kernel=7,
        conv_activations=("relu", "relu", "relu"),
        dense_activation="relu",
        pool="max",
        dropout=0.3,
        n_classes=n_classes,
    )


def singh_config(kernel: int = 3, n_classes: int = 10) -> CnnConfig:
    """Singh & Plumbley's model: the baseline's shape with tanh/avg pooling and a chosen kernel."""
    return CnnConfig(kernel=kernel, n_classes=n_classes)


class InputView(nn.Module):
    """The channels conv1 reads, made from the (N, 1, mels, frames) log-mel window."""

    def __init__(self, view: str) -> None:
        super().__init__()
        if view not in VIEWS:
            raise ValueError(f"unknown input view {view!r}; known: {', '.join(VIEWS)}")
        self.view = view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.view == "logmel":
            return x
        return torch.cat([x, x - x.mean(dim=-1, keepdim=True)], dim=1)


class Cnn(nn.Module):
    """Returns logits; softmax is added at export so training can use cross-entropy on logits."""

    def __init__(self, config: CnnConfig) -> None:
        super().__init__()
        self.config = config
        self.view = InputView(config.view)
        c1, c2, c3 = config.channels
        k, pad = config.kernel, config.kernel // 2
        pool = nn.AvgPool2d if config.pool == "avg" else nn.MaxPool2d
        act = [ACTIVATIONS[a]() for a in config.conv_activations]
        self.features = nn.Sequential(
            nn.Conv2d(config.in_channels(), c1, k, padding=pad),
            nn.BatchNorm2d(c1),
            act[0],
            nn.Conv2d(c1, c2, k, padding=pad),
            nn.BatchNorm2d(c2),
            act[1],
            pool(config.pool1),
            nn.Dropout(config.dropout),
            nn.Conv2d(c2, c3, k, padding=pad),
            nn.BatchNorm2d(c3),
            act[2],
            pool(config.pool2),
            nn.Dropout(config.dropout),
        )
        h, w = config.pooled_shape()
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c3 * h * w, config.dense),
            ACTIVATIONS[config.dense_activation](),
            nn.Dropout(config.dropout),
            nn.Linear(config.dense, config.n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(self.view(x)))

    def convs(self) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
        """The three (conv, batch norm) pairs, in order: what pruning and fusion work on."""
        layers = list(self.features)
        return [(layers[i], layers[i + 1]) for i in (0, 3, 8)]


def save_model(model: Cnn, path: Path) -> None:
    """Config and weights together, so a benchmark or a later step rebuilds the exact model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save({"config": model.config.to_dict(), "state_dict": state}, path)


def load_model(path: Path) -> Cnn:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = Cnn(CnnConfig.from_dict(saved["config"]))
    model.load_state_dict(saved["state_dict"])
    return model.eval()
