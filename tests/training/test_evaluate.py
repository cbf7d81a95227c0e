"""`edge-asc evaluate` on real UrbanSound8K clips: the figures are `classify`'s, counted again."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_asc.api import Classifier
from edge_asc.model import Model, default_model_path
from edge_asc.training.evaluate import Evaluation, evaluate, seen_in_training

PER_CLASS = 3  # 30 real clips: every class, a few seconds of work
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def picked(shared_data: Path) -> list[dict[str, str]]:
    """The first PER_CLASS fold-1 rows of each class in the shared meta.csv, in its order."""
    root = shared_data / "urbansound8k-16k"
    with open(root / "meta.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["fold"] == "1"]
    counts: dict[str, int] = {}
    out = []
    for row in rows:
        if counts.get(row["class"], 0) < PER_CLASS:
            counts[row["class"]] = counts.get(row["class"], 0) + 1
            out.append({**row, "path": str(root / row["filename"])})
    assert len(counts) == 10 and len(out) == 10 * PER_CLASS
    return out


@pytest.fixture(scope="module")
def folders(picked: list[dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder per class of symlinks to the real clips."""
    root = tmp_path_factory.mktemp("folders")
    for row in picked:
        (root / row["class"]).mkdir(exist_ok=True)
        (root / row["class"] / Path(row["path"]).name).symlink_to(row["path"])
    return root


@pytest.fixture(scope="module")
def scored(folders: Path) -> Evaluation:
    return evaluate(default_model_path(), folders)


@pytest.fixture(scope="module")
def expected(picked: list[dict[str, str]]) -> dict[str, tuple[str, dict[str, float]]]:
    """What `classify` says of each clip, by file name: (label, probabilities)."""
    classifier = Classifier()
    out = {}
    for row in picked:
        result = classifier.classify_file(row["path"])
        out[Path(row["path"]).name] = (result.label, result.probabilities)
    return out


def main_in_process(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the console script's entry point, run here."""
    from edge_asc.cli import main

    monkeypatch.setattr(sys, "argv", ["edge-asc", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    out, err = capsys.readouterr()
    return stopped.value.code, out, err


def test_figures_are_classify_counted_again(scored, picked, expected):
    labels = Model().labels
    truth = np.array([row["class"] for row in picked])
    said = np.array([expected[Path(row["path"]).name][0] for row in picked])
    p_true = [expected[Path(row["path"]).name][1][row["class"]] for row in picked]
    assert scored.labels == labels and len(scored.true) == 30
    assert scored.accuracy == pytest.approx(np.mean(said == truth))
    assert 0.3 < scored.accuracy <= 1.0  # a real model on real clips, not a degenerate run
    assert scored.log_loss == pytest.approx(-np.mean(np.log(np.maximum(p_true, 1e-7))))
    matrix = scored.confusion
    assert matrix.sum() == 30 and (matrix.sum(axis=1) == PER_CLASS).all()
    per_class = scored.per_class()
    for i, label in enumerate(labels):
        right = int(np.sum((said == truth) & (truth == label)))
        assert matrix[i, i] == per_class[label]["correct"] == right
        assert per_class[label]["recall"] == pytest.approx(right / PER_CLASS)
        called = int(np.sum(said == label))
        assert per_class[label]["predicted"] == called == matrix[:, i].sum()
        assert per_class[label]["precision"] == (pytest.approx(right / called) if called else None)
    # The reliability bins hold every clip; the ECE is their weighted gap.
    bins = scored.reliability()
    assert sum(b["clips"] for b in bins) == 30
    confidence = np.array([max(expected[Path(r["path"]).name][1].values()) for r in picked])
    correct = said == truth
    which = np.minimum((confidence * 10).astype(int), 9)
    ece = sum(
        np.mean(which == b) * abs(correct[which == b].mean() - confidence[which == b].mean())
        for b in set(which)
    )
    assert scored.ece == pytest.approx(ece)


def test_label_order_and_folds_of_a_meta_csv(scored, picked, tmp_path):
    """class_id in reverse order: labels are matched by name, not position; --folds selects."""
    ids = {label: 9 - i for i, label in enumerate(Model().labels)}
    with open(tmp_path / "meta.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "fold", "class_id", "class"])
        seen: dict[str, int] = {}
        for row in picked:
            seen[row["class"]] = seen.get(row["class"], 0) + 1
            (tmp_path / Path(row["path"]).name).symlink_to(row["path"])
            fold = "2" if seen[row["class"]] == PER_CLASS else "1"
            writer.writerow([Path(row["path"]).name, fold, ids[row["class"]], row["class"]])
    everything = evaluate(default_model_path(), tmp_path)
    # The clips come in meta.csv's order, not the folders': the same sum in another order.
    assert everything.accuracy == scored.accuracy
    assert everything.log_loss == pytest.approx(scored.log_loss, rel=1e-12)
    assert (everything.confusion == scored.confusion).all()
    fold2 = evaluate(default_model_path(), tmp_path, ["2"])
    assert len(fold2.true) == 10 and fold2.source["splits"] == ["2"]
    assert (fold2.confusion.sum(axis=1) == 1).all()


def test_a_clip_classify_calls_by_no_class_counts_as_wrong(picked, tmp_path):
    """Digital silence: `classify` may call it silence (no class of the model's); then it is a
    miss, counted apart and kept out of the confusion matrix."""
    import soundfile as sf

    rows = [r for r in picked if r["class"] in ("siren", "dog_bark")]
    for row in rows:
        (tmp_path / row["class"]).mkdir(exist_ok=True)
        (tmp_path / row["class"] / Path(row["path"]).name).symlink_to(row["path"])
    sf.write(tmp_path / "siren" / "zeros.wav", np.zeros(4 * 16000, dtype=np.int16), 16000)
    classifier = Classifier()
    said = {p: classifier.classify_file(p).label for p in sorted(tmp_path.rglob("*.*"))}
    truth = {p: p.parent.name for p in said}
    scored = evaluate(default_model_path(), tmp_path)
    assert len(scored.true) == 7
    assert scored.accuracy == pytest.approx(np.mean([said[p] == truth[p] for p in said]))
    unnamed = sum(label not in Model().labels for label in said.values())
    assert scored.to_dict()["silent_clips"] == unnamed
    assert scored.per_class()["siren"]["silent"] == unnamed
    assert scored.confusion.sum() == 7 - unnamed and scored.per_class()["siren"]["clips"] == 4


def test_cli_json_tables_and_pngs(scored, folders, tmp_path, monkeypatch, capsys):
    model = str(default_model_path())
    code, out, err = main_in_process(
        monkeypatch, capsys, "evaluate", model, str(folders), "--out", str(tmp_path), "--json"
    )
    assert code == 0, err
    document = json.loads(out)  # one object, nothing else on stdout
    assert document["accuracy"] == scored.accuracy and document["clips"] == 30
    assert document["log_loss"] == pytest.approx(scored.log_loss)
    assert document["confusion"] == scored.confusion.tolist()
    assert document["per_class"]["siren"]["recall"] == scored.per_class()["siren"]["recall"]
    assert document["ece"] == pytest.approx(scored.ece) and document["layout"] == "folders"
    assert document["splits_in_training"] == []  # the folder's name is not the card's data
    for name in ("confusion", "reliability"):
        png = Path(document["figures"][name])
        assert png.parent == tmp_path and png.name == f"{name}.png"
        head = png.read_bytes()[:24]
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR" and width > 300 < height
    code, out, err = main_in_process(
        monkeypatch, capsys, "evaluate", model, str(folders), "--out", str(tmp_path / "t")
    )
    assert code == 0 and err == ""
    assert f"{100 * scored.accuracy:.1f} %" in out and "log loss" in out and "ECE" in out
    assert f"{scored.log_loss:.3f}" in out and "children_playing" in out
    assert str(tmp_path / "t" / "reliability.png") in out


def test_without_matplotlib_figures_print_and_pngs_are_skipped(
    scored, folders, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now fails
    args = ["evaluate", str(default_model_path()), str(folders), "--out", str(tmp_path / "o")]
    code, out, err = main_in_process(monkeypatch, capsys, *args, "--json")
    assert code == 0 and json.loads(out)["figures"] is None
    assert json.loads(out)["accuracy"] == scored.accuracy
    assert len(err.strip().splitlines()) == 1 and "skipped" in err and "matplotlib" in err
    assert not (tmp_path / "o").exists()


def test_training_clips_are_named(shared_data):
    """The shipped model was trained on folds 1-3: its own card says so, and evaluate warns."""
    training = Model().card.training
    assert seen_in_training(training, "urbansound8k-16k", ["3"]) == ["3"]
    assert seen_in_training(training, "my-recordings", ["3"]) == []


def relabelled(path: Path, change: dict[str, str]) -> Path:
    """The shipped model with some of its card's labels renamed."""
    import onnx

    from edge_asc.modelcard import save

    card = Model().card
    labels = [change.get(label, label) for label in card.labels]
    save(onnx.load(str(default_model_path())), dataclasses.replace(card, labels=labels), path)
    return path


def test_user_errors_are_one_line_and_exit_2(folders, tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnx")
    model = str(default_model_path())
    lacks = relabelled(tmp_path / "lacks.onnx", {"siren": "ambulance"})
    other = relabelled(
        tmp_path / "other.onnx", {lab: f"x{i}" for i, lab in enumerate(Model().labels)}
    )
    (tmp_path / "meta.csv").write_text("filename,fold,class\nnone.flac,1,siren\nnone.flac,2,dog\n")
    cases = {
        "a data set label the model lacks": (
            [str(lacks), str(folders)],
            ["lacks the data set's label(s) siren", "lacks.onnx"],
        ),
        "no label in common": ([str(other), str(folders)], ["share no label", "other.onnx"]),
        "missing data": ([model, str(tmp_path / "nowhere")], ["dataset not found", "nowhere"]),
        "missing files": ([model, str(tmp_path)], ["none.flac"]),
        "unknown fold": ([model, str(folders), "--folds", "3"], ["3"]),
        "missing model": ([str(tmp_path / "none.onnx"), str(folders)], ["model not found"]),
    }
    for case, (args, words) in cases.items():
        code, out, err = main_in_process(monkeypatch, capsys, "evaluate", *args, "--json")
        lines = err.strip().splitlines()
        assert code == 2 and out == "" and len(lines) == 1, (case, err)
        assert lines[0].startswith("edge-asc: ") and "Traceback" not in err, case
        for text in words:
            assert text in lines[0], (case, text, lines[0])
