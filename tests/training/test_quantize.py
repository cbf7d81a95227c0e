"""Static INT8 of a fused, briefly trained ensemble: small, valid probabilities, same decisions."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf
import torch
from torch import nn

from edge_asc.features import LogMel, windows
from edge_asc.training.fuse import export_onnx, fuse
from edge_asc.training.nets import Cnn, singh_config
from edge_asc.training.quantize import calibration_windows, quantize_int8, quantized_ops


def _load(data: Path, fold: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows (hop 25 frames) of the first `per_class` clips of each class in `fold`."""
    with open(data / "meta.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["fold"] == str(fold)]
    front_end, seen = LogMel(), {}
    xs, ys = [], []
    for r in rows:
        label = int(r["class_id"])
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > per_class:
            continue
        signal, _ = sf.read(data / r["filename"], dtype="float32", always_2d=True)
        w = windows(front_end.compute(signal.mean(axis=1)), 51, 25)
        xs.append(w)
        ys += [label] * len(w)
    return np.concatenate(xs), np.array(ys)


def _fit(model: Cnn, x: torch.Tensor, y: torch.Tensor, epochs: int, frozen: tuple = ()) -> None:
    """Adam on cross-entropy; `frozen` modules keep their weights and batch-norm statistics."""
    for module in frozen:
        module.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=3e-3)
    for _ in range(epochs):
        model.train()
        for module in frozen:
            module.eval()  # running stats frozen too, or the folded conv1 would drift
        for batch in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            opt.step()
    model.eval()


@pytest.fixture(scope="module")
def fused_fp32(
    tmp_path_factory: pytest.TempPathFactory, shared_data: Path
) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """A fused 3-member ensemble trained a little on fold 1; its training and held-out windows."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = shared_data / "urbansound8k-16k"
    x, y = _load(data, 1, 8)  # 560 windows, every class
    held_out, _ = _load(data, 2, 3)  # 210 windows of other recordings
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    parent = Cnn(singh_config(3))
    _fit(parent, xt, yt, epochs=2)
    conv1 = (0, 1)  # conv1 and its batch norm, frozen while members fine-tune
    member = copy.deepcopy(parent)
    _fit(member, xt, yt, 1, frozen=tuple(member.features[i] for i in conv1))
    wide = Cnn(singh_config(3).with_channels((16, 16, 24)))  # another shape, same conv1
    wide.features[0].load_state_dict(parent.features[0].state_dict())
    wide.features[1].load_state_dict(parent.features[1].state_dict())
    _fit(wide, xt, yt, 1, frozen=tuple(wide.features[i] for i in conv1))
    fused = fuse([parent, member, wide])
    assert fused.sharing()["conv1"]["distinct"] == 16
    path = tmp_path_factory.mktemp("quant") / "fp32.onnx"
    export_onnx(fused, path)
    return path, x, y, held_out


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"logmel": x})[0]


def test_calibration_windows_cover_every_class():
    y = np.repeat(np.arange(10), [50, 3, 20, 20, 20, 20, 20, 20, 20, 20])
    x = np.arange(len(y), dtype=np.float32).reshape(-1, 1, 1, 1)
    picked = calibration_windows(x, y, per_class=5, seed=0)
    labels = y[picked[:, 0, 0, 0].astype(int)]
    assert np.bincount(labels, minlength=10).tolist() == [5, 3, 5, 5, 5, 5, 5, 5, 5, 5]
    assert np.array_equal(picked, calibration_windows(x, y, per_class=5, seed=0))


def test_int8_is_small_valid_and_agrees(fused_fp32, tmp_path):
    fp32_path, x, y, held_out = fused_fp32
    calibration = calibration_windows(x, y, per_class=20, seed=0)
    assert set(np.unique(y)) == set(range(10))
    int8_path = tmp_path / "int8.onnx"
    quantize_int8(fp32_path, int8_path, calibration)

    assert int8_path.stat().st_size < 0.5 * fp32_path.stat().st_size
    session = ort.InferenceSession(str(int8_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["logmel"]
    assert [o.name for o in session.get_outputs()] == ["probabilities"]

    p32, p8 = _run(fp32_path, held_out), _run(int8_path, held_out)
    assert p8.shape == p32.shape
    np.testing.assert_allclose(p8.sum(axis=1), 1.0, atol=1e-3)
    agreement = float(np.mean(p8.argmax(axis=1) == p32.argmax(axis=1)))
    assert agreement >= 0.90, agreement

    ops = quantized_ops(int8_path)
    assert ops["int8"].get("QLinearConv", 0) >= 3  # the convs run as integer kernels
    assert "Conv" not in ops["float"]
    assert "Softmax" in ops["float"]  # probabilities stay float
