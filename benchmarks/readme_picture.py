"""Draw the README's picture of the live display from a real run of `edge-asc demo`.

The picture is not drawn by hand: this runs the demo command itself (the bundled recording of
four UrbanSound8K clips, the shipped model, the live pipeline, the demo's scoring) with its rich
panel on a recording console (rich's `Console(record=True)`), and saves what a terminal shows
at the end of the run, the demo's stderr lines included and in order, as SVG.

Run it from the repository root after a change to the display, the demo or the shipped model,
and commit the picture:

    .venv/bin/python benchmarks/readme_picture.py          # real time: 16 s of audio
    .venv/bin/python benchmarks/readme_picture.py --fast --out live.svg

It needs only the app (no training extras, no microphone).
"""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path
from unittest import mock

from rich.console import Console

from edge_asc import cli, live

PICTURE = Path(__file__).resolve().parents[1] / "docs" / "images" / "live.svg"
WIDTH = 84  # columns: the panel's bars and footer fit on one line each


class ConsoleStderr(io.TextIOBase):
    """stderr written into the recording console, so its lines keep their place around the
    panel, and a long one wraps at the console's width, as on a terminal where both streams
    share the screen."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # click probes a stream with b"": say it takes text
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self.console.print(text, end="", markup=False, highlight=False)
        return len(text)


def record_demo(fast: bool) -> Console:
    """Run `edge-asc demo --display rich` with its panel and stderr on one recording console."""
    console = Console(record=True, width=WIDTH, file=io.StringIO(), color_system="truecolor")

    def recorded_display(mode: str, top_k: int = 3, annotate: live.Annotate | None = None):
        return live.RichDisplay(top_k, console=console, annotate=annotate)

    # demo() imports make_display from edge_asc.live when it runs, so this patch reaches it.
    with (
        mock.patch.object(live, "make_display", recorded_display),
        contextlib.redirect_stderr(ConsoleStderr(console)),
    ):
        cli.demo(fast=fast, model=None, log=None, display="rich")
    return console


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PICTURE, help="SVG file to write")
    parser.add_argument("--fast", action="store_true", help="replay as fast as possible")
    args = parser.parse_args()
    console = record_demo(args.fast)
    if "edge-asc: demo:" not in console.export_text(clear=False):
        raise SystemExit("readme_picture: the demo's tally is not in the recording")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(args.out), title="edge-asc demo")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
