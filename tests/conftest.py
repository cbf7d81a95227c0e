"""Shared fixtures: the real recordings in ../shared/data and a TAU22 layout built from them."""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TAU22_TRAIN_SEGMENTS = range(7)  # segments 0-6 of each 10-s scene clip train, 7-9 evaluate


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real data folder, next to the repository (see its README)."""
    return SHARED_DATA


def make_tau22_layout(src_dir: Path, dst_dir: Path) -> Path:
    """Lay out the 10-s TUT scene clips of `src_dir` in the DCASE TAU 2022 format under `dst_dir`.

    Each clip is cut into 1-s segments kept as recorded (48 kHz, stereo, 24 bit), written as
    audio/<scene>-demo-0-<seg>-a.wav, with a tab-separated meta.csv and
    evaluation_setup/fold1_train.csv and fold1_evaluate.csv.
    Segments 0-6 train and 7-9 evaluate; the identifier (the recording group) differs between the
    two halves, so a group-aware split accepts this layout. Returns `dst_dir`.
    """
    dst_dir = Path(dst_dir)
    (dst_dir / "audio").mkdir(parents=True, exist_ok=True)
    (dst_dir / "evaluation_setup").mkdir(exist_ok=True)
    meta = ["filename\tscene_label\tidentifier\tsource_label"]
    train = ["filename\tscene_label"]
    evaluate = ["filename\tscene_label"]
    for src in sorted(Path(src_dir).glob("*.flac")):
        scene = src.stem
        data, rate = sf.read(src, dtype="int32", always_2d=True)
        for seg in range(data.shape[0] // rate):
            name = f"audio/{scene}-demo-0-{seg}-a.wav"
            sf.write(dst_dir / name, data[seg * rate : (seg + 1) * rate], rate, subtype="PCM_24")
            is_train = seg in TAU22_TRAIN_SEGMENTS
            identifier = f"{scene}-seg-{'train' if is_train else 'eval'}"
            meta.append(f"{name}\t{scene}\t{identifier}\ta")
            (train if is_train else evaluate).append(f"{name}\t{scene}")
    (dst_dir / "meta.csv").write_text("\n".join(meta) + "\n")
    (dst_dir / "evaluation_setup" / "fold1_train.csv").write_text("\n".join(train) + "\n")
    (dst_dir / "evaluation_setup" / "fold1_evaluate.csv").write_text("\n".join(evaluate) + "\n")
    return dst_dir


@pytest.fixture(scope="session")
def tau22_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TAU22 layout of the 10 real TUT 2018 scene clips, built once per test session."""
    return make_tau22_layout(shared_data / "tut-urban-2018-demo", tmp_path_factory.mktemp("tau22"))
