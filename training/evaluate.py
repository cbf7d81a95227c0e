"""`edge-asc evaluate`: how a model does on labelled recordings, each clip decided as `classify`.

Every clip goes through `Classifier.classify_file`, the path `edge-asc classify` takes (the mean
of its 1-s windows' probabilities), so the figures are what a user of the app would see, not
what a training run's own batching computes. Any data set `train` reads can be scored, with the
model's labels matched by name (a data set's label order need not be the model's). A data set may
lack some of the model's classes (a user's own recordings of three of them); a clip whose label
the model lacks cannot be scored, and is refused. So is a clip that will not decode, by name:
figures over only the clips that happened to decode would hide the loss. A clip `classify` calls
by no class of the model (silence: every window below the silence level) counts as wrong, in its
own `silent` count, outside the confusion matrix.

Needs numpy and the app only. matplotlib (the `train` extra) draws the two PNGs; without it
every figure is still printed and one line says the PNGs were skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_asc.api import Classifier
from edge_asc.errors import EdgeAscError, warn
from edge_asc.training.data import load_dataset, split_key

RELIABILITY_BINS = 10  # equal-width confidence bins over [0, 1], the usual ECE
# training's log loss clips at the same floor, so these figures compare with report.json's
LOG_LOSS_FLOOR = 1e-7
NOT_A_CLASS = -1  # a clip classify names by no label of the model (silence)
CONFUSION_PNG = "confusion.png"
RELIABILITY_PNG = "reliability.png"


@dataclass
class Evaluation:
    """Clip verdicts against the truth; every figure is derived from them, in the model's labels'
    order, so nothing computed can disagree with the clips it came from."""

    labels: list[str]
    true: np.ndarray  # (n_clips,) index into labels
    predicted: np.ndarray  # (n_clips,) index of classify's label; NOT_A_CLASS for silence
    probabilities: np.ndarray  # (n_clips, n_labels) the mean of each clip's windows
    source: dict[str, Any] = field(default_factory=dict)  # model, data, splits: what was scored

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.predicted == self.true))

    @property
    def log_loss(self) -> float:
        picked = self.probabilities[np.arange(len(self.true)), self.true]
        return float(-np.mean(np.log(np.clip(picked, LOG_LOSS_FLOOR, 1.0))))

    @property
    def confusion(self) -> np.ndarray:
        """(n_labels, n_labels) clip counts, rows true, columns predicted (silent clips not)."""
        n = len(self.labels)
        matrix = np.zeros((n, n), dtype=np.int64)
        named = self.predicted != NOT_A_CLASS
        np.add.at(matrix, (self.true[named], self.predicted[named]), 1)
        return matrix

    def per_class(self) -> dict[str, dict[str, Any]]:
        """Recall and precision per label; None where a class has no clips or no predictions."""
        matrix = self.confusion
        support, predicted, correct = self._support(), matrix.sum(axis=0), np.diag(matrix)
        silent = np.bincount(self.true[self.predicted == NOT_A_CLASS], minlength=len(self.labels))
        rows = {}
        for i, label in enumerate(self.labels):
            errors = matrix[i].copy()
            errors[i] = 0
            rows[label] = {
                "clips": int(support[i]),
                "correct": int(correct[i]),
                "predicted": int(predicted[i]),
                "silent": int(silent[i]),
                "recall": float(correct[i] / support[i]) if support[i] else None,
                "precision": float(correct[i] / predicted[i]) if predicted[i] else None,
                "most_taken_for": self.labels[int(errors.argmax())] if errors.any() else None,
            }
        return rows

    def _support(self) -> np.ndarray:
        return np.bincount(self.true, minlength=len(self.labels))

    @property
    def balanced_accuracy(self) -> float:
        """Mean recall over the classes with clips: a large class cannot carry it alone."""
        recalls = [r["recall"] for r in self.per_class().values() if r["recall"] is not None]
        return float(np.mean(recalls))

    def reliability(self) -> list[dict[str, Any]]:
        """Per confidence bin: clips, mean top probability and accuracy (None when empty)."""
        confidence = self.probabilities.max(axis=1)
        correct = self.predicted == self.true
        which = np.minimum((confidence * RELIABILITY_BINS).astype(np.int64), RELIABILITY_BINS - 1)
        bins = []
        for b in range(RELIABILITY_BINS):
            inside = which == b
            n = int(inside.sum())
            bins.append(
                {
                    "low": b / RELIABILITY_BINS,
                    "high": (b + 1) / RELIABILITY_BINS,
                    "clips": n,
                    "confidence": float(confidence[inside].mean()) if n else None,
                    "accuracy": float(correct[inside].mean()) if n else None,
                }
            )
        return bins

    @property
    def ece(self) -> float:
        """Expected calibration error: the clip-weighted gap between confidence and accuracy."""
        total = len(self.true)
        return float(
            sum(
                b["clips"] / total * abs(b["accuracy"] - b["confidence"])
                for b in self.reliability()
                if b["clips"]
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.source,
            "clips": len(self.true),
            "silent_clips": int(np.sum(self.predicted == NOT_A_CLASS)),
            "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy,
            "log_loss": self.log_loss,
            "ece": self.ece,
            "labels": self.labels,
            "per_class": self.per_class(),
            "confusion": self.confusion.tolist(),
            "reliability": self.reliability(),
        }


def check_labels(model_labels: Sequence[str], data_labels: Sequence[str], model: Path) -> None:
    """Refuse clips the model cannot name: scoring them would count a sure miss as a mistake."""
    missing = sorted(set(data_labels) - set(model_labels))
    if not missing:
        return
    if len(missing) == len(set(data_labels)):
        raise EdgeAscError(
            f"model {model} and the data set share no label: the model's are "
            f"{', '.join(model_labels)}; the data set's {', '.join(sorted(set(data_labels)))}"
        )
    raise EdgeAscError(
        f"model {model} lacks the data set's label(s) {', '.join(missing)} "
        f"(its labels: {', '.join(model_labels)})"
    )


def evaluate(
    model: Path,
    data: Path,
    folds: Sequence[str] = (),
    step: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Classify every clip of `folds` (all clips without) and compare with its label.

    `step(done, total)` reports progress: before the first clip and after each.
    """
    classifier = Classifier(model)
    dataset = load_dataset(data)
    clips = dataset.subset(set(folds)) if folds else dataset.clips
    labels = classifier.labels
    check_labels(labels, [c.label for c in clips], classifier.model.path)
    index = {label: i for i, label in enumerate(labels)}
    probabilities = np.empty((len(clips), len(labels)), dtype=np.float64)
    predicted = np.empty(len(clips), dtype=np.int64)
    if step:
        step(0, len(clips))
    for i, clip in enumerate(clips):
        result = classifier.classify_file(clip.path)
        probabilities[i] = [result.probabilities[label] for label in labels]
        predicted[i] = index.get(result.label, NOT_A_CLASS)
        if step:
            step(i + 1, len(clips))
    splits = sorted({c.split for c in clips}, key=split_key)
    seen = seen_in_training(classifier.card.training, dataset.root.name, splits)
    return Evaluation(
        labels=list(labels),
        true=np.array([index[c.label] for c in clips], dtype=np.int64),
        predicted=predicted,
        probabilities=probabilities,
        source={
            "model": str(classifier.model.path),
            "model_id": classifier.model.id,
            "data": str(dataset.root),
            "layout": dataset.layout,
            "splits": splits,
            "splits_in_training": seen,
        },
    )


def seen_in_training(training: dict[str, Any], data_name: str, splits: list[str]) -> list[str]:
    """The evaluated splits the model's card says it was trained on (the card names its data
    set by folder name only): figures on a model's own training clips flatter it."""
    if training.get("data") != data_name:
        return []
    trained = {str(s) for s in training.get("train_splits") or []}
    return [s for s in splits if s in trained]


def reliability_png(evaluation: Evaluation, path: Path) -> None:
    """Accuracy against confidence per bin, the diagonal being perfect calibration; the bars'
    widths carry no count, so the clips per bin are printed on them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = evaluation.reliability()
    width = 1 / RELIABILITY_BINS
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    full = [b for b in bins if b["clips"]]
    ax.bar(
        [b["low"] for b in full],
        [b["accuracy"] for b in full],
        width=width,
        align="edge",
        edgecolor="black",
        color="tab:blue",
        label="accuracy",
    )
    ax.bar(
        [b["low"] for b in full],
        [abs(b["confidence"] - b["accuracy"]) for b in full],
        bottom=[min(b["confidence"], b["accuracy"]) for b in full],
        width=width,
        align="edge",
        fill=False,
        edgecolor="tab:red",
        hatch="//",
        label="gap to the bin's mean confidence",
    )
    for b in full:
        ax.text(b["low"] + width / 2, 0.02, str(b["clips"]), ha="center", fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability, {len(evaluation.true)} clips: ECE {evaluation.ece:.3f}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_figures(evaluation: Evaluation, out: Path) -> dict[str, str] | None:
    """The confusion matrix and reliability diagram as PNGs in `out`; None without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    from edge_asc.training.report import confusion_png

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EdgeAscError(f"cannot create output folder {out}: {err.strerror}") from err
    paths = {"confusion": out / CONFUSION_PNG, "reliability": out / RELIABILITY_PNG}
    name = Path(evaluation.source.get("model", "model")).name
    title = f"{name}, {len(evaluation.true)} clips: {100 * evaluation.accuracy:.1f} % right"
    try:
        confusion_png(evaluation.confusion.tolist(), evaluation.labels, paths["confusion"], title)
        reliability_png(evaluation, paths["reliability"])
    except OSError as err:
        raise EdgeAscError(f"cannot write figures to {out}: {err.strerror or err}") from err
    return {key: str(path) for key, path in paths.items()}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def print_tables(evaluation: Evaluation, figures: dict[str, str] | None) -> None:
    """The overall figures, then one row per class, as rich tables on stdout."""
    from rich.console import Console
    from rich.table import Table

    source = evaluation.source
    overall = Table(title="evaluation", show_header=False, show_edge=False)
    overall.add_column("figure")
    overall.add_column("value")
    rows = [
        ("model", str(source.get("model"))),
        ("model id", str(source.get("model_id"))),
        ("data", str(source.get("data"))),
        ("layout", str(source.get("layout"))),
        ("splits", ", ".join(source.get("splits", []))),
        ("clips", str(len(evaluation.true))),
        ("clip accuracy", _pct(evaluation.accuracy)),
        ("balanced accuracy (mean recall)", _pct(evaluation.balanced_accuracy)),
        ("log loss", f"{evaluation.log_loss:.3f}"),
        (f"calibration error (ECE, {RELIABILITY_BINS} bins)", f"{evaluation.ece:.3f}"),
    ]
    silent = int(np.sum(evaluation.predicted == NOT_A_CLASS))
    if silent:
        rows.insert(6, ("clips classify calls silence (wrong)", str(silent)))
    for row in rows:
        overall.add_row(*row)
    per_class = Table(title="per class", show_edge=False)
    for name, justify in (
        ("class", "left"),
        ("clips", "right"),
        ("recall", "right"),
        ("precision", "right"),
        ("predicted", "right"),
        ("most taken for", "left"),
    ):
        per_class.add_column(name, justify=justify)
    for label, row in evaluation.per_class().items():
        per_class.add_row(
            label,
            str(row["clips"]),
            _pct(row["recall"]),
            _pct(row["precision"]),
            str(row["predicted"]),
            row["most_taken_for"] or "",
        )
    console = Console()
    console.print(overall)
    console.print(per_class)
    if figures:
        console.print(f"confusion matrix: {figures['confusion']}")
        console.print(f"reliability diagram: {figures['reliability']}")


def run(model: Path, data: Path, folds: Sequence[str], out: Path, as_json: bool) -> None:
    """The command: evaluate, write the PNGs, print tables (or one JSON object)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("classifying clips"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a log or a pipe gets the result, not a bar's remains
    )
    task = progress.add_task("clips", total=None)

    def step(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        evaluation = evaluate(model, data, [f.strip() for f in folds if f.strip()], step)
    seen = evaluation.source["splits_in_training"]
    if seen:
        warn(
            f"the model's card says it was trained on split(s) {', '.join(seen)} of "
            f"{evaluation.source['data']}: these figures are on its own training clips"
        )
    figures = write_figures(evaluation, out)
    if figures is None:
        warn(
            "matplotlib is not installed (the 'train' extra): "
            f"{CONFUSION_PNG} and {RELIABILITY_PNG} skipped"
        )
    if as_json:
        document = {**evaluation.to_dict(), "figures": figures}
        print(json.dumps(document), flush=True)
    else:
        print_tables(evaluation, figures)
