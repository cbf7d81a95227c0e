"""Passive, data-free, structured filter pruning (Singh & Plumbley 2022; docs/architecture.md 2).

Filters that look alike compute near-identical feature maps, so one of each close pair can go
without looking at any data. The pruned model is physically smaller (fewer channels, fewer MACs),
unlike zeroed-weight pruning, and is fine-tuned afterwards.

Choices made here, where the paper leaves room:
- The raw trained conv weights are compared, as in the authors' code. Folding BN would scale each
  filter by gamma / sqrt(var + eps); the normalised rank-1 prototype ignores a positive scale, so
  the two differ only where gamma < 0 (a sign flip) -- and the bias never enters.
- The prototype is the whole rank-1 approximation u1 s1 v1^T of the (k*k) x in_channels filter
  matrix, flattened and L2-normalised. It is sign-unambiguous (u1 and v1 flip together). The
  authors' script keeps only its first column, i.e. +-u1 with the sign of v1[0]: the same for
  conv1 (one input channel), slightly different for deeper layers.
- Each layer is ranked on the unpruned parent's weights, independently of the other layers, so C12
  keeps exactly C1's conv1 filters and C2's conv2 filters (what fusion and deduplication rely on).
- If one greedy walk marks fewer than n_remove filters, the walk is repeated on the survivors.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .nets import Cnn, CnnConfig

# Released members of Singh & Plumbley: layer number -> filters removed (16->12, 16->12, 32->22).
PAPER_MEMBERS: dict[str, dict[int, int]] = {
    "C1": {1: 4},
    "C2": {2: 4},
    "C3": {3: 10},
    "C12": {1: 4, 2: 4},
    "C23": {2: 4, 3: 10},
    "C123": {1: 4, 2: 4, 3: 10},
}


def rank1_prototypes(weight: torch.Tensor | np.ndarray) -> np.ndarray:
    """One unit vector per filter: the flattened rank-1 approximation of its (k*k) x in matrix."""
    w = np.asarray(
        weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else weight,
        dtype=np.float64,
    )
    if w.ndim != 4:
        raise ValueError(f"expected a conv weight (out, in, k_h, k_w), got shape {w.shape}")
    n_out, n_in, k_h, k_w = w.shape
    # (out, in, kh, kw) -> (out, kh*kw, in): each filter as a (k*k) x in_channels matrix
    matrices = w.transpose(0, 2, 3, 1).reshape(n_out, k_h * k_w, n_in)
    u, s, vh = np.linalg.svd(matrices, full_matrices=False)
    rank1 = s[:, :1, None] * u[:, :, :1] * vh[:, :1, :]
    flat = rank1.reshape(n_out, -1)
    norms = np.linalg.norm(flat, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("an all-zero filter has no direction, so no similarity to rank")
    return flat / norms


def cosine_distances(weight: torch.Tensor | np.ndarray) -> np.ndarray:
    """Pairwise cosine distances (0 = same direction, 2 = opposite) between rank-1 prototypes."""
    p = rank1_prototypes(weight)
    d = 1.0 - p @ p.T
    d = (d + d.T) / 2  # exactly symmetric, so tied pairs sort the same way on every machine
    np.fill_diagonal(d, 0.0)
    return np.clip(d, 0.0, 2.0)


def similarity_ranking(weight: torch.Tensor | np.ndarray) -> list[tuple[int, int, float]]:
    """(filter, nearest other filter, distance) per filter, closest pairs first (ties by index)."""
    d = cosine_distances(weight)
    if len(d) < 2:
        return []
    masked = d.copy()
    np.fill_diagonal(masked, np.inf)
    nearest = np.argmin(masked, axis=1)  # lowest index wins ties
    dist = masked[np.arange(len(d)), nearest]
    order = np.argsort(dist, kind="stable")
    return [(int(i), int(nearest[i]), float(dist[i])) for i in order]


def _greedy_walk(ranking: list[tuple[int, int, float]], n_remove: int) -> list[int]:
    redundant: list[int] = []
    for keep, partner, _ in ranking:
        if len(redundant) >= n_remove:
            break
        if keep in redundant or partner in redundant:
            continue
        redundant.append(partner)
    return redundant


def redundant_filters(weight: torch.Tensor | np.ndarray, n_remove: int) -> list[int]:
    """Indices (sorted) of the n_remove filters the greedy nearest-pair walk marks redundant."""
    n_filters = int(weight.shape[0])
    if not 0 <= n_remove < n_filters:
        raise ValueError(f"can remove 0..{n_filters - 1} of {n_filters} filters, not {n_remove}")
    redundant: list[int] = []
    alive = list(range(n_filters))
    while len(redundant) < n_remove:
        ranking = similarity_ranking(weight[alive])
        marked = _greedy_walk(ranking, n_remove - len(redundant))
        redundant += [alive[i] for i in marked]
        alive = [f for f in alive if f not in redundant]
    return sorted(redundant)


def pruned_config(config: CnnConfig, remove: dict[int, int]) -> CnnConfig:
    """The shape `prune` gives a model of this config: known before any training, so a member's
    cost can be counted (and the MAC budget applied) without a trained parent."""
    channels = tuple(c - remove.get(i, 0) for i, c in enumerate(config.channels, start=1))
    return config.with_channels(channels)


def prune(model: Cnn, remove: dict[int, int]) -> tuple[Cnn, dict[int, list[int]]]:
    """A new, smaller Cnn without the redundant filters of the given layers, plus kept indices.

    `remove` maps conv number (1, 2, 3) to how many filters to remove. Copied per layer: the kept
    output filters and their BN entries, and the kept input channels of what reads them (the next
    conv, or for conv3 the matching (h*w)-column blocks of the first Linear: flatten is c3, h, w).
    The source model must still have its BatchNorm layers (prune before `fold_batchnorm`).
    """
    unknown = set(remove) - {1, 2, 3}
    if unknown:
        raise ValueError(f"conv layers are numbered 1, 2, 3; got {sorted(unknown)}")
    pairs = model.convs()
    for conv, bn in pairs:
        if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
            raise TypeError("prune needs the unfolded model: each conv followed by BatchNorm2d")
    kept: dict[int, list[int]] = {}
    for layer, (conv, _) in enumerate(pairs, start=1):
        n_out = conv.out_channels
        gone = set(redundant_filters(conv.weight, remove.get(layer, 0)))
        kept[layer] = [i for i in range(n_out) if i not in gone]

    config = pruned_config(model.config, remove)
    with torch.random.fork_rng(devices=[]):  # building the new model must not move the seed
        pruned = Cnn(config).to(next(model.parameters()).device)
    with torch.no_grad():
        inputs = list(range(model.config.in_channels()))  # conv1 reads every view channel
        for layer, ((src_conv, src_bn), (dst_conv, dst_bn)) in enumerate(
            zip(pairs, pruned.convs(), strict=True), start=1
        ):
            out = torch.tensor(kept[layer])
            in_ = torch.tensor(inputs)
            dst_conv.weight.copy_(src_conv.weight[out][:, in_])
            dst_conv.bias.copy_(src_conv.bias[out])
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(dst_bn, name).copy_(getattr(src_bn, name)[out])
            dst_bn.num_batches_tracked.copy_(src_bn.num_batches_tracked)
            inputs = kept[layer]
        h, w = model.config.pooled_shape()
        src_fc, dst_fc = model.classifier[1], pruned.classifier[1]
        columns = src_fc.weight.reshape(src_fc.out_features, -1, h * w)[:, torch.tensor(kept[3])]
        dst_fc.weight.copy_(columns.reshape(src_fc.out_features, -1))
        dst_fc.bias.copy_(src_fc.bias)
        pruned.classifier[4].load_state_dict(model.classifier[4].state_dict())
    pruned.train(model.training)
    return pruned, kept
