"""The model zoo: every model built by name, with its activations in named, tagged slots.

``build_model(name, input_shape=(C, H, W), num_classes=K, base_activation="relu")`` builds one;
``model_names()`` lists the zoo and ``model_info(name)`` gives an entry's summary, source seed and
smallest input size. ``tv:NAME`` builds any torchvision classification model.

Slot names are module paths and are stable across builds; tags say where a slot sits:

- ``conv`` / ``fc``: after a convolution or a fully-connected layer;
- ``stem``: the stem's activation; ``stage_end``: the last activation of each stage;
- ``block``: inside a residual block (the ResNets' ``act1``/``act2``);
- ``attention_gate``: the gate of a squeeze-excitation module (base activation always sigmoid).

| model | slots |
|---|---|
| dnn2, dnn3, dnn5 | ``fc.act1`` .. ``fc.act{1,2,4}`` |
| lenet5 | ``features.act1``, ``features.act2``, ``fc.act1`` |
| kerasnet | ``features.act1`` .. ``features.act4``, ``fc.act1`` |
| resnet8 .. resnet56 | ``stem.act``, ``stageS.blockB.act1``, ``stageS.blockB.act2`` |
| se_resnet32 | as resnet32, plus ``stageS.blockB.se.act`` and ``stageS.blockB.se.gate`` |
| vanillanet | ``stem.act``, ``stage1.act`` .. ``stage3.act`` |
| tv:NAME | ``net.<torchvision module path>`` of each activation module |

VanillaNet's deep-training trick needs ``set_act_learn(model, act_learn_schedule(epoch, decay))`` before
each epoch to follow the original schedule (see :mod:`.vanillanet`).
"""

from __future__ import annotations

from aaf_search.trials.models._base import Builder, InputShape, ModelError, ModelInfo
from aaf_search.trials.models._registry import MODELS, NATIVE, build_model, model_info, model_names
from aaf_search.trials.models.vanillanet import act_learn_schedule, set_act_learn

__all__ = [
    "MODELS",
    "NATIVE",
    "Builder",
    "InputShape",
    "ModelError",
    "ModelInfo",
    "act_learn_schedule",
    "build_model",
    "model_info",
    "model_names",
    "set_act_learn",
]
