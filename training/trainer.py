"""Train one model, or load it when that very step finished before: the pipeline's one way to
train, so resuming, progress, per-epoch timing and several ranks are handled in one place."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from edge_asc.training import distributed, fit
from edge_asc.training.nets import Cnn, CnnConfig
from edge_asc.training.splits import Split
from edge_asc.training.steps import StepCache


class StepTrainer:
    """Trains steps under one progress display and records each step's seconds per epoch."""

    def __init__(
        self,
        steps: StepCache,
        run: distributed.Run,
        console: Console,
        bar: Progress,
        seconds_per_epoch: dict[str, Any],
    ) -> None:
        self.steps, self.run, self.console, self.bar = steps, run, console, bar
        self.seconds_per_epoch = seconds_per_epoch

    def __call__(
        self,
        config: CnnConfig,
        side: Split,
        how: fit.FitOptions,
        label: str,
        start: Cnn | None = None,
        teacher: Cnn | None = None,
    ) -> Cnn:
        """On several ranks rank 0 decides whether the step is kept; then all train it, or all
        receive rank 0's model."""
        run, bar = self.run, self.bar
        key = self.steps.key(config, how, side.clips, side.draw_labels, start, teacher)
        task = bar.add_task(label, total=how.epochs)
        kept = self.steps.load(key) if run.main else None
        if distributed.agree(run, kept is not None):
            bar.update(task, completed=how.epochs, description=f"{label} (kept from before)")
            mine = kept if kept is not None else Cnn(config).eval()  # filled from rank 0
            return distributed.share_model(run, mine)
        began = time.perf_counter()
        trained = fit.fit(
            start or fit.new_model(config, how.seed),
            None,
            side.draw_labels,
            how,
            progress=lambda e, _n, loss: bar.update(
                task, completed=e, description=f"{label} loss {loss:.3f}"
            ),
            teacher=teacher,
            clips=side.clips,
            run=run,
        )
        distributed.share_model(run, trained)
        took = time.perf_counter() - began
        self.seconds_per_epoch[label] = took / max(how.epochs, 1)
        if run.main:
            self.steps.save(key, trained)
        if not self.console.is_terminal:  # a log file gets one line per finished step
            self.console.print(f"{label}: {how.epochs} epochs, {took:.0f} s")
        return trained


def progress(console: Console, run: distributed.Run) -> Progress:
    """One bar per step; only rank 0 draws."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not run.main,
    )
