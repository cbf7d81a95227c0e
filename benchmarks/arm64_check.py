#!/usr/bin/env python3
"""The installed app on the Pi's own OS, emulated: does it give the same answers as here?

Raspberry Pi OS (64-bit) is Debian 12 bookworm for arm64 with CPython 3.11 (plus the Pi's kernel
and firmware, which a userland does not need). This script builds that userland with mmdebstrap
from the Debian mirror this machine's apt sources name, runs it under qemu-user through
binfmt_misc, installs the wheel built from the checkout (not editable) in a venv there with pip
using this machine's pip configuration and CA certificates, and runs `edge-asc info`,
`edge-asc demo --fast` and `edge-asc classify --json` on real clips of the shared data. The same
wheel, installed here on x86-64, runs the same commands, and the probabilities must agree to
1e-4. The emulated CPU is a Cortex-A76 (a Pi 5's core); classify also runs on a Cortex-A72 (a
Pi 4's core, without the int8 dot-product instructions), so both of onnxruntime's arm64 int8
kernels are checked. Timings under emulation say nothing about a Pi; the
script prints its own wall time only to keep CI's budget in view.

Needs: root (mounts, chroot); the Debian packages mmdebstrap, arch-test, qemu-user-static and
binfmt-support; a Debian apt source and a reachable package index; the shared data folder
(default: ../shared/data beside the checkout); git (the wheel is built from the files git lists).
binfmt_misc is mounted and qemu-aarch64 enabled if they are not. /sys is not mounted in the
chroot: onnxruntime's CPU detection crashes on it under qemu-user, and without it prints
harmless cpuinfo warnings.

    python benchmarks/arm64_check.py [--data DIR] [--cache DIR] [--json]

--cache keeps the built Debian userland (not the app) for the next run. Exit status: 0 the runs
agree, 1 they differ or a step failed, 2 this machine cannot run the check (one line says why).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from urllib.parse import urlparse

import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SUITE = "bookworm"
# Python and its venv module for the app, PortAudio for sounddevice; the soundfile wheel brings
# its own libsndfile. No ca-certificates: the host's bundle is copied in (and its postinst alone
# took 70 s under emulation).
PACKAGES = ("python3", "python3-venv", "libportaudio2")
DPKG_OPTIONS = (
    *(f"path-exclude=/usr/share/{folder}/*" for folder in ("doc", "man", "info", "locale")),
    "path-include=/usr/share/doc/*/copyright",
)
TOOLS = ("mmdebstrap", "arch-test", "qemu-aarch64-static", "update-binfmts", "unshare", "git")
CLIPS = (  # 16 kHz mono 16-bit, and 48 kHz stereo 24-bit through the resampler
    "urbansound8k-16k/fold3/103199-4-0-0.flac",
    "urbansound8k-16k/fold3/117072-3-0-14.flac",
    "urbansound8k-16k/fold3/184623-8-0-3.flac",
    "tut-urban-2018-demo/street_traffic.flac",
    "tut-urban-2018-demo/park.flac",
)
TOLERANCE = 1e-4
WORK = "/opt/edge-asc-check"  # inside the userland; the host's run uses a folder of the same shape
VENV = "/opt/edge-asc"
CPUS = ("cortex-a76", "cortex-a72")  # a Pi 5's core (int8 dot product), a Pi 4's (none)
PROBE = """import json, platform, sys
import numpy, onnxruntime, sounddevice, soundfile
print(json.dumps({"machine": platform.machine(), "python": platform.python_version(),
  "debian": open("/etc/debian_version").read().strip(), "numpy": numpy.__version__,
  "onnxruntime": onnxruntime.__version__, "portaudio": sounddevice.get_portaudio_version()[1],
  "libsndfile": soundfile.__libsndfile_version__}))"""


class CannotRunError(Exception):
    """This machine lacks what the check needs: exit 2."""


class CheckFailedError(Exception):
    """A step failed or the two runs differ: exit 1."""


@dataclass
class Runs:
    """What one architecture's commands printed."""

    info: str = ""
    card: dict = field(default_factory=dict)
    demo: list[dict] = field(default_factory=list)
    demo_tally: str = ""
    classify: dict[str, list[dict]] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"arm64: {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], what: str, timeout: float = 900, **kwargs) -> str:
    """Run a command; its failure names the step and ends with the command's own last lines."""
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except subprocess.TimeoutExpired as err:
        raise CheckFailedError(f"{what}: no result after {timeout:.0f} s") from err
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise CheckFailedError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def preflight(data: Path) -> None:
    if os.geteuid() != 0:
        raise CannotRunError("needs root (binfmt_misc, mounts and chroot)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise CannotRunError(
            f"missing {', '.join(missing)} (apt-get install mmdebstrap arch-test "
            "qemu-user-static binfmt-support)"
        )
    absent = [clip for clip in CLIPS if not (data / clip).is_file()]
    if absent:
        raise CannotRunError(f"shared clips not found under {data}: {', '.join(absent)}")


def enable_binfmt() -> None:
    """Let the kernel hand arm64 binaries to qemu (fix-binary, so the chroot needs no qemu)."""
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "register").exists():
        mounted = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)],
            capture_output=True,
            text=True,
            check=False,
        )
        if mounted.returncode != 0:
            raise CannotRunError(f"cannot mount binfmt_misc: {mounted.stderr.strip()}")
    entry = binfmt / "qemu-aarch64"
    if not entry.exists() or "enabled" not in entry.read_text():
        run(["update-binfmts", "--enable", "qemu-aarch64"], "update-binfmts --enable", 300)
    if subprocess.run(["arch-test", "arm64"], capture_output=True, check=False).returncode:
        raise CannotRunError("arm64 binaries do not run here although qemu-aarch64 is registered")


def apt_entries() -> list[dict[str, list[str]]]:
    """The host's enabled `deb` sources, one-line and deb822 alike: {types, uris, suites...}."""
    apt = Path("/etc/apt")
    entries = []
    one_line = [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0]
            options = re.search(r"\[([^]]*)\]", line)
            words = re.sub(r"\[[^]]*\]", " ", line).split()
            if len(words) >= 3:
                entry = {"types": words[:1], "uris": words[1:2], "suites": words[2:3]}
                for option in options.group(1).split() if options else []:
                    key, _, value = option.partition("=")
                    entry[key.lower()] = [value]
                entries.append(entry)
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            entry: dict[str, list[str]] = {}
            key = ""
            for line in stanza.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0].isspace() and key:
                    entry[key] += line.split()
                    continue
                key, _, value = line.partition(":")
                key = key.strip().lower()
                entry[key] = value.split()
            if entry.get("enabled", ["yes"])[0].lower() != "no":
                entries.append(entry)
    return [entry for entry in entries if "deb" in entry.get("types", [])]


def debian_mirror() -> list[str]:
    """mmdebstrap's sources for bookworm arm64: the Debian archive (and its security archive)
    at the addresses the host uses, found by the host's own Debian codename."""
    release = dict(
        line.split("=", 1)
        for line in Path("/etc/os-release").read_text().splitlines()
        if "=" in line
    )
    codename = release.get("VERSION_CODENAME", "").strip('"')
    if release.get("ID", "").strip('"') != "debian" or not codename:
        raise CannotRunError("the host is not Debian: its apt sources name no Debian mirror")
    sources = []
    for suffix, suites in (("", f"{SUITE} {SUITE}-updates"), ("-security", f"{SUITE}-security")):
        for entry in apt_entries():
            if codename + suffix in entry.get("suites", []):
                keyring = entry.get("signed-by", [""])[0]
                options = f"[signed-by={keyring}] " if keyring.startswith("/") else ""
                sources.append(f"deb {options}{entry['uris'][0]} {suites} main")
                break
    if not sources or "-security" in sources[0]:
        raise CannotRunError(f"no Debian archive for {codename} in /etc/apt/sources.list(.d)")
    return sources


def apt_options() -> list[str]:
    """The host's network settings for apt (proxies, an old snapshot's Valid-Until): mmdebstrap
    uses an apt configuration of its own, not the host's."""
    dumped = run(["apt-config", "dump"], "apt-config dump", 300).splitlines()
    wanted = re.compile(r"^Acquire::(Check-Valid-Until|Check-Date|Retries|https?::|ftp::)")
    return [line for line in dumped if wanted.match(line)]


def build_rootfs(root: Path, cache: Path | None) -> None:
    """Debian bookworm arm64 with PACKAGES, from the cache when one matches."""
    sources, aptopts = debian_mirror(), apt_options()
    version = run(["mmdebstrap", "--version"], "mmdebstrap --version", 300).strip()
    recipe = json.dumps([SUITE, PACKAGES, DPKG_OPTIONS, sources, aptopts, version])
    cached = cache / f"rootfs-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}" if cache else None
    if cached and cached.is_dir():
        say(f"Debian userland from the cache {cached}")
        run(["cp", "-a", f"{cached}/.", str(root)], "copying the cached userland", 600)
        return
    cmd = [
        "mmdebstrap",
        "--quiet",
        "--arch=arm64",
        "--variant=essential",  # no apt inside: packages are installed by the host's apt
        f"--include={','.join(PACKAGES)}",
        *(f"--aptopt={option}" for option in aptopts),
        *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
        SUITE,
        str(root),
        *sources,
    ]
    mirrors = [word for source in sources for word in source.split() if "://" in word]
    say(f"building Debian {SUITE} arm64 from {', '.join(mirrors)}")
    run(cmd, "mmdebstrap", 1800)
    if cached:
        partial = cached.with_name(cached.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        run(["cp", "-a", str(root), str(partial)], "caching the userland", 600)
        for stale in set(cached.parent.glob("rootfs-*")) - {partial}:  # other recipes'
            shutil.rmtree(stale)
        partial.rename(cached)


def pip_settings() -> tuple[dict[str, str], list[str]]:
    """The host's pip configuration as PIP_* variables, and the local paths it names (a
    find-links folder, a file:// index, a constraints file, the CA bundle) to bind read-only.

    `pip config list` lists every file and variable pip reads, lowest precedence first."""
    listed = run([sys.executable, "-m", "pip", "config", "list"], "pip config list", 300)
    env: dict[str, str] = {}
    for section in ("global", "install", ":env:"):
        for line in listed.splitlines():
            name, _, value = line.partition("=")
            where, _, key = name.rpartition(".")
            if where == section and key:
                env["PIP_" + key.upper().replace("-", "_")] = value.strip("'\"")
    if "PIP_CERT" not in env:  # pip's own bundle would miss the host's CAs (a proxy's, say)
        env["PIP_CERT"] = (
            ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
        )
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if name in os.environ:
            env[name] = os.environ[name]
    paths = set()
    for name, value in env.items():
        for word in value.split():
            path = urlparse(word).path if word.startswith("file:") else word
            if name.endswith("INDEX_URL"):  # a local index links to files beside it, not in it
                path = str(Path(path).parent)
            if path.startswith("/") and path != "/" and Path(path).exists():
                paths.add(path)
    return env, sorted(paths)


def build_wheel(dist: Path) -> Path:
    """The wheel of the working tree as a clone would hold it (git's list, not build/ leftovers)."""
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        "git ls-files",
        60,
        cwd=REPO,
    )
    src = dist / "src"
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    run([*pip_wheel, "--no-index", "-q", "-w", str(dist), str(src)], "building the wheel", 300)
    (wheel,) = dist.glob("edge_asc-*.whl")
    return wheel


def pinned_requirements(wheel: Path) -> list[str]:
    """The wheel's unconditional dependencies at the versions installed here, so that both
    architectures run the same numpy, onnxruntime, soxr and soundfile."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        lines = archive.read(name).decode().splitlines()
    pins = []
    for line in lines:
        if line.startswith("Requires-Dist:") and ";" not in line:
            dist = re.match(r"[A-Za-z0-9._-]+", line.split(":", 1)[1].strip()).group(0)
            pins.append(f"{dist}=={metadata.version(dist)}")
    return pins


def stage(work: Path, wheel: Path, data: Path) -> None:
    """The wheel and the clips, laid out alike here and in the userland."""
    (work / "clips").mkdir(parents=True)
    shutil.copy2(wheel, work)
    for clip in CLIPS:
        shutil.copy2(data / clip, work / "clips" / Path(clip).name)


def clip_args() -> list[str]:
    return [f"clips/{Path(clip).name}" for clip in CLIPS]


Shell = Callable[[list[str], str], subprocess.CompletedProcess]


def collect(cli: list[str], cpus: tuple[str, ...], log: Path, shell: Shell) -> Runs:
    """The three commands through `shell(argv, cpu)`, run in the staged folder; `log` is where
    this process finds the demo's log (written as demo.jsonl in that folder)."""
    runs = Runs()
    runs.info = shell([*cli, "info"], cpus[0]).stdout
    runs.card = json.loads(shell([*cli, "info", "--json"], cpus[0]).stdout)
    demo = shell([*cli, "demo", "--fast", "--display", "none", "--log", "demo.jsonl"], cpus[0])
    runs.demo = [json.loads(line) for line in log.read_text().splitlines()]
    runs.demo_tally = demo.stderr.strip().splitlines()[-1]
    for cpu in cpus:
        found = shell([*cli, "classify", "--json", *clip_args()], cpu).stdout.splitlines()
        runs.classify[cpu] = [json.loads(line) for line in found]
    return runs


def checked(argv: list[str], where: str, done: subprocess.CompletedProcess) -> None:
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise CheckFailedError(
            f"{where}: `{shlex.join(argv[-3:])}` exit {done.returncode}:\n{tail}"
        )


def host_runs(work: Path, wheel: Path) -> Runs:
    """The same wheel in a fresh venv here, on the dependencies of the interpreter running this."""
    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "venv", 120)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
    run([*pip, "--no-deps", "--no-index", "-q", str(wheel)], "installing the wheel here", 300)
    query = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = run([str(venv / "bin" / "python"), "-c", query], "venv paths").strip()
    (Path(purelib) / "zz-host-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}

    def shell(argv: list[str], cpu: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            argv, cwd=work, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        checked(argv, "x86-64", done)
        return done

    return collect([str(venv / "bin" / "edge-asc")], ("x86-64",), work / "demo.jsonl", shell)


class Arm64:
    """Commands in the userland: a private mount namespace (so no mount outlives the command or
    shows outside it) with /proc and the host's pip paths read-only, and no /sys."""

    def __init__(self, root: Path, env: dict[str, str], binds: list[str]) -> None:
        self.root = root
        self.env = {"PATH": f"{VENV}/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8", **env}
        mounts = [f"mount -t proc proc {shlex.quote(str(root / 'proc'))}"]
        for path in binds:
            target = root / path.lstrip("/")
            if Path(path).is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
            mounts.append(f"mount --bind -o ro {shlex.quote(path)} {shlex.quote(str(target))}")
        self.mounts = " && ".join(mounts)

    def __call__(
        self, argv: list[str], cpu: str, timeout: float = 900
    ) -> subprocess.CompletedProcess:
        env = [f"{key}={value}" for key, value in {**self.env, "QEMU_CPU": cpu}.items()]
        inner = ["/usr/bin/env", "-i", *env, "/bin/sh", "-c", f'cd {WORK} && exec "$@"', "sh"]
        chroot = shlex.join(["chroot", str(self.root), *inner, *argv])
        cmd = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c"]
        try:
            done = subprocess.run(
                [*cmd, f"{self.mounts} && exec {chroot}"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise CheckFailedError(
                f"arm64 ({cpu}): `{shlex.join(argv[-3:])}` ran past {timeout} s"
            ) from err
        checked(argv, f"arm64 ({cpu})", done)
        return done


def probe(arm64: Arm64, cpu: str) -> dict:
    """What the app runs on there, and whether the CPU has the int8 dot product (HWCAP_ASIMDDP)."""
    hwcap = "import ctypes; print(ctypes.CDLL(None).getauxval(16) >> 20 & 1)"
    found = json.loads(arm64([f"{VENV}/bin/python", "-c", PROBE], cpu).stdout)
    found["dotprod"] = arm64([f"{VENV}/bin/python", "-c", hwcap], cpu).stdout.strip() == "1"
    return found


def differences(x86: Runs, arm: Runs) -> tuple[dict[str, float], list[str]]:
    """The largest probability difference of the demo and of each clip (over both CPUs), and
    every way the arm64 runs differ."""
    problems = []
    if arm.card != x86.card:
        problems.append("info --json: the cards differ")
    if f"{VENV}/" not in arm.info:
        problems.append(f"info does not show the model installed under {VENV}")
    if arm.demo_tally != x86.demo_tally:
        problems.append(f"demo: {arm.demo_tally!r} against {x86.demo_tally!r}")
    if len(arm.demo) != len(x86.demo):
        problems.append(f"demo: {len(arm.demo)} windows against {len(x86.demo)}")
    gaps = {"demo": 0.0}
    for mine, theirs in zip(arm.demo, x86.demo, strict=False):
        for key in ("label", "smoothed_label"):
            if mine[key] != theirs[key]:
                problems.append(f"demo at {mine['offset_s']} s: {key} {mine[key]} != {theirs[key]}")
        for key in ("confidence", "smoothed_confidence"):
            gaps["demo"] = max(gaps["demo"], abs(mine[key] - theirs[key]))
    (reference,) = x86.classify.values()
    for cpu, results in arm.classify.items():
        if [r["file"] for r in results] != [r["file"] for r in reference]:
            problems.append(f"classify ({cpu}): other files or order")
        for mine, theirs in zip(results, reference, strict=False):
            for key in ("label", "windows", "silent_windows"):
                if mine[key] != theirs[key]:
                    problems.append(f"classify ({cpu}) {mine['file']}: {key} differs")
            if mine["probabilities"].keys() != theirs["probabilities"].keys():
                problems.append(f"classify ({cpu}) {mine['file']}: other labels")
                continue
            probs = mine["probabilities"]
            gap = max(abs(probs[k] - v) for k, v in theirs["probabilities"].items())
            gaps[mine["file"]] = max(gaps.get(mine["file"], 0.0), gap)
    worst = max(gaps.values())
    if worst > TOLERANCE:
        problems.append(f"probabilities differ by up to {worst:.2e} (allowed {TOLERANCE:g})")
    return gaps, problems


def remove(tmp: Path) -> None:
    """Delete the scratch folder, never through a mount (there is none outside the namespaces)."""
    mounts = Path("/proc/self/mountinfo").read_text().split()
    if any(word.startswith(str(tmp)) for word in mounts):
        raise CheckFailedError(f"a mount is still under {tmp}; left in place")
    shutil.rmtree(tmp)


def check(data: Path, cache: Path | None) -> dict:
    preflight(data)
    enable_binfmt()
    timings: dict[str, float] = {}
    started = time.monotonic()

    def lap(step: str) -> None:
        timings[step] = round(time.monotonic() - started - sum(timings.values()), 1)

    tmp = Path(tempfile.mkdtemp(prefix="edge-asc-arm64-"))
    try:
        wheel = build_wheel(tmp / "dist")
        stage(tmp / "x86", wheel, data)
        x86 = host_runs(tmp / "x86", wheel)
        lap("wheel and x86-64 run")

        root = tmp / "rootfs"
        build_rootfs(root, cache)
        lap("Debian userland")
        if Path("/etc/resolv.conf").is_file():
            (root / "etc" / "resolv.conf").unlink(missing_ok=True)
            shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
        work = root / WORK.lstrip("/")
        stage(work, wheel, data)
        env, binds = pip_settings()
        arm64 = Arm64(root, env, binds)
        say("installing the wheel in a venv there with pip")
        install = f"/usr/bin/python3 -m venv {VENV} && {VENV}/bin/pip install"
        pins = " ".join(map(shlex.quote, pinned_requirements(wheel)))
        quiet = "-q --no-cache-dir --no-compile --progress-bar off"
        arm64(["/bin/sh", "-c", f"{install} {quiet} ./{wheel.name} {pins}"], CPUS[0], 1800)
        lap("pip install")

        say("running info, demo --fast and classify --json there")
        probes = {cpu: probe(arm64, cpu) for cpu in CPUS}
        arm = collect(["edge-asc"], CPUS, work / "demo.jsonl", arm64)
        lap("emulated commands")
    finally:
        remove(tmp)
    lap("clean-up")
    gaps, problems = differences(x86, arm)
    return {
        "passed": not problems,
        "problems": problems,
        "max_abs_probability_difference": max(gaps.values()),
        "differences": gaps,
        "sample_rates": {
            arg: sf.info(data / clip).samplerate
            for arg, clip in zip(clip_args(), CLIPS, strict=True)
        },
        "tolerance": TOLERANCE,
        "demo_windows": len(arm.demo),
        "arm64": probes,
        "seconds": timings,
        "wall_seconds": round(time.monotonic() - started, 1),
    }


def report(result: dict) -> str:
    lines = []
    for cpu, found in result["arm64"].items():
        lines.append(
            f"arm64 {cpu} (int8 dot product: {'yes' if found['dotprod'] else 'no'}): Debian "
            f"{found['debian']}, {found['machine']}, Python {found['python']}, numpy "
            f"{found['numpy']}, onnxruntime {found['onnxruntime']}, {found['portaudio']}, "
            f"libsndfile {found['libsndfile']}"
        )
    lines.append("largest probability difference from x86-64, over both CPUs:")
    for source, gap in result["differences"].items():
        rate = result["sample_rates"].get(source)
        lines.append(f"  {source}{f' ({rate} Hz)' if rate else ''}: {gap:.2e}")
    lines.append(
        f"probabilities within {result['max_abs_probability_difference']:.2e} of x86-64 "
        f"(goal <= {result['tolerance']:g}): {'PASS' if result['passed'] else 'FAIL'}"
    )
    lines += [f"  {problem}" for problem in result["problems"]]
    steps = ", ".join(f"{name} {s:.0f} s" for name, s in result["seconds"].items())
    lines.append(f"wall time {result['wall_seconds']:.0f} s ({steps}); emulated, not a Pi's")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--cache", type=Path, help="keep the built Debian userland here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        result = check(args.data.resolve(), args.cache.resolve() if args.cache else None)
    except CannotRunError as err:
        print(f"arm64 check cannot run here: {err}", file=sys.stderr)
        return 2
    except CheckFailedError as err:
        print(f"arm64 check failed: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result) if args.json else report(result))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
