"""``tv:NAME``: any torchvision classification model, its activations found by discovery.

``torchvision.models.get_model(NAME, ...)`` builds the network; it sits in ``TorchvisionNet.net``
behind ``adapter``, a 1x1 conv to 3 channels when the input has another channel count (an identity
otherwise, so that slot names do not depend on the data set). :func:`~aaf_search.trials.discover.wrap_activations`
then turns every activation module into a slot named by its path (``net.layer1.0.relu``) and tags it
with a probe forward.

``base_activation`` puts that registry activation into every slot except the attention gates;
``"native"`` keeps torchvision's own modules (what the pre-trained weights were trained with). For
ResNets and VGGs, whose activations are ReLUs, the two give the same outputs.

Pre-trained weights (``pretrained=True``) are torchvision's default weights, read from the torch hub
cache only: this tool runs where there is no internet, so a missing file is a :class:`ModelError`
naming the file and the folder to copy it into, never a download. With a class count other than the
weights' (1000 for ImageNet), the last linear (or 1x1 conv) layer with that many outputs is replaced
by a freshly initialised one.

BatchNorm momenta below PyTorch's default 0.1 are raised to it, pre-trained or not (see
:func:`_quicken_batch_norm`).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from aaf_search import activations
from aaf_search.trials.discover import wrap_activations
from aaf_search.trials.models._base import Builder, InputShape, ModelError, ModelInfo
from aaf_search.trials.slots import iter_slots

if TYPE_CHECKING:  # imported where a tv: model is used: torchvision takes over a second to import
    import torchvision.models as tvm

PREFIX = "tv:"
NATIVE = "native"  # base_activation that keeps the network's own activation modules
SOURCE = "torchvision"
MIN_INPUT_SIZE = 32  # the data pipeline resizes smaller inputs (e.g. 28x28 digits) up to this
BATCH_NORM_MOMENTUM = 0.1  # PyTorch's default; the floor every torchvision model's BatchNorm gets
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
# These two return (logits, aux logits) tuples in training mode unless their auxiliary heads are off.
_AUX_LOGITS = frozenset({"googlenet", "inception_v3"})


class TorchvisionNet(nn.Module):
    """A torchvision classifier behind a channel adapter (identity for 3-channel inputs)."""

    def __init__(self, net: nn.Module, in_channels: int) -> None:
        super().__init__()
        self.adapter: nn.Module = nn.Conv2d(in_channels, 3, 1) if in_channels != 3 else nn.Identity()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.net(self.adapter(x))
        return out


@lru_cache(maxsize=1)
def torchvision_names() -> tuple[str, ...]:
    """torchvision's classification models (not detection, segmentation, video or quantized)."""
    import torchvision.models as tvm

    return tuple(tvm.list_models(module=tvm))


def check_name(name: str) -> str:
    """The torchvision name in ``tv:NAME``, or a :class:`ModelError` listing torchvision's models."""
    bare = name[len(PREFIX) :]
    if bare not in torchvision_names():
        raise ModelError(
            f"unknown torchvision model '{name}'; torchvision's classification models: {', '.join(torchvision_names())}"
        )
    return bare


def info(name: str) -> ModelInfo:
    """The registry entry for ``tv:NAME``, made on demand."""
    bare = check_name(name)
    min_size = MIN_INPUT_SIZE
    weights = _default_weights(bare)
    if weights is not None:
        # torchvision records the smallest input of each architecture (63 for AlexNet, 75 for
        # Inception v3, 224 for ViTs, which need exactly their image size).
        min_size = max(min_size, int(max(weights.meta.get("min_size", (1, 1)))))
    return ModelInfo(name, f"torchvision {bare}", SOURCE, min_size, _builder(bare))


def _builder(bare: str) -> Builder:
    def build(input_shape: InputShape, num_classes: int, base_activation: str) -> nn.Module:
        return build_torchvision(bare, input_shape, num_classes, base_activation)

    return build


def build_torchvision(
    bare: str, input_shape: InputShape, num_classes: int, base_activation: str, *, pretrained: bool = False
) -> nn.Module:
    """torchvision's ``bare`` model for ``input_shape``/``num_classes``, its activations in slots."""
    import torchvision.models as tvm

    from aaf_search.trials.models.torchvision_blocks import fused_mbconv_out_of_place

    kwargs: dict[str, Any] = {"aux_logits": False} if bare in _AUX_LOGITS else {}
    if pretrained:
        weights = cached_weights(bare)
        net = tvm.get_model(bare, weights=weights, **kwargs)
        _replace_head(net, bare, len(weights.meta["categories"]), num_classes)
    else:
        net = tvm.get_model(bare, weights=None, num_classes=num_classes, **kwargs)
    fused_mbconv_out_of_place(net)
    _quicken_batch_norm(net)
    model = TorchvisionNet(net, input_shape[0])
    # One sample is enough for the probe: it runs in eval mode, where BN uses its running statistics.
    wrap_activations(model, torch.zeros(1, *input_shape))
    if base_activation != NATIVE:
        for _, slot in iter_slots(model):
            if "attention_gate" not in slot.tags:
                slot.act = activations.create(base_activation)
    return model


def _quicken_batch_norm(net: nn.Module) -> None:
    """Raise BatchNorm momenta below PyTorch's default to it (MobileNetV3 0.01, MNASNet 0.0003, ...).

    Those momenta suit ImageNet's hundreds of thousands of steps. A trial takes tens to thousands, and
    with them the running statistics that validation and test use stay close to their start: a
    MobileNetV3 on digits reached 78 % validation accuracy in training mode and 10 % (chance) in eval
    mode after 3 epochs. Pre-trained running statistics need the same speed to follow a new data set.
    """
    for module in net.modules():
        if isinstance(module, _BATCH_NORMS) and module.momentum is not None:
            module.momentum = max(module.momentum, BATCH_NORM_MOMENTUM)


def cached_weights(bare: str) -> tvm.WeightsEnum:
    """torchvision's default weights for ``bare`` if their file is in the torch hub cache.

    ``get_state_dict`` reads ``<hub dir>/checkpoints/<file name of the URL>`` when it exists and
    downloads it otherwise; checking first means an offline machine fails at once with a clear message
    instead of waiting on the network.
    """
    weights = _default_weights(bare)
    if weights is None:
        raise ModelError(f"torchvision has no pretrained weights for 'tv:{bare}'; build it with pretrained=False")
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)
    if not path.is_file():
        raise ModelError(
            f"pretrained weights for 'tv:{bare}' are not available offline: {path} is missing; "
            f"download {weights.url} elsewhere and copy it into {path.parent} (or set TORCH_HOME)"
        )
    return weights


def _default_weights(bare: str) -> tvm.WeightsEnum | None:
    import torchvision.models as tvm

    try:
        return tvm.get_model_weights(bare).DEFAULT
    except (KeyError, ValueError, AttributeError):
        return None


def _replace_head(net: nn.Module, bare: str, categories: int, num_classes: int) -> None:
    """Swap the classifier layer for one with ``num_classes`` outputs (fresh init) when they differ."""
    if categories == num_classes:
        return
    for path, module in reversed(list(net.named_modules())):
        if isinstance(module, nn.Linear) and module.out_features == categories:
            new: nn.Module = nn.Linear(module.in_features, num_classes, bias=module.bias is not None)
        elif isinstance(module, nn.Conv2d) and module.out_channels == categories and module.kernel_size == (1, 1):
            new = nn.Conv2d(module.in_channels, num_classes, 1, bias=module.bias is not None)
        else:
            continue
        parent_path, _, attr = path.rpartition(".")
        setattr(net.get_submodule(parent_path), attr, new)
        return
    raise ModelError(f"cannot find the classifier layer of 'tv:{bare}' to resize it to {num_classes} classes")
