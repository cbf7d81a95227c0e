"""Which clips train and which judge, and the windows and normalisation each side gets.

Everything a choice is made on (the filter size) comes from inner splits of the training clips,
so the validation split the report quotes never decides anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_asc.errors import EdgeAscError
from edge_asc.training import data
from edge_asc.training.backgrounds import Backgrounds


@dataclass
class Split:
    """Windows of one side of a split, raw (as the app sees them) and normalised (for torch).

    `clips` holds what training draws its windows from each epoch (the originals and, for a
    training side, their augmented variants), and `draw_labels` labels those windows.
    """

    x_raw: np.ndarray
    x: np.ndarray
    y: np.ndarray
    clip_index: np.ndarray
    clip_labels: np.ndarray
    clips: data.ClipFrames | None = None
    draw_labels: np.ndarray | None = None

    @property
    def empty(self) -> bool:
        return len(self.y) == 0


def choose_splits(
    dataset: data.Dataset, train: list[str], val: list[str]
) -> tuple[list[str], list[str]]:
    """Defaults: TAU's own evaluate split, else the last fold; 'none' validates on nothing."""
    splits = dataset.splits()
    chosen_val = [s for s in val if s != "none"]
    if not val:
        if "evaluate" in splits:
            chosen_val = ["evaluate"]
        elif len(splits) > 1:
            chosen_val = [splits[-1]]
    chosen_train = train or [s for s in splits if s not in chosen_val]
    if not chosen_train:
        raise EdgeAscError(
            f"no training split left in {dataset.root} (splits: {', '.join(splits)})"
        )
    return chosen_train, chosen_val


def thin(clips: list[data.Clip], per_label: int) -> list[data.Clip]:
    """At most `per_label` clips of each label, in order: the quick mode's small data."""
    counts: dict[str, int] = {}
    kept = []
    for clip in clips:
        if counts.get(clip.label, 0) < per_label:
            counts[clip.label] = counts.get(clip.label, 0) + 1
            kept.append(clip)
    return kept


def band_stats(frames: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std of the original training frames: the card's normalisation."""
    stacked = np.concatenate(frames).astype(np.float64)
    return stacked.mean(axis=0).astype(np.float32), (stacked.std(axis=0) + 1e-5).astype(np.float32)


def make_split(
    labels: np.ndarray,
    frames: list[np.ndarray],
    mean: np.ndarray,
    std: np.ndarray,
    window_frames: int,
    window_hop: int,
    variants: list[list[np.ndarray]] | None = None,
    background: Backgrounds | None = None,
) -> Split:
    """The grid windows of `frames` and, for training, everything an epoch draws from: the
    originals plus each augmented variant of them (same labels)."""
    if not frames:
        empty = np.empty((0, 1, len(mean), window_frames), dtype=np.float32)
        none = np.empty(0, dtype=np.int64)
        return Split(empty, empty, none, none, none)
    x, y, clip_index = data.window_dataset(frames, labels, window_frames, window_hop)
    xn = ((x - mean[:, None]) / std[:, None]).astype(np.float32)
    drawn = [frames, *(variants or [])]
    normalised = [((f - mean) / std).astype(np.float32) for group in drawn for f in group]
    # One dB of gain adds 10 log10(e)^-1 = ln(10) / 10 to a band's natural-log power.
    db_step = (np.log(10.0) / 10.0 / std).astype(np.float32)
    clips = data.ClipFrames.of(normalised, window_frames, window_hop, db_step, background)
    draw_labels = np.repeat(np.tile(labels, len(drawn)), clips.counts)
    return Split(x, xn, y, clip_index, np.asarray(labels, dtype=np.int64), clips, draw_labels)


def inner_split(
    train: Split, inner_train: np.ndarray, inner_val: np.ndarray
) -> tuple[Split, Split]:
    """One way of the selection's inner split, cut from the training side's original clips."""

    def side(clips: np.ndarray) -> Split:
        pick = np.isin(train.clip_index, clips)
        frames = train.clips.subset(clips) if train.clips is not None else None
        draw = np.repeat(train.clip_labels[clips], frames.counts) if frames is not None else None
        return Split(
            train.x_raw[pick],
            train.x[pick],
            train.y[pick],
            np.searchsorted(clips, train.clip_index[pick]),
            train.clip_labels[clips],
            frames,
            draw,
        )

    return side(inner_train), side(inner_val)


def inner_splits(clips: list[data.Clip]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Clip indices (train, held out) for selection, two ways.

    With several training folds: the last fold held out, then the one before it. With one split:
    every 5th recording group (the 5th, 10th, ...), then the group just before each of those (a
    disjoint set); with fewer than 5 groups, the last group, then the first. A single group gives
    one way, with nothing to train on.
    """
    splits = sorted({c.split for c in clips}, key=data.split_key)
    if len(splits) > 1:
        helds = [np.array([c.split == s for c in clips]) for s in (splits[-1], splits[-2])]
    else:
        groups = sorted({c.group for c in clips})
        ways = [set(groups[4::5]) or {groups[-1]}]
        second = set(groups[3::5]) if len(groups) >= 5 else {groups[0]}
        if second != ways[0]:
            ways.append(second)
        helds = [np.array([c.group in way for c in clips]) for way in ways]
    index = np.arange(len(clips))
    return [(index[~held], index[held]) for held in helds]
