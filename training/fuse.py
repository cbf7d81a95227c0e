"""Fuse an ensemble of Cnn members into one ONNX graph that computes each distinct filter once.

Members pruned and fine-tuned from one parent usually keep the parent's conv1 (frozen during
fine-tuning), so an ensemble of M members would otherwise compute the same filters M times. The
fused graph walks the layers and, for every group of members that read the same tensor, runs ONE
layer whose output units are the union of the group's distinct (batch-norm folded) units; each
member then takes its own channels with Slice or Gather. Members whose selections are identical
keep sharing the next layer, so identical prefixes are computed once, however deep they go.
Activations and pooling act per channel, so they run on the union before the selection: the shared
work is done once there too.

Filters count as the same when their folded weights and bias are equal: exactly by default, or
within `tol` for conv1 (deeper layers always exact), where merging near-identical filters is a
measured trade-off rather than a free saving. The output is the arithmetic mean of the members'
softmax, as in Singh & Plumbley's ensemble.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from .nets import Cnn, InputView

INPUT_NAME = "logmel"
OUTPUT_NAME = "probabilities"
OPSET = 17
LAYER_NAMES = ("conv1", "conv2", "conv3", "dense", "output")

_ACTIVATIONS = (nn.Tanh, nn.ReLU)
_POOLS = (nn.AvgPool2d, nn.MaxPool2d)


@dataclass
class _Layer:
    """One member layer with batch norm folded in, plus what runs after it (activation, pooling)."""

    weight: np.ndarray  # float32, (out_units, ...): conv (out, in, kh, kw) or dense (out, in)
    bias: np.ndarray  # float32, (out_units,)
    conv: nn.Conv2d | None  # template for padding/stride (None for a dense layer)
    act: nn.Module | None = None
    pool: nn.Module | None = None
    flatten: bool = False  # flatten (N, C, H, W) -> (N, C*H*W) before a dense layer

    def key(self) -> tuple:
        """What two layers must share, besides their input, to run as one union layer."""
        geometry = None
        if self.conv is not None:
            c = self.conv
            geometry = (c.stride, c.padding, c.dilation, c.groups, c.padding_mode)
        return (
            self.weight.shape[1:],
            geometry,
            repr(self.act),
            repr(self.pool),
            self.flatten,
        )


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[np.ndarray, np.ndarray]:
    """Conv weights and bias with eval-mode batch norm folded in (float64 maths, float32 result)."""
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(w.shape[0]).double()
    if bn is not None:
        scale = bn.running_var.detach().double().add(bn.eps).rsqrt()
        if bn.weight is not None:
            scale = scale * bn.weight.detach().double()
        b = (b - bn.running_mean.detach().double()) * scale
        if bn.bias is not None:
            b = b + bn.bias.detach().double()
        w = w * scale.view(-1, 1, 1, 1)
    return w.float().numpy(), b.float().numpy()


def _member_layers(member: Cnn) -> list[_Layer]:
    """Walk a member's modules into folded layers; raise on a layout the fused graph can't hold."""
    layers: list[_Layer] = []
    pending_conv: nn.Conv2d | None = None
    flatten = False

    def close_conv(bn: nn.BatchNorm2d | None) -> None:
        nonlocal pending_conv
        if pending_conv is not None:
            w, b = _fold(pending_conv, bn)
            layers.append(_Layer(w, b, conv=pending_conv))
            pending_conv = None

    for module in [*member.features, *member.classifier]:
        if isinstance(module, nn.Conv2d):
            close_conv(None)
            if module.groups != 1:
                raise ValueError("grouped convolutions are not supported")
            pending_conv = module
        elif isinstance(module, nn.BatchNorm2d):
            if pending_conv is None:
                raise ValueError("batch norm without a preceding conv")
            close_conv(module)
        elif isinstance(module, nn.Linear):
            close_conv(None)
            w = module.weight.detach().float().numpy().copy()
            b = module.bias.detach().float().numpy().copy()
            layers.append(_Layer(w, b, conv=None, flatten=flatten))
            flatten = False
        else:
            close_conv(None)
            if isinstance(module, nn.Dropout):
                continue
            if isinstance(module, nn.Flatten):
                flatten = True
            elif isinstance(module, _ACTIVATIONS) and layers and layers[-1].act is None:
                if layers[-1].pool is not None:
                    raise ValueError("activation after pooling is not supported")
                layers[-1].act = module
            elif isinstance(module, _POOLS) and layers and layers[-1].pool is None:
                layers[-1].pool = module
            else:
                raise ValueError(f"cannot fuse module {module!r}")
    close_conv(None)
    return layers


class _UnionStage(nn.Module):
    """One layer over the union of a group's distinct units, then its activation and pooling."""

    def __init__(
        self, source: int, level: int, layer: _Layer, weight: np.ndarray, bias: np.ndarray
    ) -> None:
        super().__init__()
        self.source, self.level, self.flatten = source, level, layer.flatten
        w, b = torch.from_numpy(weight.copy()), torch.from_numpy(bias.copy())
        if layer.conv is not None:
            c = layer.conv
            self.op: nn.Module = nn.Conv2d(
                w.shape[1],
                w.shape[0],
                tuple(w.shape[2:]),
                stride=c.stride,
                padding=c.padding,
                dilation=c.dilation,
                padding_mode=c.padding_mode,
            )
        else:
            self.op = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            self.op.weight.copy_(w)
            self.op.bias.copy_(b)
        self.act = copy.deepcopy(layer.act) if layer.act is not None else nn.Identity()
        self.pool = copy.deepcopy(layer.pool) if layer.pool is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flatten:
            x = torch.flatten(x, 1)
        return self.pool(self.act(self.op(x)))

    def cost(self, x: torch.Tensor) -> tuple[int, int]:
        """(MACs, parameters) for one input, by the DCASE convention (docs/architecture.md 3)."""
        if self.flatten:
            x = torch.flatten(x, 1)
        y = self.op(x)
        params = self.op.weight.numel() + self.op.bias.numel()
        if isinstance(self.op, nn.Conv2d):
            macs = y[0].numel() * self.op.weight[0].numel()  # out_h*out_w*out_c * kh*kw*in_c/groups
        else:
            macs = self.op.weight.numel()
        if isinstance(self.pool, _POOLS):
            k = self.pool.kernel_size
            area = k * k if isinstance(k, int) else int(np.prod(k))
            macs += self.pool(self.act(y))[0].numel() * area
        return int(macs), int(params)


class _Select(nn.Module):
    """A member's channels (axis 1) of a union tensor: Slice when contiguous, Gather otherwise."""

    def __init__(self, source: int, indices: tuple[int, ...]) -> None:
        super().__init__()
        self.source = source
        first = indices[0]
        self.contiguous = indices == tuple(range(first, first + len(indices)))
        self.start, self.stop = first, first + len(indices)
        self.register_buffer("indices", torch.tensor(indices, dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.contiguous:
            return x[:, self.start : self.stop]
        return torch.index_select(x, 1, self.indices)


class _View(nn.Module):
    """A member family's input channels, made from the graph's input (node 0) once for all."""

    def __init__(self, view: str) -> None:
        super().__init__()
        self.source = 0
        self.make = InputView(view)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.make(x)


class FusedEnsemble(nn.Module):
    """The ensemble as one module: (N, 1, mels, frames) log-mel in, (N, classes) mean softmax out.

    `steps` run in order; step i writes node i + 1 (node 0 is the input) from node `step.source`.
    """

    def __init__(
        self,
        steps: list[nn.Module],
        member_nodes: list[int],
        input_shape: tuple[int, int, int],
        member_costs: list[list[tuple[int, int]]],
        member_units: list[list[int]],
    ) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)
        self.member_nodes = list(member_nodes)
        self.input_shape = input_shape
        self._member_costs = member_costs
        self._member_units = member_units
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = [x]
        for step in self.steps:
            values.append(step(values[step.source]))
        # Members that end on the same node share one Softmax but still count once each in the mean.
        probs: dict[int, torch.Tensor] = {}
        for node in self.member_nodes:
            if node not in probs:
                probs[node] = torch.softmax(values[node], dim=1)
        outs = [probs[node] for node in self.member_nodes]
        if len(outs) == 1:
            return outs[0]
        return torch.stack(outs).mean(dim=0)

    @torch.no_grad()
    def sharing(self) -> dict[str, dict[str, int]]:
        """Per layer: distinct units computed vs units the members hold in total, with MACs/params.

        Selections (Slice/Gather) cost nothing by the DCASE convention and are not counted.
        """
        n_levels = len(self._member_units[0])
        names = (
            list(LAYER_NAMES)
            if n_levels == len(LAYER_NAMES)
            else [f"layer{i + 1}" for i in range(n_levels)]
        )
        report = {
            name: {
                "distinct": 0,
                "total": 0,
                "macs_fused": 0,
                "macs_members": 0,
                "params_fused": 0,
                "params_members": 0,
            }
            for name in names
        }
        values = [torch.zeros((1, *self.input_shape))]
        for step in self.steps:
            x = values[step.source]
            if isinstance(step, _UnionStage):
                macs, params = step.cost(x)
                row = report[names[step.level]]
                row["distinct"] += step.op.weight.shape[0]
                row["macs_fused"] += macs
                row["params_fused"] += params
            values.append(step(x))
        for units, costs in zip(self._member_units, self._member_costs, strict=True):
            for name, n, (macs, params) in zip(names, units, costs, strict=True):
                report[name]["total"] += n
                report[name]["macs_members"] += macs
                report[name]["params_members"] += params
        report["all"] = {
            key: sum(row[key] for row in report.values()) for key in next(iter(report.values()))
        }
        return report


def _representative(
    reps: list[np.ndarray], index: dict[bytes, int], unit: np.ndarray, tol: float
) -> int:
    """Index of the first representative equal to `unit` (within tol), appending it when new."""
    if tol <= 0.0:
        k = (unit + 0.0).tobytes()  # + 0.0 makes -0.0 and 0.0 the same key
        if k not in index:
            index[k] = len(reps)
            reps.append(unit)
        return index[k]
    for i, rep in enumerate(reps):
        if float(np.max(np.abs(rep - unit))) <= tol:
            return i
    reps.append(unit)
    return len(reps) - 1


def _build(
    layer_lists: list[list[_Layer]], views: list[str], tol: float
) -> tuple[list[nn.Module], list[int]]:
    """Steps of the fused graph and each member's final node (see FusedEnsemble.forward).

    Members of one input view read one node, so only they can share conv1's filters.
    """
    steps: list[nn.Module] = []
    view_node = {"logmel": 0}
    for view in views:
        if view not in view_node:
            steps.append(_View(view))
            view_node[view] = len(steps)
    member_node = [view_node[view] for view in views]
    for level in range(len(layer_lists[0])):
        groups: dict[tuple, list[int]] = {}
        for m, layers in enumerate(layer_lists):
            groups.setdefault((member_node[m], *layers[level].key()), []).append(m)
        for (source, *_), members in groups.items():
            reps: list[np.ndarray] = []
            index: dict[bytes, int] = {}
            selections: dict[int, tuple[int, ...]] = {}
            for m in members:
                layer = layer_lists[m][level]
                flat = layer.weight.reshape(layer.weight.shape[0], -1)
                units = np.concatenate([flat, layer.bias[:, None]], axis=1)
                selections[m] = tuple(
                    _representative(reps, index, u, tol if level == 0 else 0.0) for u in units
                )
            template = layer_lists[members[0]][level]
            stacked = np.stack(reps)
            weight = stacked[:, :-1].reshape((len(reps), *template.weight.shape[1:]))
            steps.append(_UnionStage(source, level, template, weight, stacked[:, -1]))
            union_node = len(steps)
            select_nodes: dict[tuple[int, ...], int] = {}
            for m in members:
                sel = selections[m]
                if sel == tuple(range(len(reps))):
                    member_node[m] = union_node
                    continue
                if sel not in select_nodes:
                    steps.append(_Select(union_node, sel))
                    select_nodes[sel] = len(steps)
                member_node[m] = select_nodes[sel]
    return steps, member_node


@torch.no_grad()
def fuse(members: list[Cnn], tol: float = 0.0) -> FusedEnsemble:
    """One module computing the mean softmax of `members`, each distinct filter computed once.

    `tol` > 0 merges conv1 filters whose folded weights and bias differ by at most `tol` (max abs),
    which changes the members' outputs: measure the accuracy before shipping such a model.
    """
    if not members:
        raise ValueError("need at least one member")
    configs = [m.config for m in members]
    shape = {(c.n_mels, c.n_frames) for c in configs}
    if len(shape) != 1 or len({c.n_classes for c in configs}) != 1:
        raise ValueError("members must share input shape and number of classes")
    n_mels, n_frames = shape.pop()
    layer_lists = [_member_layers(m) for m in members]
    if len({len(layers) for layers in layer_lists}) != 1:
        raise ValueError("members must have the same number of layers")
    views = [c.view for c in configs]
    steps, member_nodes = _build(layer_lists, views, tol)
    input_shape = (1, n_mels, n_frames)

    # Each member's own cost, from the same counting code run on it alone (tol 0: nothing merged).
    member_costs = []
    for layers, view in zip(layer_lists, views, strict=True):
        alone, _ = _build([layers], [view], 0.0)
        x, costs = torch.zeros((1, *input_shape)), []
        for step in alone:
            if isinstance(step, _UnionStage):
                costs.append(step.cost(x))
            x = step(x)
        member_costs.append(costs)
    member_units = [[layer.weight.shape[0] for layer in layers] for layers in layer_lists]
    return FusedEnsemble(steps, member_nodes, input_shape, member_costs, member_units)


class _WithSoftmax(nn.Module):
    """A member returning probabilities: one model exports with the ensemble's IO contract."""

    def __init__(self, member: Cnn) -> None:
        super().__init__()
        self.member = member
        self.input_shape = (1, member.config.n_mels, member.config.n_frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.member(x), dim=1)


def _input_shape(module: nn.Module) -> tuple[int, ...]:
    if hasattr(module, "input_shape"):
        return tuple(module.input_shape)
    config = getattr(module, "config", None)
    if config is not None:
        return (1, config.n_mels, config.n_frames)
    raise ValueError("module has neither input_shape nor config: cannot make an example input")


def export_onnx(
    module: nn.Module, path: Path, metadata: dict[str, str] | None = None
) -> onnx.ModelProto:
    """Write `module` (which must return probabilities) as ONNX, batch dimension dynamic.

    Uses the TorchScript exporter (dynamo=False): it needs no onnxscript and folds eval-mode batch
    norm and the selection indices into constants.
    """
    path = Path(path)
    modes = [(m, m.training) for m in module.modules()]  # restored one by one: eval is temporary
    module.eval()
    example = torch.zeros((2, *_input_shape(module)), dtype=torch.float32)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                (example,),
                str(path),
                dynamo=False,
                opset_version=OPSET,
                do_constant_folding=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            )
    finally:
        for m, training in modes:
            m.training = training
    proto = onnx.load(str(path))
    if metadata:
        onnx.helper.set_model_props(proto, {**_props(proto), **metadata})
        onnx.save(proto, str(path))
    onnx.checker.check_model(proto)
    return proto


def _props(proto: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


def export_member(
    member: Cnn, path: Path, metadata: dict[str, str] | None = None
) -> onnx.ModelProto:
    """One member alone, softmax included and the same IO names: the unfused comparison point."""
    return export_onnx(_WithSoftmax(member), path, metadata)
