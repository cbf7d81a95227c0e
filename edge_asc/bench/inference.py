"""Model latency per 1-s window (batch 1, one thread), and where an onnxruntime graph spends it.

Every candidate gets the same real, normalised log-mel window; normalisation itself is common to
all of them and not timed. `profile_ops` asks onnxruntime's own profiler which kernels ran and
for how long, which is how an INT8 graph that is slower than its FP32 source explains itself:
float operators left between the integer ones, and the Quantize/Dequantize steps around them.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edge_asc.bench.report import Table
from edge_asc.bench.timing import Stats, measure
from edge_asc.features import LogMel, windows
from edge_asc.model import session_options
from edge_asc.modelcard import ModelCard


def real_window(signal: np.ndarray, card: ModelCard, start_seconds: float = 1.0) -> np.ndarray:
    """One normalised model input, (1, 1, mels, frames), cut from real audio at the model's rate."""
    fe = card.frontend
    start = round(start_seconds * fe.sample_rate)
    if signal.size < start + fe.sample_rate:
        start = 0
    frames = LogMel(fe).compute(signal[start : start + fe.sample_rate])
    return card.normalise(windows(frames, card.window_frames, card.window_frames)[:1])


def onnx_session(
    path: Path, threads: int = 1, profile_dir: Path | None = None
) -> ort.InferenceSession:
    """A session set up as the app sets up its own (one thread, no spinning)."""
    opts = session_options(threads)
    if profile_dir is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(profile_dir / "ort")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def onnx_call(session: ort.InferenceSession, x: np.ndarray) -> Callable[[], np.ndarray]:
    """One batch-1 inference of `x`, as a zero-argument call for the timer."""
    feed = {session.get_inputs()[0].name: x}
    outputs = [session.get_outputs()[0].name]
    return lambda: session.run(outputs, feed)[0]


def ensemble_call(calls: list[Callable[[], np.ndarray]]) -> Callable[[], np.ndarray]:
    """Members run one after the other, then the mean of their probabilities."""
    return lambda: np.mean([call() for call in calls], axis=0)


@dataclass(frozen=True)
class LatencyResult:
    table: Table
    stats: dict[str, Stats]


def latency_table(
    stats: Mapping[str, Stats],
    reference: str,
    warmup: int,
    details: Mapping[str, str] | None = None,
    names: list[str] | None = None,
) -> Table:
    """Median, p99 and ratio to `reference` for `names` (default: every candidate timed)."""
    table = Table(
        "inference",
        "Inference per 1-s window: batch 1, one thread",
        ["model", "runtime", "median ms", "p99 ms", f"x {reference}"],
    )
    details = details or {}
    base = stats[reference].median_ms
    for name in names or list(stats):
        s = stats[name]
        table.add(name, details.get(name, "onnxruntime"), s.median_ms, s.p99_ms, s.median_ms / base)
    runs = stats[reference].runs
    table.notes.append(
        f"{runs} interleaved runs each after {warmup} warm-up calls on one real log-mel window; "
        f"x {reference} = this median / its median (above 1: slower than it)."
    )
    return table


def run_latency(
    calls: Mapping[str, Callable[[], object]],
    runs: int,
    reference: str,
    warmup: int = 20,
    details: Mapping[str, str] | None = None,
) -> LatencyResult:
    """Time every candidate, interleaved, and tabulate them against `reference`."""
    stats = measure(calls, runs, warmup)
    return LatencyResult(latency_table(stats, reference, warmup, details), stats)


@dataclass(frozen=True)
class OpProfile:
    """Per operator type: nodes executed per window and microseconds per window."""

    nodes: dict[str, float]
    micros: dict[str, float]

    @property
    def total_us(self) -> float:
        return float(sum(self.micros.values()))


def profile_ops(path: Path, x: np.ndarray, runs: int) -> OpProfile:
    """onnxruntime's profiler on `runs` inferences: which kernels ran, and their time per window."""
    with tempfile.TemporaryDirectory() as tmp:
        session = onnx_session(path, profile_dir=Path(tmp))
        call = onnx_call(session, x)
        for _ in range(runs):
            call()
        events = json.loads(Path(session.end_profiling()).read_text())
    nodes: dict[str, float] = defaultdict(float)
    micros: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        op = event.get("args", {}).get("op_name", "?")
        nodes[op] += 1 / runs
        micros[op] += event.get("dur", 0) / runs
    return OpProfile(dict(nodes), dict(micros))


def op_table(profiles: Mapping[str, OpProfile]) -> Table:
    """Side by side: the operators each graph runs, their count and time per window."""
    names = list(profiles)
    columns = ["operator"]
    for name in names:
        columns += [f"{name} nodes", f"{name} us"]
    table = Table("operators", "Where the time goes: onnxruntime's profiler, per window", columns)
    ops = sorted(
        {op for p in profiles.values() for op in p.micros},
        key=lambda op: -max(p.micros.get(op, 0.0) for p in profiles.values()),
    )
    for op in ops:
        row: list[float | int | str | None] = [op]
        for name in names:
            p = profiles[name]
            row += [round(p.nodes[op]), p.micros[op]] if op in p.micros else ["-", "-"]
        table.add(*row)
    total: list[float | int | str | None] = ["all kernels"]
    for name in names:
        total += [round(sum(profiles[name].nodes.values())), profiles[name].total_us]
    table.add(*total)
    table.notes.append(
        "Kernel times summed from onnxruntime's profiler (it adds overhead of its own: compare "
        "the rows, not these totals with the latency table). QLinear*/QGemm are integer kernels; "
        "Conv/Gemm in an INT8 graph are float fall-backs; Quantize/DequantizeLinear convert."
    )
    return table


INTEGER = "integer kernels"
CONVERSION = "Quantize/Dequantize"
FLOAT = "float compute"
LAYOUT = "layout and selection (Transpose, Reorder, Flatten, Split, Slice, ...)"
_INTEGER_PREFIXES = ("QLinear", "QGemm", "MatMulInteger", "ConvInteger", "DynamicQuantize")
_FLOAT_OPS = {
    "Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul", "AveragePool", "MaxPool",
    "Tanh", "Relu", "Sigmoid", "Softmax", "ReduceMean", "Mean",
}  # fmt: skip


def category(op: str) -> str:
    """Which kind of work an operator type does (anything unlisted moves or selects data)."""
    if op.startswith(_INTEGER_PREFIXES):
        return INTEGER
    if op in ("QuantizeLinear", "DequantizeLinear"):
        return CONVERSION
    if op in _FLOAT_OPS:
        return FLOAT
    return LAYOUT


def category_table(profiles: Mapping[str, OpProfile]) -> Table:
    """The operator profile summed by kind: integer maths, conversions, float maths, layout."""
    names = list(profiles)
    table = Table(
        "operator_kinds",
        "Where the time goes, by kind of operator (us per window, onnxruntime's profiler)",
        ["kind", *(f"{n} us" for n in names), *(f"{n} %" for n in names)],
    )
    kinds = [INTEGER, CONVERSION, FLOAT, LAYOUT]
    sums = {n: dict.fromkeys(kinds, 0.0) for n in names}
    for n, p in profiles.items():
        for op, us in p.micros.items():
            sums[n][category(op)] += us
    for kind in kinds:
        micros = [sums[n][kind] for n in names]
        shares = [
            100 * sums[n][kind] / profiles[n].total_us if profiles[n].total_us else None
            for n in names
        ]
        table.add(kind, *(m if m else "-" for m in micros), *(s if s else "-" for s in shares))
    return table


_LAYER_OPS = {"Conv", "FusedConv", "Gemm", "FusedGemm", "MatMul"}


def layer_micros(profile: OpProfile) -> float:
    """Kernel time of the convolutions and dense layers, integer or float."""
    return sum(
        us for op, us in profile.micros.items() if op in _LAYER_OPS or category(op) == INTEGER
    )


def int8_ceiling_table(int8: OpProfile, fp32: OpProfile) -> Table:
    """How fast INT8 could be here: its layers' kernels against FP32's, everything else at FP32's
    cost (every Quantize/Dequantize, transpose and float island gone). A ceiling under the goal
    says the integer kernels themselves are not fast enough on this CPU, whatever the graph."""
    table = Table(
        "int8_ceiling",
        "INT8 against FP32: the layers' kernels, the rest, and the ceiling (us per window)",
        ["part", "FP32 us", "INT8 us", "FP32 / INT8"],
    )
    layers32, layers8 = layer_micros(fp32), layer_micros(int8)
    rest32, rest8 = fp32.total_us - layers32, int8.total_us - layers8
    table.add("convolutions and dense layers", layers32, layers8, layers32 / layers8)
    table.add("everything else (pooling, activations, layout, conversions)", rest32, rest8,
              rest32 / rest8 if rest8 else None)  # fmt: skip
    table.add("all kernels", fp32.total_us, int8.total_us, fp32.total_us / int8.total_us)
    ceiling = fp32.total_us / (rest32 + layers8)
    table.add("ceiling: INT8's layers with everything else at FP32's cost", fp32.total_us,
              rest32 + layers8, ceiling)  # fmt: skip
    table.notes.append(
        "From onnxruntime's profiler (the operator table above). The ceiling is the speed-up "
        "INT8 would reach if every Quantize/DequantizeLinear, transpose, reorder and float "
        "island cost nothing beyond what FP32 spends outside its layers: it is bounded by how "
        "much faster the integer convolutions are than the float ones on this CPU."
    )
    return table
