"""Raspberry Pi latency ESTIMATES from the MACs and published per-core throughput.

Not measurements: nothing here ran on a Pi. The estimate assumes onnxruntime's kernels reach the
same fraction of a core's peak FP32 multiply-accumulate rate on the Pi as measured on this CPU:
estimate = MACs / (Pi core peak x the fraction of this core's peak achieved here).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from edge_asc.bench.inference import OpProfile, layer_micros
from edge_asc.bench.report import Table
from edge_asc.bench.timing import Stats

# Peak FP32 MACs per second of one core: NEON FMA lanes per cycle x clock.
PI_CORES = {
    # Cortex-A72: one 128-bit FP FMA per cycle (4 FP32 lanes); 1.5 GHz (1.8 GHz on later boards)
    "Pi 4": 4 * 1.5e9,
    # Cortex-A76: two 128-bit FP FMA pipes (8 FP32 lanes); 2.4 GHz
    "Pi 5": 8 * 2.4e9,
}


def host_peak(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[float | None, str]:
    """This core's peak FP32 MACs per second, and how it was derived (None if unknown).

    x86 with AVX2 and FMA: two 256-bit FMA units, 16 FP32 MACs per cycle (Haswell and later,
    Zen 2 and later), times the clock /proc/cpuinfo reports.
    """
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None, "no /proc/cpuinfo"
    flags: set[str] = set()
    mhz = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and not flags:
            flags = set(value.split())
        elif key.strip() == "cpu MHz" and mhz is None:
            mhz = float(value)
    if not {"avx2", "fma"} <= flags or not mhz:
        return None, "peak unknown for this CPU (needs x86 AVX2+FMA and a clock in /proc/cpuinfo)"
    return 16 * mhz * 1e6, f"16 FP32 MACs/cycle (AVX2, two FMA units) x {mhz:.0f} MHz"


def pi_table(rows: Mapping[str, tuple[int, Stats | None]]) -> Table:
    """`rows`: model name -> (MACs per window, its latency here)."""
    peak, how = host_peak()
    table = Table(
        "pi_estimate",
        "Raspberry Pi: ESTIMATED latency per window (not measured)",
        ["model", "MACs", "median ms here", "GMAC/s here", "% of this core's peak"]
        + [f"{pi} est. ms" for pi in PI_CORES],
    )
    for name, (macs, stats) in rows.items():
        if stats is None:
            table.add(name, macs, None, None, None, *(None for _ in PI_CORES))
            continue
        rate = macs / (stats.median_ms / 1e3)
        fraction = rate / peak if peak else None
        estimates = [
            None if fraction is None else macs / (pi_peak * fraction) * 1e3
            for pi_peak in PI_CORES.values()
        ]
        table.add(
            name, macs, stats.median_ms, rate / 1e9, None if fraction is None else 100 * fraction,
            *estimates,
        )  # fmt: skip
    table.notes += [
        "Estimate = MACs / (Pi core peak x fraction of peak reached here), i.e. this machine's "
        "median scaled by the ratio of peak FP32 MAC rates. This core: " + how + ".",
        "Pi peaks from Arm's software optimisation guides and the Raspberry Pi product briefs: "
        "Pi 4 Cortex-A72, one 128-bit FMA per cycle at 1.5 GHz (6.0 GMAC/s); Pi 5 Cortex-A76, "
        "two 128-bit FMA pipes at 2.4 GHz (19.2 GMAC/s).",
        "INT8 rows are scaled like FP32: the A76 has int8 dot-product instructions (SDOT) that "
        "may make INT8 faster there; the A72 has none. Front-end and Python overhead are not "
        "included. Measure on the board: `edge-asc bench`.",
    ]
    return table


def dot_product_note(int8: OpProfile, fp32: OpProfile) -> str:
    """What integer kernels k times faster than float would make of this graph (an estimate)."""
    layers8, layers32 = layer_micros(int8), layer_micros(fp32)
    rest8 = int8.total_us - layers8
    here = layers32 / layers8
    projected = ", ".join(
        f"{k:g}x: INT8 {fp32.total_us / (rest8 + layers32 / k):.2f}x FP32" for k in (2, 3)
    )
    return (
        f"Here the integer layers run {here:.2f}x as fast as FP32's: on x86 without VNNI "
        "(AVX2), u8 x s8 products go through VPMADDUBSW's saturating 16-bit sums, on 7-bit "
        "weights (reduce_range), against 8-wide float FMAs. A Pi 5's Cortex-A76 has Armv8.2's "
        "dot-product instructions (SDOT/UDOT: 16 int8 multiply-adds into 32-bit sums per "
        "128-bit instruction, against 4 float32 FMAs), which onnxruntime's integer GEMM uses. "
        "ESTIMATED, not measured: with this graph's other operators as here and integer layers "
        f"that many times faster than float ones, {projected}. `edge-asc bench --compare "
        "model-fp32.onnx` on the board measures it."
    )
