"""Dataset readers, fold-wise splits and the log-mel feature cache.

Three layouts are read: a `meta.csv` with folds (UrbanSound8K style), the DCASE TAU 2022 layout
(tab-separated `meta.csv` plus `evaluation_setup/fold1_*.csv`) and plain class folders. Every clip
carries the id of the recording it was cut from (`group`), so a validation split can be checked to
share no recording with training: slices of one recording on both sides inflate accuracy.

Features come from the live app's own front-end (`edge_asc.features`) and audio decoder
(`edge_asc.audio_io`), so training sees bit for bit what the device computes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge_asc.audio_io import read_audio
from edge_asc.errors import EdgeAscError
from edge_asc.features import FrontEndConfig, LogMel, tile_to_window, windows
from edge_asc.training.augment import Speed

if TYPE_CHECKING:  # backgrounds reads this module's audio suffixes
    from edge_asc.training.backgrounds import Backgrounds

AUDIO_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".w64"}
)
FOLDS_COLUMNS = ("filename", "fold", "class")
TAU22_COLUMNS = ("filename", "scene_label", "identifier")
TAU22_SETUP = (("train", "fold1_train.csv"), ("evaluate", "fold1_evaluate.csv"))
# Bump when the meaning of a cached array changes in a way the front-end config does not capture.
CACHE_FORMAT = 1


@dataclass(frozen=True)
class Clip:
    """One labelled audio file; `group` is its source recording, the unit a split must not cut."""

    path: Path
    label: str
    split: str
    group: str


@dataclass
class Dataset:
    """All clips of one dataset folder, with the label order the model's outputs follow."""

    root: Path
    labels: list[str]
    clips: list[Clip]
    layout: str

    def splits(self) -> list[str]:
        """The split names present, numeric folds in numeric order ("2" before "10")."""
        return sorted({c.split for c in self.clips}, key=split_key)

    def subset(self, splits: set[str]) -> list[Clip]:
        """The clips of the named splits, in dataset order; an unknown split name is an error."""
        wanted = {str(s) for s in splits}
        _check_splits_exist(self, wanted)
        return [c for c in self.clips if c.split in wanted]

    def label_indices(self, clips: Sequence[Clip]) -> np.ndarray:
        """Class indices (int64) of `clips` in `labels` order, the targets for training."""
        index = {label: i for i, label in enumerate(self.labels)}
        return np.array([index[c.label] for c in clips], dtype=np.int64)


def load_dataset(root: Path) -> Dataset:
    """Read a dataset folder, detecting its layout from `meta.csv` (or its absence)."""
    root = Path(root).expanduser()
    try:
        root.stat()
    except FileNotFoundError as err:
        raise EdgeAscError(f"dataset not found: {root}") from err
    except OSError as err:  # a folder on the way the user may not search, a loop of links
        raise EdgeAscError(f"cannot read dataset {root}: {err.strerror}") from err
    if not root.is_dir():
        raise EdgeAscError(f"dataset path is not a folder: {root}")
    meta = root / "meta.csv"
    if meta.is_file():
        header, rows = _read_table(meta)
        if "scene_label" in header:
            dataset = _load_tau22(root, meta, header, rows)
        else:
            dataset = _load_folds(root, meta, header, rows)
    else:
        dataset = _load_folders(root)
    if len(dataset.labels) < 2:
        found = ", ".join(dataset.labels) or "none"
        raise EdgeAscError(f"dataset {root} needs at least 2 classes, found {found}")
    return dataset


def split_clips(dataset: Dataset, train: set[str], val: set[str]) -> tuple[list[Clip], list[Clip]]:
    """Train and validation clips by split name, refusing any recording on both sides."""
    train, val = {str(s) for s in train}, {str(s) for s in val}
    _check_splits_exist(dataset, train | val)
    if not train:
        raise EdgeAscError(
            f"no training split requested; splits of {dataset.root}: {', '.join(dataset.splits())}"
        )
    train_clips, val_clips = dataset.subset(train), dataset.subset(val)
    shared = {c.group for c in train_clips} & {c.group for c in val_clips}
    if shared:
        first = sorted(shared)[0]
        raise EdgeAscError(
            f"{len(shared)} recording(s) of {dataset.root} appear in both training "
            f"({', '.join(sorted(train, key=split_key))}) and validation "
            f"({', '.join(sorted(val, key=split_key))}), first: {first}"
        )
    return train_clips, val_clips


class FeatureCache:
    """Log-mel frames per clip, kept as .npy files so a second run decodes nothing.

    Entries live under `cache_dir/<config hash>/`; a key covers the config, the resolved path, the
    file's size and its mtime, so an edited file or another front-end never reads a stale entry.
    Entries are written to a temporary file and renamed, so a killed run leaves no half-written
    entry; an unreadable entry (a disk that lost power) is recomputed, not trusted.
    """

    def __init__(self, cache_dir: Path, config: FrontEndConfig, write: bool = True) -> None:
        # write=False: read what is there and compute the rest in memory (a distributed run's
        # other ranks: only rank 0 writes, so no two processes write one entry).
        self.write = write
        self.config = config
        self._config_json = json.dumps(
            {"format": CACHE_FORMAT, "front_end": config.to_dict()}, sort_keys=True
        )
        config_hash = hashlib.sha256(self._config_json.encode()).hexdigest()[:16]
        self.directory = Path(cache_dir).expanduser() / config_hash
        self._logmel = LogMel(config)
        self.hits = 0
        self.misses = 0

    def frames(self, clip_path: Path, variant: Speed | None = None) -> np.ndarray:
        """(n_frames, n_mels) float32 log-mel frames of one audio file, from cache or computed;
        with `variant`, of the file played at another speed (an augmentation), cached apart."""
        path = Path(clip_path).expanduser().resolve()
        try:
            stat = path.stat()
        except OSError as err:
            raise EdgeAscError(f"audio file not found: {clip_path}") from err
        key = self._key(path, stat.st_size, stat.st_mtime_ns, variant.key if variant else "")
        entry = self.directory / f"{key}.npy"
        cached = self._load_entry(entry)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        signal = read_audio(path, self.config.sample_rate)
        if variant is not None:
            signal = variant.apply(signal, self.config.sample_rate)
        frames = self._logmel.compute(signal)
        if self.write:
            self._store(entry, frames)
        return frames

    def load_all(
        self,
        clips: Iterable[Clip | Path],
        progress: bool = True,
        variant: Speed | None = None,
    ) -> list[np.ndarray]:
        """Frames of every clip in order, with a rich progress bar on stderr when `progress`."""
        paths = [c.path if isinstance(c, Clip) else Path(c) for c in clips]
        if not progress:
            return [self.frames(p, variant) for p in paths]
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        out: list[np.ndarray] = []
        with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
            what = f"log-mel features, {variant.key}" if variant else "log-mel features"
            task = bar.add_task(what, total=len(paths))
            for path in paths:
                out.append(self.frames(path, variant))
                bar.advance(task)
        return out

    def _key(self, path: Path, size: int, mtime_ns: int, variant: str) -> str:
        # The original's key leaves the variant out, so caches written before augmentation stay
        # valid.
        parts = [self._config_json, str(path), size, mtime_ns] + ([variant] if variant else [])
        ident = json.dumps(parts)
        return hashlib.sha256(ident.encode()).hexdigest()[:32]

    def _load_entry(self, entry: Path) -> np.ndarray | None:
        try:
            frames = np.load(entry, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if frames.ndim != 2 or frames.shape[1] != self.config.n_mels or frames.dtype != np.float32:
            return None
        return frames

    def _store(self, entry: Path, frames: np.ndarray) -> None:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=f".{entry.stem}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, frames, allow_pickle=False)
            Path(tmp).replace(entry)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def window_dataset(
    frames_list: Sequence[np.ndarray],
    labels_idx: Sequence[int] | np.ndarray,
    window_frames: int = 51,
    hop_frames: int = 25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs X (n, 1, n_mels, window_frames) float32, targets y and each window's clip.

    `clip_index` lets evaluation average a clip's window probabilities into one clip decision,
    the way the live app smooths its per-window outputs.
    """
    if len(frames_list) != len(labels_idx):
        raise ValueError(f"{len(frames_list)} clips but {len(labels_idx)} labels")
    if not frames_list:
        raise ValueError("no clips to make windows from")
    per_clip = [windows(f, window_frames, hop_frames) for f in frames_list]
    counts = np.array([w.shape[0] for w in per_clip], dtype=np.int64)
    x = np.concatenate(per_clip).astype(np.float32, copy=False)
    y = np.repeat(np.asarray(labels_idx, dtype=np.int64), counts)
    clip_index = np.repeat(np.arange(len(per_clip), dtype=np.int64), counts)
    return x, y, clip_index


@dataclass(frozen=True)
class ClipFrames:
    """The training clips' frames end to end, so each epoch can cut its windows at new random
    starts (a time-shift augmentation) rather than on the same fixed grid every time.

    The live app's windows fall wherever the sound happens to be, not on a 0.5-s grid from the
    clip's start; a model that only ever saw grid-aligned windows learns that alignment.
    """

    frames: np.ndarray  # (total frames, n_mels) float32, clip after clip
    lengths: np.ndarray  # each clip's frames (a clip shorter than a window is tiled to one)
    counts: np.ndarray  # windows drawn per clip and epoch: as many as the fixed grid gives
    window_frames: int
    # How far a 1-dB gain moves each band once normalised (10 log10 e / std): what a gain
    # augmentation adds to a window; None where the frames' scale is not known.
    db_step: np.ndarray | None = None
    # Recorded scenes a share of the drawn windows may be mixed over (see `backgrounds`).
    background: Backgrounds | None = None

    @classmethod
    def of(
        cls,
        frames_list: Sequence[np.ndarray],
        window_frames: int,
        hop_frames: int,
        db_step: np.ndarray | None = None,
        background: Backgrounds | None = None,
    ) -> ClipFrames:
        if not frames_list:
            raise ValueError("no clips to make windows from")
        tiled = [tile_to_window(f, window_frames) for f in frames_list]
        lengths = np.array([len(f) for f in tiled], dtype=np.int64)
        counts = (lengths - window_frames) // hop_frames + 1
        frames = np.concatenate(tiled).astype(np.float32, copy=False)
        return cls(frames, lengths, counts, window_frames, db_step, background)

    @property
    def first(self) -> np.ndarray:
        """Each clip's first row in `frames`."""
        return np.cumsum(self.lengths) - self.lengths

    def subset(self, clips: np.ndarray) -> ClipFrames:
        """Only the given clips (indices), in that order."""
        first = self.first
        parts = [self.frames[first[i] : first[i] + self.lengths[i]] for i in clips]
        frames = np.concatenate(parts) if parts else self.frames[:0]  # none: nothing to draw
        return ClipFrames(
            frames,
            self.lengths[clips],
            self.counts[clips],
            self.window_frames,
            self.db_step,
            self.background,
        )

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """Each clip's `counts` windows at uniformly random starts, clip after clip (so the fixed
        grid's labels still apply): (n_windows, 1, n_mels, window_frames) float32."""
        clip = np.repeat(np.arange(len(self.counts)), self.counts)
        offset = rng.integers(0, self.lengths[clip] - self.window_frames + 1)
        rows = (self.first[clip] + offset)[:, None] + np.arange(self.window_frames)
        return np.ascontiguousarray(self.frames[rows].transpose(0, 2, 1)[:, None])


# ----------------------------------------------------------------------------- layout readers


def _load_folds(root: Path, meta: Path, header: list[str], rows: list[dict[str, str]]) -> Dataset:
    """UrbanSound8K-style meta.csv: filename, fold, class, optional class_id and fsid."""
    _require_columns(meta, header, FOLDS_COLUMNS, "filename, fold, class (or TAU22 columns)")
    has_id, has_fsid = "class_id" in header, "fsid" in header
    ids: dict[str, int] = {}
    clips = []
    for line, row in enumerate(rows, start=2):
        filename = _value(meta, line, row, "filename")
        label = _value(meta, line, row, "class")
        if has_id:
            class_id = _int_value(meta, line, row, "class_id")
            if ids.setdefault(label, class_id) != class_id:
                raise EdgeAscError(
                    f"{meta} line {line}: class {label!r} has class_id {class_id}, "
                    f"earlier {ids[label]}"
                )
        group = (row.get("fsid") or "").strip() if has_fsid else ""
        clips.append(
            Clip(
                path=root / filename,
                label=label,
                split=_value(meta, line, row, "fold"),
                group=group or Path(filename).stem,
            )
        )
    _check_not_empty(meta, clips)
    _check_files_exist(meta, root, [c.path for c in clips])
    if has_id:
        by_id: dict[int, str] = {}
        for label, class_id in ids.items():
            if by_id.setdefault(class_id, label) != label:
                raise EdgeAscError(
                    f"{meta}: class_id {class_id} names both {by_id[class_id]!r} and {label!r}"
                )
        labels = sorted(ids, key=ids.__getitem__)
    else:
        labels = sorted({c.label for c in clips})
    return Dataset(root=root, labels=labels, clips=clips, layout="folds")


def _load_tau22(root: Path, meta: Path, header: list[str], rows: list[dict[str, str]]) -> Dataset:
    """DCASE TAU 2022 development layout: labels in meta.csv, the split in evaluation_setup/."""
    _require_columns(meta, header, TAU22_COLUMNS, "filename, scene_label, identifier (TAU22)")
    by_name: dict[str, tuple[str, str]] = {}
    for line, row in enumerate(rows, start=2):
        filename = _value(meta, line, row, "filename")
        by_name[filename] = (
            _value(meta, line, row, "scene_label"),
            _value(meta, line, row, "identifier"),
        )
    _check_not_empty(meta, list(by_name))
    split_of: dict[str, str] = {}
    for split, name in TAU22_SETUP:
        setup = root / "evaluation_setup" / name
        if not setup.is_file():
            raise EdgeAscError(f"TAU22 dataset {root} lacks evaluation_setup/{name}")
        setup_header, setup_rows = _read_table(setup)
        _require_columns(setup, setup_header, ("filename",), "filename")
        names = [_value(setup, line, r, "filename") for line, r in enumerate(setup_rows, 2)]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise EdgeAscError(
                f"{setup} names {len(unknown)} file(s) not in meta.csv, first: {unknown[0]}"
            )
        for filename in names:
            if split_of.setdefault(filename, split) != split:
                raise EdgeAscError(
                    f"{filename} is in both fold1_train.csv and fold1_evaluate.csv of {root}"
                )
    clips = [
        Clip(path=root / name, label=label, split=split_of[name], group=group)
        for name, (label, group) in by_name.items()
        if name in split_of
    ]
    _check_not_empty(root / "evaluation_setup", clips)
    _check_files_exist(meta, root, [c.path for c in clips])
    labels = sorted({c.label for c in clips})
    return Dataset(root=root, labels=labels, clips=clips, layout="tau22")


def _load_folders(root: Path) -> Dataset:
    """One sub-folder per class; every audio file below it is a clip and its own recording."""
    clips = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            p
            for p in folder.rglob("*")
            if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file() and not p.name.startswith(".")
        )
        clips += [Clip(path=p, label=folder.name, split="all", group=p.stem) for p in files]
    if not clips:
        raise EdgeAscError(
            f"no audio found in {root}: expected meta.csv or one sub-folder of audio per class"
        )
    labels = sorted({c.label for c in clips})
    return Dataset(root=root, labels=labels, clips=clips, layout="folders")


# ----------------------------------------------------------------------------- helpers


def _read_table(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """A CSV with a header, tab- or comma-separated (TAU files use tabs, UrbanSound8K commas)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise EdgeAscError(f"cannot read {path}: {err.__class__.__name__}") from err
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise EdgeAscError(f"{path} is empty: expected a header line")
    delimiter = "\t" if "\t" in lines[0] else ","
    reader = csv.DictReader(lines, delimiter=delimiter)
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    return header, list(reader)


def _require_columns(path: Path, header: list[str], required: Sequence[str], need: str) -> None:
    missing = [c for c in required if c not in header]
    if missing:
        raise EdgeAscError(
            f"{path} lacks column(s) {', '.join(missing)}; needs {need}, has {', '.join(header)}"
        )


def _value(path: Path, line: int, row: dict[str, str | None], column: str) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise EdgeAscError(f"{path} line {line}: empty {column!r}")
    return value


def _int_value(path: Path, line: int, row: dict[str, str | None], column: str) -> int:
    value = _value(path, line, row, column)
    try:
        return int(value)
    except ValueError as err:
        raise EdgeAscError(f"{path} line {line}: {column!r} is not an integer: {value!r}") from err


def _check_not_empty(path: Path, items: Sequence[object]) -> None:
    if not items:
        raise EdgeAscError(f"{path} lists no clips")


def _check_files_exist(meta: Path, root: Path, paths: Sequence[Path]) -> None:
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise EdgeAscError(
            f"{meta} names {len(missing)} missing file(s), first: {missing[0].relative_to(root)}"
        )


def _check_splits_exist(dataset: Dataset, wanted: set[str]) -> None:
    present = set(dataset.splits())
    unknown = sorted(wanted - present, key=split_key)
    if unknown:
        raise EdgeAscError(
            f"no split {', '.join(unknown)} in {dataset.root} ({dataset.layout} layout); "
            f"splits: {', '.join(dataset.splits())}"
        )


def split_key(name: str) -> tuple[int, int, str]:
    """Folds sort as numbers (2 before 10), named splits after them."""
    return (0, int(name), "") if name.isdigit() else (1, 0, name)
