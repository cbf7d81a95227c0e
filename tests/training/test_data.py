"""Dataset readers, fold-wise splits and the feature cache, on the real shared recordings."""

from __future__ import annotations

import csv
import os
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from edge_asc.errors import EdgeAscError
from edge_asc.features import FrontEndConfig, LogMel, windows
from edge_asc.training import data
from edge_asc.training.data import (
    Clip,
    FeatureCache,
    load_dataset,
    split_clips,
    window_dataset,
)

US8K_LABELS = [
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
]


@pytest.fixture(scope="module")
def us8k(shared_data: Path) -> data.Dataset:
    return load_dataset(shared_data / "urbansound8k-16k")


@pytest.fixture
def few_clips(us8k: data.Dataset) -> list[Clip]:
    """One clip of three classes: enough to exercise decoding without decoding 2148 files."""
    firsts = {}
    for clip in us8k.clips:
        firsts.setdefault(clip.label, clip)
    return [firsts["dog_bark"], firsts["siren"], firsts["car_horn"]]


def one_line_error(excinfo: pytest.ExceptionInfo[EdgeAscError]) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


# ----------------------------------------------------------------------------- layouts


def test_folds_layout_on_urbansound8k(us8k: data.Dataset, shared_data: Path) -> None:
    assert us8k.layout == "folds"
    assert len(us8k.clips) == 2148
    assert us8k.labels == US8K_LABELS
    assert us8k.splits() == ["1", "2", "3"]
    first = us8k.clips[0]
    assert first.path == shared_data / "urbansound8k-16k" / "fold1" / "101415-3-0-2.flac"
    assert (first.label, first.split, first.group) == ("dog_bark", "1", "101415")
    folds_of_group = defaultdict(set)
    for clip in us8k.clips:
        folds_of_group[clip.group].add(clip.split)
    assert all(len(folds) == 1 for folds in folds_of_group.values())
    assert us8k.label_indices(us8k.clips[:1]).tolist() == [3]


def test_split_clips_fold_wise(us8k: data.Dataset, shared_data: Path) -> None:
    with (shared_data / "urbansound8k-16k" / "meta.csv").open() as f:
        per_fold = defaultdict(int)
        for row in csv.DictReader(f):
            per_fold[row["fold"]] += 1
    train, val = split_clips(us8k, {"1", "2"}, {"3"})
    assert len(train) == per_fold["1"] + per_fold["2"] == 1761
    assert len(val) == per_fold["3"] == 387
    assert {c.split for c in train} == {"1", "2"} and {c.split for c in val} == {"3"}
    assert len(us8k.subset({"1"})) == per_fold["1"]


def test_split_clips_refuses_leaks_and_unknown_splits(us8k: data.Dataset) -> None:
    with pytest.raises(EdgeAscError) as excinfo:
        split_clips(us8k, {"1", "2"}, {"2"})
    assert "both training" in one_line_error(excinfo)
    with pytest.raises(EdgeAscError) as excinfo:
        split_clips(us8k, {"1"}, {"7"})
    assert "no split 7" in one_line_error(excinfo)


def test_tau22_layout(tau22_root: Path, shared_data: Path) -> None:
    ds = load_dataset(tau22_root)
    assert ds.layout == "tau22"
    scenes = sorted(p.stem for p in (shared_data / "tut-urban-2018-demo").glob("*.flac"))
    assert ds.labels == scenes and len(scenes) == 10
    assert ds.splits() == ["evaluate", "train"]
    train, val = split_clips(ds, {"train"}, {"evaluate"})
    assert (len(train), len(val)) == (70, 30)
    assert {c.group for c in train} == {f"{label}-seg-train" for label in ds.labels}
    assert all(c.path.is_file() for c in ds.clips)


def test_tau22_segment_features(tau22_root: Path, tmp_path: Path) -> None:
    ds = load_dataset(tau22_root)
    cache = FeatureCache(tmp_path / "cache", FrontEndConfig())
    frames = cache.frames(ds.clips[0].path)  # 1 s, 48 kHz stereo 24-bit, resampled to 16 kHz
    assert frames.shape == (51, 40) and frames.dtype == np.float32
    assert np.isfinite(frames).all()


def test_folders_layout(us8k: data.Dataset, tmp_path: Path) -> None:
    root = tmp_path / "folders"
    picked = {label: [c for c in us8k.clips if c.label == label][:2] for label in US8K_LABELS[:3]}
    for label, clips in picked.items():
        (root / label).mkdir(parents=True)
        for clip in clips:
            (root / label / clip.path.name).symlink_to(clip.path)
        (root / label / "notes.txt").write_text("not audio")
    ds = load_dataset(root)
    assert ds.layout == "folders"
    assert ds.labels == US8K_LABELS[:3]
    assert ds.splits() == ["all"]
    assert len(ds.clips) == 6
    assert {c.group for c in ds.clips} == {c.path.stem for cs in picked.values() for c in cs}


# ----------------------------------------------------------------------------- errors


def test_missing_path_and_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(EdgeAscError) as excinfo:
        load_dataset(tmp_path / "nowhere")
    assert "nowhere" in one_line_error(excinfo)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(EdgeAscError) as excinfo:
        load_dataset(a_file)
    assert "not a folder" in one_line_error(excinfo)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(EdgeAscError) as excinfo:
        load_dataset(tmp_path)
    assert str(tmp_path) in one_line_error(excinfo)


def test_one_class_is_not_enough(us8k: data.Dataset, tmp_path: Path) -> None:
    (tmp_path / "siren").mkdir()
    clip = next(c for c in us8k.clips if c.label == "siren")
    (tmp_path / "siren" / clip.path.name).symlink_to(clip.path)
    with pytest.raises(EdgeAscError) as excinfo:
        load_dataset(tmp_path)
    assert "at least 2 classes" in one_line_error(excinfo)


def test_meta_naming_missing_files(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "urbansound8k-16k" / "meta.csv"
    shutil.copy(src, tmp_path / "meta.csv")
    (tmp_path / "fold1").mkdir()
    first = "fold1/101415-3-0-2.flac"
    (tmp_path / first).symlink_to(shared_data / "urbansound8k-16k" / first)
    with pytest.raises(EdgeAscError) as excinfo:
        load_dataset(tmp_path)
    message = one_line_error(excinfo)
    assert "2147 missing file(s)" in message and "fold1/101415-3-0-3.flac" in message


def test_meta_missing_columns(tmp_path: Path) -> None:
    (tmp_path / "meta.csv").write_text("filename,label\na.wav,dog\n")
    with pytest.raises(EdgeAscError) as excinfo:
        load_dataset(tmp_path)
    assert "fold, class" in one_line_error(excinfo)


def test_tau22_setup_naming_unknown_file(tau22_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "tau"
    shutil.copytree(tau22_root, root, symlinks=True)
    setup = root / "evaluation_setup" / "fold1_evaluate.csv"
    setup.write_text(setup.read_text() + "audio/ghost.wav\tpark\n")
    with pytest.raises(EdgeAscError) as excinfo:
        load_dataset(root)
    assert "audio/ghost.wav" in one_line_error(excinfo)


def test_garbage_audio_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(os.urandom(2000))
    cache = FeatureCache(tmp_path / "cache", FrontEndConfig())
    with pytest.raises(EdgeAscError) as excinfo:
        cache.frames(bad)
    assert "broken.wav" in one_line_error(excinfo)
    with pytest.raises(EdgeAscError) as excinfo:
        cache.frames(tmp_path / "absent.wav")
    assert "absent.wav" in one_line_error(excinfo)


# ----------------------------------------------------------------------------- cache


def test_cache_second_run_decodes_nothing(
    few_clips: list[Clip], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = FrontEndConfig()
    first = FeatureCache(tmp_path, config)
    frames = first.load_all(few_clips, progress=False)
    assert (first.hits, first.misses) == (0, 3)
    assert [f.shape for f in frames] == [(201, 40)] * 3  # 4.0 s clips
    expected = LogMel(config).compute(data.read_audio(few_clips[0].path, 16000))
    np.testing.assert_array_equal(frames[0], expected)

    decodes = []
    real = data.read_audio
    monkeypatch.setattr(data, "read_audio", lambda *a: decodes.append(a) or real(*a))
    second = FeatureCache(tmp_path, config)
    again = second.load_all(few_clips, progress=True)
    assert (second.hits, second.misses, len(decodes)) == (3, 0, 0)
    for a, b in zip(frames, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.rglob("*.tmp"))

    other = FeatureCache(tmp_path, FrontEndConfig(n_mels=32))
    assert other.frames(few_clips[0].path).shape == (201, 32)
    assert (other.hits, other.misses, len(decodes)) == (0, 1, 1)


def test_cache_misses_on_changed_file_and_heals_corrupt_entry(
    few_clips: list[Clip], tmp_path: Path
) -> None:
    clip = tmp_path / "clip.flac"
    shutil.copy(few_clips[0].path, clip)
    cache = FeatureCache(tmp_path / "cache", FrontEndConfig())
    reference = cache.frames(clip)
    (entry,) = cache.directory.glob("*.npy")
    entry.write_bytes(entry.read_bytes()[:100])  # a truncated entry, as after a power loss
    np.testing.assert_array_equal(cache.frames(clip), reference)
    assert cache.misses == 2
    stat = clip.stat()
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    cache.frames(clip)
    assert (cache.hits, cache.misses) == (0, 3)
    cache.frames(clip)
    assert cache.hits == 1


# ----------------------------------------------------------------------------- windows


def test_window_dataset(few_clips: list[Clip], tmp_path: Path) -> None:
    frames = FeatureCache(tmp_path, FrontEndConfig()).load_all(few_clips[:2], progress=False)
    x, y, clip_index = window_dataset(frames, [3, 8])
    per_clip = (201 - 51) // 25 + 1
    assert x.shape == (2 * per_clip, 1, 40, 51) and x.dtype == np.float32
    assert y.dtype == np.int64 and clip_index.dtype == np.int64
    assert y.tolist() == [3] * per_clip + [8] * per_clip
    assert clip_index.tolist() == [0] * per_clip + [1] * per_clip
    np.testing.assert_array_equal(x[per_clip:], windows(frames[1], 51, 25))
    with pytest.raises(ValueError):
        window_dataset(frames, [3])


def _start_of(window: np.ndarray, frames: np.ndarray) -> int:
    """Where in the clip's frames a (n_mels, window_frames) window was cut; -1 if nowhere."""
    width = window.shape[1]
    for start in range(len(frames) - width + 1):
        if np.array_equal(frames[start : start + width].T, window):
            return start
    return -1


def test_clip_frames_draw_real_windows_at_random_starts(
    few_clips: list[Clip], tmp_path: Path
) -> None:
    frames = FeatureCache(tmp_path, FrontEndConfig()).load_all(few_clips, progress=False)
    frames[2] = frames[2][:30]  # shorter than a window: tiled to one, as `windows` does
    clips = data.ClipFrames.of(frames, 51, 25)
    x, _, _ = window_dataset(frames, [0, 1, 2])
    assert clips.counts.tolist() == [7, 7, 1] and clips.counts.sum() == len(x)

    drawn = clips.draw(np.random.default_rng(5))
    assert drawn.shape == x.shape and drawn.dtype == np.float32
    starts = [_start_of(w[0], frames[0]) for w in drawn[:7]]
    starts += [_start_of(w[0], frames[1]) for w in drawn[7:14]]
    assert min(starts) >= 0  # every window is a real cut of its own clip
    assert any(s % 25 for s in starts)  # not the fixed grid
    np.testing.assert_array_equal(drawn[14], x[14])  # a one-window clip has one place to cut

    np.testing.assert_array_equal(drawn, clips.draw(np.random.default_rng(5)))
    assert not np.array_equal(drawn, clips.draw(np.random.default_rng(6)))
    later = clips.subset(np.array([1]))
    assert later.counts.tolist() == [7]
    assert _start_of(later.draw(np.random.default_rng(0))[3, 0], frames[1]) >= 0
    nothing = clips.subset(np.array([], dtype=np.int64))  # a selection split with no clips
    assert nothing.draw(np.random.default_rng(0)).shape == (0, 1, 40, 51)


def test_a_dataset_in_a_folder_it_may_not_search_is_one_line(tmp_path: Path, monkeypatch) -> None:
    # Tests run as root, which may search anything: the refusal is what a user's stat gets.
    locked = tmp_path / "locked" / "data"
    real_stat = Path.stat

    def stat(self: Path, *args, **kwargs):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *args, **kwargs)

    monkeypatch.setattr(Path, "stat", stat)
    with pytest.raises(EdgeAscError, match=r"cannot read dataset .*: Permission denied"):
        load_dataset(locked)
