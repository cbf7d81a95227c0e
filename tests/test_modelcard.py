"""The metadata contract: round trip, version gate, and refusal of incomplete cards."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edge_asc.errors import EdgeAscError
from edge_asc.features import FrontEndConfig
from edge_asc.model import default_model_path
from edge_asc.modelcard import FORMAT_VERSION, METADATA_KEY, ModelCard, from_metadata, save


def make_card(**changes) -> ModelCard:
    fields = {
        "name": "test",
        "labels": ["a", "b", "c"],
        "frontend": FrontEndConfig(),
        "norm_mean": [0.5] * 40,
        "norm_std": [2.0] * 40,
        "window_frames": 51,
    }
    fields.update(changes)
    return ModelCard(**fields)


def test_round_trip():
    card = make_card(members=[{"name": "C1"}], training={"accuracy": {"int8": 0.7}})
    back = ModelCard.from_json(card.to_json())
    assert back == card
    assert back.window_seconds == 1.0


def test_normalise_per_band():
    card = make_card(norm_mean=list(range(40)), norm_std=[2.0] * 40)
    x = np.tile(np.arange(40, dtype=np.float32)[:, None], (1, 51))[None, None]
    assert np.all(card.normalise(x) == 0)


def test_newer_format_is_refused_with_one_line():
    data = json.loads(make_card().to_json())
    data["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(EdgeAscError, match="newer") as err:
        ModelCard.from_json(json.dumps(data))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", json.dumps({"format_version": 1}), json.dumps({"labels": ["a"]})],
)
def test_broken_cards_are_refused(text):
    with pytest.raises(EdgeAscError):
        ModelCard.from_json(text)


def test_missing_metadata_key():
    with pytest.raises(EdgeAscError, match="not an edge-asc model"):
        from_metadata({}, "x.onnx")


def test_save_records_exact_file_size(tmp_path):
    model = onnx.load(str(default_model_path()))
    card = make_card(labels=[f"c{i}" for i in range(10)])
    path = tmp_path / "m.onnx"
    size = save(model, card, path)
    assert size == path.stat().st_size
    stored = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(stored[METADATA_KEY])["file_size_bytes"] == size


def _with_training(raw_json: str) -> str:
    """A valid card's JSON whose `training` field is `raw_json`, as written (no re-encoding)."""
    text = make_card().to_json()
    assert '"training": {}' in text
    return text.replace('"training": {}', f'"training": {raw_json}')


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000 + "]" * 100_000,  # json raised RecursionError
        '{"a": ' * 3000 + "1" + "}" * 3000,
        '{"n": 1' + "0" * 5000 + "}",  # json raised ValueError: over 4300 digits
        '{"text": "' + "x" * (3 << 20) + '"}',  # a 3 MB card: info ran for minutes
    ],
    ids=["nested lists", "nested objects", "a 5001-digit number", "3 MB"],
)
def test_cards_json_cannot_crash_or_stall_the_reader(raw):
    """Any JSON text in the card is a card or one EdgeAscError line, quickly."""
    with pytest.raises(EdgeAscError) as err:
        ModelCard.from_json(_with_training(raw), "m.onnx")
    assert "\n" not in str(err.value) and "m.onnx" in str(err.value)
    assert len(str(err.value)) < 500


def test_a_moderately_nested_card_still_loads():
    card = ModelCard.from_json(_with_training('{"a": ' * 50 + "1" + "}" * 50))
    assert isinstance(card.training["a"], dict)
