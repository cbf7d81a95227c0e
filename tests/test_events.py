"""The event detector on real predictions: the shipped model run over real shared clips of
known classes, joined with digital silence, must give one event per clip, in order."""

from __future__ import annotations

import dataclasses

import pytest
from replay import SEQUENCE, join_clips, predictions

from edge_asc.events import NEVER_EVENTS, EventConfig, EventDetector, detect
from edge_asc.model import Model


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


@pytest.fixture(scope="module")
def recorded(shared_data, tmp_path_factory, model):
    """(predictions, clip spans) of the five clips of SEQUENCE, 2 s of silence after each."""
    path = tmp_path_factory.mktemp("events") / "sequence.flac"
    spans = join_clips(shared_data, [clip for clip, _ in SEQUENCE], path)
    return predictions(path, model), spans


def test_each_clip_gives_one_event_of_its_class_in_order(recorded):
    preds, spans = recorded
    events = detect(preds)
    assert [e.label for e in events] == [label for _, label in SEQUENCE]
    for event, (start, end) in zip(events, spans, strict=True):
        # Inside its own clip (a window reaches 1 s on, the join window 0.5 s before).
        assert start - 0.5 <= event.start_offset_s < end
        assert event.start_offset_s + event.duration_s <= end + 1.0
        assert 1.5 <= event.duration_s <= 5.0
        assert event.windows == round((event.duration_s - 1.0) / 0.5) + 1  # no window bridged
        assert 0.5 <= event.mean_confidence <= event.peak_confidence <= 1.0
        assert -40 < event.peak_dbfs < 0
        assert event.model_id == preds[0].model_id
        assert event.start <= event.end
        row = event.to_dict()
        assert row["start"].endswith("Z") and row["label"] == event.label
    assert len({e.id for e in events}) == len(events)


def test_silence_and_uncertain_never_make_events(recorded):
    """Even with no threshold and no minimum duration, and `silence` in the include list."""
    preds, _ = recorded
    assert "silence" in {p.smoothed_label for p in preds}  # the recording has both to refuse
    config = EventConfig(threshold=0.0, min_duration_s=0.0)
    events = detect(preds, config)
    assert events and not {e.label for e in events} & NEVER_EVENTS
    forced = EventConfig(threshold=0.0, min_duration_s=0.0, include=frozenset(NEVER_EVENTS))
    assert detect(preds, forced) == []


def test_minimum_duration_drops_the_shorter_events(recorded):
    """Raising the minimum past the shortest event drops it, and only what is that short."""
    preds, _ = recorded
    everything = detect(preds, EventConfig(min_duration_s=0.0))
    shortest = min(e.duration_s for e in everything)
    kept = detect(preds, EventConfig(min_duration_s=shortest + 0.01))

    def spans(events: list) -> list[tuple]:
        return [(e.label, e.start, e.end) for e in events]

    assert spans(kept) == spans([e for e in everything if e.duration_s >= shortest + 0.01])
    assert len(kept) < len(everything)


def test_include_exclude_and_per_class_thresholds(recorded):
    preds, _ = recorded
    labels = [label for _, label in SEQUENCE]
    excluded = detect(preds, EventConfig(exclude=frozenset({"siren", "drilling"})))
    assert [e.label for e in excluded] == [x for x in labels if x not in {"siren", "drilling"}]
    included = detect(preds, EventConfig(include=frozenset({"jackhammer"})))
    assert [e.label for e in included] == ["jackhammer"]
    peak = next(e for e in detect(preds) if e.label == "siren").peak_confidence
    # A threshold at the siren's peak keeps it (only its peak windows), above it drops it.
    at_peak = detect(preds, EventConfig(thresholds={"siren": peak}, min_duration_s=0))
    assert "siren" in [e.label for e in at_peak]
    above = detect(preds, EventConfig(thresholds={"siren": peak + 1e-4}, min_duration_s=0))
    assert "siren" not in [e.label for e in above]
    assert [e.label for e in above if e.label != "siren"] == [
        e.label for e in at_peak if e.label != "siren"
    ]


def test_the_gap_bridges_a_pause_of_the_same_class(shared_data, tmp_path, model):
    """Two dog barks 1.5 s apart: two events with a short gap, one spanning both with a long one."""
    path = tmp_path / "barks.flac"
    spans = join_clips(shared_data, ["12647-3-3-0", "12647-3-3-0"], path, silence_s=1.5)
    preds = predictions(path, model)
    apart = detect(preds, EventConfig(gap_s=0.0))
    assert [e.label for e in apart] == ["dog_bark", "dog_bark"]
    joined = detect(preds, EventConfig(gap_s=5.0, min_duration_s=0.0))
    barks = [e for e in joined if e.label == "dog_bark"]
    assert len(barks) == 1, [(e.label, e.start_offset_s) for e in joined]
    first, second = apart
    assert barks[0].start_offset_s == first.start_offset_s
    assert barks[0].start_offset_s + barks[0].duration_s == pytest.approx(
        second.start_offset_s + second.duration_s
    )
    assert barks[0].windows >= first.windows + second.windows
    assert spans[0][1] < second.start_offset_s + 0.5


def test_flush_ends_the_event_in_progress(recorded):
    """A stream cut in the middle of the siren: the siren event comes from flush()."""
    preds, spans = recorded
    middle = next(i for i, p in enumerate(preds) if p.offset >= spans[1][0] + 2.0)
    detector = EventDetector()
    ended = [e for p in preds[:middle] for e in detector.push(p)]
    assert [e.label for e in ended] == ["dog_bark"]
    current = detector.current
    assert current is not None and current.label == "siren"
    (last,) = detector.flush()
    assert dataclasses.replace(last, id=current.id) == current
    assert detector.current is None and detector.flush() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 1.5},
        {"threshold": float("nan")},
        {"thresholds": {"siren": -0.1}},
        {"thresholds": {"siren": True}},
        {"gap_s": -1.0},
        {"min_duration_s": float("inf")},
        {"include": frozenset({"siren"}), "exclude": frozenset({"siren"})},
    ],
)
def test_bad_configs_are_refused(kwargs):
    with pytest.raises(ValueError):
        EventConfig(**kwargs)


def test_classes_the_model_lacks_are_named(model):
    EventConfig(thresholds={"siren": 0.6}).check_labels(model.labels)
    with pytest.raises(ValueError, match="sirne"):
        EventConfig(thresholds={"sirne": 0.6}).check_labels(model.labels)
    with pytest.raises(ValueError, match="cat"):
        EventConfig(exclude=frozenset({"cat"})).check_labels(model.labels)
