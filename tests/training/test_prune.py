"""Passive similarity-based filter pruning: the ranking, and a pruned model equal to a masked."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from edge_asc.training.complexity import count_cnn
from edge_asc.training.nets import Cnn, CnnConfig, baseline_config, singh_config
from edge_asc.training.prune import (
    PAPER_MEMBERS,
    cosine_distances,
    prune,
    redundant_filters,
    similarity_ranking,
)

torch.set_num_threads(1)


def _random_model(seed: int = 0, config: CnnConfig | None = None) -> Cnn:
    """A trained-free Cnn with non-trivial BN statistics, in eval mode."""
    torch.manual_seed(seed)
    model = Cnn(config or singh_config(3))
    with torch.no_grad():
        for _, bn in model.convs():
            n = bn.num_features
            bn.weight.copy_(torch.randn(n))
            bn.bias.copy_(torch.randn(n))
            bn.running_mean.copy_(torch.randn(n) * 0.1)
            bn.running_var.copy_(torch.rand(n) + 0.5)
    return model.eval()


def _masked(model: Cnn, kept: dict[int, list[int]]) -> Cnn:
    """The original model with each removed filter's outgoing weights zeroed, so it is ignored."""
    masked = copy.deepcopy(model).eval()
    convs = masked.convs()
    h, w = model.config.pooled_shape()
    with torch.no_grad():
        for layer in (1, 2, 3):
            n_out = convs[layer - 1][0].out_channels
            removed = [i for i in range(n_out) if i not in kept[layer]]
            if layer < 3:
                convs[layer][0].weight[:, removed] = 0.0
            else:
                fc = masked.classifier[1]
                fc.weight.view(fc.out_features, n_out, h * w)[:, removed] = 0.0
    return masked


def test_duplicate_filters_pair_first() -> None:
    torch.manual_seed(0)
    weight = torch.randn(8, 4, 3, 3)
    weight[5] = 2.0 * weight[2]  # same direction: rank-1 prototypes equal, distance 0
    ranking = similarity_ranking(weight)
    first, partner, distance = ranking[0]
    assert {first, partner} == {2, 5}
    assert distance == pytest.approx(0.0, abs=1e-12)
    assert cosine_distances(weight)[2, 5] == pytest.approx(0.0, abs=1e-12)
    redundant = redundant_filters(weight, 1)
    assert len(redundant) == 1
    assert redundant[0] in (2, 5)
    assert redundant == [5]  # ties broken by index: the lower one is kept


def test_negated_filter_is_far() -> None:
    # The rank-1 product u1 s1 v1^T has no SVD sign ambiguity: a negated filter is opposite.
    weight = torch.randn(4, 3, 3, 3)
    weight[1] = -weight[0]
    assert cosine_distances(weight)[0, 1] == pytest.approx(2.0, abs=1e-9)


def test_conv1_prototype_is_the_filter_itself() -> None:
    # One input channel: the (k*k) x 1 matrix is its own rank-1 approximation.
    weight = torch.randn(6, 1, 3, 3, dtype=torch.float64)
    flat = weight.reshape(6, -1).numpy()
    flat = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    np.testing.assert_allclose(cosine_distances(weight), 1 - flat @ flat.T, atol=1e-12)


def test_greedy_walk_counts_and_bounds() -> None:
    weight = torch.randn(32, 16, 3, 3, generator=torch.Generator().manual_seed(3))
    for n in (0, 1, 10, 20, 31):
        redundant = redundant_filters(weight, n)
        assert len(redundant) == n == len(set(redundant))
        assert redundant == sorted(redundant)
    with pytest.raises(ValueError):
        redundant_filters(weight, 32)
    # The first pair of the ranking always loses its partner.
    _, partner, _ = similarity_ranking(weight)[0]
    assert partner in redundant_filters(weight, 1)


def test_prune_c123_shapes_and_size() -> None:
    model = _random_model()
    pruned, kept = prune(model, PAPER_MEMBERS["C123"])
    assert pruned.config.channels == (12, 12, 22)
    assert [len(kept[i]) for i in (1, 2, 3)] == [12, 12, 22]
    assert pruned is not model
    assert model.config.channels == (16, 16, 32)  # source untouched
    before, after = count_cnn(model.config), count_cnn(pruned.config)
    assert after.parameters < before.parameters
    assert (after.parameters, after.macs) == (9_336, 3_085_400)
    bn_affine = 2 * sum((12, 12, 22))  # folded away in the DCASE count
    assert sum(p.numel() for p in pruned.parameters()) - bn_affine == after.parameters


@pytest.mark.parametrize("member", sorted(PAPER_MEMBERS))
def test_pruned_equals_masked(member: str) -> None:
    model = _random_model(seed=1)
    pruned, kept = prune(model, PAPER_MEMBERS[member])
    x = torch.randn(3, 1, 40, 51)
    with torch.no_grad():
        expected = _masked(model, kept)(x)
        got = pruned.eval()(x)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        # ...and masking changed the output far more than that, so the check has teeth
        assert (got - expected).abs().max() * 100 < (model(x) - expected).abs().max()


def test_pruned_centred_view_keeps_both_input_channels() -> None:
    model = _random_model(seed=2, config=replace(singh_config(5), view="logmel+centred"))
    pruned, kept = prune(model, PAPER_MEMBERS["C123"])
    assert pruned.config.view == "logmel+centred"
    assert pruned.features[0].weight.shape[1] == 2
    x = torch.randn(3, 1, 40, 51)
    with torch.no_grad():
        torch.testing.assert_close(pruned.eval()(x), _masked(model, kept)(x), atol=1e-5, rtol=1e-5)


def test_pruned_equals_masked_baseline_7x7() -> None:
    model = _random_model(seed=2, config=baseline_config())
    pruned, kept = prune(model, {1: 3, 3: 5})
    assert pruned.config.channels == (13, 16, 27)
    x = torch.randn(2, 1, 40, 51)
    with torch.no_grad():
        torch.testing.assert_close(pruned.eval()(x), _masked(model, kept)(x), atol=1e-5, rtol=1e-5)


def test_layers_ranked_independently() -> None:
    # C12 keeps exactly C1's conv1 filters and C2's conv2 filters (fusion relies on it).
    model = _random_model(seed=4)
    _, k1 = prune(model, PAPER_MEMBERS["C1"])
    _, k2 = prune(model, PAPER_MEMBERS["C2"])
    _, k12 = prune(model, PAPER_MEMBERS["C12"])
    assert k12[1] == k1[1] and k12[2] == k2[2] and k12[3] == list(range(32))


def test_prune_is_deterministic() -> None:
    a, kept_a = prune(_random_model(seed=5), PAPER_MEMBERS["C123"])
    b, kept_b = prune(_random_model(seed=5), PAPER_MEMBERS["C123"])
    assert kept_a == kept_b
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_prune_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        prune(_random_model(), {4: 1})


def test_prune_leaves_global_rng_alone() -> None:
    model = _random_model(seed=6)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    prune(model, PAPER_MEMBERS["C3"])
    assert torch.equal(torch.rand(3), expected)
