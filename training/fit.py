"""Training and evaluation loops, deterministic for a given seed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from edge_asc.training import backgrounds, distributed
from edge_asc.training.data import ClipFrames
from edge_asc.training.nets import Cnn, CnnConfig

Progress = Callable[[int, int, float], None]  # (epoch, epochs, loss) after each epoch


@dataclass(frozen=True)
class FitOptions:
    epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-3  # peak of a one-cycle cosine schedule
    weight_decay: float = 1e-4
    seed: int = 0
    frozen_convs: tuple[int, ...] = ()  # 1-based conv layers kept fixed (weights and BN stats)
    distill: float = 0.0  # weight of the teacher's softened outputs in the loss (0: labels only)
    temperature: float = 2.0  # softening of teacher and student logits for distillation
    mixup: float = 0.0  # alpha of the Beta(alpha, alpha) mixing weight of window pairs (0: off)
    mask_bands: int = 0  # widest run of mel bands zeroed per window, SpecAugment style (0: off)
    mask_frames: int = 0  # widest run of frames zeroed per window (0: off)
    gain_db: float = 0.0  # each drawn window louder or quieter by up to this (0: off; needs clips)
    mixstyle: float = 0.0  # share of batches given Freq-MixStyle (0: off)
    mixstyle_alpha: float = 0.3  # Beta(alpha, alpha) weight of a window's own band statistics
    background_share: float = 0.0  # share of drawn windows mixed over a background (needs clips)
    background_snr_db: tuple[float, float] = (0.0, 20.0)  # their signal-to-background ratio


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    torch.use_deterministic_algorithms(True)


def new_model(config: CnnConfig, seed: int) -> Cnn:
    """A freshly initialised model: the same seed gives the same weights."""
    seed_everything(seed)
    return Cnn(config)


def _freeze(model: Cnn, layers: tuple[int, ...]) -> None:
    for index in layers:
        conv, bn = model.convs()[index - 1]
        for module in (conv, bn):
            module.eval()  # BN running statistics stay as they are
            for p in module.parameters():
                p.requires_grad_(False)


def fit(
    model: Cnn,
    x: np.ndarray | None,
    y: np.ndarray,
    options: FitOptions,
    progress: Progress | None = None,
    teacher: nn.Module | None = None,
    clips: ClipFrames | None = None,
    run: distributed.Run | None = None,
) -> Cnn:
    """AdamW with a one-cycle schedule; frozen convs keep their filters bit for bit.

    With `clips`, every epoch cuts as many windows from each clip as its fixed grid holds, at
    random starts, so `y` (one label per grid window, clip after clip) still labels them; `x`
    is then not needed.

    Frozen first layers are what make shared-filter deduplication exact in the fused ensemble.
    With a `teacher` (the unpruned parent) and `options.distill` > 0, a pruned member also learns
    the parent's softened outputs (Hinton et al.'s distillation), which recovers what pruning
    removed with fewer epochs than labels alone.

    With a `run` on a GPU or on several ranks, `options.batch_size` is the global batch: each
    rank takes its share of every step's windows, batch norm spans the ranks and the gradients
    are averaged, so the steps are those of one process (see `distributed`). The model comes
    back on the CPU either way.
    """
    run = run or distributed.Run(torch.device("cpu"))
    seed_everything(options.seed)
    if run.device.type == "cuda":  # a few CUDA kernels have no deterministic version: warn
        torch.use_deterministic_algorithms(True, warn_only=True)
    if run.rank > 0:  # dropout masks of their own; the windows' order stays shared
        torch.manual_seed(options.seed + 7919 * run.rank)
    # channels_last: oneDNN's NHWC convolutions train these small CNNs about 1.6x faster on CPU.
    model.to(run.device, memory_format=torch.channels_last)
    if teacher is not None:
        teacher.to(run.device, memory_format=torch.channels_last)
    try:
        with distributed.synced_batchnorm(run, model):
            _epochs(model, x, y, options, progress, teacher, clips, run)
    finally:  # plain layout again: pruning, export and saving index the weights directly
        model.to("cpu", memory_format=torch.contiguous_format)
        if teacher is not None:
            teacher.to("cpu", memory_format=torch.contiguous_format)
    model.eval()
    return model


def _epochs(
    model: Cnn,
    x: np.ndarray | None,
    y: np.ndarray,
    options: FitOptions,
    progress: Progress | None,
    teacher: nn.Module | None,
    clips: ClipFrames | None,
    run: distributed.Run,
) -> None:
    generator = torch.Generator().manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)  # mixup weights (torch has no seeded Beta draw)
    if clips is not None and int(clips.counts.sum()) != len(y):
        raise ValueError(f"{len(y)} labels but the clips give {int(clips.counts.sum())} windows")
    if clips is None and x is None:
        raise ValueError("fit needs windows or clips to draw them from")
    device = run.device
    yt = torch.from_numpy(y.astype(np.int64)).to(device)
    xt = _on(torch.from_numpy(x), device) if clips is None else torch.empty((len(y), 0))
    params = [p for p in model.parameters() if p.requires_grad]
    if run.world_size > 1:  # DDP takes the parameters that need gradients when it is made
        _freeze(model, options.frozen_convs)
    net = _wrap(model, run)
    optimizer = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
    steps_per_epoch = max(1, -(-len(xt) // options.batch_size))
    total_steps = options.epochs * steps_per_epoch
    # OneCycleLR divides by its warm-up length in steps minus one: zero when it is exactly one
    # step (5 steps in all, a tiny data set), so warm up a little longer there.
    warmup = 0.2 if abs(0.2 * total_steps - 1) > 1e-9 else 0.4
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=options.lr, total_steps=total_steps, pct_start=warmup
    )
    loss_fn = nn.CrossEntropyLoss()
    if teacher is not None:
        teacher.eval()
    smallest = max(2, run.world_size)  # batch norm cannot train on one window; every rank some
    for epoch in range(options.epochs):
        if clips is not None:
            drawn = _gain(clips.draw(rng), clips, options.gain_db, rng)
            drawn = _background(drawn, clips, options, rng)
            xt = _on(torch.from_numpy(drawn), device)
        net.train()
        _freeze(model, options.frozen_convs)
        order = torch.randperm(len(xt), generator=generator)
        total, seen = 0.0, 0
        for start in range(0, len(xt), options.batch_size):
            idx = order[start : start + options.batch_size]
            if len(idx) < smallest:
                continue
            optimizer.zero_grad(set_to_none=True)
            # The whole global batch is augmented and mixed on every rank, from the shared
            # generators, then dealt out: each window gets what it would get in one process.
            xb, yb = _augment(xt[idx.to(xt.device)].to(device), options, generator), yt[idx]
            xb = _mixstyle(xb, options, generator, rng)
            lam, partner = _mix(len(idx), options.mixup, generator, rng)
            if partner is not None:
                xb = lam * xb + (1 - lam) * xb[partner]
            yp = None if partner is None else yb[partner.to(device)]
            if run.world_size > 1:
                mine = distributed.shard(run, torch.arange(len(idx), device=device))
                xb, yb = xb[mine], yb[mine]
                yp = None if yp is None else yp[mine]
            xb = xb.contiguous(memory_format=torch.channels_last)
            with _precision(run):
                logits = net(xb)
                loss = loss_fn(logits, yb)
                if yp is not None:
                    loss = lam * loss + (1 - lam) * loss_fn(logits, yp)
                if teacher is not None and options.distill > 0:
                    loss = (1 - options.distill) * loss + options.distill * _distillation(
                        logits, teacher, xb, options.temperature
                    )
            if run.world_size > 1:
                # DDP averages the ranks' gradients: weigh each rank's mean by its share of the
                # global batch, so the average is the gradient of the global batch's mean loss
                # even when the batch does not divide evenly.
                loss = loss * (len(yb) * run.world_size / len(idx))
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx) / run.world_size
            seen += len(idx)
        if run.world_size > 1:
            total = distributed.all_sum(run, [total])[0]
        if progress:
            progress(epoch + 1, options.epochs, total / max(seen, 1))


def _wrap(model: Cnn, run: distributed.Run) -> nn.Module:
    """DistributedDataParallel on several ranks (its gradient all-reduce overlaps the backward
    pass); the model itself on one."""
    if run.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [run.device.index] if run.device.type == "cuda" else None
    # The ranks' batch norm statistics are the same (synced), so there is nothing to broadcast.
    return DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def _on(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """An epoch's windows as one tensor on the GPU when they fit in half its free memory (one
    copy an epoch, then every batch is a gather on the GPU), else left in host memory, each
    batch copied over as it is drawn; on a CPU, as they are."""
    if device.type != "cuda":
        return x
    free, _ = torch.cuda.mem_get_info(device)
    return x.to(device) if x.numel() * x.element_size() < free // 2 else x


def _precision(run: distributed.Run) -> contextlib.AbstractContextManager[object]:
    """bf16 autocast on a GPU (convolutions and matrix products in bf16; batch norm, softmax
    and the losses in fp32, by autocast's own lists); nothing on a CPU, which stays fp32."""
    if run.device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _augment(x: torch.Tensor, options: FitOptions, generator: torch.Generator) -> torch.Tensor:
    """SpecAugment-style masks: one run of mel bands and one of frames set to the mean (zero
    after normalisation), so no single band or moment can carry a decision on its own."""
    if not (options.mask_bands or options.mask_frames):
        return x
    x = x.clone()
    n = len(x)
    for axis, widest in ((2, options.mask_bands), (3, options.mask_frames)):
        if widest <= 0:
            continue
        size = x.shape[axis]
        width = torch.randint(0, widest + 1, (n, 1), generator=generator)
        start = (torch.rand((n, 1), generator=generator) * (size - width + 1)).long()
        where = torch.arange(size)[None, :]
        hit = (where >= start) & (where < start + width)  # (n, size)
        shape = (n, 1, size, 1) if axis == 2 else (n, 1, 1, size)
        x.masked_fill_(hit.view(shape).to(x.device), 0.0)
    return x


def _mixstyle(
    x: torch.Tensor, options: FitOptions, generator: torch.Generator, rng: np.random.Generator
) -> torch.Tensor:
    """Freq-MixStyle (Kim et al.; the CP-JKU DCASE systems): each window's per-band mean and
    spread over time are mixed with another window's, so the band balance a recording device or
    a room gives a clip (what separates one fold's air conditioners from another's) stops being
    a cue, while the band's shape over time, the sound itself, is kept."""
    if options.mixstyle <= 0 or float(rng.random()) >= options.mixstyle:
        return x
    mean = x.mean(dim=3, keepdim=True)
    std = (x.var(dim=3, keepdim=True) + 1e-6).sqrt()
    partner = torch.randperm(len(x), generator=generator).to(x.device)
    lam = rng.beta(options.mixstyle_alpha, options.mixstyle_alpha, size=(len(x), 1, 1, 1))
    lam_t = torch.from_numpy(lam.astype(np.float32)).to(x.device)
    mixed_mean = lam_t * mean + (1 - lam_t) * mean[partner]
    mixed_std = lam_t * std + (1 - lam_t) * std[partner]
    return (x - mean) / std * mixed_std + mixed_mean


def _gain(
    x: np.ndarray, clips: ClipFrames, gain_db: float, rng: np.random.Generator
) -> np.ndarray:
    """A random gain per window, uniform in +-gain_db: in log-mel it is one offset per band
    (exact above the log floor), so it costs an addition rather than a new front-end pass."""
    if gain_db <= 0 or clips.db_step is None:
        return x
    db = rng.uniform(-gain_db, gain_db, size=(len(x), 1, 1, 1)).astype(np.float32)
    return x + db * clips.db_step.astype(np.float32)[None, None, :, None]


def _background(
    x: np.ndarray, clips: ClipFrames, options: FitOptions, rng: np.random.Generator
) -> np.ndarray:
    """A share of the windows over recorded scenes, after the gain, so the ratio is the
    window's as heard (see `backgrounds`)."""
    if options.background_share <= 0 or clips.background is None:
        return x
    return backgrounds.mix(
        x, clips.background, options.background_share, options.background_snr_db, rng
    )


def _mix(
    n: int, alpha: float, generator: torch.Generator, rng: np.random.Generator
) -> tuple[float, torch.Tensor | None]:
    """Mixup (Zhang et al.): one Beta-drawn weight per batch and a shuffled partner per window;
    it keeps these small models from the overconfidence that clip averaging punishes."""
    if alpha <= 0:
        return 1.0, None
    return float(rng.beta(alpha, alpha)), torch.randperm(n, generator=generator)


def _distillation(
    logits: torch.Tensor, teacher: nn.Module, x: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL divergence to the teacher's softened outputs, times T^2 to keep gradients comparable."""
    with torch.no_grad():
        target = torch.log_softmax(teacher(x) / temperature, dim=1)
    student = torch.log_softmax(logits / temperature, dim=1)
    kl = nn.functional.kl_div(student, target, log_target=True, reduction="batchmean")
    return kl * temperature**2


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Softmax probabilities of a torch model, (n, n_classes) float32."""
    model.eval()
    out = [
        torch.softmax(model(torch.from_numpy(x[i : i + batch_size])), dim=1).numpy()
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(out) if out else np.empty((0, 0), dtype=np.float32)


def clip_probabilities(window_probs: np.ndarray, clip_index: np.ndarray) -> np.ndarray:
    """Average each clip's window probabilities: the clip-level verdict, as `classify` gives."""
    n_clips = int(clip_index.max()) + 1
    sums = np.zeros((n_clips, window_probs.shape[1]), dtype=np.float64)
    np.add.at(sums, clip_index, window_probs)
    counts = np.bincount(clip_index, minlength=n_clips)[:, None]
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def clip_accuracy(
    window_probs: np.ndarray, clip_index: np.ndarray, clip_labels: np.ndarray
) -> float:
    probs = clip_probabilities(window_probs, clip_index)
    return float(np.mean(probs.argmax(axis=1) == clip_labels))


def log_loss(probs: np.ndarray, labels: np.ndarray) -> float:
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
