"""Activation plans: which activation goes into which slot of a model.

A plan is a sequence of :class:`~aaf_search.config.PlanEntry` rules. Each rule's selector matches slots
by ``all``, ``tag:TAG``, an exact slot name or a glob over slot names; later rules override earlier ones.
Slots that no rule matches keep the model's base activation.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from aaf_search import activations
from aaf_search.config import ActivationSpec, PlanEntry
from aaf_search.errors import UserError
from aaf_search.trials.discover import slot_shapes, wrap_activations
from aaf_search.trials.report import ParamStats, ParamSummary
from aaf_search.trials.slots import dataset_slot_tags, iter_slots

MAX_SUMMARY_VALUES = 32
"""Vector parameters up to this many values keep all of them in the per-epoch summary (see ParamStats)."""

SHARING_ATTR = "plan_shape"
"""Attribute :func:`apply_plan` sets on each activation it puts in: the spec's shape (network, layer, ...)."""


class PlanError(UserError):
    """A plan selector matches no slot, or an activation does not fit the slot it was put in."""


@dataclass(frozen=True)
class SlotInfo:
    """A slot's name, tags and the per-sample shapes that pass through it (several if reused)."""

    name: str
    tags: frozenset[str]
    shapes: tuple[tuple[int, ...], ...]


def dataset_slots(model: str, dataset: str) -> dict[str, SlotInfo]:
    """:func:`~aaf_search.trials.slots.dataset_slot_tags` as :class:`SlotInfo`, for resolving a plan's
    selectors without a forward pass (so with no shapes)."""
    return {name: SlotInfo(name, tags, ()) for name, tags in dataset_slot_tags(model, dataset)}


def describe_slots(model: nn.Module, example_input: Tensor) -> dict[str, SlotInfo]:
    """Name, tags and shapes of every slot, measured with one forward pass of ``example_input``."""
    shapes = slot_shapes(model, example_input)
    return {
        name: SlotInfo(name, slot.tags, tuple(tuple(s) for s in shapes.get(name, [])))
        for name, slot in iter_slots(model)
    }


def select_slots(slots: Mapping[str, SlotInfo], selector: str) -> list[str]:
    """The slot names matched by ``selector`` (``all``, ``tag:TAG``, a name, or a glob)."""
    if selector == "all":
        matched = list(slots)
    elif selector.startswith("tag:"):
        tag = selector[4:]
        matched = [name for name, info in slots.items() if tag in info.tags]
    else:
        matched = [name for name in slots if name == selector or fnmatch.fnmatchcase(name, selector)]
    if not matched:
        tags = sorted({tag for info in slots.values() for tag in info.tags})
        raise PlanError(
            f"selector '{selector}' matches no activation slot; slots: {', '.join(slots) or 'none'}; "
            f"tags: {', '.join('tag:' + t for t in tags) or 'none'}; or 'all'"
        )
    return matched


def resolve_plan(plan: Sequence[PlanEntry], slots: Mapping[str, SlotInfo]) -> dict[str, int]:
    """Slot name -> index of the plan entry that decides it (the last matching entry wins)."""
    decided: dict[str, int] = {}
    for index, entry in enumerate(plan):
        for name in select_slots(slots, entry.select):
            decided[name] = index
    return decided


def build_activation(spec: ActivationSpec, info: SlotInfo) -> nn.Module:
    """Create the activation for one slot, sized from the shape that passes through the slot."""
    shape = info.shapes[0] if info.shapes else None
    if spec.shape in ("channel", "neuron") and len(set(info.shapes)) > 1:
        raise PlanError(
            f"slot '{info.name}' is used with several shapes {list(info.shapes)}; "
            f"shape '{spec.shape}' needs one, use 'layer' or 'network'"
        )
    try:
        module = activations.create(
            spec.family,
            init=spec.init,
            shape=spec.shape,
            channels=int(shape[0]) if shape else None,
            input_shape=shape,
            **spec.options,
        )
    except activations.ActivationError as exc:
        raise PlanError(f"slot '{info.name}' (shape {shape}): {exc}") from exc
    if not spec.trainable:
        module.requires_grad_(False)
    return module


def apply_plan(model: nn.Module, plan: Sequence[PlanEntry], example_input: Tensor) -> dict[str, SlotInfo]:
    """Put the plan's activations into ``model``'s slots in place; return the slot table.

    ``shape="network"`` makes every slot matched by the same entry share one module, which is how
    seed 000 shares one set of parameters across the whole network.
    """
    slots = describe_slots(model, example_input)
    decided = resolve_plan(plan, slots)
    by_name = dict(iter_slots(model))
    shared: dict[int, nn.Module] = {}
    for name, index in decided.items():
        spec = plan[index].activation
        if spec.shape == "network":
            if index not in shared:
                shared[index] = build_activation(spec, slots[name])
            module = shared[index]
        else:
            module = build_activation(spec, slots[name])
        # The summary keeps exact values only for one-set parameters; the module cannot tell a layer-shaped
        # vector (LinComb's w) from a per-channel scalar by its tensor shape alone, so it is told.
        setattr(module, SHARING_ATTR, spec.shape)
        by_name[name].act = module.to(_device_of(model))
    return slots


def _device_of(model: nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def replace_activations(model: nn.Module, plan: Sequence[PlanEntry], example_input: Tensor) -> nn.Module:
    """Apply ``plan`` to any ``nn.Module``; a model without slots (a torchvision model, say) is first
    searched for activation modules, which become slots named by their module path."""
    if not any(True for _ in iter_slots(model)):
        wrap_activations(model, example_input)
    apply_plan(model, plan, example_input)
    return model


def activation_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of the activations in the model's slots, each once (shared modules included)."""
    seen: set[int] = set()
    params: list[nn.Parameter] = []
    for _, slot in iter_slots(model):
        for param in slot.act.parameters():
            if id(param) not in seen:
                seen.add(id(param))
                params.append(param)
    return params


def freeze_all_but_activations(model: nn.Module) -> list[nn.Parameter]:
    """Leave only activation parameters trainable (seed 001's fine-tuning of a pre-trained model).

    Activations frozen by their spec (``trainable=False``) stay frozen. Returns the trainable ones.
    """
    act_params = activation_parameters(model)
    trainable = {id(p) for p in act_params if p.requires_grad}
    for param in model.parameters():
        param.requires_grad_(id(param) in trainable)
    return [p for p in act_params if p.requires_grad]


def summarize_activation_params(model: nn.Module) -> ParamSummary:
    """Per slot and declared parameter: mean, min and max of the current values.

    A parameter of an activation placed with shape ``network`` or ``layer`` (by :func:`apply_plan`) that
    holds 2 to :data:`MAX_SUMMARY_VALUES` values is a vector of one set (LinComb's w, LSLU's θ/ω, F-neuron's
    weights): its values are kept too, under ``values``.

    The numbers of every parameter travel to the host in one copy: on a GPU, a ``float()`` per statistic
    would wait for the device once per number, a dozen times an epoch on a small MLP.
    """
    entries: list[tuple[str, str, int]] = []  # (slot, parameter, values kept beside mean/min/max)
    pieces: list[Tensor] = []
    for name, slot in iter_slots(model):
        learned = getattr(slot.act, "learned_parameters", None)
        if learned is None:
            continue
        one_set = getattr(slot.act, SHARING_ATTR, None) in ("network", "layer")
        for key, tensor in learned().items():
            flat = tensor.detach().float().flatten()
            kept = flat.numel() if one_set and 1 < flat.numel() <= MAX_SUMMARY_VALUES else 0
            low, high = torch.aminmax(flat)
            pieces += [torch.stack([flat.mean(), low, high])] + ([flat] if kept else [])
            entries.append((name, key, kept))
    if not pieces:
        return {}
    numbers = iter(torch.cat(pieces).tolist())
    summary: ParamSummary = {}
    for name, key, kept in entries:
        stats = ParamStats(mean=next(numbers), min=next(numbers), max=next(numbers))
        if kept:
            stats["values"] = [next(numbers) for _ in range(kept)]
        summary.setdefault(name, {})[key] = stats
    return summary


def uniform_plan(family: str, *, selectors: Iterable[str] = ("all",), **spec: object) -> tuple[PlanEntry, ...]:
    """A plan that puts one activation spec into every slot matched by ``selectors``."""
    activation = ActivationSpec(family=family, **spec)  # type: ignore[arg-type]
    return tuple(PlanEntry(select=s, activation=activation) for s in selectors)
