"""Loading models: the shipped one works; broken, foreign or newer ones fail with one line."""

from __future__ import annotations

import json

import numpy as np
import onnx
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
