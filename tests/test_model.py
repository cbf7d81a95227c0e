"""Loading models: the shipped one works; broken, foreign or newer ones fail with one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import pytest

from edge_asc.errors import EdgeAscError
from edge_asc.model import Model, default_model_path
from edge_asc.modelcard import METADATA_KEY


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


def test_default_model_loads_with_card(model):
    assert model.path == default_model_path()
    assert len(model.labels) == 10
    assert model.card.frontend.sample_rate == 16000
    assert model.card.window_frames == 51
    assert model.session.get_session_options().intra_op_num_threads == 1


def test_predict_gives_probabilities(model, shared_data):
    from edge_asc.audio_io import read_audio
    from edge_asc.features import LogMel, windows

    signal = read_audio(shared_data / "tut-urban-2018-demo" / "street_traffic.flac", 16000)
    x = windows(LogMel().compute(signal), 51, 25)
    probs = model.predict(x)
    assert probs.shape == (x.shape[0], 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert model.predict(x[:0]).shape == (0, 10)


def _rewrite(tmp_path, mutate) -> str:
    proto = onnx.load(str(default_model_path()))
    mutate(proto)
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    return str(path)


def _set_card(proto, change) -> None:
    props = {p.key: p for p in proto.metadata_props}
    data = json.loads(props[METADATA_KEY].value)
    change(data)
    props[METADATA_KEY].value = json.dumps(data)


def test_missing_model(tmp_path):
    with pytest.raises(EdgeAscError, match="model not found"):
        Model(tmp_path / "nope.onnx")


def test_corrupt_and_truncated_models(tmp_path):
    data = default_model_path().read_bytes()
    for name, content in {
        "garbage": b"\x00not a model" * 50,
        "truncated": data[: len(data) // 2],
    }.items():
        path = tmp_path / f"{name}.onnx"
        path.write_bytes(content)
        with pytest.raises(EdgeAscError, match="cannot load model") as err:
            Model(path)
        assert "\n" not in str(err.value)


def test_model_without_card(tmp_path):
    path = _rewrite(tmp_path, lambda p: p.metadata_props.__delitem__(slice(None)))
    with pytest.raises(EdgeAscError, match="not an edge-asc model"):
        Model(path)


def test_model_of_newer_format(tmp_path):
    path = _rewrite(tmp_path, lambda p: _set_card(p, lambda d: d.update(format_version=99)))
    with pytest.raises(EdgeAscError, match="newer"):
        Model(path)


def test_card_that_disagrees_with_the_graph(tmp_path):
    path = _rewrite(tmp_path, lambda p: _set_card(p, lambda d: d.update(window_frames=101)))
    with pytest.raises(EdgeAscError, match="does not match its card"):
        Model(path)


# --- cards that contradict their graph, or themselves -------------------------------------------


def _card_change(key: str, value: object):
    """A change to the card's JSON: a top-level field, or `frontend.NAME`."""

    def change(data: dict) -> None:
        if key.startswith("frontend."):
            data["frontend"][key.split(".", 1)[1]] = value
        else:
            data[key] = value

    return change


LABELS = [f"class {i}" for i in range(10)]  # names the card may hold: any distinct strings
BAD_CARDS = {
    "9 labels for 10 outputs": ("labels", LABELS[:9]),
    "11 labels for 10 outputs": ("labels", [*LABELS, "extra"]),
    "labels are numbers": ("labels", list(range(10))),
    "labels are a string": ("labels", "abcdefghij"),
    "labels repeat": ("labels", [*LABELS[:9], LABELS[0]]),
    "a label is reserved": ("labels", [*LABELS[:9], "silence"]),
    "a label is empty": ("labels", [*LABELS[:9], ""]),
    "rate 1e9": ("frontend.sample_rate", 10**9),
    "rate 0": ("frontend.sample_rate", 0),
    "rate 1 kHz": ("frontend.sample_rate", 1000),
    "rate not whole": ("frontend.sample_rate", 16000.5),
    "rate a string": ("frontend.sample_rate", "16000"),
    "rate a bool": ("frontend.sample_rate", True),
    "n_fft not whole": ("frontend.n_fft", 1024.5),
    "n_fft huge": ("frontend.n_fft", 2**40),
    "hop 0": ("frontend.hop_length", 0),
    "fmax NaN": ("frontend.fmax", float("nan")),
    "log floor 0": ("frontend.log_floor", 0.0),
    "unknown window": ("frontend.window", "kaiser"),
    "window a list": ("frontend.window", ["hamming"]),
    "n_mels unlike the graph": ("frontend.n_mels", 64),
    "frontend a list": ("frontend", [16000]),
    "zero std": ("norm_std", [0.0] * 40),
    "negative std": ("norm_std", [-1.0] * 40),
    "NaN std": ("norm_std", [float("nan")] * 40),
    "infinite mean": ("norm_mean", [float("inf")] * 40),
    # Finite to Python, but the model computes in float32: inf there, and NaN out of the graph.
    "mean beyond float32": ("norm_mean", [1e300] * 40),
    "std below float32": ("norm_std", [1e-300] * 40),
    "mean of strings": ("norm_mean", ["0"] * 40),
    "short mean": ("norm_mean", [0.0] * 39),
    "window 0 frames": ("window_frames", 0),
    "window a string": ("window_frames", "51"),
    "window a float": ("window_frames", 51.0),
    "silence above 0 dBFS": ("silence_dbfs", 6.0),
    "silence a string": ("silence_dbfs", "-90"),
    "members not a list": ("members", "C12"),
    "parameters negative": ("parameters", -5),
    "name a number": ("name", 7),
    # A newline or ESC in a label or the name (the model id) split the one-line outputs, the
    # journal's notices, and drove the terminal.
    "label with a newline": ("labels", [f"c{i}" for i in range(9)] + ["dog\nbark"]),
    "label with ESC": ("labels", [f"c{i}" for i in range(9)] + ["\x1b[2Jdog"]),
    "name with a newline": ("name", "edge\nasc"),
    "name with DEL": ("name", "edge\x7fasc"),
    "training a list": ("training", []),
}


@pytest.mark.parametrize("case", sorted(BAD_CARDS))
def test_a_card_that_cannot_be_right_is_refused_in_one_line(tmp_path, case):
    key, value = BAD_CARDS[case]
    path = _rewrite(tmp_path, lambda p: _set_card(p, _card_change(key, value)))
    with pytest.raises(EdgeAscError) as err:
        Model(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def _scaled_output(factor: float):
    """A graph whose output is the shipped one's times `factor`: a Mul after the last node."""

    def mutate(proto) -> None:
        graph = proto.graph
        out = graph.output[0].name
        for node in graph.node:
            node.output[:] = [f"{o}_raw" if o == out else o for o in node.output]
        graph.initializer.append(
            onnx.numpy_helper.from_array(np.array(factor, dtype=np.float32), "factor")
        )
        graph.node.append(onnx.helper.make_node("Mul", [f"{out}_raw", "factor"], [out]))

    return mutate


@pytest.mark.parametrize(
    "factor, reason",
    [(2.0, "not probabilities"), (-1.0, "not probabilities"), (float("nan"), "non-finite")],
)
def test_outputs_that_are_not_probabilities_are_refused(tmp_path, factor, reason):
    path = _rewrite(tmp_path, _scaled_output(factor))
    with pytest.raises(EdgeAscError, match=reason) as err:
        Model(path)
    assert "\n" not in str(err.value)
    assert Model(_rewrite(tmp_path, _scaled_output(1.0))).predict  # the rewrite itself works


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", "from edge_asc.cli import main; main()", *args]
    # A cap on memory: the old code grew to 22 GB on one of these cards before it crashed.
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))"
    cmd[2] = f"{limit}; {cmd[2]}"
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "case", ["rate 1e9", "9 labels for 10 outputs", "11 labels for 10 outputs"]
)
def test_classify_and_listen_refuse_such_a_model_in_one_line(tmp_path, shared_data, case):
    """Where the old code segfaulted (rate 1e9), raised zip()'s ValueError or an IndexError."""
    key, value = BAD_CARDS[case]
    path = _rewrite(tmp_path, lambda p: _set_card(p, _card_change(key, value)))
    clip = str(shared_data / "urbansound8k-16k" / "fold3" / "103199-4-0-0.flac")
    for args in (
        ("classify", "--model", path, clip),
        ("listen", "--model", path, "--from-file", clip, "--fast", "--display", "plain"),
    ):
        done = _cli(*args)
        assert done.returncode == 2, (args, done.returncode, done.stderr[-500:])
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert done.stdout == ""


# --- a second round of bad model files and arguments ------------------------------------------


def _patched_bytes(old: bytes, new: bytes) -> bytes:
    data = default_model_path().read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    return data.replace(old, new)


@pytest.mark.parametrize("where", ["card value", "metadata key"])
def test_metadata_that_is_not_utf8_is_one_line(tmp_path, where):
    """onnxruntime's metadata map raised UnicodeDecodeError: a traceback from `info`."""
    old = b'"name": "edge' if where == "card value" else METADATA_KEY.encode()
    path = tmp_path / "m.onnx"
    path.write_bytes(_patched_bytes(old, old[:-2] + b"\xff\xfe"))
    with pytest.raises(EdgeAscError, match="not UTF-8") as err:
        Model(path)
    assert "\n" not in str(err.value)


def test_a_directory_or_fifo_as_model_says_what_it_is(tmp_path):
    """A directory was 'model not found'; a FIFO must not block the reader."""
    import os

    os.mkfifo(tmp_path / "fifo.onnx")
    with pytest.raises(EdgeAscError, match="got a directory"):
        Model(tmp_path)
    with pytest.raises(EdgeAscError, match="got a special file"):
        Model(tmp_path / "fifo.onnx")


def test_a_model_in_a_folder_it_may_not_search_is_one_line(tmp_path, monkeypatch):
    """As a non-root user, --model ~other/m.onnx raised PermissionError from Path.stat.

    Root may search any folder, so the stat's refusal is simulated for this one path.
    """
    import pathlib

    target = tmp_path / "private" / "m.onnx"
    real_stat = pathlib.Path.stat

    def stat(self, *args, **kwargs):
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "stat", stat)
    with pytest.raises(EdgeAscError, match=r"cannot read model .*Permission denied"):
        Model(target)


@pytest.mark.parametrize("threads", [0, -1, 10**6, 1.5, "2", None, True])
def test_thread_counts_outside_the_cpus_are_a_value_error(threads):
    """Model(threads=10**6) held 3.4 GB and never finished loading; 0 meant one per core,
    and a float said 'cannot load model'."""
    with pytest.raises(ValueError, match="threads must be a whole number"):
        Model(threads=threads)


def test_thread_counts_within_the_cpus_load():
    from edge_asc.model import max_threads

    loaded = Model(threads=np.int64(max_threads()))
    assert loaded.session.get_session_options().intra_op_num_threads == max_threads()
