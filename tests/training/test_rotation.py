"""The rotation over folds, and resuming: finished steps are kept on disk and never retrained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edge_asc.api import Classifier
from edge_asc.errors import EdgeAscError
from edge_asc.training.pipeline import PipelineOptions, run_pipeline
from edge_asc.training.rotation import run_rotation


@pytest.fixture(scope="module")
def three_folds(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real UrbanSound8K clips in their own three folds: two of each class per fold."""
    source = shared_data / "urbansound8k-16k"
    root = tmp_path_factory.mktemp("folds")
    rows = ["filename,fold,class_id,class,fsid"]
    with open(source / "meta.csv") as f:
        header = f.readline().strip().split(",")
        taken: dict[tuple[str, str], int] = {}
        for line in f:
            row = dict(zip(header, line.strip().split(","), strict=True))
            key = (row["fold"], row["class"])
            if taken.get(key, 0) >= 2:
                continue
            taken[key] = taken.get(key, 0) + 1
            link = root / row["filename"]
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source / row["filename"])
            rows.append(",".join(row[k] for k in ("filename", "fold", "class_id", "class", "fsid")))
    (root / "meta.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def rotation(three_folds: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("rotation")
    options = PipelineOptions(data=three_folds, out=out / "rot", quick=True, cache=out / "cache")
    return options, run_rotation(options)


def test_the_rotation_validates_each_fold_once(rotation):
    options, summary = rotation
    assert [r["val_splits"] for r in summary["rotations"]] == [["1"], ["2"], ["3"]]
    for r in summary["rotations"]:
        assert sorted(r["train_splits"] + r["val_splits"]) == ["1", "2", "3"]
        assert (options.out / f"val-{r['val_splits'][0]}" / "model.onnx").is_file()
    ens = summary["models"]["fused ensemble INT8"]["accuracy"]
    assert len(ens["per_rotation"]) == 3
    assert ens["mean"] == pytest.approx(np.mean(ens["per_rotation"]))
    assert ens["se"] == pytest.approx(np.std(ens["per_rotation"], ddof=1) / np.sqrt(3))
    for fold, acc in zip("123", ens["per_rotation"], strict=True):
        report = json.loads((options.out / f"val-{fold}" / "report.json").read_text())
        assert report["ensemble"]["int8_accuracy"] == acc
    base = summary["models"]["DCASE 2022 baseline"]["accuracy"]["per_rotation"]
    gap = summary["ensemble_minus_baseline"]["mean"]
    assert gap == pytest.approx(np.mean(np.subtract(ens["per_rotation"], base)))
    text = (options.out / "rotation.md").read_text()
    assert "DCASE 2022 baseline" in text and "mean +- SE" in text and "Per-class recall" in text
    assert json.loads((options.out / "rotation.json").read_text()) == summary


def test_a_finished_rotation_reruns_without_training(rotation):
    options, summary = rotation
    models = {f: (options.out / f"val-{f}" / "model.onnx").read_bytes() for f in "123"}
    again = run_rotation(options)
    for fold in "123":
        report = json.loads((options.out / f"val-{fold}" / "report.json").read_text())
        assert report["steps"]["trained"] == 0 and report["steps"]["kept"] > 0
        assert (options.out / f"val-{fold}" / "model.onnx").read_bytes() == models[fold]
    assert again["models"] == summary["models"]


def test_a_stopped_run_trains_only_what_it_had_not_finished(rotation, tmp_path):
    options, _ = rotation
    fold = "val-3"
    first = json.loads((options.out / fold / "report.json").read_text())
    steps = sorted((options.cache / "steps").glob("*.pt"), key=lambda p: p.stat().st_mtime_ns)
    steps[-1].unlink()  # the last step the rotation finished: as if it had stopped there
    run = PipelineOptions(
        data=options.data,
        out=tmp_path / "resumed",
        quick=True,
        cache=options.cache,
        train_splits=["1", "2"],
        val_splits=["3"],
    )
    resumed = run_pipeline(run)
    assert resumed["steps"]["trained"] == 1
    assert resumed["steps"]["kept"] == first["steps"]["kept"] + first["steps"]["trained"] - 1
    model = (tmp_path / "resumed" / "model.onnx").read_bytes()
    assert model == (options.out / fold / "model.onnx").read_bytes()
    Classifier(tmp_path / "resumed" / "model.onnx")  # and the app loads it


def test_another_seed_trains_afresh(rotation, tmp_path):
    options, _ = rotation
    run = PipelineOptions(
        data=options.data,
        out=tmp_path / "seed1",
        quick=True,
        cache=options.cache,
        val_splits=["3"],
        seed=1,
    )
    assert run_pipeline(run)["steps"]["kept"] == 0


def test_a_corrupt_step_file_is_trained_again(three_folds: Path, tmp_path):
    run = PipelineOptions(
        data=three_folds, out=tmp_path / "a", quick=True, cache=tmp_path / "cache", val_splits=["1"]
    )
    first = run_pipeline(run)
    model = (tmp_path / "a" / "model.onnx").read_bytes()
    for step in (tmp_path / "cache" / "steps").glob("*.pt"):
        step.write_bytes(step.read_bytes()[:100])  # cut short, as by a full disk or a crash
    again = run_pipeline(run)
    assert again["steps"] == {"kept": 0, "trained": first["steps"]["trained"]}
    assert (tmp_path / "a" / "model.onnx").read_bytes() == model


def test_rotation_needs_two_splits(shared_data: Path, tmp_path):
    clips = sorted((shared_data / "urbansound8k-16k").rglob("*.flac"))[:2]
    for number, clip in enumerate(clips):
        folder = tmp_path / "one" / f"class{number}"
        folder.mkdir(parents=True)
        (folder / clip.name).symlink_to(clip)
    with pytest.raises(EdgeAscError, match="--rotate needs at least 2 splits"):
        run_rotation(PipelineOptions(data=tmp_path / "one", out=tmp_path / "o", quick=True))


def test_a_model_on_every_fold_carries_the_rotation_in_its_card(rotation, tmp_path):
    options, summary = rotation
    run = PipelineOptions(
        data=options.data,
        out=tmp_path / "all",
        quick=True,
        cache=options.cache,
        val_splits=["none"],
        reference=options.out / "rotation.json",
    )
    everything = run_pipeline(run)
    kernels = [r["selected_kernel"] for r in summary["rotations"]]
    assert everything["members"][0]["kernel"] == max(set(kernels), key=kernels.count)
    classifier = Classifier(tmp_path / "all" / "model.onnx")
    ref = classifier.card.training["reference_run"]
    ens = summary["models"]["fused ensemble INT8"]["accuracy"]
    assert ref["kind"] == "rotation" and ref["val_splits"] == ["1", "2", "3"]
    assert ref["int8_accuracy"] == ens["mean"] and ref["int8_per_rotation"] == ens["per_rotation"]
    base = summary["models"]["DCASE 2022 baseline"]["accuracy"]["mean"]
    assert ref["baseline_accuracy"] == base
    from rich.console import Console

    from edge_asc.display import print_card

    with open(tmp_path / "card.txt", "w") as out:
        print_card(classifier.card, tmp_path / "m.onnx", classifier.model.id, Console(file=out))
    assert "each of folds 1, 2, 3 validated in turn" in (tmp_path / "card.txt").read_text()
