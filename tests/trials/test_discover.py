"""Activation discovery on arbitrary modules: what becomes a slot, how it is tagged, and that wrapping
changes nothing about the outputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from aaf_search import activations
from aaf_search.trials.discover import slot_shapes, wrap_activations
from aaf_search.trials.models import build_model
from aaf_search.trials.plan import replace_activations, uniform_plan
from aaf_search.trials.slots import ActivationSlot, iter_slots

RESNET18_SLOTS = ["relu"] + [f"layer{s}.{b}.relu" for s in (1, 2, 3, 4) for b in (0, 1)]


def tags_of(model: nn.Module) -> dict[str, set[str]]:
    return {name: set(slot.tags) for name, slot in iter_slots(model)}


def test_torchvision_resnet18_is_wrapped_without_changing_outputs() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    before = model(x)
    wrap_activations(model, x)
    assert torch.equal(model(x), before)
    tags = tags_of(model)
    assert list(tags) == RESNET18_SLOTS
    assert tags["relu"] == {"conv", "stem"}
    assert all(tags[name] == {"conv"} for name in RESNET18_SLOTS[1:])
    assert isinstance(model.layer1[0].relu, ActivationSlot)
    assert isinstance(model.layer1[0].relu.act, nn.ReLU)  # the original module is kept
    assert not model.training  # the probe restores the mode it found


def test_a_dropout_after_a_slot_no_longer_overwrites_its_output() -> None:
    # A Sigmoid keeps its output for backward; Dropout(inplace=True) after it would overwrite that output.
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.5, inplace=True), nn.Linear(8, 2))
    x = torch.randn(3, 4)
    replace_activations(model, uniform_plan("sigmoid"), x)
    assert model[2].inplace is False
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_reused_relu_is_one_slot_called_twice() -> None:
    model = wrap_activations(torchvision.models.resnet18(num_classes=10))
    shapes = slot_shapes(model, torch.randn(2, 3, 32, 32))
    assert shapes["relu"] == [(64, 16, 16)]
    # torchvision's BasicBlock applies self.relu after bn1 and after the residual add.
    assert shapes["layer1.0.relu"] == [(64, 8, 8), (64, 8, 8)]
    assert shapes["layer4.1.relu"] == [(512, 1, 1), (512, 1, 1)]
    assert len(shapes) == 9


def test_wrapping_twice_changes_nothing() -> None:
    model = wrap_activations(torchvision.models.resnet18(num_classes=10), torch.zeros(1, 3, 32, 32))
    slots = dict(iter_slots(model))
    wrap_activations(model, torch.zeros(1, 3, 32, 32))
    assert dict(iter_slots(model)) == slots
    assert not any(isinstance(slot.act, ActivationSlot) for slot in slots.values())


def test_zoo_models_have_nothing_left_to_wrap() -> None:
    model = build_model("resnet8", input_shape=(3, 8, 8), num_classes=10)
    before = tags_of(model)
    wrap_activations(model, torch.zeros(2, 3, 8, 8))
    assert tags_of(model) == before
    shapes = slot_shapes(model, torch.zeros(2, 3, 8, 8))
    assert shapes["stem.act"] == [(16, 8, 8)]
    assert shapes["stage3.block1.act2"] == [(64, 2, 2)]


class SEModule(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))


class Mixed(nn.Module):
    """Conv and fc activations, an SE gate, a module shared by two parents and a functional call."""

    def __init__(self) -> None:
        super().__init__()
        shared = nn.Tanh()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.SiLU()
        self.se = SEModule(4)
        self.body = nn.Sequential(nn.Conv2d(4, 4, 1), shared)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 8), activations.create("elu"), shared)
        self.out = nn.Linear(8, 2)

    def forward(self, x: Tensor) -> Tensor:
        x = self.se(self.act(self.conv(x)))
        x = F.relu(self.body(x))  # functional: not a module, left as it is
        return self.out(self.head(x))


def test_tags_from_the_probe_and_from_names() -> None:
    torch.manual_seed(0)
    model = Mixed()
    x = torch.randn(2, 3, 4, 4)
    before = model(x)
    wrap_activations(model, x)
    assert torch.equal(model(x), before)
    assert tags_of(model) == {
        "act": {"conv", "stem"},
        "se.sigmoid": {"attention_gate"},
        "body.1": {"conv"},  # the shared Tanh: first seen in body, 4-D there
        "head.2": {"fc"},  # a registered activation is wrapped too
    }
    # The Tanh shared by body and head is one slot object set in both places.
    assert model.body[1] is model.head[3]
    assert slot_shapes(model, x)["body.1"] == [(4, 4, 4), (8,)]


def test_without_an_example_input_only_gates_are_tagged() -> None:
    model = wrap_activations(Mixed())
    assert tags_of(model) == {"act": set(), "se.sigmoid": {"attention_gate"}, "body.1": set(), "head.2": set()}


def test_torchvision_squeeze_excitation_gates() -> None:
    model = torchvision.models.mobilenet_v3_small(num_classes=10)
    wrap_activations(model, torch.zeros(1, 3, 32, 32))
    slots = dict(iter_slots(model))
    gates = [name for name, slot in slots.items() if "attention_gate" in slot.tags]
    assert len(gates) == 9  # the SE blocks of MobileNetV3-Small
    assert all(name.endswith("scale_activation") for name in gates)
    assert all(isinstance(slots[name].act, nn.Hardsigmoid) and slots[name].tags == {"attention_gate"} for name in gates)
    assert slots["features.0.2"].tags == {"conv", "stem"}
    assert slots["classifier.1"].tags == {"fc"}


def test_probe_leaves_training_state_and_statistics_alone() -> None:
    model = torchvision.models.resnet18(num_classes=10)
    model.bn1.eval()  # a frozen BN must stay frozen
    stats = model.layer1[0].bn1.running_mean.clone()
    wrap_activations(model, torch.randn(2, 3, 32, 32))
    slot_shapes(model, torch.randn(2, 3, 32, 32))
    assert model.training and model.layer1[0].training and not model.bn1.training
    assert torch.equal(model.layer1[0].bn1.running_mean, stats)
