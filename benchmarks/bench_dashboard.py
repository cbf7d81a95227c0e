"""What `listen --http` costs: peak RSS and CPU of a listener with the dashboard against the same
listener without it, both running at once on the same real audio (so they share the machine's
load), as differences and ratios.

Phases of the dashboard listener: no page open (the idle cost the goal is about), one live page
open (a server-sent events client reading every window), then a burst of 200 concurrent API
requests (peak RSS after it). Goals: at most 15 MiB more peak RSS, no measurable CPU while no
page is open.

    .venv/bin/python benchmarks/bench_dashboard.py            # 70 s of audio, in real time
    .venv/bin/python benchmarks/bench_dashboard.py --seconds 130 --json
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import soundfile as sf

from edge_asc.bench.endtoend import (
    edge_asc_command,
    peak_rss_mib,
    process_cpu_seconds,
    write_replay,
)

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "data" / "urbansound8k-16k" / "fold3" / "12647-3-3-0.flac"
URL = re.compile(r"dashboard at http://127\.0\.0\.1:(\d+)/")
RSS_GOAL_MIB = 15.0


def start(audio: Path, db: Path, errors: Path, http: bool) -> subprocess.Popen:
    args = ["listen", "--from-file", str(audio), "--display", "none", "--db", str(db)]
    if http:
        args += ["--http", "127.0.0.1:0"]
    return subprocess.Popen([*edge_asc_command(), *args], stderr=errors.open("w"))


def cpu(proc: subprocess.Popen) -> float:
    return process_cpu_seconds(proc.pid) or 0.0


def read_live(port: int, stop: threading.Event, got: list[int]) -> None:
    """A live page: the now page's feed, read as it comes."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/live")
    response = conn.getresponse()
    while not stop.is_set():
        line = response.fp.readline()
        if not line:
            break
        got[0] += line.startswith(b"event: window")
    conn.close()


def burst(port: int, n: int = 200) -> int:
    """n concurrent requests; how many were answered 200."""
    ok: list[int] = []

    def one() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("GET", "/api/events")
        ok.append(conn.getresponse().status)
        conn.close()

    threads = [threading.Thread(target=one) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ok.count(200)


def measure(seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        audio, rate = sf.read(CLIP, dtype="float32")
        write_replay(audio, rate, seconds, folder / "replay.flac")
        plain = start(folder / "replay.flac", folder / "a.db", folder / "a.txt", http=False)
        served = start(folder / "replay.flac", folder / "b.db", folder / "b.txt", http=True)
        procs = {"without": plain, "with": served}
        peaks = dict.fromkeys(procs, 0.0)

        def wait_until(moment: float) -> None:
            while time.monotonic() < moment:
                for name, proc in procs.items():
                    peaks[name] = max(peaks[name], peak_rss_mib(proc.pid) or 0.0)
                time.sleep(0.2)

        began = time.monotonic()
        while not URL.search((folder / "b.txt").read_text()):
            if served.poll() is not None or time.monotonic() - began > 60:
                raise SystemExit(f"the listener did not serve: {(folder / 'b.txt').read_text()}")
            time.sleep(0.1)
        port = int(URL.search((folder / "b.txt").read_text()).group(1))
        phase = (seconds - 15) / 3
        wait_until(began + 10)  # both loaded and listening
        idle0 = {name: cpu(p) for name, p in procs.items()}
        wait_until(began + 10 + 2 * phase)
        idle1 = {name: cpu(p) for name, p in procs.items()}
        idle_rss = dict(peaks)
        stop, windows = threading.Event(), [0]
        reader = threading.Thread(target=read_live, args=(port, stop, windows), daemon=True)
        reader.start()
        wait_until(began + 10 + 3 * phase)
        page1 = {name: cpu(p) for name, p in procs.items()}
        stop.set()
        answered = burst(port)
        wait_until(time.monotonic() + 1)
        for proc in procs.values():
            proc.wait(timeout=seconds + 60)
    idle_s, page_s = 2 * phase, phase
    idle = {n: 100 * (idle1[n] - idle0[n]) / idle_s for n in procs}
    page = {n: 100 * (page1[n] - idle1[n]) / page_s for n in procs}
    return {
        "audio_s": seconds,
        "idle_window_s": round(idle_s, 1),
        "peak_rss_mib_no_page": {n: round(v, 1) for n, v in idle_rss.items()},
        "peak_rss_mib_after_burst": {n: round(v, 1) for n, v in peaks.items()},
        "cpu_percent_no_page": {n: round(v, 2) for n, v in idle.items()},
        "cpu_percent_one_page": {n: round(v, 2) for n, v in page.items()},
        "live_windows_read": windows[0],
        "burst_answered": answered,
    }


# Each candidate serves 200 small JSON answers from a thread of a process that has already
# imported what a listener imports; printed: the RSS it added, and its CPU over 10 idle seconds.
LIBRARY_PROBE = """
import sys, threading, time, urllib.request
import numpy, onnxruntime, soundfile
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
base = rss()
if sys.argv[1] == "http.server":
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"ok":1}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
else:
    import asyncio
    from aiohttp import web
    ready, box = threading.Event(), {}
    async def handle(request):
        return web.json_response({"ok": 1})
    def run():
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/", handle)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        box["port"] = runner.addresses[0][1]
        ready.set()
        loop.run_forever()
    threading.Thread(target=run, daemon=True).start()
    ready.wait()
    port = box["port"]
for _ in range(200):
    urllib.request.urlopen(f"http://127.0.0.1:{port}/").read()
served = rss()
t0 = time.process_time()
time.sleep(10)
print(f"{served - base:.1f} {1000 * (time.process_time() - t0):.1f}")
"""


def library_costs(python: str) -> dict[str, tuple[float, float]]:
    """Library -> (RSS added in MiB, ms of CPU in 10 idle s), for those `python` can import."""
    found = {}
    for library in ("http.server", "aiohttp"):
        run = subprocess.run(
            [python, "-c", LIBRARY_PROBE, library], capture_output=True, text=True, check=False
        )
        if run.returncode == 0:
            mib, ms = run.stdout.split()
            found[library] = (float(mib), float(ms))
    return found


def markdown(r: dict) -> str:
    def row(what: str, pair: dict, unit: str) -> str:
        a, b = pair["without"], pair["with"]
        ratio = f"{b / a:.3f}" if a else "-"
        return f"| {what} | {a:.2f} {unit} | {b:.2f} {unit} | {b - a:+.2f} {unit} | {ratio} |"

    return "\n".join(
        [
            f"listen on {r['audio_s']:.0f} s of real audio in real time, with and without --http, "
            "at the same time",
            "",
            "| | without --http | with --http | difference | ratio |",
            "| --- | --- | --- | --- | --- |",
            row("peak RSS, no page open", r["peak_rss_mib_no_page"], "MiB"),
            row("peak RSS after 200 concurrent requests", r["peak_rss_mib_after_burst"], "MiB"),
            row(f"CPU, no page open ({r['idle_window_s']:.0f} s)", r["cpu_percent_no_page"], "%"),
            row("CPU, one live page open", r["cpu_percent_one_page"], "%"),
            "",
            f"live page: {r['live_windows_read']} windows read; burst: {r['burst_answered']}/200 "
            "answered 200",
            f"goal: at most {RSS_GOAL_MIB:g} MiB more peak RSS: "
            f"{'met' if r['peak_rss_mib_after_burst']['with'] - r['peak_rss_mib_after_burst']['without'] <= RSS_GOAL_MIB else 'MISSED'}",  # noqa: E501
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=70.0, help="audio replayed (>= 40)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--libraries",
        metavar="PYTHON",
        help="Instead: what serving costs with http.server and with aiohttp, in the Python "
        "PYTHON (a venv with aiohttp, onnxruntime, numpy and soundfile)",
    )
    args = parser.parse_args()
    if args.libraries:
        for library, (mib, ms) in library_costs(args.libraries).items():
            print(f"{library}: +{mib:.1f} MiB RSS, {ms:.1f} ms CPU in 10 idle s")
        return
    result = measure(max(args.seconds, 40.0))
    print(json.dumps(result) if args.json else markdown(result))


if __name__ == "__main__":
    main()
