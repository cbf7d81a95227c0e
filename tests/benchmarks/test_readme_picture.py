"""benchmarks/readme_picture.py draws the README's picture from a real demo run (about a second
with --fast): the panel shows what the plain demo prints for its last window, and the
committed picture was drawn with the shipped model."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from edge_asc.model import Model
from edge_asc.modelcard import UNCERTAIN

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "readme_picture.py"
SVG_TEXT = "{http://www.w3.org/2000/svg}text"


def svg_lines(svg: Path) -> list[str]:
    """The terminal's lines as text, rebuilt from the SVG's runs of text at their columns
    (rich leaves the blanks between runs out)."""
    runs: dict[int, dict[int, str]] = {}
    for node in ET.parse(svg).iter(SVG_TEXT):
        clip = node.get("clip-path")
        if clip is None or not node.text:  # the window's title bar
            continue
        line = int(re.search(r"line-(\d+)", clip).group(1))
        width = float(node.get("textLength")) / len(node.text)
        runs.setdefault(line, {})[round(float(node.get("x")) / width)] = node.text
    lines = []
    for line in sorted(runs):
        row = ""
        for column, text in sorted(runs[line].items()):
            row = row.ljust(column) + text.replace("\xa0", " ")
        lines.append(row.rstrip())
    return lines


def bottom(lines: list[str]) -> str:
    """The panel's bottom edge, where the model's id is written."""
    return next(line for line in lines if line.startswith("╰"))


def run(*cmd: str) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("picture") / "live.svg"
    done = run(sys.executable, str(SCRIPT), "--fast", "--out", str(out))
    assert done.stdout.strip() == f"wrote {out}"
    return svg_lines(out)


def test_the_picture_shows_the_panel_and_tally_of_the_real_demo(picture, model):
    plain = run(sys.executable, "-m", "edge_asc", "demo", "--fast", "--display", "plain")
    last = plain.stdout.splitlines()[-1].split()
    smoothed = last[last.index("smoothed") + 1]
    assert "edge-asc: demo.flac (fast)" in picture[0]
    assert model.id in bottom(picture)
    head = picture[1].strip("│ ").split()
    assert head[0] == smoothed and head[0] in [*model.card.labels, UNCERTAIN]
    assert re.fullmatch(r"\d+%", head[1])
    verdict = "right" if last[2] == "jackhammer" else "wrong"  # the recording's last clip
    assert f"playing jackhammer: {verdict}" in picture[2]
    bars = [line.strip("│ ").split() for line in picture[4:7]]
    assert all(row[0] in model.card.labels and row[-1].endswith("%") for row in bars)
    shares = [float(row[-1].rstrip("%")) for row in bars]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 100.05
    tally = " ".join(line for line in picture if not line.startswith(("│", "╭", "╰")))
    assert plain.stderr.splitlines()[-1] in tally
    assert "edge-asc: done: 31 windows, 16.0 s of audio, 0 overflows" in tally


def test_the_committed_picture_is_a_real_time_run_of_the_shipped_model(model):
    lines = svg_lines(REPO / "docs" / "images" / "live.svg")
    assert "edge-asc: demo.flac (real time)" in lines[0]
    assert model.id in bottom(lines), (
        "docs/images/live.svg shows another model: rerun benchmarks/readme_picture.py"
    )
    assert any(line.startswith("edge-asc: demo: ") for line in lines)
