"""Static full-integer INT8 quantization of an exported model, calibrated on real log-mel windows.

Singh & Plumbley quantized weights only; here weights AND activations are INT8 (onnxruntime's
quantize_static, QDQ format, per-channel weights), calibrated on windows of every class so no
class's activation range is clipped. The final Softmax and the ensemble Mean stay float: quantizing
the probabilities to 8 bits would cost ~1/256 per class and rows would no longer sum to 1.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

INPUT_NAME = "logmel"
# Compute ops worth integer kernels, and the layout ops between them (they pass int8 through).
QUANTIZED_OP_TYPES = (
    "Conv",
    "Gemm",
    "MatMul",
    "AveragePool",
    "MaxPool",
    "Relu",
    "Clip",
    "Gather",
    "Slice",
    "Flatten",
    "Reshape",
)


class WindowReader(CalibrationDataReader):
    """Feeds calibration windows (N, 1, mels, frames) to the model input in fixed-size batches."""

    def __init__(
        self, windows: np.ndarray, batch_size: int = 64, input_name: str = INPUT_NAME
    ) -> None:
        self.windows = np.ascontiguousarray(windows, dtype=np.float32)
        self.batch_size, self.input_name = batch_size, input_name
        self._batches: Iterator[np.ndarray] = iter(())
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:
        # Every batch has the same shape (the histogram calibrators stack them): the last one is
        # topped up from the start, which repeats a few windows and changes no min/max range.
        n, size = len(self.windows), min(self.batch_size, len(self.windows))
        wrapped = np.concatenate([self.windows, self.windows[: (-n) % size]])
        self._batches = (wrapped[s : s + size] for s in range(0, len(wrapped), size))


def calibration_windows(x: np.ndarray, y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Up to `per_class` windows of each class (all of a rarer class), drawn reproducibly.

    Balanced so that the activation ranges reflect every class, not just the most frequent ones.
    """
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError("x and y differ in length")
    rng = np.random.default_rng(seed)
    picked = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        picked.append(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    order = np.sort(np.concatenate(picked))
    return np.ascontiguousarray(x[order], dtype=np.float32)


def _after_softmax(model: onnx.ModelProto) -> list[str]:
    """Names of Softmax nodes and everything downstream of them (kept float)."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    todo = [n for n in model.graph.node if n.op_type == "Softmax"]
    seen: dict[str, onnx.NodeProto] = {}
    while todo:
        node = todo.pop()
        if node.name in seen:
            continue
        seen[node.name] = node
        for out in node.output:
            todo.extend(consumers.get(out, []))
    return list(seen)


def _input_layers(model: onnx.ModelProto) -> list[str]:
    """Names of the compute nodes that read the graph input directly (the shared conv1)."""
    inputs = {i.name for i in model.graph.input}
    return [
        n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm") and n.input[0] in inputs
    ]


def _name_nodes(model: onnx.ModelProto) -> None:
    """Give unnamed nodes unique names: exclusion lists work by node name."""
    used = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)


def quantize_int8(
    fp32_path: Path,
    int8_path: Path,
    calibration: np.ndarray,
    per_channel: bool = True,
    reduce_range: bool = True,
    activation_type: QuantType = QuantType.QUInt8,
    calibrate_method: CalibrationMethod = CalibrationMethod.MinMax,
    batch_size: int = 64,
    float_input_layer: bool = True,
) -> onnx.ModelProto:
    """Write a QDQ INT8 copy of `fp32_path`; inputs and outputs keep their names and float type.

    Weights are symmetric int8, per output channel when `per_channel`. `reduce_range` keeps weights
    to 7 bits: on x86 without VNNI (this machine: AVX2 only) ORT multiplies u8 x s8 pairs with
    VPMADDUBSW, whose int16 sums saturate; on the un-normalised log-mel input (~-11 mean) that
    broke conv1 (argmax agreement 65% without it, 98% with it). CPUs with dot-product instructions
    (VNNI, Arm's SDOT as on the Pi 5) do not saturate, but the same file must be right on both.
    Activations default to asymmetric uint8: the native x86 format, and int8 activations measured
    the same agreement (ORT's x86 kernels shift them to uint8 anyway).
    `float_input_layer` keeps the layer that reads the model input in float: in the fused ensemble
    that is the one shared conv1 (160 parameters, under 2% of the MACs), and keeping it float
    halved the mean INT8-vs-FP32 probability error on training windows (0.0015 -> 0.0008).

    Why INT8 is only level with FP32 on an x86 CPU without VNNI, and what was tried: re-quantizing
    the shipped model's FP32 graph, timed side by side (median per window, FP32 / INT8), the
    configuration here measured 1.02-1.06x. Quantizing conv1 as well: 0.79x (a QLinearConv over
    one input channel took 394 us against 85 us in float); average pooling left in float: 0.91x
    (the Dequantize/Quantize around it cost more than the slow integer pooling it replaces);
    Tanh and Split in Q/DQ form, so one Quantize precedes the split: 0.94x (onnxruntime has no
    integer tanh, so it stays a float island between two conversions); int8 activations: 0.99x;
    7-bit weights off: 1.04x. The ceiling, with every conversion, transpose and float island
    costing nothing, is the integer layers' own gain over the float ones, which `edge-asc bench
    --compare model-fp32.onnx` prints (the INT8 ceiling table). In the quietest run here the
    heavy conv2 ran 1.43x faster in integer than in float and the whole graph's ceiling was
    1.27x; under two training runs the integer layers were level with the float ones (0.7x to
    1.0x). So no graph rewrite reaches 1.3x on this CPU.
    """
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    if len(calibration) == 0:
        raise ValueError("no calibration windows")
    with tempfile.TemporaryDirectory() as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        # Shape inference (needed for per-channel axes) and ORT's safe graph clean-ups first.
        quant_pre_process(str(fp32_path), str(prepped), skip_symbolic_shape=False)
        model = onnx.load(str(prepped))
        _name_nodes(model)
        onnx.save(model, str(prepped))
        quantize_static(
            str(prepped),
            str(int8_path),
            WindowReader(calibration, batch_size),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OP_TYPES),
            per_channel=per_channel,
            reduce_range=reduce_range,
            activation_type=activation_type,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=_after_softmax(model)
            + (_input_layers(model) if float_input_layer else []),
            calibrate_method=calibrate_method,
            extra_options={"WeightSymmetric": True},
        )
    result = onnx.load(str(int8_path))
    src = onnx.load(str(fp32_path))
    if src.metadata_props:  # the card travels with the model (docs/architecture.md, section 1)
        props = {p.key: p.value for p in result.metadata_props}
        props.update({p.key: p.value for p in src.metadata_props})
        onnx.helper.set_model_props(result, props)
        onnx.save(result, str(int8_path))
    return result


def quantized_ops(path: Path) -> dict[str, dict[str, int]]:
    """What onnxruntime actually runs in int8 vs float once it has fused the Q/DQ pairs.

    Asks ORT itself (extended optimisation level, no hardware-specific layouts): an op counts as
    int8 when ORT replaced it with an integer kernel (QLinearConv, QGemm, QLinearAveragePool, ...).
    """
    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(options.optimized_model_filepath)
    int8: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for node in optimized.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            other[node.op_type] += 1
        elif node.op_type.startswith(("QLinear", "QGemm", "MatMulInteger", "ConvInteger")):
            int8[node.op_type] += 1
        else:
            other[node.op_type] += 1
    return {"int8": dict(sorted(int8.items())), "float": dict(sorted(other.items()))}
