"""The whole app as a user runs it: `edge-asc listen` in a child process, measured from outside.

Everything counts (interpreter start, imports, model load, decoding, features, model, smoothing,
output), because that is what a replay or a 24/7 service costs on a Pi. CPU time and peak RSS come
from the kernel (`os.wait4` on the child); the steady-state CPU share of a real-time replay is the
CPU the child used between its first and last labels (read from /proc) over the wall time
between them, so the one-off start-up and exit neither hide in nor dominate a short measurement.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from edge_asc.bench.report import Table
from edge_asc.errors import EdgeAscError


def edge_asc_command() -> list[str]:
    """The installed console script next to this interpreter, or the same entry point through it."""
    script = Path(sys.executable).with_name("edge-asc")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from edge_asc.cli import main; main()"]


def write_replay(signal: np.ndarray, rate: int, seconds: float, path: Path) -> float:
    """`signal` repeated or cut to `seconds`, written as 16-bit FLAC; returns its length in s."""
    n = max(1, round(seconds * rate))
    reps = -(-n // max(signal.size, 1))
    audio = np.tile(np.asarray(signal, dtype=np.float32), reps)[:n]
    sf.write(path, np.clip(audio, -1.0, 1.0), rate, subtype="PCM_16")
    return n / rate


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a running process from /proc (Linux); None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int | str = "self") -> float | None:
    """A process's peak resident memory (VmHWM, Linux), None where there is no /proc.

    Not `ru_maxrss` from wait4: Linux carries the parent's high-water mark into a child across
    fork/vfork and exec, so a child of a big benchmark process would report the parent's size.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@dataclass(frozen=True)
class ListenRun:
    """One `edge-asc listen` process, measured."""

    wall_s: float
    cpu_s: float  # user + system, whole process
    max_rss_mib: float  # VmHWM at the last output line (the pipeline's steady peak)
    windows: int  # output lines (one per window)
    first_label_s: float | None  # from spawn to its first output line
    steady_cpu_s: float | None  # CPU from the first label to the last
    steady_wall_s: float | None  # wall time from the first label to the last


def run_listen(
    args: list[str],
    timeout: float = 600.0,
    env: dict[str, str] | None = None,
    max_windows: int | None = None,
) -> ListenRun:
    """Run `edge-asc listen ARGS` with plain one-line-per-window output on a pipe; a source
    that never ends (a microphone) is stopped by SIGTERM after `max_windows` lines."""
    cmd = [*edge_asc_command(), "listen", *args]
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, env=env)
        assert proc.stdout is not None
        first_at = first_cpu = last_at = last_cpu = None
        lines, peak = 0, 0.0
        deadline = start + timeout
        for _line in proc.stdout:
            last_at, last_cpu = time.perf_counter(), process_cpu_seconds(proc.pid)
            peak = max(peak, peak_rss_mib(proc.pid) or 0.0)
            if lines == 0:
                first_at, first_cpu = last_at, last_cpu
            lines += 1
            if max_windows is not None and lines == max_windows:
                proc.terminate()  # a clean stop: listen exits 0 on SIGTERM
            if last_at > deadline:
                proc.kill()
                break
        _, status, usage = os.wait4(proc.pid, 0)
        end = time.perf_counter()
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        if proc.returncode != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().splitlines()
            raise EdgeAscError(f"edge-asc listen failed: {message[-1] if message else status}")
    cpu = usage.ru_utime + usage.ru_stime
    steady = first_cpu is not None and last_cpu is not None and lines > 1
    return ListenRun(
        wall_s=end - start,
        cpu_s=cpu,
        max_rss_mib=peak or usage.ru_maxrss / 1024,  # without /proc: may include the parent
        windows=lines,
        first_label_s=None if first_at is None else first_at - start,
        steady_cpu_s=last_cpu - first_cpu if steady else None,
        steady_wall_s=last_at - first_at if steady else None,
    )


def listen_args(audio: Path, model: Path | None, fast: bool, threads: int = 1) -> list[str]:
    args = ["--from-file", str(audio), "--display", "plain", "--threads", str(threads)]
    if fast:
        args.append("--fast")
    if model is not None:
        args += ["--model", str(model)]
    return args


@dataclass(frozen=True)
class EndToEndResult:
    table: Table
    fast: ListenRun
    realtime: ListenRun
    startup: list[ListenRun]
    fast_audio_s: float
    realtime_audio_s: float

    @property
    def audio_per_cpu_s(self) -> float:
        return self.fast_audio_s / self.fast.cpu_s

    @property
    def steady_cpu_share(self) -> float | None:
        """Percent of one core between the first and last labels of the real-time replay."""
        rt = self.realtime
        if rt.steady_cpu_s is None or not rt.steady_wall_s:
            return None
        return 100 * rt.steady_cpu_s / rt.steady_wall_s

    @property
    def peak_rss_mib(self) -> float:
        """The real-time replay's peak: what a 24/7 service holds."""
        return self.realtime.max_rss_mib


def run_end_to_end(
    signal: np.ndarray,
    rate: int,
    model: Path | None,
    fast_seconds: float,
    realtime_seconds: float,
    startup_runs: int = 3,
    source: str = "",
) -> EndToEndResult:
    """Replay real audio through `listen`: as fast as it goes, in real time, to a first label."""
    with tempfile.TemporaryDirectory() as tmp:
        long_file, short_file = Path(tmp) / "fast.flac", Path(tmp) / "realtime.flac"
        fast_audio = write_replay(signal, rate, fast_seconds, long_file)
        rt_audio = write_replay(signal, rate, realtime_seconds, short_file)
        fast = run_listen(listen_args(long_file, model, fast=True))
        startup = [
            run_listen(listen_args(short_file, model, fast=True)) for _ in range(startup_runs)
        ]
        log = ["--log", str(Path(tmp) / "realtime.jsonl")]  # as a service runs: with its log
        realtime = run_listen([*listen_args(short_file, model, fast=False), *log])
    result = EndToEndResult(
        Table(
            "end_to_end",
            "End to end: `edge-asc listen`, the whole process",
            ["measure", "value", "unit"],
        ),
        fast,
        realtime,
        startup,
        fast_audio,
        rt_audio,
    )
    t = result.table
    t.add("--from-file --fast: audio per CPU second", result.audio_per_cpu_s, "s / CPU s")
    t.add("--from-file --fast: CPU time", fast.cpu_s, "s")
    t.add("--from-file --fast: wall time", fast.wall_s, "s")
    t.add("real time: CPU share, first to last label", result.steady_cpu_share, "% of a core")
    t.add(
        "real time: CPU share, start-up included",
        100 * realtime.cpu_s / realtime.wall_s,
        "% of a core",
    )
    t.add("real time: peak RSS", result.peak_rss_mib, "MiB")
    t.add("--from-file --fast: peak RSS", fast.max_rss_mib, "MiB")
    t.add("start to first label, real time", realtime.first_label_s, "s")
    starts = [r.first_label_s for r in startup if r.first_label_s is not None]
    t.add(
        "start to first label, --fast (start-up + first window)",
        float(np.median(starts)) if starts else None,
        "s",
    )
    t.notes += [
        f"Audio: {source or 'the given recording'}; {fast_audio:.0f} s replayed with --fast, "
        f"{rt_audio:.0f} s in real time (default 0.5-s hop, one onnxruntime thread, plain output "
        f"on a pipe, a JSON-lines log); start-up: median of {startup_runs} --fast runs.",
        "CPU time from the kernel (wait4) for the child process; the real-time share between "
        "the first and last labels from /proc/PID/stat (10-ms ticks); peak RSS is the child's "
        "VmHWM (/proc/PID/status) at its last label.",
    ]
    return result
