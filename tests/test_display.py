"""The model card as `info` prints it: whatever JSON a card's informational fields hold.

The card's check (modelcard.ModelCard.check) only asks that `members` be a list of objects and
`training` an object; what is inside them is the trainer's, so printing must take any JSON
there, and a name or description must reach the terminal as text, never as rich markup or
escape sequences.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from edge_asc.display import print_card
from edge_asc.model import Model

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)
TRAINING_KEYS = ["accuracy", "val_splits", "train_splits", "data", "reference_run"]
REFERENCE_KEYS = [
    "kind",
    "val_splits",
    "train_splits",
    "int8_accuracy",
    "fp32_accuracy",
    "baseline_accuracy",
]


@pytest.fixture(scope="module")
def shipped() -> Model:
    return Model()


def _printed(model: Model, terminal: bool) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=100, color_system=None)
    print_card(model.card, Path("m.onnx"), model.id, console)
    return out.getvalue()


@pytest.mark.parametrize(
    "members, training",
    [
        ([{"name": {"x": 1}}], {}),  # TypeError from ", ".join
        ([{"name": 7}, {}], {}),
        ([], {"val_splits": ["3"], "accuracy": "high"}),  # AttributeError: str.get
        ([], {"reference_run": "run 4"}),
        ([], {"reference_run": {"kind": "rotation"}}),  # KeyError: val_splits
        ([], {"reference_run": {"train_splits": 3}}),
    ],
)
def test_odd_members_and_training_print(shipped, members, training):
    shipped.card.members, shipped.card.training = members, training
    for terminal in (False, True):
        assert "members" in _printed(shipped, terminal)


@settings(max_examples=200, deadline=None)
@given(
    members=st.lists(st.dictionaries(st.sampled_from(["name", "x"]), JSON), max_size=3),
    training=st.dictionaries(st.sampled_from(TRAINING_KEYS), JSON),
    reference=st.dictionaries(st.sampled_from(REFERENCE_KEYS), JSON),
    nest=st.booleans(),
)
def test_any_json_in_members_and_training_prints(members, training, reference, nest):
    model = Model()
    if nest:
        training["reference_run"] = reference
    model.card.members, model.card.training = members, training
    for terminal in (False, True):
        assert model.card.name in _printed(model, terminal)


@pytest.mark.parametrize(
    "name, description, shown",
    [
        ("[/bold] [red]x", "[/x]", ["[/bold] [red]x", "[/x]"]),
        ("a\nb\x1b[31mred", "line\x1b]0;title\x07\r\n\x00end", ["a\\nb\\x1b[31mred", "\\x07"]),
    ],
)
def test_names_print_as_text_not_markup_or_escapes(shipped, name, description, shown):
    """A '[/x]' in the name raised rich's MarkupError; an ESC reached the terminal as it was."""
    shipped.card.name, shipped.card.description = name, description
    for terminal in (False, True):
        text = _printed(shipped, terminal)
        assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
        assert all(part in text for part in shown), text[:200]
