"""The model registry: :data:`MODELS` is the single source of truth for the zoo.

Each family module contributes its ``ENTRIES``; ``tv:NAME`` entries for torchvision models are made on
demand by :func:`model_info` because there are too many to list.
"""

from __future__ import annotations

from torch import nn

from aaf_search import activations
from aaf_search.activations import ActivationError
from aaf_search.trials.models import mlp, resnet_cifar, se_resnet, small_cnn, torchvision_models, vanillanet
from aaf_search.trials.models._base import InputShape, ModelError, ModelInfo

MODELS: dict[str, ModelInfo] = {
    info.name: info for family in (mlp, small_cnn, resnet_cifar, se_resnet, vanillanet) for info in family.ENTRIES
}

NATIVE = torchvision_models.NATIVE
_ZOO_NATIVE = "relu"  # every zoo model's own activation, which "native" stands for


def model_names() -> list[str]:
    """The registered model names, in registry order (``tv:NAME`` models are not listed)."""
    return list(MODELS)


def model_info(name: str) -> ModelInfo:
    """The entry for ``name`` (a registered name or ``tv:NAME``), or a :class:`ModelError`."""
    if name.startswith(torchvision_models.PREFIX):
        return torchvision_models.info(name)
    if name not in MODELS:
        raise ModelError(
            f"unknown model '{name}'; choose one of: {', '.join(MODELS)}, "
            f"or tv:NAME for a torchvision classification model (e.g. tv:resnet18)"
        )
    return MODELS[name]


def build_model(
    name: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    base_activation: str = "relu",
    pretrained: bool = False,
) -> nn.Module:
    """Build model ``name`` for inputs of ``input_shape`` (C, H, W) and ``num_classes`` classes.

    Every activation sits in an :class:`~aaf_search.trials.slots.ActivationSlot` holding
    ``base_activation`` (a registered activation name; ``"native"`` keeps a torchvision model's own
    modules and means ``relu`` for the zoo). ``pretrained`` loads torchvision's default weights from
    the local cache and exists only for ``tv:NAME`` models. The model is in training mode on the CPU.
    """
    info = model_info(name)
    shape = _check_input(name, input_shape, num_classes, info.min_input_size)
    if pretrained and not name.startswith(torchvision_models.PREFIX):
        raise ModelError(f"model '{name}' has no pretrained weights; pretrained=True works for tv:NAME models")
    if base_activation != NATIVE:
        activations.get(base_activation)  # an unknown name: the registry's message, with the valid ones
    try:
        if name.startswith(torchvision_models.PREFIX):
            bare = torchvision_models.check_name(name)
            return torchvision_models.build_torchvision(
                bare, shape, num_classes, base_activation, pretrained=pretrained
            )
        return info.builder(shape, num_classes, _ZOO_NATIVE if base_activation == NATIVE else base_activation)
    except ActivationError as exc:
        # The base fills every slot with no options, so a family that needs a slot's channel count
        # (LSLU) fails here; the plan gives it those.
        raise ModelError(
            f"base_activation '{base_activation}': {exc}; put it in the plan instead "
            f"(plan: [{{select: all, activation: {{family: {base_activation}}}}}])"
        ) from None


def _check_input(name: str, input_shape: tuple[int, ...], num_classes: int, min_size: int | None) -> InputShape:
    if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
        raise ModelError(f"model '{name}' needs an input shape (channels, height, width), got {tuple(input_shape)}")
    if num_classes < 1:
        raise ModelError(f"model '{name}' needs at least one class, got {num_classes}")
    channels, height, width = (int(d) for d in input_shape)
    if min_size is not None and min(height, width) < min_size:
        raise ModelError(
            f"model '{name}' needs inputs of at least {min_size}x{min_size} pixels, got {height}x{width}; "
            f"resize them up to model_info('{name}').min_input_size"
        )
    return channels, height, width
