"""Find the activations of any ``nn.Module`` and turn them into named, tagged slots.

Our own models build their slots; :func:`wrap_activations` does the same for anything else, a
pre-trained torchvision network included. Each activation *module* (``nn.ReLU``, ``nn.SiLU``, ...,
see :data:`ACTIVATION_TYPES`, or a registered :class:`~aaf_search.activations.Activation`) is wrapped
in place in an :class:`~aaf_search.trials.slots.ActivationSlot` that keeps the original module as its
``act``, so the outputs do not change. A module object used at several places (torchvision's
BasicBlock calls ``self.relu`` twice) becomes one slot, and an object registered under several
parents becomes one slot object set on each of them.

Once a model has slots, its dropout modules stop working in place: a slot may come to hold an
activation that keeps its output for backward (ReLU, Sigmoid, Tanh, ELU, APA's final exp), and a
``Dropout(inplace=True)`` after it (torchvision's MobileNetV3 classifier) would overwrite that output
and fail the first backward pass ("modified by an inplace operation"). The cost is one more tensor per
dropout and step.

Activations applied as functions inside ``forward`` (``F.relu(x)``, ``x.sigmoid()``) are not modules,
so they cannot be found or swapped; they are left as they are. Modules inside an existing slot are
never wrapped again, so calling :func:`wrap_activations` twice changes nothing.

Tags (best effort):

- ``attention_gate``: a ``Sigmoid``/``Hardsigmoid`` whose parent's class name says squeeze-excitation
  or whose path has a part ``se`` or a part containing ``scale``/``excitation``/``gate``
  (torchvision's ``SqueezeExcitation.scale_activation``). A gate gets no other tag, so ``tag:conv``
  plans do not put a ReLU in a gate.
- with an ``example_input``, one probe forward in eval mode under ``no_grad``: ``conv`` for 4-D (or
  5-D) inputs, ``fc`` for 2-D inputs and for 3-D token inputs ``(N, L, D)`` of transformer MLPs, and
  ``stem`` for the first slot that runs when it is a ``conv`` one. Without an example input, slots
  other than gates get no tag; a slot that the probe does not reach keeps only its static tags.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from aaf_search.activations import Activation
from aaf_search.trials.slots import ActivationSlot, iter_slots

ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.SiLU,
    nn.GELU,
    nn.Mish,
    nn.Tanh,
    nn.Sigmoid,
    nn.Softsign,
    nn.Softplus,
    nn.Hardswish,
    nn.Hardsigmoid,
    Activation,
)
"""Module types that :func:`wrap_activations` turns into slots."""

Hook = Callable[[nn.Module, tuple[Any, ...], Any], None]

GATE_TYPES: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Hardsigmoid)
# Parent classes of SE gates: torchvision's SqueezeExcitation, timm's SqueezeExcite/SEModule, Se_Block.
_GATE_CLASS = re.compile(r"(?i:squeeze|excit)|^S[Ee](?:[A-Z_]|$)")
_GATE_PART = re.compile(r"scale|excitation|gate")


def wrap_activations(model: nn.Module, example_input: Tensor | None = None) -> nn.Module:
    """Wrap every activation module of ``model`` in an :class:`ActivationSlot`, in place.

    The slot name is the module path of the activation (``layer1.0.relu``). ``example_input`` (a batch
    on the model's device) enables the probe-based ``conv``/``fc``/``stem`` tags. The model itself is
    never replaced, so a bare activation passed as ``model`` is returned unwrapped. Returns ``model``.
    """
    created: dict[int, ActivationSlot] = {}
    for parent, attr, path, act in list(_find_activations(model, "")):
        slot = created.get(id(act))
        if slot is None:
            gate = isinstance(act, GATE_TYPES) and _looks_like_gate(parent, path)
            slot = ActivationSlot(act, tags=("attention_gate",) if gate else ())
            created[id(act)] = slot
        setattr(parent, attr, slot)
    if created:
        _dropout_out_of_place(model)
    if example_input is not None and created:
        _tag_by_probe(model, example_input, {id(slot) for slot in created.values()})
    return model


def _dropout_out_of_place(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.inplace = False


def slot_shapes(model: nn.Module, example_input: Tensor) -> dict[str, list[tuple[int, ...]]]:
    """Per slot name, the per-sample input shape of each call in one probe forward, in call order.

    A slot that runs twice has two entries (equal or not); one that does not run has none.
    """
    slots = list(iter_slots(model))
    seen: dict[str, list[tuple[int, ...]]] = {name: [] for name, _ in slots}
    by_id = {id(slot): name for name, slot in slots}

    def record(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if args and isinstance(args[0], Tensor):
            seen[by_id[id(module)]].append(tuple(args[0].shape[1:]))

    with _probe_hooks([slot for _, slot in slots], record):
        _probe(model, example_input)
    return seen


def _find_activations(module: nn.Module, prefix: str) -> Iterator[tuple[nn.Module, str, str, nn.Module]]:
    """(parent, attribute, path, activation) for every activation below ``module``, outside slots."""
    for attr, child in module.named_children():
        path = f"{prefix}.{attr}" if prefix else attr
        if isinstance(child, ActivationSlot):
            continue
        if isinstance(child, ACTIVATION_TYPES):
            yield module, attr, path, child
        else:
            yield from _find_activations(child, path)


def _looks_like_gate(parent: nn.Module, path: str) -> bool:
    if _GATE_CLASS.search(type(parent).__name__):
        return True
    parts = re.split(r"[._]", path.lower())
    return any(part == "se" or _GATE_PART.search(part) for part in parts)


def _tag_by_probe(model: nn.Module, example_input: Tensor, new_slots: set[int]) -> None:
    # Dicts keep insertion order, so the first key is the first slot that ran.
    first_ndim: dict[nn.Module, int] = {}

    def record(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if args and isinstance(args[0], Tensor) and module not in first_ndim:
            first_ndim[module] = args[0].ndim

    slots = [m for m in model.modules() if isinstance(m, ActivationSlot) and id(m) in new_slots]
    with _probe_hooks(slots, record):
        _probe(model, example_input)
    # The stem is the first activation to run, if it follows a convolution: a ViT's first GELU is in
    # its first encoder block, not in a stem.
    first = next((m for m in first_ndim if not _is_gate(m)), None)
    stem = first if first is not None and first_ndim[first] >= 4 else None
    for slot in slots:
        if _is_gate(slot) or slot not in first_ndim:
            continue
        tags = {"conv" if first_ndim[slot] >= 4 else "fc"}
        if slot is stem:
            tags.add("stem")
        slot.tags = slot.tags | tags


def _is_gate(module: nn.Module) -> bool:
    return isinstance(module, ActivationSlot) and "attention_gate" in module.tags


@contextmanager
def _probe_hooks(modules: list[ActivationSlot], hook: Hook) -> Iterator[None]:
    handles = [module.register_forward_hook(hook) for module in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _probe(model: nn.Module, example_input: Tensor) -> None:
    """One forward in eval mode without gradients, so BN statistics and dropout are untouched.

    Every module's own ``training`` flag is restored afterwards (frozen BNs stay in eval mode).
    """
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for module, mode in modes:
            module.training = mode
