"""Activation slots: the named places in a model where an activation sits.

A model built by this package wraps each of its activations in an :class:`ActivationSlot`. The slot's
name is its module path in the model (``stem.act``, ``stage2.block1.act2``, ``fc.act1``), which is stable
across builds; its tags say where it sits (``conv``, ``fc``, ``stem``, ``stage_end``,
``attention_gate``). Swapping an activation means assigning a new module to ``slot.act``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

from torch import Tensor, nn

from aaf_search import activations

SLOT_TAGS = ("conv", "fc", "stem", "stage_end", "attention_gate", "block")


class ActivationSlot(nn.Module):
    """Holds one activation module and the tags that describe where it sits."""

    def __init__(self, act: nn.Module | str = "relu", *, tags: Iterable[str] = ()) -> None:
        super().__init__()
        self.act: nn.Module = activations.create(act) if isinstance(act, str) else act
        self.tags: frozenset[str] = frozenset(tags)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x)

    def extra_repr(self) -> str:
        return f"tags={sorted(self.tags)}"


def iter_slots(model: nn.Module) -> Iterator[tuple[str, ActivationSlot]]:
    """Every slot of ``model`` with its name, in module-definition order."""
    for name, module in model.named_modules():
        if isinstance(module, ActivationSlot):
            yield name, module


@lru_cache(maxsize=16)
def dataset_slot_tags(model: str, dataset: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """The slots of ``model`` built for ``dataset``'s inputs, with their tags, in model order.

    The inputs are raised to the model's smallest input size, as the data pipeline resizes them for a
    trial (VanillaNet on 8x8 digits trains at 32x32): built at the data set's own size, such a model
    refuses to be built at all. Built once per process and pair (the spaces ask for every trial and
    probe, the pre-flight for every probe); the answer is immutable.
    """
    # Imported here: the models import this module for ActivationSlot.
    from aaf_search.trials.data import get_dataset
    from aaf_search.trials.models import build_model, model_info

    info = get_dataset(dataset)
    channels, height, width = info.input_shape
    least = model_info(model).min_input_size or 1
    shape = (channels, max(height, least), max(width, least))
    built = build_model(model, input_shape=shape, num_classes=info.num_classes)
    return tuple((name, frozenset(slot.tags)) for name, slot in iter_slots(built))
