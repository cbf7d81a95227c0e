"""Parameter and MAC counts in the DCASE Task 1 convention, from a config or from an ONNX file.

Convention (docs/architecture.md, section 3), per 1-s input (batch 1):
- parameters: every weight and bias, batch norm folded into the preceding conv, so BN adds nothing
  and a conv always has its bias;
- MACs: conv = out_h * out_w * out_c * k_h * k_w * in_c / groups; dense = in * out;
  pooling = output elements * kernel area; activations, biases, BN and softmax are free.

`count_cnn` is the analytic count of a `CnnConfig`; `count_onnx` walks the exported graph, so the
figures written into a model card are measured on the very file that ships (fused or quantized).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import onnx
import torch
from onnx import shape_inference
from torch import nn

from .nets import Cnn, CnnConfig


@dataclass(frozen=True)
class LayerCount:
    """One counted layer: kind is "conv", "dense" or "pool"."""

    name: str
    kind: str
    parameters: int
    macs: int


@dataclass(frozen=True)
class Complexity:
    """Totals plus the per-layer breakdown; `a + b` sums ensemble members."""

    parameters: int
    macs: int
    layers: tuple[LayerCount, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # Accept any iterable (e.g. a list) but store a tuple so the frozen object stays hashable.
        object.__setattr__(self, "layers", tuple(self.layers))

    def __add__(self, other: Complexity) -> Complexity:
        if not isinstance(other, Complexity):
            return NotImplemented
        return Complexity(
            self.parameters + other.parameters, self.macs + other.macs, self.layers + other.layers
        )

    def __radd__(self, other: object) -> Complexity:
        # Lets the built-in sum() start from 0.
        if other == 0:
            return self
        return NotImplemented

    def macs_of(self, kind: str) -> int:
        """MACs of one layer kind ("conv", "dense", "pool"), e.g. to compare with torchinfo."""
        return sum(layer.macs for layer in self.layers if layer.kind == kind)

    def parameters_of(self, kind: str) -> int:
        """Parameters of one layer kind."""
        return sum(layer.parameters for layer in self.layers if layer.kind == kind)


def _conv_count(name: str, in_c: int, out_c: int, k: int, out_h: int, out_w: int) -> LayerCount:
    parameters = out_c * in_c * k * k + out_c
    return LayerCount(name, "conv", parameters, out_h * out_w * out_c * k * k * in_c)


def count_cnn(config: CnnConfig) -> Complexity:
    """Analytic count of `Cnn(config)`: padding k//2, stride 1; pooling stride = kernel, floor."""
    c1, c2, c3 = config.channels
    k, pad = config.kernel, config.kernel // 2
    h, w = config.n_mels + 2 * pad - k + 1, config.n_frames + 2 * pad - k + 1
    layers = [_conv_count("conv1", config.in_channels(), c1, k, h, w)]
    h, w = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    layers.append(_conv_count("conv2", c1, c2, k, h, w))
    (p1h, p1w), (p2h, p2w) = config.pool1, config.pool2
    h, w = h // p1h, w // p1w
    layers.append(LayerCount("pool1", "pool", 0, h * w * c2 * p1h * p1w))
    h, w = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    layers.append(_conv_count("conv3", c2, c3, k, h, w))
    h, w = h // p2h, w // p2w
    layers.append(LayerCount("pool2", "pool", 0, h * w * c3 * p2h * p2w))
    flat = c3 * h * w
    layers.append(
        LayerCount("dense1", "dense", flat * config.dense + config.dense, flat * config.dense)
    )
    layers.append(
        LayerCount(
            "dense2",
            "dense",
            config.dense * config.n_classes + config.n_classes,
            config.dense * config.n_classes,
        )
    )
    return Complexity(sum(x.parameters for x in layers), sum(x.macs for x in layers), layers)


def fold_batchnorm(model: Cnn) -> Cnn:
    """An eval-mode copy with each BN folded into its conv (BN -> Identity), for export and INT8.

    Folding uses the running statistics, so the copy equals `model.eval()`, not training mode.
    """
    folded = copy.deepcopy(model).eval()
    layers = folded.features
    for i, module in enumerate(list(layers)):
        if not isinstance(module, nn.BatchNorm2d):
            continue
        conv = layers[i - 1]
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"features[{i}] is batch norm but features[{i - 1}] is not a conv")
        with torch.no_grad():
            scale = module.weight / torch.sqrt(module.running_var + module.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(module.running_mean)
            new_bias = (bias - module.running_mean) * scale + module.bias
            conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
            if conv.bias is None:
                conv.bias = nn.Parameter(new_bias)
            else:
                conv.bias.copy_(new_bias)
        layers[i] = nn.Identity()
    return folded


# ---------------------------------------------------------------------------------------------
# ONNX graph walk

# Nodes a weight may pass through between its initializer and the Conv/Gemm/MatMul that uses it.
_WEIGHT_PASSTHROUGH = {
    "DequantizeLinear",
    "QuantizeLinear",
    "Identity",
    "Cast",
    "Transpose",
    "Reshape",
}


def _shapes(graph: onnx.GraphProto) -> dict[str, list[int | None]]:
    shapes: dict[str, list[int | None]] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        tensor = info.type.tensor_type
        if not tensor.HasField("shape"):
            continue
        dims = tensor.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _known(shape: list[int | None] | None, what: str) -> list[int]:
    if shape is None or any(d is None for d in shape[1:]):
        raise ValueError(f"shape of {what} unknown after shape inference: {shape}")
    return [int(d) if d is not None else 1 for d in shape]


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def count_onnx(model: onnx.ModelProto | str | Path) -> Complexity:
    """Count an ONNX graph: Conv, Gemm, MatMul, AveragePool, MaxPool (and Global*Pool); rest free.

    Parameters are the stored sizes of the initializers (or Constant nodes) feeding a Conv, Gemm or
    MatMul, directly or through DequantizeLinear/Identity/Cast/Transpose/Reshape, so a QDQ graph
    counts its int8 weights and int32 biases, not the scales. Each tensor counts once, however many
    nodes read it (shared filters in a fused ensemble are stored once). A Conv without a bias counts
    none: export BN-folded models (eval mode) so that every conv carries its bias. MACs use batch 1.
    """
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    graph = shape_inference.infer_shapes(model).graph
    shapes = _shapes(graph)
    sizes = {init.name: math.prod(init.dims) for init in graph.initializer}
    producers: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        for out in node.output:
            producers[out] = node
        if node.op_type == "Constant":
            value = _attr(node, "value", None)
            if isinstance(value, onnx.TensorProto):
                sizes[node.output[0]] = math.prod(value.dims)
                shapes[node.output[0]] = list(value.dims)

    def stored(name: str) -> str | None:
        """The stored tensor an input comes from, following weight pass-through nodes."""
        seen = 0
        while name not in sizes:
            node = producers.get(name)
            if node is None or node.op_type not in _WEIGHT_PASSTHROUGH or seen > 8:
                return None
            name, seen = node.input[0], seen + 1
        return name

    counted: set[str] = set()

    def params(node: onnx.NodeProto, inputs: Iterable[int]) -> int:
        total = 0
        for index in inputs:
            if index >= len(node.input) or not node.input[index]:
                continue
            source = stored(node.input[index])
            if source is not None and source not in counted:
                counted.add(source)
                total += sizes[source]
        return total

    layers: list[LayerCount] = []
    for number, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{number}"
        op = node.op_type
        if op == "Conv":
            weight = _known(shapes.get(node.input[1]), f"{name} weight")
            out = _known(shapes.get(node.output[0]), f"{name} output")
            # weight is (out_c, in_c / groups, *kernel): that many MACs per output element
            macs = math.prod(out[1:]) * math.prod(weight[1:])
            layers.append(LayerCount(name, "conv", params(node, (1, 2)), macs))
        elif op in ("Gemm", "MatMul"):
            a = _known(shapes.get(node.input[0]), f"{name} input A")
            b = _known(shapes.get(node.input[1]), f"{name} input B")
            if op == "Gemm":
                k = a[0] if _attr(node, "transA", 0) else a[1]
                n = b[0] if _attr(node, "transB", 0) else b[1]
                rows = 1  # Gemm's A is (batch, in): one row per input
            else:
                k, n = a[-1], b[-1]
                rows = math.prod(a[1:-1]) if len(a) > 2 else 1  # first dim is the batch
            layers.append(LayerCount(name, "dense", params(node, (0, 1, 2)), rows * k * n))
        elif op in ("AveragePool", "MaxPool", "LpPool"):
            out = _known(shapes.get(node.output[0]), f"{name} output")
            kernel = [int(x) for x in _attr(node, "kernel_shape", [])]
            layers.append(LayerCount(name, "pool", 0, math.prod(out[1:]) * math.prod(kernel)))
        elif op in ("GlobalAveragePool", "GlobalMaxPool"):
            # output elements x kernel area = every input element once
            inp = _known(shapes.get(node.input[0]), f"{name} input")
            layers.append(LayerCount(name, "pool", 0, math.prod(inp[1:])))
    return Complexity(sum(x.parameters for x in layers), sum(x.macs for x in layers), layers)
