"""Choosing the filter size by measurement, and how many pruned members each size affords."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from edge_asc.training import complexity, data, fit, prune
from edge_asc.training.nets import Cnn, CnnConfig, singh_config
from edge_asc.training.splits import Split, inner_split, inner_splits

# (config, training side, how, progress label) -> trained model
TrainStep = Callable[[CnnConfig, Split, fit.FitOptions, str], Cnn]
Judge = Callable[[Cnn, Split], float]


def select_kernel(
    train: Split,
    train_clips: list[data.Clip],
    kernels: tuple[int, ...],
    members: tuple[str, ...],
    views: tuple[str, ...],
    budget: int,
    how: fit.FitOptions,
    n_classes: int,
    train_step: TrainStep,
    judge: Judge,
) -> tuple[list[dict[str, Any]], int]:
    """Train each kernel size on part of the training data, judge it on the rest, two ways.

    One way alone was too noisy to trust (a 6-epoch model judged on a few hundred clips); the
    mean of two ways, each judged on different clips, is steadier. One way's windows are in
    memory at a time. The candidates read the plain log-mel view; `views` (the parents') count
    toward each kernel's budget.
    """
    ways = inner_splits(train_clips)
    configs = {kernel: singh_config(kernel, n_classes) for kernel in kernels}
    names = {
        k: members_within_budget([replace(c, view=v) for v in views], members, budget)
        for k, c in configs.items()
    }
    # A kernel whose members cannot make an ensemble of two in the budget cannot ship: it is not
    # trained at all (7x7 at 19 M MACs, the costliest candidate), unless no kernel can.
    judged = [k for k in configs if len(names[k]) >= 2] or list(configs)
    scores: dict[int, list[float]] = {kernel: [] for kernel in configs}
    for number, (inner_train, inner_val) in enumerate(ways, start=1):
        fit_side, judge_side = inner_split(train, inner_train, inner_val)
        for kernel in judged:
            label = f"select {kernel}x{kernel}, way {number} of {len(ways)}"
            model = train_step(configs[kernel], fit_side, how, label)
            scores[kernel].append(judge(model, judge_side))
    rows = []
    for kernel, config in configs.items():
        cost = complexity.count_cnn(config)
        rows.append(
            {
                "kernel": kernel,
                "parameters": cost.parameters,
                "macs": cost.macs,
                "members": list(names[kernel]),
                "within_budget": len(names[kernel]) >= 2,  # an ensemble of two pruned members
                "selection_clip_accuracy": (
                    float(np.mean(scores[kernel])) if scores[kernel] else None
                ),
                "selection_clip_accuracies": scores[kernel],  # one per way; none if not judged
            }
        )
    eligible = [r for r in rows if r["kernel"] in judged]
    best = max(eligible, key=lambda r: (r["selection_clip_accuracy"], -r["macs"]))
    for r in rows:
        r["selected"] = r is best
    return rows, best["kernel"]


def members_within_budget(
    parents: Sequence[CnnConfig], candidates: tuple[str, ...], budget: int
) -> tuple[str, ...]:
    """The most pruned members of these parents whose MACs fit the budget together.

    Cheapest first, so a larger kernel gets fewer, smaller members rather than none: on both inner
    directions of folds 1+2, two pruned 5x5 members (17.3 M MACs) beat five pruned 3x3 members
    (18.6 M). Each is counted as pruned from its costliest parent, since which parent it comes
    from depends on which are chosen. Returned in the candidates' order, which fixes each
    member's seed.
    """
    macs = {
        name: max(
            complexity.count_cnn(prune.pruned_config(c, prune.PAPER_MEMBERS[name])).macs
            for c in parents
        )
        for name in candidates
    }
    chosen, total = set(), 0
    for name in sorted(candidates, key=macs.__getitem__):
        if total + macs[name] > budget:
            break
        chosen.add(name)
        total += macs[name]
    return tuple(name for name in candidates if name in chosen)
