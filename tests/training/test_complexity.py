"""The DCASE counting convention: analytic counts, the ONNX walk, torchinfo, BN folding."""

from __future__ import annotations

import io
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torchinfo import summary

from edge_asc.training.complexity import (
    Complexity,
    LayerCount,
    count_cnn,
    count_onnx,
    fold_batchnorm,
)
from edge_asc.training.nets import Cnn, CnnConfig, baseline_config, singh_config

torch.set_num_threads(1)

PRUNED_C123 = singh_config(3).with_channels((12, 12, 22))
# conv1 reads two channels, made in the graph by a ReduceMean, a Sub and a Concat (no MACs)
CENTRED_5X5 = replace(singh_config(5), view="logmel+centred")


def _randomise_batchnorm(model: Cnn, seed: int = 0) -> Cnn:
    """Give every BN non-trivial statistics, so folding is really exercised."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, bn in model.convs():
            n = bn.num_features
            bn.weight.copy_(torch.randn(n, generator=generator))
            bn.bias.copy_(torch.randn(n, generator=generator))
            bn.running_mean.copy_(torch.randn(n, generator=generator))
            bn.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
    return model


def _export(model: Cnn, path: Path | None = None) -> onnx.ModelProto:
    """TorchScript exporter (dynamo=False: the dynamo path needs onnxscript, not installed)."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (torch.zeros(1, 1, 40, 51),),
            buffer,
            dynamo=False,
            do_constant_folding=True,
            input_names=["features"],
            output_names=["logits"],
            dynamic_axes={"features": {0: "batch"}, "logits": {0: "batch"}},
        )
    proto = onnx.load_from_string(buffer.getvalue())
    if path is not None:
        onnx.save(proto, str(path))
    return proto


def _bias_adds(config: CnnConfig) -> int:
    """torchinfo's extra: one MAC per output element for each conv bias, one per dense output."""
    c1, c2, c3 = config.channels
    h, w = config.n_mels, config.n_frames
    ph, pw = h // config.pool1[0], w // config.pool1[1]
    return h * w * (c1 + c2) + ph * pw * c3 + config.dense + config.n_classes


@pytest.mark.parametrize(
    ("config", "parameters", "macs"),
    [(baseline_config(), 45_990, 29_238_120), (singh_config(3), 14_630, 5_404_520)],
    ids=["baseline", "singh3x3"],
)
def test_reference_figures(config: CnnConfig, parameters: int, macs: int) -> None:
    # docs/architecture.md, section 3: the figures the counter must reproduce.
    count = count_cnn(config)
    assert (count.parameters, count.macs) == (parameters, macs)
    assert count.parameters == sum(p.numel() for p in fold_batchnorm(Cnn(config)).parameters())


def test_pruned_c123_by_hand() -> None:
    # 3x3, channels 12-12-22, 40x51 -> pool 5x5 -> 8x10 -> pool (4,10) -> 2x1, dense 100, 10 classes
    expected = [
        ("conv1", 12 * 9 + 12, 40 * 51 * 12 * 9 * 1),
        ("conv2", 12 * 12 * 9 + 12, 40 * 51 * 12 * 9 * 12),
        ("pool1", 0, 8 * 10 * 12 * 25),
        ("conv3", 22 * 12 * 9 + 22, 8 * 10 * 22 * 9 * 12),
        ("pool2", 0, 2 * 1 * 22 * 40),
        ("dense1", 44 * 100 + 100, 44 * 100),
        ("dense2", 100 * 10 + 10, 100 * 10),
    ]
    count = count_cnn(PRUNED_C123)
    assert [(x.name, x.parameters, x.macs) for x in count.layers] == expected
    assert (count.parameters, count.macs) == (9_336, 3_085_400)


@pytest.mark.parametrize(
    "config",
    [baseline_config(), singh_config(3), PRUNED_C123, CENTRED_5X5],
    ids=["baseline", "3x3", "c123", "centred-5x5"],
)
def test_onnx_walk_matches_analytic(config: CnnConfig, tmp_path: Path) -> None:
    model = _randomise_batchnorm(Cnn(config))
    path = tmp_path / "m.onnx"
    proto = _export(model, path)
    assert "BatchNormalization" not in {n.op_type for n in proto.graph.node}  # folded by export
    expected = count_cnn(config)
    for source in (proto, path, str(path)):
        got = count_onnx(source)
        assert (got.parameters, got.macs) == (expected.parameters, expected.macs)
        assert [(x.kind, x.parameters, x.macs) for x in got.layers] == [
            (x.kind, x.parameters, x.macs) for x in expected.layers
        ]


@pytest.mark.parametrize(
    "config", [baseline_config(), singh_config(3), PRUNED_C123], ids=["baseline", "3x3", "c123"]
)
def test_torchinfo_relation(config: CnnConfig) -> None:
    """torchinfo skips pooling but counts each bias add (and BN's two parameters per channel)."""
    count = count_cnn(config)
    ours = count.macs - count.macs_of("pool")
    folded = summary(fold_batchnorm(Cnn(config)), input_size=(1, 1, 40, 51), verbose=0)
    assert folded.total_mult_adds == ours + _bias_adds(config)
    assert folded.total_params == count.parameters
    raw = summary(Cnn(config), input_size=(1, 1, 40, 51), verbose=0)
    bn = 2 * sum(config.channels)
    assert raw.total_mult_adds == ours + _bias_adds(config) + bn
    assert raw.total_params == count.parameters + bn


def test_fold_batchnorm_is_equivalent() -> None:
    torch.manual_seed(0)
    model = _randomise_batchnorm(Cnn(singh_config(3)), seed=1).eval()
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert not folded.training
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # source untouched
    x = torch.randn(4, 1, 40, 51)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-5, rtol=1e-5)


def test_qdq_graph_counts_quantized_weights(tmp_path: Path) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(0)
            self.items = iter(
                [{"features": rng.standard_normal((1, 1, 40, 51), np.float32)} for _ in range(2)]
            )

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    _export(_randomise_batchnorm(Cnn(singh_config(3))), tmp_path / "f.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_static(
            str(tmp_path / "f.onnx"),
            str(tmp_path / "q.onnx"),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            activation_type=QuantType.QInt8,
        )
    quantized = onnx.load(str(tmp_path / "q.onnx"))
    assert "DequantizeLinear" in {n.op_type for n in quantized.graph.node}
    got = count_onnx(quantized)
    assert (got.parameters, got.macs) == (14_630, 5_404_520)


def test_shared_initializer_counts_once() -> None:
    # Two convs reading one weight (a deduplicated filter bank): MACs twice, parameters once.
    weight = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w")
    bias = numpy_helper.from_array(np.zeros(4, np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["y1"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "w", "b"], ["y2"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["y1", "y2"], ["s"]),
        helper.make_node("MaxPool", ["s"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("MatMul", ["f", "m"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1, 6, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 5])],
        [weight, bias, numpy_helper.from_array(np.ones((48, 5), np.float32), "m")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    got = count_onnx(model)
    conv = 6 * 8 * 4 * 9
    assert got.macs == 2 * conv + 3 * 4 * 4 * 4 + 48 * 5
    assert got.parameters == 4 * 9 + 4 + 48 * 5
    assert [x.kind for x in got.layers] == ["conv", "conv", "pool", "dense"]


def test_complexity_sums() -> None:
    a = count_cnn(singh_config(3))
    b = count_cnn(PRUNED_C123)
    total = a + b
    assert (total.parameters, total.macs) == (a.parameters + b.parameters, a.macs + b.macs)
    assert len(total.layers) == len(a.layers) + len(b.layers)
    assert sum([a, b]) == total
    built = Complexity(1, 2, [LayerCount("x", "dense", 1, 2)])
    assert isinstance(built.layers, tuple)
    assert hash(built) == hash(Complexity(1, 2, (LayerCount("x", "dense", 1, 2),)))
