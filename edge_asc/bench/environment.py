"""Where figures were measured: the CPU, the load on it, and the library versions in use."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

LIBRARIES = (
    "numpy",
    "onnxruntime",
    "soundfile",
    "soxr",
    "librosa",
    "python_speech_features",
    "torch",
    "onnx",
)


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (Linux), else what the platform module reports."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(package: str) -> str | None:
    """An installed distribution's version, without importing it (librosa takes seconds)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, str]:
    """CPU, cores, load average, OS, Python and every benchmarked library that is installed."""
    info = {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    if hasattr(os, "getloadavg"):
        info["load average (1 min)"] = f"{os.getloadavg()[0]:.2f}"
    for package in LIBRARIES:
        found = version(package)
        if found is not None:
            info[package] = found
    return info
