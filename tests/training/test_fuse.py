"""The fused ensemble graph must equal the members run one by one, with conv1 computed once."""

from __future__ import annotations

import copy
import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import soundfile as sf
import torch

from edge_asc.features import LogMel, windows
from edge_asc.training.fuse import INPUT_NAME, OUTPUT_NAME, export_member, export_onnx, fuse
from edge_asc.training.nets import Cnn, singh_config

TOL = 1e-5


@pytest.fixture(scope="module")
def real_windows(shared_data: Path) -> np.ndarray:
    """Log-mel windows of one fold-1 clip per class (real inputs, not noise)."""
    data = shared_data / "urbansound8k-16k"
    with open(data / "meta.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["fold"] == "1"]
    picked: dict[str, str] = {}
    for r in rows:
        picked.setdefault(r["class_id"], r["filename"])
    front_end = LogMel()
    out = []
    for name in sorted(picked.values())[:6]:
        signal, rate = sf.read(data / name, dtype="float32", always_2d=True)
        assert rate == 16000
        out.append(windows(front_end.compute(signal.mean(axis=1)), 51, 25))
    return np.concatenate(out)


def _randomise_bn(model: Cnn, gen: torch.Generator) -> None:
    """Non-trivial running stats and affine terms, so folding is really exercised."""
    with torch.no_grad():
        for _, bn in model.convs():
            n = bn.num_features
            bn.running_mean.copy_(torch.randn(n, generator=gen) * 2.0)
            bn.running_var.copy_(torch.rand(n, generator=gen) * 3.0 + 0.2)
            bn.weight.copy_(torch.randn(n, generator=gen) * 0.5 + 1.0)
            bn.bias.copy_(torch.randn(n, generator=gen) * 0.3)


def _drop_filters(model: Cnn, conv: int, drop: list[int]) -> Cnn:
    """A smaller dense copy without conv `conv`'s filters `drop` (conv 0 or 1: next is a conv)."""
    c, _ = model.convs()[conv]
    keep = torch.tensor([i for i in range(c.out_channels) if i not in drop])
    channels = list(model.config.channels)
    channels[conv] = len(keep)
    small = Cnn(model.config.with_channels(tuple(channels))).eval()
    state = model.state_dict()
    names = {
        0: ("features.0", "features.1", "features.3"),
        1: ("features.3", "features.4", "features.8"),
    }[conv]
    conv_name, bn_name, next_name = names
    for key in list(state):
        if key.startswith(conv_name + ".") or (
            key.startswith(bn_name + ".") and state[key].ndim == 1
        ):
            state[key] = state[key][keep]
        elif key == next_name + ".weight":
            state[key] = state[key][:, keep]
    small.load_state_dict(state)
    return small


def _perturb(model: Cnn, gen: torch.Generator, prefixes: tuple[str, ...]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith(prefixes):
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)


@pytest.fixture(scope="module")
def members() -> list[Cnn]:
    """A parent and members derived as pruning + conv1-frozen fine-tuning would derive them."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    parent = Cnn(singh_config(3)).eval()
    _randomise_bn(parent, gen)
    later = ("features.3", "features.4", "features.8", "features.9", "classifier")
    m1 = copy.deepcopy(parent)  # full conv1, fine-tuned later layers
    _perturb(m1, gen, later)
    m2 = _drop_filters(parent, 0, [3, 7, 9, 12])  # C1: non-contiguous subset -> Gather
    _perturb(m2, gen, later)
    m3 = _drop_filters(_drop_filters(parent, 0, [0, 1, 2, 3]), 1, [5, 6, 10, 11])  # C12 -> Slice
    _perturb(m3, gen, ("features.8", "features.9", "classifier"))
    m4 = copy.deepcopy(m1)  # same trunk as m1, own classifier head: shares conv1..conv3
    _perturb(m4, gen, ("classifier",))
    return [m1, m2, m3, m4]


def _softmax_mean(models: list[Cnn], x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        t = torch.from_numpy(x)
        return torch.stack([torch.softmax(m(t), dim=1) for m in models]).mean(0).numpy()


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [INPUT_NAME]
    assert [o.name for o in session.get_outputs()] == [OUTPUT_NAME]
    return session.run(None, {INPUT_NAME: x})[0]


def _conv1_channels(proto: onnx.ModelProto) -> list[int]:
    """Output channels of every Conv reading the model input directly."""
    init = {t.name: t for t in proto.graph.initializer}
    return [
        int(init[n.input[1]].dims[0])
        for n in proto.graph.node
        if n.op_type == "Conv" and n.input[0] == INPUT_NAME
    ]


def test_fused_onnx_equals_members_mean(members, real_windows, tmp_path):
    fused = fuse(members)
    proto = export_onnx(fused, tmp_path / "fused.onnx")
    expected = _softmax_mean(members, real_windows)
    got = _run(tmp_path / "fused.onnx", real_windows)
    assert got.shape == (len(real_windows), 10)
    assert np.abs(got - expected).max() <= TOL
    assert np.abs(_run(tmp_path / "fused.onnx", real_windows[:1]) - expected[:1]).max() <= TOL
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)

    # One conv computes the union of the members' conv1 filters: the parent's 16, not 16+12+12+16.
    total_conv1 = sum(m.config.channels[0] for m in members)
    assert _conv1_channels(proto) == [16]
    assert total_conv1 > 16
    ops = [n.op_type for n in proto.graph.node]
    assert "Gather" in ops and "Slice" in ops
    assert ops.count("Softmax") == len(members)

    share = fused.sharing()
    assert share["conv1"] == {**share["conv1"], "distinct": 16, "total": total_conv1}
    assert share["conv2"]["distinct"] < share["conv2"]["total"]  # m1 and m4 share conv2 and conv3
    assert share["conv3"]["distinct"] < share["conv3"]["total"]
    assert share["all"]["macs_fused"] < share["all"]["macs_members"]


def test_single_member_counts_match_design_reference():
    share = fuse([Cnn(singh_config(3))]).sharing()
    assert share["all"]["macs_fused"] == 5_404_520
    assert share["all"]["params_fused"] == 14_630


def test_export_member_equals_torch_softmax(members, real_windows, tmp_path):
    for i, member in enumerate(members[:2]):
        export_member(member, tmp_path / f"m{i}.onnx")
        got = _run(tmp_path / f"m{i}.onnx", real_windows)
        assert np.abs(got - _softmax_mean([member], real_windows)).max() <= TOL


def test_tolerance_merges_near_identical_conv1_filters(members, real_windows):
    near = copy.deepcopy(members[0])
    with torch.no_grad():
        near.features[0].weight[0] += 1e-4  # one filter nudged: distinct unless tol allows it
    exact = fuse([members[0], near])
    merged = fuse([members[0], near], tol=1e-3)
    assert exact.sharing()["conv1"]["distinct"] == 17
    assert merged.sharing()["conv1"]["distinct"] == 16
    x = torch.from_numpy(real_windows)
    with torch.no_grad():
        assert (
            torch.abs(
                exact(x) - torch.from_numpy(_softmax_mean([members[0], near], real_windows))
            ).max()
            <= TOL
        )
        assert torch.abs(merged(x) - exact(x)).max() < 1e-2


def test_members_of_two_parents_share_within_each_parent_only(members, real_windows, tmp_path):
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    other = Cnn(singh_config(3)).eval()  # a second parent: other initial weights
    _randomise_bn(other, gen)
    theirs = [_drop_filters(other, 0, [1, 4]), copy.deepcopy(other)]
    for m in theirs:
        _perturb(m, gen, ("features.8", "features.9", "classifier"))
    both = [members[1], members[2], *theirs]
    proto = export_onnx(fuse(both), tmp_path / "two.onnx")
    assert (
        np.abs(_run(tmp_path / "two.onnx", real_windows) - _softmax_mean(both, real_windows)).max()
        <= TOL
    )
    # the first parent's two members share 15 of its filters (both dropped filter 3); the second
    # parent's add their own 16, no more: one conv of 31 filters
    assert fuse(both).sharing()["conv1"]["distinct"] == 15 + 16
    assert _conv1_channels(proto) == [31]


def test_members_of_a_centred_view_read_it_once_and_share_among_themselves(
    members, real_windows, tmp_path
):
    gen = torch.Generator().manual_seed(11)
    torch.manual_seed(11)
    other = Cnn(replace(singh_config(3), view="logmel+centred")).eval()
    _randomise_bn(other, gen)
    theirs = [copy.deepcopy(other), copy.deepcopy(other)]
    for m in theirs:
        _perturb(m, gen, ("features.8", "features.9", "classifier"))
    mixed = [members[0], *theirs]
    fused = fuse(mixed)
    proto = export_onnx(fused, tmp_path / "mixed.onnx")
    got = _run(tmp_path / "mixed.onnx", real_windows)
    assert np.abs(got - _softmax_mean(mixed, real_windows)).max() <= TOL
    # the plain member's conv1 reads the input; the centred members' one shared conv reads the
    # view, made once (one Concat), with its two input channels
    views = [n for n in proto.graph.node if n.op_type == "Concat" and INPUT_NAME in n.input]
    assert len(views) == 1
    assert _conv1_channels(proto) == [16]
    assert fused.sharing()["conv1"]["distinct"] == 16 + 16
    init = {t.name: t for t in proto.graph.initializer}
    two = [n for n in proto.graph.node if n.op_type == "Conv" and n.input[0] == views[0].output[0]]
    assert [list(init[n.input[1]].dims[:2]) for n in two] == [[16, 2]]
