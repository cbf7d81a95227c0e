"""Where a real-time listener's CPU goes, per 0.5-s hop: the live pipeline profiled in-process.

The listener's own loop (live.run: a file source in blocks of a window's new audio, as in
real time, the stream, the JSON-lines log, the plain display) runs over real shared audio
twice: unpaced, as fast as it goes, and paced in real time. CPU per hop is the process's CPU
time over the windows; the unpaced run is also profiled (cProfile) and its time split by the
part of the pipeline that spends it. Unpaced, the caches stay warm; paced, every hop starts
after 0.5 s of sleep, and on a busy machine whatever else ran meanwhile has evicted the model,
the front-end and the interpreter from them: the two figures side by side show what that costs.

    .venv/bin/python benchmarks/profile_listen.py [--seconds 60] [--paced-seconds 20]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from bench_data import real_signal

from edge_asc.bench.report import Table
from edge_asc.live import PlainDisplay, run
from edge_asc.model import Model
from edge_asc.sinks import PredictionLog
from edge_asc.sources import FileSource

# The calls each part of the pipeline makes per read, by (file, function): cProfile's cumulative
# time of each (none of them calls another), the rest of the loop being the stream's own.
PARTS = {
    "model (Model.predict)": (("edge_asc/model.py", "predict"),),
    "front-end (WindowStream.push)": (("edge_asc/windowing.py", "push"),),
    "source (FileSource.read: FLAC decoding)": (("edge_asc/sources/file.py", "read"),),
    "input guard (clean, watch)": (("edge_asc/guard.py", "clean"), ("edge_asc/guard.py", "watch")),
    "downmix and resampler": (
        ("edge_asc/audio_io.py", "to_mono"),
        ("edge_asc/resampling.py", "push"),
    ),
    "log (PredictionLog.write)": (("edge_asc/sinks.py", "write"),),
    "display (PlainDisplay.update)": (("edge_asc/live.py", "update"),),
}


def part_seconds(stats: dict, total: float) -> dict[str, float]:
    """Seconds per part, and the loop's own (stream, smoothing, predictions) as the rest."""
    found = {}
    for part, calls in PARTS.items():
        found[part] = sum(
            cumtime
            for (filename, _line, name), (_cc, _nc, _tt, cumtime, _callers) in stats.items()
            if any(filename.endswith(f) and name == n for f, n in calls)
        )
    found["the loop itself (stream, smoothing, prediction records)"] = total - sum(found.values())
    return found


def replay(model: Model, audio: Path, folder: Path, paced: bool) -> tuple[int, float]:
    """(windows, CPU seconds) of one run of the live loop over `audio`."""
    # Paced, the stream tells the source what each window needs (one block per window); the
    # unpaced replay is given the same hop-sized blocks, so both do the same work.
    source = FileSource(audio, realtime=paced, block_seconds=0.5)
    log = PredictionLog(folder / "log.jsonl")
    with open(os.devnull, "w") as out:
        start = time.process_time()
        try:
            summary = run(source, model, PlainDisplay(out=out), log, notify=lambda _m: None)
        finally:
            log.close()
            source.close()
        return summary.windows, time.process_time() - start


def cpu_per_hop(
    model: Model, signal: np.ndarray, seconds: float, paced_seconds: float
) -> tuple[Table, pstats.Stats, int]:
    """The warm and paced figures side by side, and the unpaced run's profile (with its windows)."""
    rate = model.card.frontend.sample_rate
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        long_audio, short_audio = folder / "long.flac", folder / "short.flac"
        sf.write(long_audio, signal[: round(seconds * rate)], rate, subtype="PCM_16")
        sf.write(short_audio, signal[: round(paced_seconds * rate)], rate, subtype="PCM_16")
        replay(model, long_audio, folder, paced=False)  # warm-up
        windows, cpu = replay(model, long_audio, folder, paced=False)
        paced_windows, paced_cpu = replay(model, short_audio, folder, paced=True)
        profile = cProfile.Profile()
        profile.enable()
        replay(model, long_audio, folder, paced=False)
        profile.disable()
    table = Table(
        "cpu_per_hop",
        "CPU per 0.5-s hop: the listener's loop in-process, unpaced (warm) and paced in real time",
        ["run", "CPU ms per hop", "% of one core", "x unpaced"],
    )
    warm = cpu / windows
    for name, n, spent in (
        ("unpaced, a block per window as in real time (caches warm)", windows, cpu),
        ("paced in real time (0.5 s of sleep before every hop)", paced_windows, paced_cpu),
    ):
        table.add(name, 1e3 * spent / n, 100 * spent / n / 0.5, spent / n / warm)
    table.notes.append(
        "The same loop as `edge-asc listen --from-file` (file source, stream, JSON-lines log, "
        "plain display) on the shipped model; CPU time of this process over the windows. The "
        "work per hop is the same in both: what the paced run spends beyond the unpaced one is "
        "the cost of starting every hop cold, after the machine's other processes ran (their "
        "data in the caches instead of the model's, the front-end's and the interpreter's)."
    )
    return table, pstats.Stats(profile), windows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="audio, unpaced runs")
    parser.add_argument("--paced-seconds", type=float, default=20.0, help="audio, paced run")
    args = parser.parse_args()
    model = Model()
    signal = real_signal(max(args.seconds, args.paced_seconds), model.card.frontend.sample_rate)
    table, stats, windows = cpu_per_hop(model, signal, args.seconds, args.paced_seconds)
    print(table.to_markdown())
    parts = part_seconds(stats.stats, stats.total_tt)  # type: ignore[attr-defined]
    print("\n| part (unpaced, under cProfile) | ms per hop | share |")
    print("|---|---|---|")
    for part, seconds in parts.items():
        print(f"| {part} | {1e3 * seconds / windows:.3f} | {100 * seconds / stats.total_tt:.0f}% |")


if __name__ == "__main__":
    main()
