#!/usr/bin/env python3
"""Print a line, and optionally run a command, each time a chosen class is heard.

    python examples/react_to_class.py dog_bark                       # the default microphone
    python examples/react_to_class.py siren --device USB --run 'notify-send siren'
    python examples/react_to_class.py dog_bark --file street.flac --fast
    arecord -f S16_LE -r 16000 -c 1 | python examples/react_to_class.py dog_bark --stdin 16000

"Heard" means the smoothed label (the one `edge-asc listen` shows) turns to the class with at
least --min-confidence; it must turn to something else before the class counts again. The
command gets EDGE_ASC_CLASS, EDGE_ASC_CONFIDENCE and EDGE_ASC_OFFSET (stream seconds).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys

from edge_asc.api import Classifier
from edge_asc.errors import EdgeAscError
from edge_asc.sources import FileSource, MicSource, Source, StdinSource


def open_source(args: argparse.Namespace) -> Source:
    if args.file:
        return FileSource(args.file, realtime=not args.fast)
    if args.stdin:
        return StdinSource(args.stdin, channels=1, sample_format="S16_LE")
    return MicSource(args.device, rate=16000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("label", help="the class to react to (e.g. dog_bark)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--device", help="microphone: index or name substring")
    where.add_argument("--file", help="replay an audio file instead of the microphone")
    where.add_argument("--stdin", type=int, metavar="RATE", help="mono S16_LE PCM at RATE Hz")
    parser.add_argument("--fast", action="store_true", help="with --file: not in real time")
    parser.add_argument("--min-confidence", type=float, default=0.5, metavar="P")
    parser.add_argument("--run", help="command to run each time the class is heard")
    parser.add_argument("-m", "--model", help="an edge-asc ONNX model (default: the shipped one)")
    args = parser.parse_args()

    try:
        classifier = Classifier(args.model)
        if args.label not in classifier.labels:
            known = ", ".join(classifier.labels)
            raise EdgeAscError(f"the model has no class {args.label!r}; it knows: {known}")
        source = open_source(args)
    except EdgeAscError as err:
        parser.exit(2, f"{parser.prog}: {err}\n")

    heard = False
    with source:
        for pred in classifier.stream(source):
            now = pred.smoothed_label == args.label
            now = now and pred.smoothed_confidence >= args.min_confidence
            if now and not heard:
                print(f"{pred.offset:8.1f} s  {args.label}  {pred.smoothed_confidence:.2f}")
                sys.stdout.flush()
                if args.run:
                    env = dict(os.environ, EDGE_ASC_CLASS=args.label)
                    env["EDGE_ASC_CONFIDENCE"] = f"{pred.smoothed_confidence:.3f}"
                    env["EDGE_ASC_OFFSET"] = f"{pred.offset:.1f}"
                    subprocess.run(shlex.split(args.run), env=env, check=False)
            heard = now
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
