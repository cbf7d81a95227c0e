"""Fuzzing the audio reader and the front-end with hypothesis.

The reader (audio_io.read_audio, sources.FileSource) gets arbitrary bytes under audio file
names, and real WAV/FLAC files with bytes flipped, cut or appended: it must return finite mono
float32 audio or raise EdgeAscError (one line), never anything else, and never hang (a
faulthandler watchdog ends the run if a decoder loops). The front-end, as the live stream drives
it (stream.LiveStream: guard, downmix, resampler, log-mel, windows, model), gets arbitrary float
arrays (NaN, infinities, float32 extremes, subnormals) at any rate and channel count, in any
chunking, and raw PCM bytes in every --stdin format: every prediction must be finite. LogMel
alone must give finite frames for any finite input, the same however it is chunked. The
shipped model's card, its fields replaced by nearby or arbitrary JSON values, must load as a
model that classifies, streams and prints its card, or fail with one EdgeAscError line.
"""

from __future__ import annotations

import faulthandler
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rich.console import Console

from edge_asc.audio_io import read_audio
from edge_asc.errors import EdgeAscError
from edge_asc.features import FrontEndConfig, LogMel
from edge_asc.model import Model, default_model_path
from edge_asc.modelcard import ModelCard
from edge_asc.sources import PCM_FORMATS, FileSource, Source, StdinSource
from edge_asc.stream import LiveStream

SUFFIXES = ["", ".wav", ".flac", ".ogg", ".mp3", ".aiff", ".au", ".caf"]
SPECIAL = [np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45, -1e-45, 0.0, 1.0, -1.0]
fuzz = settings(
    deadline=None,  # the watchdog below catches hangs; slowness is not a failure here
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def watchdog() -> Iterator[None]:
    """A decoder that never returns would hang the suite: end the process with a traceback."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


@pytest.fixture(scope="module")
def seeds(shared_data, tmp_path_factory) -> list[bytes]:
    """Small real files to mutate: 16-bit mono WAV and FLAC, 24-bit stereo WAV and FLAC."""
    folder = tmp_path_factory.mktemp("seeds")
    mono, _ = sf.read(shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac", frames=3000)
    stereo, _ = sf.read(shared_data / "tut-urban-2018-demo" / "bus.flac", frames=3000)
    out = []
    for name, data, rate, subtype in (
        ("m.wav", mono, 16000, "PCM_16"),
        ("m.flac", mono, 16000, "PCM_16"),
        ("s.wav", stereo, 48000, "PCM_24"),
        ("s.flac", stereo, 48000, "PCM_24"),
        ("f.wav", mono, 16000, "FLOAT"),
    ):
        sf.write(folder / name, data, rate, subtype=subtype)
        out.append((folder / name).read_bytes())
    return out


def check_reader(path: Path) -> None:
    """The reader's contract on whatever `path` holds."""
    try:
        signal = read_audio(path, 16000)
    except EdgeAscError as err:
        assert "\n" not in str(err)
    else:
        assert signal.dtype == np.float32 and signal.ndim == 1 and signal.size > 0
        assert np.all(np.isfinite(signal))
    try:
        with FileSource(path, realtime=False, block_seconds=0.37) as source:
            while (block := source.read()) is not None:
                assert block.dtype == np.float32 and block.shape[1] == source.channels
    except EdgeAscError as err:
        assert "\n" not in str(err)


@fuzz
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_reader_on_arbitrary_bytes(tmp_path, data, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    check_reader(path)


@fuzz
@given(
    which=st.integers(0, 4),
    flips=st.lists(st.tuples(st.integers(0, 20000), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 20000)),
    extra=st.binary(max_size=64),
)
def test_reader_on_damaged_real_files(tmp_path, seeds, which, flips, cut, extra):
    data = bytearray(seeds[which])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    path = tmp_path / ("fuzz.flac" if which in (1, 3) else "fuzz.wav")
    path.write_bytes(bytes(data) + extra)
    check_reader(path)


@fuzz
@given(
    rate=st.sampled_from([8000, 16000, 44100, 48000]),
    values=st.lists(st.sampled_from(SPECIAL) | st.floats(width=32), min_size=1, max_size=2000),
)
def test_reader_on_float_files_with_any_values(tmp_path, rate, values):
    """Float WAVs hold whatever they hold: NaN, infinities, 1e38 (resampled, that overflowed)."""
    path = tmp_path / "float.wav"
    sf.write(path, np.asarray(values, dtype=np.float32), rate, subtype="FLOAT")
    check_reader(path)


class Chunks(Source):
    """Given blocks, then the end of the stream."""

    def __init__(self, blocks: list[np.ndarray], rate: int, channels: int) -> None:
        self.blocks, self.rate, self.channels = list(blocks), rate, channels

    def read(self, timeout: float = 0.1) -> np.ndarray | None:
        return self.blocks.pop(0) if self.blocks else None


def check_predictions(source: Source, model: Model) -> tuple[int, list[str]]:
    notices: list[str] = []
    live = LiveStream(source, model, stuck_seconds=0.5, notify=notices.append)
    for pred in live.predictions():
        assert np.all(np.isfinite(pred.probabilities)) and np.all(np.isfinite(pred.smoothed))
        assert abs(float(pred.probabilities.sum()) - 1.0) < 1e-3
        assert np.isfinite(pred.dbfs) and np.isfinite(pred.offset)
    assert all("\n" not in n for n in notices)
    return live.nonfinite, notices


@fuzz
@given(
    rate=st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000]),
    channels=st.integers(1, 3),
    seconds=st.floats(0.0, 2.5),
    scale=st.sampled_from([0.0, 1e-30, 1e-3, 0.5, 1.0, 1e3, 1e20, 3.4e38]),
    specials=st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(SPECIAL)), max_size=30),
    sizes=st.lists(st.integers(1, 20000), max_size=8),
    seed=st.integers(0, 2**16),
)
def test_live_front_end_on_arbitrary_arrays(
    model, rate, channels, seconds, scale, specials, sizes, seed
):
    n = round(seconds * rate)
    rng = np.random.default_rng(seed)
    with np.errstate(over="ignore"):  # 3.4e38 * a normal draw: infinities, on purpose
        audio = (scale * rng.standard_normal((n, channels))).astype(np.float32)
    flat = audio.reshape(-1)
    for position, value in specials:
        if flat.size:
            flat[position % flat.size] = value
    blocks, pos = [], 0
    for size in [*sizes, n]:
        blocks.append(audio[pos : pos + size])
        pos += size
        if pos >= n:
            break
    nonfinite, _ = check_predictions(Chunks(blocks, rate, channels), model)
    assert nonfinite == int(np.count_nonzero(~np.isfinite(audio)))


@fuzz
@given(
    data=st.binary(max_size=40000),
    fmt=st.sampled_from(sorted(PCM_FORMATS)),
    channels=st.integers(1, 4),
    rate=st.sampled_from([8000, 16000, 44100, 48000]),
)
def test_live_front_end_on_arbitrary_pcm_bytes(model, data, fmt, channels, rate):
    """Raw bytes as --stdin reads them: FLOAT_LE turns many of them into NaN or inf."""
    source = StdinSource(rate, channels, fmt, stream=io.BytesIO(data), block_seconds=0.05)
    check_predictions(source, model)


@fuzz
@given(
    values=st.lists(
        st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=0, max_size=3000
    ),
    sizes=st.lists(st.integers(1, 2000), max_size=6),
)
def test_logmel_is_finite_and_chunking_free_for_any_finite_input(values, sizes):
    signal = np.asarray(values, dtype=np.float32)
    logmel = LogMel(FrontEndConfig())
    expected = logmel.compute(signal)
    parts, pos = [], 0
    for size in [*sizes, signal.size]:
        parts.append(logmel.push(signal[pos : pos + size]))
        pos += size
        if pos >= signal.size:
            break
    parts.append(logmel.flush())
    got = np.concatenate(parts)
    assert np.all(np.isfinite(expected))
    np.testing.assert_array_equal(got, expected)


# --- model cards --------------------------------------------------------------------------------

DELETE = object()  # a change that removes the field
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def near(value: object) -> st.SearchStrategy:
    """Values a wrong card plausibly holds in place of `value`: scaled, off by one, of the
    wrong type, NaN or huge; lists a band short or long, or with a bad element."""
    if isinstance(value, bool) or value is None:
        return st.sampled_from([True, False, None, 0, 1])
    if isinstance(value, (int, float)):
        specials = [0, 1, -1, -value, value * 2, value // 2, value + 1, value - 1, 10**9, 2**63]
        return st.sampled_from([*specials, float(value), float("nan"), float("inf"), str(value)])
    if isinstance(value, list) and value:
        n = len(value)
        return st.one_of(
            st.just(value[:-1]),
            st.just([*value, value[-1]]),
            st.just(value[::-1]),
            st.integers(0, n - 1).flatmap(
                lambda i: JSON_VALUES.map(lambda v: [*value[:i], v, *value[i + 1 :]])
            ),
            st.lists(st.floats(), min_size=n, max_size=n),
        )
    return JSON_VALUES


@pytest.fixture(scope="module")
def shipped_card() -> dict:
    import json

    from edge_asc.modelcard import METADATA_KEY

    proto = onnx.load(str(default_model_path()))
    return json.loads(next(p.value for p in proto.metadata_props if p.key == METADATA_KEY))


@pytest.fixture(scope="module")
def shipped_proto():
    return onnx.load(str(default_model_path()))


def card_changes(card: dict) -> st.SearchStrategy:
    """One to three fields of the shipped card (front-end parameters included), each replaced
    by a nearby or arbitrary JSON value, or removed; new fields too."""
    paths = [(k,) for k in card] + [("frontend", k) for k in card["frontend"]]
    paths += [("silence_dbfs",), ("frontend", "extra"), ("extra",)]

    def original(path: tuple[str, ...]) -> object:
        node: object = card
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    change = st.sampled_from(paths).flatmap(
        lambda path: st.tuples(st.just(path), st.just(DELETE) | near(original(path)) | JSON_VALUES)
    )
    return st.lists(change, min_size=1, max_size=3)


def apply_changes(card: dict, changes: list) -> dict:
    import copy

    data = copy.deepcopy(card)
    for path, value in changes:
        node = data
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if value is DELETE:
            node.pop(path[-1], None)
        else:
            node[path[-1]] = value
    return data


def check_loaded_model(model: Model, audio: np.ndarray) -> None:
    """What a model that loads must do: classify, stream, describe itself, all finite."""
    from edge_asc.api import Classifier
    from edge_asc.display import print_card

    result = Classifier(model).classify_array(audio, 16000)
    probs = np.array(list(result.probabilities.values()))
    assert np.isfinite(probs).all() and abs(probs.sum() - 1) < 1e-3
    assert result.verdict in {*model.labels, "silence", "uncertain"}
    blocks = [audio[:7000, None], audio[7000:, None]]
    check_predictions(Chunks(blocks, 16000, 1), model)
    ModelCard.from_json(model.card.to_json())
    print_card(model.card, model.path, model.id, Console(file=io.StringIO(), width=100))


@settings(fuzz, max_examples=150)
@given(data=st.data())
def test_any_card_loads_as_a_working_model_or_one_line_error(
    tmp_path, shipped_proto, shipped_card, seeds, data
):
    """The shipped graph with its card rewritten: a working model or an EdgeAscError, never
    another exception (a segfault or a runaway allocation would end the run itself)."""
    import json

    from edge_asc.modelcard import METADATA_KEY

    changes = data.draw(card_changes(shipped_card))
    card = apply_changes(shipped_card, changes)
    prop = next(p for p in shipped_proto.metadata_props if p.key == METADATA_KEY)
    original = prop.value
    prop.value = json.dumps(card)
    path = tmp_path / "fuzzed.onnx"
    try:
        path.write_bytes(shipped_proto.SerializeToString())
    finally:
        prop.value = original
    try:
        model = Model(path)
    except EdgeAscError as err:
        assert "\n" not in str(err) and len(str(err)) < 1000
        event("refused")
        return
    event("loaded")
    mono = sf.read(io.BytesIO(seeds[0]), dtype="float32")[0]
    check_loaded_model(model, np.tile(mono, 6)[:16000])
