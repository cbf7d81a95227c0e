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
        k: [
            name
            for _, _, name in member_names(
                members_within_budget([replace(c, view=v) for v in views], members, budget)
            )
        ]
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
                "members": names[kernel],
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


def member_names(per_parent: Sequence[Sequence[str]]) -> list[tuple[int, str, str]]:
    """(parent index, kind, name) of each member, parent after parent; the name carries the
    parent's number only when there are several, as the report and the fused graph call it."""
    several = len(per_parent) > 1
    return [
        (which, kind, f"{kind}-p{which + 1}" if several else kind)
        for which, kinds in enumerate(per_parent)
        for kind in kinds
    ]


def members_within_budget(
    parents: Sequence[CnnConfig], candidates: tuple[str, ...], budget: int
) -> tuple[tuple[str, ...], ...]:
    """Per parent, its least pruned members that fit an equal share of the budget together.

    Least pruned first, because a member keeps more of its parent the fewer filters it loses:
    on both inner directions of folds 1+2 (5x5, two seeds), C12 of the centred parent scored
    63.3 % where C123 (conv3 pruned too) scored 62.4, and neither fine-tuning more gently nor
    refitting the pruned layers to the parent's outputs kept more. An equal share gives every
    parent, and so every view, its say in the average. Each parent's members come back in the
    candidates' order, parent after parent, which fixes each member's seed.
    """
    share = budget // max(len(parents), 1)
    chosen_per_parent = []
    for config in parents:
        macs = {
            name: complexity.count_cnn(prune.pruned_config(config, prune.PAPER_MEMBERS[name])).macs
            for name in candidates
        }
        chosen, total = set(), 0
        for name in sorted(candidates, key=lambda n: -macs[n]):
            if total + macs[name] <= share:
                chosen.add(name)
                total += macs[name]
        chosen_per_parent.append(tuple(name for name in candidates if name in chosen))
    return tuple(chosen_per_parent)
