"""The app as the README installs it: a built wheel in a fresh venv, not the editable checkout.

The other tests import edge_asc from the source tree, so a module the package leaves out (once
edge_asc.bench: `edge-asc bench` was a ModuleNotFoundError after `pip install .`) passes them
all. Here the wheel is built from a copy of the working tree, installed into a new venv, and
every command the README lists runs from a folder outside the checkout. The dependencies come
from the test's own environment through a .pth file written after the install (no network):
only edge_asc itself comes from the wheel, and that is checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
CLIP = "urbansound8k-16k/fold3/103199-4-0-0.flac"  # 4 s, 16 kHz: seven windows


def working_tree_files(repo: Path) -> list[str]:
    """What a clone of the working tree holds: tracked files and untracked, unignored ones."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.decode(errors='replace').strip()}")
    return [name for name in listed.stdout.decode().split("\0") if name]


def copy_working_tree(repo: Path, dest: Path) -> Path:
    """A clean copy to build from: no build/, egg-info or caches of the checkout leak in."""
    for name in working_tree_files(repo):
        source = repo / name
        if source.is_file():  # a deleted, not yet committed file is still listed
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def run(cmd: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False, **kwargs
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = copy_working_tree(REPO, tmp_path_factory.mktemp("src"))
    dist = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    built = run([*pip, "-q", "-w", str(dist), str(src)], cwd=src)
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = dist.glob("edge_asc-*.whl")
    return found


@pytest.fixture(scope="module")
def fresh(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv holding the wheel; returns its bin/ folder."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=venv.parent)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index"]
    installed = run([*pip, "--no-deps", "-q", str(wheel)], cwd=venv.parent)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    query = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = Path(run([str(python), "-c", query], cwd=venv.parent).stdout.strip())
    # After the install, so pip never saw them: numpy, onnxruntime, typer... from this venv.
    (purelib / "zz-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def test_the_wheel_holds_every_module_and_data_file(wheel):
    """Every module and data file of the source tree, under its installed name."""
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for name in working_tree_files(REPO):
        top, _, rest = name.partition("/")
        installed = {"edge_asc": "edge_asc", "training": "edge_asc/training"}.get(top)
        if installed and name.endswith(".py"):
            expected.add(f"{installed}/{rest}")
        if top == "models" and name.endswith((".py", ".onnx", ".md")):
            expected.add(f"edge_asc/models/{rest}")
        if name.startswith("edge_asc/samples/"):
            expected.add(name)
    assert "edge_asc/bench/command.py" in expected and "edge_asc/samples/demo.flac" in expected
    assert sorted(expected - names) == []


def readme_commands() -> set[str]:
    """The commands of the README's table: | `edge-asc NAME ...` | what it does |."""
    text = (REPO / "README.md").read_text()
    return set(re.findall(r"^\| `edge-asc (\w+)", text, flags=re.MULTILINE))


def test_every_readme_command_runs_from_the_installed_wheel(fresh, shared_data, tmp_path):
    edge_asc = str(fresh / "edge-asc")
    clip = str(shared_data / CLIP)
    ran: set[str] = set()

    def cli(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        ran.add(args[0])
        return run([edge_asc, *args], cwd=tmp_path, **kwargs)

    where = run(
        [str(fresh / "python"), "-c", "import edge_asc; print(edge_asc.__file__)"], tmp_path
    )
    assert Path(where.stdout.strip()).is_relative_to(fresh.parent), where.stdout + where.stderr

    version = run([edge_asc, "--version"], cwd=tmp_path)
    assert version.returncode == 0 and re.fullmatch(r"edge-asc \d+\.\d+\.\S+\n", version.stdout)

    info = cli("info")
    assert info.returncode == 0, info.stderr
    assert str(fresh.parent) in info.stdout and "air_conditioner" in info.stdout  # the wheel's
    assert json.loads(cli("info", "--json").stdout)["format_version"] == 1

    classified = cli("classify", "--json", clip)
    assert classified.returncode == 0, classified.stderr
    result = json.loads(classified.stdout)
    assert result["file"] == clip and result["label"] in result["probabilities"]

    demo = cli("demo", "--fast", "--display", "plain")
    assert demo.returncode == 0, demo.stderr
    assert len(demo.stdout.splitlines()) == 31 and "done: 31 windows" in demo.stderr

    listened = cli("listen", "--from-file", clip, "--fast", "--display", "plain")
    assert listened.returncode == 0, listened.stderr
    assert len(listened.stdout.splitlines()) == 7

    pcm = sf.read(clip, dtype="int16")[0].tobytes()
    piped = run(
        [edge_asc, "listen", "--stdin", "--rate", "16000", "--display", "plain"],
        cwd=tmp_path,
        input=pcm.decode("latin-1"),
        encoding="latin-1",
    )
    assert piped.returncode == 0, piped.stderr
    assert len(piped.stdout.splitlines()) == 7

    db = tmp_path / "history.db"
    stored = cli("listen", "--from-file", clip, "--fast", "--display", "none", "--db", str(db))
    assert stored.returncode == 0, stored.stderr
    found = cli("events", "--db", str(db), "--json")
    assert found.returncode == 0, found.stderr
    assert all(json.loads(line)["label"] for line in found.stdout.splitlines())
    counted = cli("summary", "--db", str(db), "--by", "day")
    assert counted.returncode == 0, counted.stderr

    devices = cli("devices")  # no sound card needed: a list, or one line saying why not
    assert devices.returncode in (0, 2), devices.stderr
    if devices.returncode == 2:
        assert len(devices.stderr.strip().splitlines()) == 1 and "Traceback" not in devices.stderr

    bench = cli("bench", "--json", "--runs", "3", "--fast-seconds", "4", "--realtime-seconds", "2")
    assert bench.returncode == 0, bench.stderr
    assert json.loads(bench.stdout)

    # The training pipeline is in the wheel (torch comes from the test's venv): it imports and
    # reports the missing data set, not a missing module.
    trained = cli("train", str(tmp_path / "no-data"), "--quick", "--out", str(tmp_path / "run"))
    assert trained.returncode == 2, trained.stderr
    assert "no-data" in trained.stderr and "extra" not in trained.stderr

    if "evaluate" in readme_commands():
        data = tmp_path / "labelled"
        for label, name in (("dog_bark", "117072-3-0-14"), ("siren", "184623-8-0-3")):
            (data / label).mkdir(parents=True)
            shutil.copy(shared_data / "urbansound8k-16k" / "fold3" / f"{name}.flac", data / label)
        where_model = "from edge_asc.model import default_model_path; print(default_model_path())"
        model = run([str(fresh / "python"), "-c", where_model], tmp_path).stdout.strip()
        assert Path(model).is_relative_to(fresh.parent), model
        scored = cli("evaluate", model, str(data), "--json", "--out", str(tmp_path / "eval"))
        assert scored.returncode == 0, scored.stderr
        assert json.loads(scored.stdout)

    assert readme_commands() <= ran, readme_commands() - ran
