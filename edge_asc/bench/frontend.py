"""The log-mel front-end against librosa and python-speech-features: same audio, same parameters.

Two modes. Per hop (streaming, 0.5 s): ours pushes the hop's new samples into its stream and
computes only the 25 new frames; the peers are given exactly the samples those 25 frames need
(the hop plus one window of overlap), their most favourable non-streaming use. Per 1-s window:
every front-end computes all 51 frames of a second of audio with the same half-window padding.
Parameters (rate, window function and length, hop, n_fft, mel bands and edges, HTK mel scale,
power spectrum) come from the model's FrontEndConfig, so every row does the same arithmetic.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from edge_asc.bench.report import Table
from edge_asc.bench.timing import Stats, measure
from edge_asc.features import FrontEndConfig, LogMel, analysis_window

HOP_SECONDS = 0.5  # the live default: a window every 0.5 s
OURS_HOP = "edge-asc LogMel.push (streaming)"
OURS_WINDOW = "edge-asc LogMel.compute"
LIBROSA = "librosa melspectrogram + power_to_db"
PSF = "python_speech_features log(fbank)"


@dataclass(frozen=True)
class Candidate:
    """One front-end in one mode: how to call it on the next input, what it produces."""

    name: str
    mode: str  # "hop" or "window"
    call: Callable[[], np.ndarray]
    audio_seconds: float  # new audio each call accounts for


def optional(module: str) -> ModuleType | None:
    """A peer library if it is installed; its rows are skipped (with a note) otherwise."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _cycle(
    items: list[np.ndarray], fn: Callable[[np.ndarray], np.ndarray]
) -> Callable[[], np.ndarray]:
    """Call `fn` on consecutive real inputs, round and round (a stream, not one cached buffer)."""
    it = itertools.cycle(items)
    return lambda: fn(next(it))


def candidates(signal: np.ndarray, config: FrontEndConfig) -> tuple[list[Candidate], list[str]]:
    """Every front-end available here, fed from `signal` (mono, the config's rate, >= 2 s)."""
    rate, hop, win, nfft = config.sample_rate, config.hop_length, config.win_length, config.n_fft
    hop_frames = round(HOP_SECONDS * rate / hop)
    hop_samples = hop_frames * hop
    second = rate
    if signal.size < second + 2 * hop_samples:
        raise ValueError("need at least 2 s of audio for the front-end benchmark")
    signal = np.asarray(signal, dtype=np.float32)
    half = np.zeros(win // 2, dtype=np.float32)
    padded = np.concatenate((half, signal, half))
    starts = range(0, signal.size - second, hop_samples)
    hops = [signal[s : s + hop_samples] for s in starts]
    # What a non-streaming peer needs for the same 25 frames: the hop plus the frames' overlap.
    psf_ctx = [padded[s + win // 2 : s + win // 2 + (hop_frames - 1) * hop + win] for s in starts]
    lib_ctx = [padded[s + win // 2 : s + win // 2 + (hop_frames - 1) * hop + nfft] for s in starts]
    seconds = [signal[s : s + second] for s in starts]
    padded_seconds = [padded[s : s + second + win] for s in starts]

    stream = LogMel(config)  # 25 frames from every push of a hop, the first one included
    offline = LogMel(config)
    found = [
        Candidate(OURS_HOP, "hop", _cycle(hops, stream.push), HOP_SECONDS),
        Candidate(OURS_WINDOW, "window", _cycle(seconds, offline.compute), 1.0),
    ]
    notes = []
    librosa = optional("librosa")
    if librosa is None:
        notes.append("librosa is not installed: its rows are skipped (pip install librosa).")
    else:
        window = analysis_window(config)
        mel = {
            "sr": rate,
            "n_fft": nfft,
            "hop_length": hop,
            "win_length": win,
            "window": window,
            "power": 2.0,
            "n_mels": config.n_mels,
            "fmin": config.fmin,
            "fmax": config.fmax,
            "htk": True,
            "norm": None,
        }

        def lib_hop(x: np.ndarray) -> np.ndarray:
            spec = librosa.feature.melspectrogram(y=x, center=False, **mel)
            return librosa.power_to_db(spec)

        def lib_window(x: np.ndarray) -> np.ndarray:
            spec = librosa.feature.melspectrogram(y=x, center=True, pad_mode="constant", **mel)
            return librosa.power_to_db(spec)

        found += [
            Candidate(LIBROSA, "hop", _cycle(lib_ctx, lib_hop), HOP_SECONDS),
            Candidate(LIBROSA, "window", _cycle(seconds, lib_window), 1.0),
        ]
    psf = optional("python_speech_features")
    if psf is None:
        notes.append(
            "python_speech_features is not installed: its rows are skipped "
            "(pip install python_speech_features scipy)."
        )
    else:
        np_window = getattr(np, config.window) if config.window != "ones" else None
        fbank = {
            "samplerate": rate,
            "winlen": win / rate,
            "winstep": hop / rate,
            "nfilt": config.n_mels,
            "nfft": nfft,
            "lowfreq": config.fmin,
            "highfreq": config.fmax,
            "preemph": 0,
        }
        if np_window is not None:
            fbank["winfunc"] = np_window

        def psf_logfbank(x: np.ndarray) -> np.ndarray:
            # logfbank() itself takes no window argument (0.6): it is log(fbank()), as here.
            return np.log(psf.fbank(x, **fbank)[0])

        found += [
            Candidate(
                PSF,
                "hop",
                _cycle(psf_ctx, psf_logfbank),
                HOP_SECONDS,
            ),
            Candidate(
                PSF,
                "window",
                _cycle(padded_seconds, psf_logfbank),
                1.0,
            ),
        ]
    return found, notes


def frames_of(output: np.ndarray, n_mels: int) -> int:
    """Frames in a front-end's output, whichever axis it puts them on."""
    return int(output.shape[1] if output.shape[0] == n_mels else output.shape[0])


@dataclass(frozen=True)
class FrontEndResult:
    table: Table
    stats: dict[tuple[str, str], Stats]  # (name, mode) -> timing


DEFAULT_THREADS = " (default BLAS threads)"


@contextlib.contextmanager
def one_blas_thread() -> Iterator[bool]:
    """Every front-end on one BLAS thread, as the app runs its own (True if it could be set).

    librosa and python-speech-features hand their 51-frame mel products to OpenBLAS's thread
    pool, which on a busy 2-core machine measured 10-20x slower than one thread: comparing
    against that alone would flatter edge-asc. Their out-of-the-box figures are shown as well.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield False
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield True


def run_frontend(
    signal: np.ndarray, config: FrontEndConfig, runs: int, warmup: int = 10
) -> FrontEndResult:
    """Time every available front-end per hop and per window, with ratios to ours."""
    found, notes = candidates(signal, config)
    with one_blas_thread() as limited:
        frames = {(c.name, c.mode): frames_of(c.call(), config.n_mels) for c in found}
        stats = measure({f"{c.mode}|{c.name}": c.call for c in found}, runs, warmup)
    by_key = {(c.name, c.mode): stats[f"{c.mode}|{c.name}"] for c in found}
    peers = [c for c in found if c.name not in (OURS_HOP, OURS_WINDOW)]
    if limited and peers:
        # The peers as a user gets them out of the box; a second pass, right after the first.
        again = measure({f"{c.mode}|{c.name}": c.call for c in peers}, runs, warmup)
        for c in peers:
            key = (c.name + DEFAULT_THREADS, c.mode)
            by_key[key], frames[key] = again[f"{c.mode}|{c.name}"], frames[(c.name, c.mode)]
        found += [
            Candidate(c.name + DEFAULT_THREADS, c.mode, c.call, c.audio_seconds) for c in peers
        ]
    blas = (
        "BLAS limited to one thread (threadpoolctl) for every front-end; the rows marked "
        "'default BLAS threads' are the peers out of the box, timed in a second pass."
        if limited
        else "BLAS threads at their default (threadpoolctl is not installed)."
    )
    ours_hop = by_key[(OURS_HOP, "hop")].median_ms
    table = Table(
        "frontend",
        "Front-end: log-mel per 0.5-s hop (streaming) and per 1-s window",
        [
            "front-end",
            "input",
            "frames",
            "median ms",
            "p99 ms",
            "ms per s of audio",
            "x ours, same input",
            "x ours per hop",
        ],
    )
    for mode in ("hop", "window"):
        ours = by_key[(OURS_HOP, mode) if mode == "hop" else (OURS_WINDOW, mode)].median_ms
        for c in found:
            if c.mode != mode:
                continue
            s = by_key[(c.name, mode)]
            table.add(
                c.name,
                "0.5-s hop" if mode == "hop" else "1-s window",
                frames[(c.name, mode)],
                s.median_ms,
                s.p99_ms,
                s.median_ms / c.audio_seconds,
                s.median_ms / ours,
                s.median_ms / ours_hop,
            )
    table.notes += [
        f"{runs} interleaved runs each after {warmup} warm-up calls. x ours = this median / "
        "edge-asc's median (above 1: edge-asc is that many times faster).",
        "0.5-s hop: edge-asc computes only the 25 new frames of its stream; the peers cannot "
        "stream, and are given exactly the samples those 25 frames need (the hop plus one "
        "window of overlap), their most favourable use. Used naively, a non-streaming "
        "front-end recomputes the 1-s window at every hop: 'x ours per hop' on the window rows.",
        blas,
        *notes,
    ]
    return FrontEndResult(table, by_key)
