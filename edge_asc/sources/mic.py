"""Where live audio comes from: a microphone, a file replayed, or raw PCM on standard input.

Every source hands the consumer (frames, channels) float32 blocks at its own rate; downmixing
and resampling happen downstream, in the consumer, never in an audio callback. `read` waits at
most `timeout` seconds, so the consumer can notice a stop request (SIGTERM) between reads, and
returns None once the source is exhausted.

sounddevice is imported only on the microphone path: importing it without a PortAudio library
raises OSError, and the file and stdin sources must work on such a machine.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf

from edge_asc.audio_io import check_format, open_audio
from edge_asc.errors import EdgeAscError
from edge_asc.ringbuffer import RingBuffer

DEVICES_HINT = "list the input devices with `edge-asc devices`"


class Source:
    """Base class: a context manager yielding float32 (frames, channels) blocks from `read`."""

    rate: int
    channels: int
    description: str = "audio"

    @property
    def overflows(self) -> int:
        """Input overflows so far (samples the source had to drop); 0 where none can happen."""
        return 0

    @property
    def reconnects(self) -> int:
        """Times the device was lost and opened again: the audio is not continuous there."""
        return 0

    def take_notices(self) -> list[str]:
        """Messages about the source's faults and recoveries since the last call (for stderr)."""
        return []

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        """The next block, possibly empty (nothing yet); None at the end of the stream."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FileSource(Source):
    """Any file soundfile reads, replayed in real time (like a microphone) or as fast as possible.

    Real-time pacing releases each block only once its last sample "has been recorded", measured
    from the first read, so a replay exercises the same timing as a live capture. The file is
    checked when opened (audio_io.open_audio); NaN or infinite samples are the stream's to
    replace, as they would be from a microphone.
    """

    def __init__(
        self, path: str | Path, realtime: bool = True, block_seconds: float | None = None
    ) -> None:
        self.path = Path(path)
        self._file = open_audio(self.path)
        self.rate = int(self._file.samplerate)
        self.channels = int(self._file.channels)
        self.realtime = realtime
        # Small blocks keep a real-time display fluid; big ones let --fast batch the model.
        seconds = block_seconds if block_seconds is not None else (0.1 if realtime else 8.0)
        self._block = max(1, round(seconds * self.rate))
        self._delivered = 0
        self._start: float | None = None
        self.description = f"{self.path.name} ({'real time' if realtime else 'fast'})"

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        if self._file.closed:
            return None
        if self.realtime:
            now = time.monotonic()
            if self._start is None:
                self._start = now
            due = self._start + (self._delivered + self._block) / self.rate
            if now < due:
                time.sleep(min(due - now, timeout))
                if time.monotonic() < due:
                    return np.empty((0, self.channels), dtype=np.float32)
        try:
            block = self._file.read(self._block, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError, MemoryError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise EdgeAscError(f"cannot read audio {self.path}: {reason}") from err
        if block.shape[0] == 0:
            return None
        self._delivered += block.shape[0]
        return block

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


@dataclass(frozen=True)
class PcmFormat:
    """A raw PCM sample format, named as arecord names it."""

    name: str
    dtype: str  # numpy dtype of one sample (after widening 3-byte samples)
    width: int  # bytes per sample on the wire
    scale: float  # multiply to get float32 in [-1, 1), as libsndfile does


PCM_FORMATS = MappingProxyType(
    {
        f.name: f
        for f in (
            PcmFormat("S16_LE", "<i2", 2, 1.0 / 2**15),
            PcmFormat("S24_3LE", "<i4", 3, 1.0 / 2**31),  # packed 24-bit, widened into int32
            PcmFormat("S32_LE", "<i4", 4, 1.0 / 2**31),
            PcmFormat("FLOAT_LE", "<f4", 4, 1.0),
        )
    }
)


def pcm_format(name: str) -> PcmFormat:
    try:
        return PCM_FORMATS[name.upper()]
    except KeyError:
        raise EdgeAscError(
            f"unknown PCM format {name!r}; choose one of {', '.join(PCM_FORMATS)}"
        ) from None


def decode_pcm(data: bytes, fmt: PcmFormat, channels: int) -> np.ndarray:
    """Whole frames of raw little-endian PCM -> (frames, channels) float32."""
    if fmt.width == 3:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        wide = np.zeros((raw.shape[0], 4), dtype=np.uint8)
        wide[:, 1:] = raw  # the 24 bits become the top of an int32: exact, sign included
        samples = wide.view("<i4").reshape(-1)
    else:
        samples = np.frombuffer(data, dtype=fmt.dtype)
    out = samples.astype(np.float32)
    if fmt.scale != 1.0:
        out *= np.float32(fmt.scale)
    return out.reshape(-1, channels)


class StdinSource(Source):
    """Raw interleaved PCM from a byte stream (standard input by default).

    For setups where PortAudio is not wanted: `arecord -f S16_LE -r 48000 -c 1 | edge-asc listen
    --stdin --rate 48000`. Reads wait on select() with the caller's timeout, so a stop request
    is seen even while the writer is silent.
    """

    def __init__(
        self,
        rate: int,
        channels: int = 1,
        sample_format: str = "S16_LE",
        stream: BinaryIO | None = None,
        block_seconds: float = 0.1,
    ) -> None:
        check_format(rate, channels, "--stdin")
        self.rate, self.channels = rate, channels
        self.format = pcm_format(sample_format)
        self._stream = stream if stream is not None else sys.stdin.buffer
        try:
            self._fd: int | None = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None  # an in-memory stream: plain blocking reads
        self._frame_bytes = self.format.width * channels
        self._max_bytes = max(1, round(block_seconds * rate)) * self._frame_bytes
        self._pending = b""
        self._eof = False
        self.description = f"stdin ({self.format.name}, {rate} Hz, {channels} ch)"

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        if self._eof:
            return None
        if self._fd is not None:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            data = os.read(self._fd, self._max_bytes) if ready else None
        else:
            data = self._stream.read(self._max_bytes)
        if data is None:
            return np.empty((0, self.channels), dtype=np.float32)
        if not data:
            self._eof = True  # an incomplete last frame is dropped
            return None
        data = self._pending + data
        usable = len(data) - len(data) % self._frame_bytes
        self._pending = data[usable:]
        return decode_pcm(data[:usable], self.format, self.channels)


def import_sounddevice() -> Any:
    """sounddevice, or a one-line EdgeAscError when the PortAudio library is missing."""
    try:
        import sounddevice as sd
    except OSError as err:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise EdgeAscError(
            f"no PortAudio library, so no microphone ({err}); install it (Debian/Raspberry Pi "
            "OS: apt install libportaudio2), or use --from-file or --stdin"
        ) from err
    return sd


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    hostapi: str
    channels: int
    default_rate: float
    is_default: bool


def input_devices() -> list[InputDevice]:
    """Every device PortAudio can record from, with its channels and default rate."""
    sd = import_sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
        default_in = sd.default.device[0]
    except sd.PortAudioError as err:
        raise EdgeAscError(f"cannot list audio devices: {err}") from err
    return [
        InputDevice(
            index=int(d["index"]),
            name=str(d["name"]),
            hostapi=str(hostapis[d["hostapi"]]["name"]),
            channels=int(d["max_input_channels"]),
            default_rate=float(d["default_samplerate"]),
            is_default=int(d["index"]) == default_in,
        )
        for d in devices
        if d["max_input_channels"] > 0
    ]


def resolve_device(sd: Any, spec: str | int | None) -> dict[str, Any]:
    """The input device `spec` names: None = the default, an index, or a name substring."""
    if spec is None:
        try:
            return dict(sd.query_devices(kind="input"))
        except sd.PortAudioError as err:
            raise EdgeAscError(
                f"no input device (PortAudio: {err}); connect a microphone, {DEVICES_HINT}, or "
                "use --from-file or --stdin"
            ) from err
    text = str(spec).strip()
    try:
        devices = [dict(d) for d in sd.query_devices()]
    except sd.PortAudioError as err:
        raise EdgeAscError(f"cannot list audio devices ({err}); {DEVICES_HINT}") from err
    inputs = [d for d in devices if d["max_input_channels"] > 0]
    if text.lstrip("-").isdigit():
        index = int(text)
        match = [d for d in inputs if d["index"] == index]
        if not match:
            raise EdgeAscError(f"no input device with index {index}; {DEVICES_HINT}")
        return match[0]
    match = [d for d in inputs if text.lower() in d["name"].lower()]
    exact = [d for d in match if d["name"].lower() == text.lower()]
    if len(exact) == 1:
        return exact[0]
    if not match:
        raise EdgeAscError(f"no input device named like {text!r}; {DEVICES_HINT}")
    if len(match) > 1:
        names = ", ".join(f"{d['index']}: {d['name']}" for d in match)
        raise EdgeAscError(f"{text!r} matches several input devices ({names}); pick one by index")
    return match[0]


def choose_rate(sd: Any, device: dict[str, Any], channels: int, wanted: int | None) -> int:
    """`wanted` if the device takes it, else the device's default rate (resampled downstream)."""
    candidates = [wanted] if wanted else []
    candidates.append(round(device["default_samplerate"]))
    for rate in candidates:
        try:
            sd.check_input_settings(
                device=device["index"], channels=channels, dtype="float32", samplerate=rate
            )
        except (sd.PortAudioError, ValueError):
            continue
        return int(rate)
    raise EdgeAscError(
        f"input device {device['name']!r} accepts neither {wanted} Hz nor its default rate "
        f"with {channels} channel(s); {DEVICES_HINT}"
    )


class Capture:
    """One open PortAudio input stream and the ring its callback fills; a new pair per (re)open,
    so a stream abandoned after a stall can never write into its successor's ring."""

    def __init__(
        self,
        sd: Any,
        info: dict[str, Any],
        rate: int,
        channels: int,
        buffer_seconds: float,
        latency: str | float,
    ) -> None:
        self.ring = RingBuffer(max(1, round(buffer_seconds * rate)), channels)
        self.status_overflows = 0
        self.stream = sd.InputStream(
            device=info["index"],
            channels=channels,
            samplerate=rate,
            dtype="float32",
            latency=latency,
            callback=self.callback,
        )
        self.stream.start()

    def callback(self, indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
        # Real-time thread: count, copy, return. Nothing else belongs here.
        if status and status.input_overflow:
            self.status_overflows += 1
        self.ring.write(indata)

    @property
    def overflows(self) -> int:
        return self.status_overflows + self.ring.overflows

    def close(self, wait: float | None = None) -> bool:
        """Stop and close; with `wait`, give up after that many seconds (a stalled sound server
        blocks the close until it answers). Returns whether the stream was closed."""
        stream = self.stream

        def shut() -> None:
            # A lost device may refuse to stop; closing still releases the stream.
            with contextlib.suppress(Exception):
                stream.stop()
            with contextlib.suppress(Exception):
                stream.close()

        if wait is None:
            shut()
            return True
        worker = threading.Thread(target=shut, name="edge-asc-close", daemon=True)
        worker.start()
        worker.join(wait)
        return not worker.is_alive()


class MicSource(Source):
    """A PortAudio input whose callback only copies into a preallocated ring buffer.

    A device missing at the start is an EdgeAscError. Once running, a lost device (unplugged,
    the sound server restarted: the stream stops) or a stalled one (no audio for
    `stall_seconds`) does not end the stream: `read` returns empty blocks while the device is
    reopened with exponential backoff (`retry`: first and longest wait), PortAudio initialised
    afresh each time so that it sees a restarted server or a replugged card. The loss and the
    recovery are reported through `take_notices`, the recovery counted in `reconnects`.
    """

    def __init__(
        self,
        device: str | int | None = None,
        rate: int | None = None,
        channels: int = 1,
        buffer_seconds: float = 10.0,
        latency: str | float = "high",
        retry: tuple[float, float] = (0.5, 30.0),
        stall_seconds: float = 5.0,
    ) -> None:
        self._sd = import_sounddevice()
        if channels <= 0:
            raise EdgeAscError("--channels must be positive")
        self._spec, self._wanted_rate, self._wanted_channels = device, rate, channels
        self._buffer_seconds, self._latency = buffer_seconds, latency
        self.retry, self.stall_seconds = retry, stall_seconds
        self._notices: list[str] = []
        self._reconnects = 0
        self._closed_overflows = 0  # overflows of the captures before the current one
        self._capture: Capture | None = None
        self._lost_at = self._next_try = 0.0
        self._delay = retry[0]
        self._attempts = 0
        self._can_reinit = True
        self._open()

    def _open(self) -> None:
        sd = self._sd
        info = resolve_device(sd, self._spec)
        channels = min(self._wanted_channels, int(info["max_input_channels"]))
        rate = choose_rate(sd, info, channels, self._wanted_rate)
        try:
            capture = Capture(sd, info, rate, channels, self._buffer_seconds, self._latency)
        except (sd.PortAudioError, ValueError) as err:
            raise EdgeAscError(f"cannot open input device {info['name']!r}: {err}") from err
        self.rate, self.channels = rate, channels
        self.description = f"{info['name']} ({rate} Hz, {channels} ch)"
        self._min_frames = max(1, rate // 20)  # wake the consumer for >= 50 ms of audio
        self._capture = capture
        self._seen, self._progress_at = 0, time.monotonic()

    @property
    def overflows(self) -> int:
        current = self._capture.overflows if self._capture is not None else 0
        return self._closed_overflows + current

    @property
    def reconnects(self) -> int:
        return self._reconnects

    def take_notices(self) -> list[str]:
        notices, self._notices = self._notices, []
        return notices

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        capture = self._capture
        if capture is None:
            return self._reopen(timeout)
        deadline = time.monotonic() + timeout
        while capture.ring.available < self._min_frames:
            now = time.monotonic()
            if capture.ring.written != self._seen:
                self._seen, self._progress_at = capture.ring.written, now
            if not capture.ring.available:  # what arrived goes out before any verdict
                if not capture.stream.active:
                    return self._lose("the input stream stopped")
                if now - self._progress_at > self.stall_seconds:
                    return self._lose(f"no audio for {self.stall_seconds:g} s")
            left = deadline - now
            if left <= 0:
                break
            deficit = (self._min_frames - capture.ring.available) / self.rate
            time.sleep(min(left, max(deficit, 0.005)))
        return capture.ring.read()

    def _empty(self) -> np.ndarray:
        return np.empty((0, self.channels), dtype=np.float32)

    def _lose(self, reason: str) -> np.ndarray:
        capture, self._capture = self._capture, None
        assert capture is not None
        self._closed_overflows += capture.overflows
        # PortAudio can be initialised afresh only once no stream of it is left open.
        self._can_reinit = capture.close(wait=2.0)
        now = time.monotonic()
        self._lost_at, self._attempts = now, 0
        self._delay = self.retry[0]
        self._next_try = now + self._delay
        self._notices.append(
            f"warning: lost the input device {self.description} ({reason}); reopening it, "
            f"first after {self.retry[0]:g} s, then at most every {self.retry[1]:g} s"
        )
        return self._empty()

    def _reinitialise(self) -> None:
        """Terminate and initialise PortAudio: its device list is read once, at initialisation."""
        terminate = getattr(self._sd, "_terminate", None)
        initialize = getattr(self._sd, "_initialize", None)
        if not (self._can_reinit and terminate and initialize):
            return
        with contextlib.suppress(self._sd.PortAudioError):  # not initialised: nothing to end
            terminate()
        initialize()

    def _reopen(self, timeout: float) -> np.ndarray:
        now = time.monotonic()
        if now < self._next_try:
            time.sleep(min(timeout, self._next_try - now))
            return self._empty()
        self._attempts += 1
        try:
            self._reinitialise()
            self._open()
        except (EdgeAscError, self._sd.PortAudioError, OSError) as err:
            if self._delay < self.retry[1] <= 2 * self._delay:
                self._notices.append(
                    f"still no input device after {time.monotonic() - self._lost_at:.0f} s "
                    f"({self._attempts} attempts; last: {err}); retrying every "
                    f"{self.retry[1]:g} s"
                )
            self._delay = min(2 * self._delay, self.retry[1])
            self._next_try = time.monotonic() + self._delay
            return self._empty()
        self._reconnects += 1
        self._notices.append(
            f"the input device is back after {time.monotonic() - self._lost_at:.1f} s "
            f"({self._attempts} attempts): {self.description}"
        )
        return self._empty()

    def close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.close()
            self._closed_overflows += capture.overflows


def is_terminal(stream: BinaryIO) -> bool:
    """Whether a person, not a pipe, is at the other end (nothing to read from there)."""
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


def open_source(
    device: str | None = None,
    rate: int | None = None,
    channels: int | None = None,
    from_file: str | Path | None = None,
    fast: bool = False,
    stdin: bool = False,
    pcm: str | None = None,
    default_rate: int = 16000,
    stdin_stream: BinaryIO | None = None,
) -> Source:
    """The one source the `listen` options name (the microphone unless told otherwise).

    An option that does not apply to the chosen source is refused, never ignored: a file says
    its own rate, channels and format; raw PCM says none of them, so --stdin needs --rate.
    """
    if from_file is not None and stdin:
        raise EdgeAscError("choose one of --from-file and --stdin")
    if fast and from_file is None:
        raise EdgeAscError("--fast replays a file: use it with --from-file")
    if pcm is not None and not stdin:
        raise EdgeAscError("--format describes raw PCM: it applies to --stdin only")
    if from_file is not None:
        if device is not None or rate is not None or channels is not None:
            raise EdgeAscError("--device, --rate and --channels do not apply to --from-file")
        return FileSource(from_file, realtime=not fast)
    channels = channels if channels is not None else 1
    if stdin:
        if device is not None:
            raise EdgeAscError("--device does not apply to --stdin")
        if rate is None:
            raise EdgeAscError(
                "--stdin needs --rate: raw PCM does not say its sample rate, and read at "
                "another one it is classified wrong without a sign (arecord's -r)"
            )
        stream = stdin_stream if stdin_stream is not None else sys.stdin.buffer
        if is_terminal(stream):
            raise EdgeAscError(
                "--stdin reads raw PCM from a pipe, but standard input is a terminal: e.g. "
                f"arecord -f S16_LE -r {rate} -c {channels} | edge-asc listen --stdin --rate {rate}"
            )
        return StdinSource(rate, channels, pcm or "S16_LE", stream)
    rate = rate if rate is not None else default_rate  # an explicit 0 is refused, not defaulted
    check_format(rate, channels, "--rate/--channels")  # before any device is opened
    return MicSource(device, rate, channels)
