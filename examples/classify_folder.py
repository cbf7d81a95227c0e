#!/usr/bin/env python3
"""Classify every audio file under a folder and write one CSV row per file.

    python examples/classify_folder.py recordings/ -o verdicts.csv

Each row: the file (relative to the folder), the verdict (a class, "uncertain" or "silence"),
the best class's mean probability (1.0 for silence), the number of 1-s windows and the loudest
window's level. A file that cannot be classified is named on stderr and left out; the exit code
is then 2.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import TextIO

from edge_asc.api import Classifier
from edge_asc.errors import EdgeAscError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3"}


def write_rows(
    classifier: Classifier, folder: Path, files: list[Path], threshold: float, out: TextIO
) -> int:
    """One CSV row per file; returns how many files could not be classified."""
    writer = csv.writer(out)
    writer.writerow(["file", "verdict", "confidence", "windows", "loudest_dbfs"])
    failed = 0
    for path in files:
        try:
            result = classifier.classify_file(path, threshold=threshold, keep_windows=False)
        except EdgeAscError as err:
            print(f"classify_folder.py: skipped: {err}", file=sys.stderr)
            failed += 1
            continue
        name = path.relative_to(folder).as_posix()
        confidence, level = f"{result.confidence:.3f}", f"{result.loudest_dbfs:.1f}"
        writer.writerow([name, result.verdict, confidence, result.windows, level])
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="searched recursively for audio files")
    parser.add_argument("-o", "--output", type=Path, help="CSV file to write (default: stdout)")
    parser.add_argument("-m", "--model", help="an edge-asc ONNX model (default: the shipped one)")
    parser.add_argument("--threshold", type=float, default=0.3, help="below it: uncertain")
    args = parser.parse_args()

    if not 0 <= args.threshold <= 1:
        parser.exit(2, f"{parser.prog}: --threshold must be in [0, 1], not {args.threshold}\n")
    if not args.folder.is_dir():
        parser.exit(2, f"{parser.prog}: not a folder: {args.folder}\n")
    files = sorted(p for p in args.folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        parser.exit(2, f"{parser.prog}: no audio files under {args.folder}\n")
    try:
        classifier = Classifier(args.model)
    except EdgeAscError as err:
        parser.exit(2, f"{parser.prog}: {err}\n")

    if args.output is None:
        failed = write_rows(classifier, args.folder, files, args.threshold, sys.stdout)
    else:
        with open(args.output, "w", newline="") as out:
            failed = write_rows(classifier, args.folder, files, args.threshold, out)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
