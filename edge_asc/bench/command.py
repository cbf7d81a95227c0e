"""`edge-asc bench`: the quick benchmark of the installed model, on the user's own machine.

Runs with the app's dependencies alone: librosa and python-speech-features rows appear only when
they are installed, and other ONNX models (`--compare`, e.g. a run's model-fp32.onnx) join the
latency table. The audio is real: the bundled demo recording unless `--audio` names another.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from edge_asc.audio_io import read_audio
from edge_asc.bench import endtoend, frontend, inference, memory
from edge_asc.bench.environment import environment
from edge_asc.bench.report import Report
from edge_asc.errors import EdgeAscError
from edge_asc.model import Model

PROFILE_RUNS = 50  # profiled inferences per model: enough for stable per-operator shares


def demo_recording() -> Path:
    """The bundled real recording (four UrbanSound8K clips; samples/ATTRIBUTION.md)."""
    return Path(str(resources.files("edge_asc").joinpath("samples", "demo.flac")))


@dataclass
class BenchOptions:
    model: Path | None = None
    compare: list[Path] = field(default_factory=list)
    audio: Path | None = None
    runs: int = 200
    fast_seconds: float = 300.0
    realtime_seconds: float = 20.0
    startup_runs: int = 3

    def command_line(self) -> str:
        """The `edge-asc bench` invocation these options stand for, printed with the figures."""
        parts = ["edge-asc", "bench"]
        if self.model is not None:
            parts += ["--model", str(self.model)]
        for path in self.compare:
            parts += ["--compare", str(path)]
        if self.audio is not None:
            parts += ["--audio", str(self.audio)]
        defaults = BenchOptions()
        for flag, value, default in (
            ("--runs", self.runs, defaults.runs),
            ("--fast-seconds", self.fast_seconds, defaults.fast_seconds),
            ("--realtime-seconds", self.realtime_seconds, defaults.realtime_seconds),
        ):
            if value != default:
                parts += [flag, f"{value:g}"]
        return shlex.join(parts)

    def check(self) -> None:
        if self.runs < 1 or self.startup_runs < 1:
            raise EdgeAscError("--runs must be at least 1")
        if self.realtime_seconds < 2 or self.fast_seconds < 2:
            raise EdgeAscError("--realtime-seconds and --fast-seconds must be at least 2")


def describe(model: Model) -> str:
    return f"{model.path.name} ({model.card.quantization})"


def unique(short: list[str], long: list[str]) -> list[str]:
    """The short names if they differ, else the long ones, numbered where still equal."""
    names = short if len(set(short)) == len(short) else long
    return [f"{n} [{i + 1}]" if names.count(n) > 1 else n for i, n in enumerate(names)]


def run_bench(options: BenchOptions, progress: Callable[[str], None] | None = None) -> Report:
    """Front-end, model latency, operators, end to end and memory: figures, judged by no goal
    (the goals the project holds them to are the developer benchmarks', in benchmarks/)."""
    options.check()
    say = progress or (lambda _message: None)
    started = time.perf_counter()
    report = Report(options.command_line(), environment())
    model = Model(options.model)
    others = [Model(path) for path in options.compare]
    audio = options.audio or demo_recording()
    rate = model.card.frontend.sample_rate
    signal = read_audio(audio, rate)
    if signal.size < 3 * rate:
        raise EdgeAscError(f"{audio}: need at least 3 s of audio to benchmark with")

    say("front-end ...")
    fe = frontend.run_frontend(signal[: 10 * rate], model.card.frontend, options.runs)
    report.tables.append(fe.table)

    say("model latency ...")
    x = inference.real_window(signal, model.card)
    models = [model, *others]
    names = unique(
        [describe(m) for m in models], [f"{m.path} ({m.card.quantization})" for m in models]
    )
    calls = {
        name: inference.onnx_call(inference.onnx_session(m.path), x)
        for name, m in zip(names, models, strict=True)
    }
    report.tables.append(inference.run_latency(calls, options.runs, names[0]).table)
    labels = unique([m.card.quantization.split("-")[0].upper() for m in models], names)
    profiles = {
        label: inference.profile_ops(m.path, x, PROFILE_RUNS)
        for label, m in zip(labels, models, strict=True)
    }
    report.tables += [inference.category_table(profiles), inference.op_table(profiles)]
    if "INT8" in profiles and "FP32" in profiles:  # --compare model-fp32.onnx
        report.tables.append(inference.int8_ceiling_table(profiles["INT8"], profiles["FP32"]))

    say(
        f"edge-asc listen: {options.fast_seconds:g} s --fast, "
        f"{options.realtime_seconds:g} s in real time ..."
    )
    e2e = endtoend.run_end_to_end(
        signal,
        rate,
        options.model,
        options.fast_seconds,
        options.realtime_seconds,
        options.startup_runs,
        source=f"{audio.name}, looped",
    )
    report.tables.append(e2e.table)
    report.tables.append(memory.memory_table(options.model, e2e.peak_rss_mib))

    report.elapsed_s = time.perf_counter() - started
    return report
