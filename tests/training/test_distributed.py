"""Training under torchrun: the same optimisation on several processes, one writer, one model.

The two-process runs are real torchrun launches (gloo on this CPU, a free rendezvous port on
127.0.0.1); this file is also the workers' script (`python test_distributed.py --worker OUT`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edge_asc.features import LogMel
from edge_asc.training import data, distributed, fit
from edge_asc.training.nets import singh_config

REPO = Path(__file__).resolve().parents[2]
BATCH = 64  # the global batch: two processes take 32 windows each per step
EPOCHS = 3  # about three steps an epoch on these clips
# What "equal" means for float32 arithmetic done in another order (each rank's sums, then the
# all-reduce, instead of one sum): the first epoch's loss (the mean of its steps' losses) to
# 1e-5 relative, every weight and statistic after all the steps to 1e-4 absolute plus 1e-3
# relative (a running variance sums the squares of a whole batch), held-out probabilities to
# 3e-3 (measured: 1.2e-3; see the biases below).
# A conv's bias ahead of batch norm is left out, and so is that norm's running mean: the norm
# subtracts the bias again, so its gradient is zero up to rounding, and AdamW turns that
# rounding noise into steps of full size (0.01 apart after 9 steps); the running mean follows
# the bias and cancels most of it, but as an average of past steps, not exactly: what is left
# moves the held-out probabilities by about 1e-3.
LOSS_RTOL = 1e-5
WEIGHT_ATOL = 1e-4
PROBS_ATOL = 3e-3
HELD_OUT_LABELS = np.repeat([8, 4, 3], 10)  # siren, drilling, dog_bark: their UrbanSound8K ids
NOISE_ONLY = ("features.0.bias", "features.3.bias", "features.8.bias", "running_mean")


def _clips(root: Path, fold: str, per_class: int) -> tuple[data.ClipFrames, np.ndarray, list]:
    """Real clips of three classes, normalised, as the pipeline hands them to fit."""
    dataset = data.load_dataset(root / "urbansound8k-16k")
    clips = []
    for label in ("siren", "drilling", "dog_bark"):
        clips += [c for c in dataset.subset({fold}) if c.label == label][:per_class]
    frames = [LogMel().compute(data.read_audio(c.path, 16000)) for c in clips]
    mean, std = np.concatenate(frames).mean(), np.concatenate(frames).std()
    frames = [((f - mean) / std).astype(np.float32) for f in frames]
    labels = dataset.label_indices(clips)
    _, y, _ = data.window_dataset(frames, labels)
    return data.ClipFrames.of(frames, 51, 25), y, frames


def _train(
    root: Path, run: distributed.Run | None, batch: int = BATCH
) -> tuple[list[float], dict, np.ndarray]:
    clips, y, _ = _clips(root, "1", 8)
    losses: list[float] = []
    how = fit.FitOptions(epochs=EPOCHS, batch_size=batch, seed=3, gain_db=6.0)
    model = fit.fit(
        fit.new_model(singh_config(3), 3),
        None,
        y,
        how,
        progress=lambda _e, _n, loss: losses.append(loss),
        clips=clips,
        run=run,
    )
    return losses, {k: v.clone() for k, v in model.state_dict().items()}, _held_out(root, model)


def _held_out(root: Path, model: torch.nn.Module) -> np.ndarray:
    """Clip probabilities of held-out clips (fold 2), decided as `classify` decides."""
    _, _, frames = _clips(root, "2", 10)
    x, _, clip_index = data.window_dataset(frames, HELD_OUT_LABELS)
    return fit.clip_probabilities(fit.predict(model, x), clip_index)


def _right(probs: np.ndarray) -> np.ndarray:
    return (probs.argmax(1) == HELD_OUT_LABELS).astype(float)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(nproc: int, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", *args,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO
    )


def test_world_size_one_is_the_single_process_run(shared_data, tmp_path):
    """A process group of one takes the distributed path and trains the same weights, bit for
    bit, as no process group at all: what keeps a one-process run's model file unchanged."""
    torch.set_num_threads(1)
    plain_losses, plain, _ = _train(shared_data, None)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        run = distributed.Run(torch.device("cpu"), rank=0, world_size=1, distributed=True)
        losses, state, _ = _train(shared_data, run)
    finally:
        torch.distributed.destroy_process_group()
    assert losses == plain_losses
    assert state.keys() == plain.keys()
    for name, tensor in plain.items():
        assert torch.equal(state[name], tensor), name


def test_two_processes_of_half_batches_take_the_same_steps(shared_data, tmp_path):
    """Two processes of 32 windows (batch norm synced over both, gradients averaged) against
    one process of 64: the same losses and weights to float tolerance, the same held-out
    accuracy within noise."""
    torch.set_num_threads(1)
    done = _torchrun(2, str(Path(__file__)), "--worker", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    got = torch.load(tmp_path / "rank0.pt", weights_only=True)
    losses, state, probs = _train(shared_data, None)
    print(f"losses 1 process {losses}, 2 processes {got['losses']}")
    np.testing.assert_allclose(got["losses"][0], losses[0], rtol=LOSS_RTOL)
    np.testing.assert_allclose(got["losses"], losses, rtol=10 * LOSS_RTOL)
    for name, tensor in state.items():
        if not tensor.is_floating_point():
            assert torch.equal(got["state"][name], tensor), name
        elif not name.endswith(NOISE_ONLY):
            torch.testing.assert_close(got["state"][name], tensor, atol=WEIGHT_ATOL, rtol=1e-3)
    np.testing.assert_allclose(got["probs"].numpy(), probs, atol=PROBS_ATOL)
    theirs, ours = _right(got["probs"].numpy()), _right(probs)
    noise = 2 * np.sqrt(ours.mean() * (1 - ours.mean()) / len(ours))  # 2 binomial SE
    print(f"held-out accuracy 1 process {ours.mean():.3f}, 2 processes {theirs.mean():.3f}")
    assert abs(theirs.mean() - ours.mean()) <= max(noise, 1 / len(ours))
    # the other rank holds the same model, so every later choice is the same on both
    assert torch.load(tmp_path / "rank1.pt", weights_only=True)["losses"] == got["losses"]


def test_torchrun_quick_run_gives_one_run_one_model(shared_data, tmp_path):
    """The whole pipeline on two processes: rank 0 alone writes; the model classifies."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    data_dir = shared_data / "urbansound8k-16k"
    done = _torchrun(
        2, "-m", "edge_asc", "train", str(data_dir), "--quick", "--device", "cpu",
        "--out", str(out), "--cache", str(cache),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "run"]
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion.png", "model-fp32.onnx", "model.onnx", "report.json", "report.md", "torch",
    ]  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    run = report["run"]
    assert (run["world_size"], run["backend"], run["device"], run["precision"]) == (
        2, "gloo", "cpu", "fp32",
    )  # fmt: skip
    assert run["seconds_per_epoch"] and all(v > 0 for v in run["seconds_per_epoch"].values())
    assert "2 processes (gloo), fp32" in (out / "report.md").read_text()
    assert done.stderr.count("report: ") == 1  # one rank speaks for the run
    steps = sorted(p.name for p in (cache / "steps").iterdir())
    assert steps and not [s for s in steps if s.endswith(".tmp")]
    clip = next(c for c in data.load_dataset(data_dir).subset({"3"}) if c.label == "siren")
    shown = subprocess.run(
        [sys.executable, "-m", "edge_asc", "classify", str(clip.path),
         "--model", str(out / "model.onnx"), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    # A --quick model may fairly call the clip "uncertain": what must hold is that it classified
    # it, one probability per class of the report, summing to 1.
    probabilities = json.loads(shown.stdout)["probabilities"]
    assert list(probabilities) == report["labels"]
    assert abs(sum(probabilities.values()) - 1) < 1e-4
    info = subprocess.run(
        [sys.executable, "-m", "edge_asc", "info", str(out / "model.onnx"), "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert info.returncode == 0, info.stderr
    card = json.loads(info.stdout)  # the card says how it was made (a one-CPU card says nothing)
    assert card["training"]["run"]["world_size"] == 2
    assert card["training"]["run"]["precision"] == "fp32"


def test_a_failing_rank_stops_every_rank_with_one_line(shared_data, tmp_path):
    """Only rank 0 creates the run folder: where a file is in the way, it fails, and the other
    rank (waiting for the features) is stopped, not left hanging; one line says why."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = _torchrun(
        2, "-m", "edge_asc", "train", str(shared_data / "urbansound8k-16k"), "--quick",
        "--device", "cpu", "--out", str(blocker / "run"), timeout=300,
    )  # fmt: skip
    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if line.startswith("edge-asc:")]
    assert ours == [f"edge-asc: cannot create output folder {blocker / 'run'}: Not a directory"]
    assert blocker.read_text() == "not a folder"


def test_a_bad_device_is_one_line(shared_data):
    for device, says in (("tpu", "unknown device 'tpu'"), ("cuda:x", "unknown device")):
        done = subprocess.run(
            [sys.executable, "-m", "edge_asc", "train", str(shared_data / "urbansound8k-16k"),
             "--quick", "--device", device, "--out", "/nonexistent/never-made"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2 and says in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where CUDA is absent")
def test_cuda_without_a_gpu_is_one_line(shared_data):
    done = subprocess.run(
        [sys.executable, "-m", "edge_asc", "train", str(shared_data / "urbansound8k-16k"),
         "--quick", "--device", "cuda", "--out", "/nonexistent/never-made"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "edge-asc: --device cuda: no CUDA GPU is available to torch here" in done.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none here)")
def test_cuda_trains_the_same_model_in_bf16_within_tolerance(shared_data):
    """On a GPU with bf16 autocast: the first epoch's loss within bf16's precision of the CPU's
    fp32 loss, and the held-out accuracy within noise of the CPU-trained model."""
    torch.set_num_threads(1)
    cpu_losses, _, cpu_probs = _train(shared_data, None)
    gpu = distributed.start("cuda")
    assert gpu.precision == "bf16-autocast"
    losses, state, probs = _train(shared_data, gpu)
    assert all(t.device.type == "cpu" for t in state.values())  # handed back on the CPU
    np.testing.assert_allclose(losses[0], cpu_losses[0], rtol=2e-2)
    ours, cpu = _right(probs), _right(cpu_probs)
    noise = 2 * np.sqrt(cpu.mean() * (1 - cpu.mean()) / len(cpu))
    assert abs(ours.mean() - cpu.mean()) <= max(noise, 1 / len(ours))


def _worker(out: Path) -> None:
    """One torchrun rank of `test_two_processes_of_half_batches_take_the_same_steps`."""
    torch.set_num_threads(1)
    run = distributed.start("cpu")
    try:
        losses, state, probs = _train(REPO.parent / "shared" / "data", run)
        saved = {"losses": losses, "state": state, "probs": torch.from_numpy(probs)}
        torch.save(saved, out / f"rank{run.rank}.pt")
    finally:
        distributed.stop(run)


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker(Path(sys.argv[2]))
