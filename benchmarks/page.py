"""docs/benchmarks.md, written from one bench_all.py run: how to run it, then its figures."""

from __future__ import annotations

from pathlib import Path

from edge_asc.bench.report import Report

HEAD = """# Benchmarks

What the classifier costs, measured against what you would otherwise pick, side by side in one
run. This page is written by `benchmarks/bench_all.py` from its latest run (its command, the
machine and the library versions are below); the goals each figure is held to are the
developer benchmarks' (`benchmarks/goals.py`). Figures, not tests: they depend on the machine
and its load, so every table compares against its peers measured in the same run and gives the
ratio.

- **On your own board** (a Pi, say): `edge-asc bench` measures the installed model with the
  app's dependencies alone: the front-end (against librosa and python-speech-features when they
  are installed), the model's latency per window and where onnxruntime spends it, `edge-asc
  listen` end to end (audio per CPU second, CPU share in real time, peak RSS, time to first
  label) and what each import costs in memory, on the bundled real recording. `--compare
  OTHER.onnx` adds models (a run's `model-fp32.onnx` adds the INT8 ceiling table), `--audio
  FILE` measures on your own recording, `--json` prints one object. No goals: your figures.
- **The full comparison** (a checkout with the `train` and `dev` extras and the shared data; see
  [benchmarks/README.md](../benchmarks/README.md)): `benchmarks/bench_all.py` adds the members
  run one by one, PyTorch eager, accuracy per cost, a Raspberry Pi estimate and a microphone
  listener, and judges each figure against its goal.
- **The dashboard** (`listen --http`) has a benchmark of its own, `benchmarks/bench_dashboard.py`:
  its figures are in [dashboard.md](dashboard.md#light-enough-for-a-pi).

Method: real audio only (the shared UrbanSound8K clips; `edge-asc bench`: the bundled
recording); one thread everywhere (onnxruntime, torch, and BLAS through threadpoolctl for the
front-ends); candidates timed interleaved, round by round in a rotating order, so a load spike
hits all alike; medians and 99th percentiles. `listen` is measured from outside as a user runs
it: CPU time from `wait4`, the real-time CPU share between its first and last labels from
`/proc/PID/stat`, peak RSS as its `VmHWM`.

## Latest run

"""


def write_page(path: Path, report: Report) -> None:
    """The page for `report`, written whole (a temporary name, then renamed over the old one)."""
    text = HEAD + report.to_markdown().replace("\n### ", "\n#### ") + "\n"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
