"""The full benchmark: edge-asc against the alternatives a user would pick, side by side.

Front-end (ours vs librosa vs python-speech-features), inference per window (fused INT8 vs fused
FP32 vs the members one by one vs PyTorch eager), where the INT8 graph spends its time, accuracy
per cost of every model a training run compares, a Raspberry Pi estimate, and the whole app end
to end (`edge-asc listen`: throughput, CPU share in real time, memory, time to first label).
Real audio only: the shared UrbanSound8K clips. Each figure is printed against the goal it is
held to (goals.py); it asserts nothing. A full run writes docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_all.py [--run runs/all] [--json] [--smoke] [--out F]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import goals
import torch
from bench_accuracy import accuracy_table
from bench_data import ROOT, real_signal
from bench_models import (
    ENSEMBLES,
    FUSED_FP32,
    FUSED_INT8,
    MEMBERS_FP32,
    MEMBERS_INT8,
    alone,
    latency_calls,
    load_run,
)
from bench_pi import dot_product_note, pi_table
from microphone import microphone_peak_rss
from page import write_page
from profile_listen import cpu_per_hop

from edge_asc.bench import endtoend, frontend, inference, memory
from edge_asc.bench.environment import environment
from edge_asc.bench.report import Report
from edge_asc.bench.timing import measure
from edge_asc.model import Model

DEFAULT_RUN = ROOT / "runs" / "all"  # where models/README.md's second command writes this file
PAGE = ROOT / "docs" / "benchmarks.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help=f"run folder ({DEFAULT_RUN})")
    parser.add_argument("--runs", type=int, default=500, help="timed runs per candidate")
    parser.add_argument("--minutes", type=float, default=10.0, help="audio for listen --fast")
    parser.add_argument("--realtime-seconds", type=float, default=60.0, help="real-time replay")
    parser.add_argument("--json", action="store_true", help="one JSON object, not tables")
    parser.add_argument(
        "--smoke", action="store_true", help="a few iterations only: checks the scripts run (CI)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="page to write (a full run: docs/benchmarks.md)"
    )
    parser.add_argument(
        "--mic-seconds", type=float, default=20.0, help="microphone listener (PulseAudio) run"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.minutes, args.realtime_seconds, args.mic_seconds = 5, 0.5, 3.0, 3.0
    elif args.out is None and not args.json:
        args.out = PAGE
    return args


def relative(path: Path) -> str:
    """A path as the page may print it: relative to the checkout, never one machine's folder."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def missing_run_note(run: Path) -> str | None:
    """Why the model comparisons cannot run on `run` (None: they can)."""
    if (run / "report.json").is_file():
        return None
    return (
        f"no training run at {relative(run)}: the model comparisons are skipped (train one with "
        f"`edge-asc train ../shared/data/urbansound8k-16k --train 1,2 --val 3 --out "
        f"{relative(run)}`, or pass --run)."
    )


def command_line(argv: list[str]) -> str:
    return shlex.join([".venv/bin/python", "benchmarks/bench_all.py", *argv])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(1)  # one thread everywhere, as the app runs onnxruntime

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    report = Report(command_line(argv), environment())
    warmup = 2 if args.smoke else 20
    say("reading the shared clips ...")
    signal = real_signal(max(args.minutes * 60, 30.0))
    shipped = Model()
    rate = shipped.card.frontend.sample_rate

    say("front-end ...")
    fe = frontend.run_frontend(signal[: 10 * rate], shipped.card.frontend, args.runs, warmup)
    report.tables.append(fe.table)
    report.goals += goals.frontend_goals(
        fe.stats[(frontend.OURS_HOP, "hop")],
        fe.stats.get((frontend.LIBROSA, "window")),
        fe.stats.get((frontend.LIBROSA, "hop")),
    )

    run = args.run or DEFAULT_RUN
    missing = missing_run_note(run)
    if missing:
        report.notes.append(missing)
        say(f"bench_all: {missing}")
    else:
        say(f"models of {run}: exporting and quantizing the members ...")
        with tempfile.TemporaryDirectory() as work:
            models = load_run(run, Path(work), signal[: 120 * rate])
            x = inference.real_window(signal, models.model.card)
            calls, details = latency_calls(models, x)
            say(f"inference: {len(calls)} candidates x {args.runs} runs ...")
            stats = measure(calls, args.runs, warmup)
            shown = [name for name in ENSEMBLES if name in stats]
            report.tables.append(inference.latency_table(stats, FUSED_INT8, warmup, details, shown))
            report.goals += [
                goals.int8_goal(stats[FUSED_INT8], stats[FUSED_FP32]),
                goals.faster_goal(
                    "fused INT8 faster than the members one by one (FP32)",
                    stats[FUSED_INT8],
                    stats.get(MEMBERS_FP32),
                ),
                goals.faster_goal(
                    "fused INT8 faster than the members one by one (INT8)",
                    stats[FUSED_INT8],
                    stats.get(MEMBERS_INT8),
                ),
            ]
            say("operator profiles ...")
            profile_runs = 10 if args.smoke else 200
            profiles = {
                "INT8": inference.profile_ops(models.fused_int8, x, profile_runs),
                "FP32": inference.profile_ops(models.fused_fp32, x, profile_runs),
            }
            report.tables += [inference.category_table(profiles), inference.op_table(profiles)]
            ceiling = inference.int8_ceiling_table(profiles["INT8"], profiles["FP32"])
            ceiling.notes.append(dot_product_note(profiles["INT8"], profiles["FP32"]))
            report.tables.append(ceiling)
            report.tables.append(accuracy_table(models, stats))
            ens = models.report["ensemble"]
            pi_rows = {
                "fused ensemble, INT8": (ens["macs"], stats[FUSED_INT8]),
                "fused ensemble, FP32": (ens["macs"], stats[FUSED_FP32]),
                "members one by one, FP32": (ens["members_macs"], stats.get(MEMBERS_FP32)),
            }
            for key, label in (("baseline", "DCASE 2022 baseline"), ("parent", "parent")):
                if key in models.report:
                    pi_rows[label] = (models.report[key]["macs"], stats.get(alone(key)))
            report.tables.append(pi_table(pi_rows))

    say(f"edge-asc listen: {args.minutes:g} min --fast, {args.realtime_seconds:g} s real time ...")
    e2e = endtoend.run_end_to_end(
        signal,
        rate,
        None,
        args.minutes * 60,
        args.realtime_seconds,
        startup_runs=1 if args.smoke else 3,
        source="the shared UrbanSound8K clips, every class in turn; the shipped model",
    )
    say("the listener's loop in-process, unpaced and paced ...")
    paced = min(args.realtime_seconds, 20.0)
    cpu_table, _profile, _windows = cpu_per_hop(shipped, signal, max(paced, 60.0), paced)
    say(f"edge-asc listen from a PulseAudio microphone: {args.mic_seconds:g} s ...")
    mic_peak, mic_note = microphone_peak_rss(signal[: 60 * rate], rate, args.mic_seconds)
    if mic_note:
        report.notes.append(mic_note)
    say("memory: each import in a fresh interpreter ...")
    report.tables += [e2e.table, cpu_table, memory.memory_table(None, e2e.peak_rss_mib, mic_peak)]
    report.goals += [goals.cpu_goal(e2e.steady_cpu_share), goals.rss_goal(e2e.peak_rss_mib)]
    report.elapsed_s = time.perf_counter() - started
    report.goals.append(goals.time_goal(report.elapsed_s))
    print(report.to_json() if args.json else report.to_markdown())
    if args.out is not None:
        write_page(args.out, report)
        say(f"bench_all: wrote {relative(args.out)}")


if __name__ == "__main__":
    main()
