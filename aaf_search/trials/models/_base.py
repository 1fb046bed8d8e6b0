"""What every model family shares: the registry entry type, the error type and small helpers.

The family modules (``mlp``, ``small_cnn``, ``resnet_cifar``, ``se_resnet``, ``vanillanet``,
``torchvision_models``) import only from here, so the registry in ``_registry`` can import them all
without cycles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import nn

from aaf_search.errors import UserError

InputShape = tuple[int, int, int]
"""``(channels, height, width)`` of one input sample, without the batch dimension."""

Builder = Callable[[InputShape, int, str], nn.Module]
"""``builder(input_shape, num_classes, base_activation)`` builds a model from scratch."""


class ModelError(UserError):
    """A user asked for a model that does not exist, or for one that cannot take the given input."""


@dataclass(frozen=True)
class ModelInfo:
    """One entry of the model registry.

    Attributes:
        name: the registry key (``resnet20``) or ``tv:NAME`` for a torchvision model.
        summary: one line for listings.
        source: the seed project or paper the architecture comes from.
        min_input_size: the smallest height = width the architecture accepts, or ``None`` when any
            size works; the data pipeline resizes inputs up to it.
        builder: builds the model from scratch (pre-trained weights go through ``build_model``).
    """

    name: str
    summary: str
    source: str
    min_input_size: int | None
    builder: Builder


def kaiming_normal_init(modules: Iterable[nn.Module]) -> None:
    """He-normal (fan-in, ReLU gain) init of the weights of every ``Linear``/``Conv2d`` in ``modules``.

    Biases keep PyTorch's default init, as in seeds 000 and 004 which call ``init.kaiming_normal_``
    on the weight only.
    """
    for module in modules:
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight)


def conv_out(size: int, kernel: int, *, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling along one spatial dimension."""
    return (size + 2 * padding - kernel) // stride + 1
