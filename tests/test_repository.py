"""The repository as a reader gets it: no file points at something the reader does not have (a
design note that is not shipped, a tracker's item numbers, one machine's folders), and every
link in the Markdown files leads to a file in the repository or a heading of one."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parents[1]

# Written so that this file does not match itself.
UNSHIPPED = {
    "a design document that is not in the repository": re.compile(r"\bDESIGN\.md"),
    "a tracker item": re.compile(r"\bissues?\s+#?\d+|\bthe issue's|\bissue tracker", re.I),
    "one machine's folder": re.compile(r"(?<![\w.~])/(?:work|home|root|Users|mnt|tmp)/"),
}
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def tracked() -> list[str]:
    """The files git tracks: what a clone gets (a build folder or a venv is no part of it)."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
        )
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.skip(f"not a git checkout: {err}")
    return [name for name in done.stdout.decode().split("\0") if name]


def text_of(name: str) -> str | None:
    """A tracked file's text, or None for binary data (audio, the model, pictures)."""
    data = (REPO / name).read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group()[1:-1], heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    return {slug(heading) for heading in HEADING.findall(FENCE.sub("", markdown))}


def links(markdown: str) -> list[str]:
    """The targets of a Markdown file's inline links and images, code left out."""
    return LINK.findall(CODE_SPAN.sub("", FENCE.sub("", markdown)))


def test_no_file_names_what_a_reader_does_not_have():
    hits = []
    for name in tracked():
        text = text_of(name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for what, pattern in UNSHIPPED.items():
                if pattern.search(line):
                    hits.append(f"{name}:{number}: {what}: {line.strip()[:120]}")
    assert not hits, "\n".join(hits)


def test_the_patterns_catch_what_they_are_for():
    caught = [
        "see DESIGN" + ".md s. 2",
        "(issue" + " 18's acceptance)",
        "Issues" + " #7 and 8",
        "the issue" + "'s targets",
        "Run: /work" + "/main/runs/x",
        "written to /tmp" + "/abc.log",
    ]
    passed = [
        "docs/architecture.md, section 2",
        "a file whose issue is its size",
        "ReadWritePaths=/var/lib/edge-asc",
        "PrivateTmp=yes keeps /tmp private",
        "runs/work/x and ~/tmp/y are relative",
    ]
    assert all(any(p.search(text) for p in UNSHIPPED.values()) for text in caught)
    assert not any(p.search(text) for p in UNSHIPPED.values() for text in passed)


def test_every_markdown_link_leads_into_the_repository():
    files = tracked()
    present = set(files) | {str(parent) for f in files for parent in PurePosixPath(f).parents}
    broken = []
    for name in (f for f in files if f.endswith(".md")):
        markdown = (REPO / name).read_text()
        for target in links(markdown):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            if path:
                joined = PurePosixPath(name).parent / path
                resolved = PurePosixPath(*_normalised(joined.parts)).as_posix()
                if resolved not in present:
                    broken.append(f"{name}: {target} (no such file in the repository)")
                    continue
            else:
                resolved = name
            markdown_target = resolved.endswith(".md")
            if anchor and markdown_target and anchor not in anchors((REPO / resolved).read_text()):
                broken.append(f"{name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def _normalised(parts: tuple[str, ...]) -> list[str]:
    """A relative path's parts with `.` and `..` applied; `..` above the top stays, and so
    fails to match any tracked file."""
    out: list[str] = []
    for part in parts:
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            else:
                out.append(part)
        elif part != ".":
            out.append(part)
    return out or ["."]


def test_the_readme_links_the_docs_and_the_picture():
    readme = (REPO / "README.md").read_text()
    targets = set(links(readme))
    wanted = {
        "docs/images/live.svg",
        "docs/architecture.md",
        "docs/results.md",
        "docs/benchmarks.md",
        "docs/training.md",
        "docs/service.md",
        "CHANGELOG.md",
    }
    assert wanted <= targets, wanted - targets
    assert len(readme.splitlines()) <= 200
