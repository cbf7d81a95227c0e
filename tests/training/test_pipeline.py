"""The whole pipeline, quick mode, on real recordings laid out as DCASE TAU 2022."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edge_asc.api import Classifier
from edge_asc.training.data import Clip, load_dataset, split_clips
from edge_asc.training.fit import predict
from edge_asc.training.nets import load_model, singh_config
from edge_asc.training.pipeline import PipelineOptions, run_pipeline
from edge_asc.training.selection import members_within_budget
from edge_asc.training.splits import inner_splits


@pytest.fixture(scope="module")
def tau_run(tau22_root: Path, shared_data: Path, tmp_path_factory) -> tuple[dict, Path, Path]:
    out = tmp_path_factory.mktemp("tau-run")
    return run_pipeline(_shipped(tau22_root, out, "a", shared_data)), out, tau22_root


def _shipped(root: Path, out: Path, name: str, shared_data: Path) -> PipelineOptions:
    """The shipped configuration's run, quick: the second parent over recorded scenes too."""
    scenes = shared_data / "tut-urban-2018-demo"
    return PipelineOptions(
        data=root, out=out / name, quick=True, cache=out / "cache", backgrounds=scenes
    )


def test_trains_on_the_tau22_layout(tau_run):
    results, out, _ = tau_run
    assert results["layout"] == "tau22"
    assert results["train_splits"] == ["train"] and results["val_splits"] == ["evaluate"]
    assert len(results["labels"]) == 10 and "metro_station" in results["labels"]
    run = out / "a"
    for name in ("model.onnx", "model-fp32.onnx", "report.md", "report.json", "confusion.png"):
        assert (run / name).stat().st_size > 0, name
    report = json.loads((run / "report.json").read_text())
    assert {r["kernel"] for r in report["filter_size"]} == {3, 5, 7}
    assert sum(r["selected"] for r in report["filter_size"]) == 1
    for row in report["filter_size"]:  # judged both ways, scored by the mean
        if not row["within_budget"]:  # 7x7: no member fits half the budget, so never trained
            assert row["kernel"] == 7 and row["selection_clip_accuracies"] == []
            assert not row["selected"]
            continue
        assert len(row["selection_clip_accuracies"]) == 2
        assert np.isclose(row["selection_clip_accuracy"], np.mean(row["selection_clip_accuracies"]))
    selected = next(r for r in report["filter_size"] if r["selected"])
    # each parent gives members within its half of the budget, named by kind and parent
    assert [m["name"] for m in report["members"]] == selected["members"]
    assert [m["parent"] for m in report["members"]] == [
        ("parent", "parent2")[int(m["name"].rsplit("-p", 1)[1]) - 1] for m in report["members"]
    ]
    assert [p["name"] for p in report["parents"]] == ["parent", "parent2"]
    assert {m["parent"] for m in report["members"]} == {"parent", "parent2"}
    assert sum(m["macs"] for m in report["members"]) <= 19_000_000
    assert "DCASE 2022 baseline" in (run / "report.md").read_text()
    # members are fine-tuned with conv1 frozen, which the fused graph's exact sharing needs
    assert report["schedule"]["finetune"]["frozen_convs"] == [1]
    assert "- member fine-tuning: 1 epochs" in (run / "report.md").read_text()
    gap = report["ensemble_minus_baseline"]
    assert gap["low"] <= gap["difference"] <= gap["high"]
    assert np.isclose(
        gap["difference"],
        report["ensemble"]["int8_accuracy"] - report["baseline"]["accuracy"],
    )
    assert "paired bootstrap 95 % interval" in (run / "report.md").read_text()
    mixed = report["augmentation"]["backgrounds"]
    assert mixed["share_per_parent"] == [0.0, 0.5] and mixed["snr_db"] == [0.0, 20.0]
    assert len(mixed["recordings"]) == 10 and 99 < mixed["seconds"] < 101


def test_the_run_keeps_every_trained_model_for_benchmarks(tau_run):
    results, out, _ = tau_run
    report_rows = {p["name"]: p for p in results["parents"]} | {"baseline": results["baseline"]}
    report_rows |= {m["name"]: m for m in results["members"]}
    for name, row in report_rows.items():
        model = load_model(out / "a" / "torch" / f"{name}.pt")
        assert list(model.config.channels) == row["channels"], name
    # the saved member is the one that was fused: same window, same output as the FP32 graph
    members = [load_model(out / "a" / "torch" / f"{m['name']}.pt") for m in results["members"]]
    x = np.random.default_rng(0).standard_normal((4, 1, 40, 51)).astype(np.float32)
    mean = np.mean([predict(m, x) for m in members], axis=0)
    session = ort.InferenceSession(str(out / "a" / "model-fp32.onnx"))
    fused = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(fused, mean, atol=1e-5)


def test_the_app_runs_what_the_pipeline_built(tau_run):
    results, out, root = tau_run
    classifier = Classifier(out / "a" / "model.onnx")
    card = classifier.card
    assert card.labels == results["labels"]
    assert card.quantization.startswith("int8")
    assert card.file_size_bytes == (out / "a" / "model.onnx").stat().st_size
    assert card.macs == results["ensemble"]["macs"] <= results["ensemble"]["members_macs"]
    assert card.training["accuracy"]["int8"] == results["ensemble"]["int8_accuracy"]
    assert card.training["augmentation"] == results["augmentation"]  # backgrounds named
    assert "mixed over recorded scenes" in card.description
    clip = next((root / "audio").glob("*.wav"))
    result = classifier.classify_file(clip)  # 48 kHz stereo 24-bit, resampled by the app
    assert result.label in card.labels
    assert np.isclose(sum(result.probabilities.values()), 1, atol=1e-4)


def test_same_arguments_give_the_same_model(tau_run, shared_data):
    _, out, root = tau_run
    run_pipeline(_shipped(root, out, "b", shared_data))
    first = (out / "a" / "model.onnx").read_bytes()
    assert (out / "b" / "model.onnx").read_bytes() == first


def test_training_on_every_split_records_the_reference_run(tau_run):
    results, out, root = tau_run
    options = PipelineOptions(
        data=root,
        out=out / "all",
        quick=True,
        cache=out / "cache",
        val_splits=["none"],
        reference=out / "a" / "report.json",
    )
    everything = run_pipeline(options)
    assert sorted(everything["train_splits"]) == ["evaluate", "train"]
    assert everything["val_splits"] == [] and "baseline" not in everything
    chosen = next(r["kernel"] for r in results["filter_size"] if r["selected"])
    assert everything["members"][0]["kernel"] == chosen
    card = Classifier(out / "all" / "model.onnx").card
    ref = card.training["reference_run"]
    assert ref["int8_accuracy"] == results["ensemble"]["int8_accuracy"]
    assert ref["val_splits"] == ["evaluate"]
    assert card.training["accuracy"] == {"fp32": None, "int8": None}
    assert everything["schedule"] == results["schedule"]
    assert everything["augmentation"]["backgrounds"] is None  # none given, none mixed
    assert "recorded scenes" not in card.description


@pytest.mark.parametrize(
    ("kernel", "members"),
    [(3, ("C1", "C2", "C12", "C23", "C123")), (5, ("C1",)), (7, ("C12",))],
)
def test_one_parent_gets_its_least_pruned_members_that_fit_the_budget(kernel, members):
    # 3x3: all five of the paper's members, 18,585,480 MACs; 5x5: C1, 11,469,960; 7x7: C12, 17.1 M
    candidates = ("C1", "C2", "C12", "C23", "C123")
    assert members_within_budget([singh_config(kernel)], candidates, 19_000_000) == (members,)


def test_two_parents_share_the_budget_and_a_centred_one_pays_for_its_second_channel():
    candidates = ("C1", "C2", "C12", "C23", "C123")
    plain, centred = singh_config(5), replace(singh_config(5), view="logmel+centred")
    # 5x5: C12 of each (8,757,960 + 9,369,960 MACs); C1 (11.5 M) does not fit 9.5 M
    assert members_within_budget([plain, centred], candidates, 19_000_000) == (
        ("C12",),
        ("C12",),
    )
    # the centred C12 costs 612,000 MACs more: in a budget just under both, only the plain fits
    assert members_within_budget([plain, centred], candidates, 2 * 9_200_000) == (
        ("C12",),
        ("C123",),
    )
    three = [singh_config(3), replace(singh_config(3), view="logmel+centred")]
    assert members_within_budget(three, candidates, 19_000_000) == (("C1", "C2"), ("C1", "C2"))
    assert members_within_budget([singh_config(7)] * 2, candidates, 19_000_000) == ((), ())


def test_selection_holds_out_each_of_the_last_two_folds_in_turn(shared_data):
    dataset = load_dataset(shared_data / "urbansound8k-16k")
    clips, _ = split_clips(dataset, {"1", "2"}, set())
    ways = inner_splits(clips)
    folds = np.array([c.split for c in clips])
    assert [sorted(set(folds[held])) for _, held in ways] == [["2"], ["1"]]
    for train, held in ways:
        assert sorted(np.concatenate([train, held]).tolist()) == list(range(len(clips)))
        assert not set(folds[train]) & set(folds[held])


def test_selection_on_one_split_holds_out_two_different_sets_of_recordings(tau22_root):
    clips, _ = split_clips(load_dataset(tau22_root), {"train"}, set())
    ways = inner_splits(clips)
    groups = np.array([c.group for c in clips])
    held_groups = [set(groups[held]) for _, held in ways]
    assert len(ways) == 2 and held_groups[0] and held_groups[1]
    assert not held_groups[0] & held_groups[1]
    for train, held in ways:  # a recording never lands on both sides
        assert not set(groups[train]) & set(groups[held])
        assert len(train) + len(held) == len(clips)


@pytest.mark.parametrize("n_groups", [1, 2, 3, 4, 5, 6, 7, 12])
def test_selection_on_one_split_judges_two_ways_whenever_it_can(n_groups):
    clips = [
        Clip(path=Path(f"{g}-{i}.wav"), label=f"l{i}", split="all", group=f"g{g:02d}")
        for g in range(n_groups)
        for i in range(3)
    ]
    ways = inner_splits(clips)
    assert len(ways) == (1 if n_groups == 1 else 2)
    groups = np.array([c.group for c in clips])
    for train, held in ways:
        assert len(held) and (len(train) or n_groups == 1)
        assert not set(groups[train]) & set(groups[held])
    if len(ways) == 2:
        assert not set(groups[ways[0][1]]) & set(groups[ways[1][1]])
