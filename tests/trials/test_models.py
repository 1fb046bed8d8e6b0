"""The model zoo: every entry builds and trains a step, slot names and tags are stable and documented,
parameter counts match the papers, and user mistakes raise a ModelError that lists the choices."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from aaf_search.errors import UserError
from aaf_search.trials.models import (
    MODELS,
    ModelError,
    act_learn_schedule,
    build_model,
    model_info,
    model_names,
    set_act_learn,
)
from aaf_search.trials.models.resnet_cifar import ZeroPadShortcut
from aaf_search.trials.models.vanillanet import VanillaNet
from aaf_search.trials.slots import SLOT_TAGS, ActivationSlot, dataset_slot_tags, iter_slots

ALL_MODELS = [*model_names(), "tv:resnet18"]


def small_side(name: str) -> int:
    return max(8, model_info(name).min_input_size or 0)


def slot_table(model: nn.Module) -> dict[str, list[str]]:
    return {name: sorted(slot.tags) for name, slot in iter_slots(model)}


def family_of(slot: ActivationSlot) -> str:
    return str(getattr(slot.act, "family", type(slot.act).__name__))


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("channels", [1, 3])
def test_every_model_trains_a_step(name: str, channels: int) -> None:
    torch.manual_seed(0)
    side = small_side(name) if channels == 1 else 32
    model = build_model(name, input_shape=(channels, side, side), num_classes=10)
    out = model(torch.randn(2, channels, side, side))
    assert out.shape == (2, 10)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    slots = slot_table(model)
    assert slots
    assert all(set(tags) <= set(SLOT_TAGS) for tags in slots.values())


@pytest.mark.parametrize("name", model_names())
def test_slot_names_and_tags_are_stable_across_builds(name: str) -> None:
    shape = (3, 32, 32)
    first = build_model(name, input_shape=shape, num_classes=10)
    second = build_model(name, input_shape=shape, num_classes=10)
    assert slot_table(first) == slot_table(second)


def test_registry_entries_are_complete() -> None:
    assert list(MODELS) == model_names()
    for name, info in MODELS.items():
        assert info.name == name
        assert info.summary and info.source
    expected = {"lenet5": 16, "kerasnet": 10, "vanillanet": 32, "resnet20": None, "dnn2": None}
    assert {name: model_info(name).min_input_size for name in expected} == expected
    assert model_info("tv:resnet18").min_input_size == 32
    assert model_info("tv:alexnet").min_input_size == 63  # torchvision's own min_size for AlexNet


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize("name", ["lenet5", "kerasnet", "vanillanet"])
def test_min_input_size_is_tight(name: str) -> None:
    side = model_info(name).min_input_size
    assert side is not None
    builder = model_info(name).builder
    builder((3, side, side), 10, "relu")(torch.randn(2, 3, side, side))
    with pytest.raises((RuntimeError, ValueError)):
        builder((3, side - 1, side - 1), 10, "relu")(torch.randn(2, 3, side - 1, side - 1))


@pytest.mark.parametrize("name", ["kerasnet", "vanillanet", "dnn2"])
def test_slots_for_a_data_set_are_those_of_the_model_its_trials_train(name: str) -> None:
    # Digits are 8x8: kerasnet and vanillanet are built (and trained) at 10x10 and 32x32, dnn2 at 8x8.
    side = small_side(name)
    trained = build_model(name, input_shape=(1, side, side), num_classes=10)
    expected = tuple((slot, frozenset(tags)) for slot, tags in slot_table(trained).items())
    assert dataset_slot_tags(name, "digits") == expected


def test_resnet8_slots() -> None:
    model = build_model("resnet8", input_shape=(3, 32, 32), num_classes=10)
    # The stem, then 3 stages x 1 block x (after bn1, after the residual add).
    assert slot_table(model) == {
        "stem.act": ["conv", "stem"],
        "stage1.block1.act1": ["block", "conv"],
        "stage1.block1.act2": ["block", "conv", "stage_end"],
        "stage2.block1.act1": ["block", "conv"],
        "stage2.block1.act2": ["block", "conv", "stage_end"],
        "stage3.block1.act1": ["block", "conv"],
        "stage3.block1.act2": ["block", "conv", "stage_end"],
    }


def test_resnet20_has_stage_end_only_on_the_last_block() -> None:
    model = build_model("resnet20", input_shape=(3, 32, 32), num_classes=10)
    ends = [name for name, tags in slot_table(model).items() if "stage_end" in tags]
    assert ends == ["stage1.block3.act2", "stage2.block3.act2", "stage3.block3.act2"]
    assert len(slot_table(model)) == 1 + 3 * 3 * 2


def test_small_networks_slots() -> None:
    dnn3 = build_model("dnn3", input_shape=(1, 28, 28), num_classes=10)
    assert slot_table(dnn3) == {"fc.act1": ["fc"], "fc.act2": ["fc"]}
    assert list(slot_table(build_model("dnn5", input_shape=(1, 28, 28), num_classes=10))) == [
        "fc.act1",
        "fc.act2",
        "fc.act3",
        "fc.act4",
    ]
    lenet = build_model("lenet5", input_shape=(1, 28, 28), num_classes=10)
    assert slot_table(lenet) == {"features.act1": ["conv"], "features.act2": ["conv"], "fc.act1": ["fc"]}
    kerasnet = build_model("kerasnet", input_shape=(3, 32, 32), num_classes=10)
    tags = slot_table(kerasnet)
    assert len(tags) == 5
    assert [name for name, t in tags.items() if t == ["conv"]] == [f"features.act{i}" for i in (1, 2, 3, 4)]
    assert [name for name, t in tags.items() if t == ["fc"]] == ["fc.act1"]


def test_kostiuk_quirks() -> None:
    lenet = build_model("lenet5", input_shape=(3, 32, 32), num_classes=10)
    assert lenet.get_submodule("features.conv1").bias is None
    assert lenet.get_submodule("features.conv2").bias is None
    assert lenet.get_submodule("fc.linear1").bias is not None
    assert lenet.get_submodule("head").bias is None
    # fc3 input: 5*5*50 on CIFAR and 4*4*50 on 28x28 (SPEC 2.5).
    assert lenet.get_submodule("fc.linear1").in_features == 5 * 5 * 50
    lenet28 = build_model("lenet5", input_shape=(1, 28, 28), num_classes=10)
    assert lenet28.get_submodule("fc.linear1").in_features == 4 * 4 * 50
    kerasnet = build_model("kerasnet", input_shape=(3, 32, 32), num_classes=10)
    assert kerasnet.get_submodule("fc.linear1").in_features == 6 * 6 * 64
    kerasnet28 = build_model("kerasnet", input_shape=(1, 28, 28), num_classes=10)
    assert kerasnet28.get_submodule("fc.linear1").in_features == 5 * 5 * 64
    drops = [m.p for m in kerasnet.modules() if isinstance(m, (nn.Dropout, nn.Dropout2d))]
    assert drops == [0.25, 0.25, 0.2]


def test_vanillanet_slots_and_act_learn() -> None:
    torch.manual_seed(0)
    model = build_model("vanillanet", input_shape=(3, 32, 32), num_classes=10)
    assert slot_table(model) == {
        "stem.act": ["conv", "stem"],
        "stage1.act": ["conv", "stage_end"],
        "stage2.act": ["conv", "stage_end"],
        "stage3.act": ["conv", "stage_end"],
    }
    assert isinstance(model, VanillaNet) and model.act_learn == 1.0
    # Training mode: a fresh model's eval-mode outputs are ~1e-10 (small init, unit running variance).
    x = torch.randn(2, 3, 32, 32)
    as_identity = model(x)
    assert set_act_learn(model, 0.0)
    slopes = {m.act_learn for m in model.modules() if hasattr(m, "act_learn")}
    assert slopes == {0.0}
    assert not torch.allclose(model(x), as_identity, rtol=1e-3, atol=0.0)
    assert not set_act_learn(build_model("resnet8", input_shape=(3, 32, 32), num_classes=10), 0.0)
    assert [act_learn_schedule(e, 4) for e in (0, 1, 2, 4, 9)] == [0.0, 0.25, 0.5, 1.0, 1.0]
    assert act_learn_schedule(2, 4, linear=False) == pytest.approx(0.5)
    assert act_learn_schedule(3, 0) == 1.0


def test_se_resnet32_gates_are_sigmoid_whatever_the_base() -> None:
    model = build_model("se_resnet32", input_shape=(3, 32, 32), num_classes=10, base_activation="silu")
    slots = dict(iter_slots(model))
    gates = {name: slot for name, slot in slots.items() if "attention_gate" in slot.tags}
    assert len(gates) == 15  # one SE per BasicBlock, 3 stages x 5 blocks
    assert "stage2.block3.se.gate" in gates
    assert all(family_of(slot) == "sigmoid" and slot.tags == {"attention_gate"} for slot in gates.values())
    others = [slot for name, slot in slots.items() if name not in gates]
    assert len(others) == 1 + 15 * 2 + 15  # stem, act1/act2 per block, the SE hidden activation
    assert all(family_of(slot) == "silu" for slot in others)
    assert slots["stage1.block1.se.act"].tags == {"fc"}
    # c/r with the original's r = 4: 16 -> 4, 64 -> 16.
    assert model.get_submodule("stage1.block1.se.reduce").out_features == 4
    assert model.get_submodule("stage3.block5.se.reduce").out_features == 16


def test_base_activation_fills_every_slot() -> None:
    model = build_model("resnet8", input_shape=(3, 32, 32), num_classes=10, base_activation="tanh")
    assert {family_of(slot) for _, slot in iter_slots(model)} == {"tanh"}
    native = build_model("dnn2", input_shape=(1, 8, 8), num_classes=3, base_activation="native")
    assert {family_of(slot) for _, slot in iter_slots(native)} == {"relu"}


def test_parameter_counts() -> None:
    # CIFAR ResNet-20 (3 blocks/stage) on 3x32x32 with 10 classes, counted by hand:
    #   stem conv 3*16*9 = 432 + BN 2*16 = 32                                        ->     464
    #   stage 1: 3 blocks x (2 convs 16*16*9 = 2304 + 2 BN 32)                       ->  14,016
    #   stage 2: first block 16*32*9 + 32*32*9 + 2*64 = 13,952; 2 blocks x 18,560    ->  51,072
    #   stage 3: first block 32*64*9 + 64*64*9 + 2*128 = 55,552; 2 blocks x 73,984   -> 203,520
    #   head 64*10 + 10                                                              ->     650
    # = 269,722 (the "0.27M" of He et al.; option-A shortcuts have no parameters).
    counts = {
        name: sum(p.numel() for p in build_model(name, input_shape=(3, 32, 32), num_classes=10).parameters())
        for name in ("resnet20", "resnet32", "resnet44", "resnet56", "lenet5", "kerasnet")
    }
    assert counts["resnet20"] == 269_722
    # Each extra block per stage adds 2*(16^2 + 32^2 + 64^2)*9 + 2*2*(16+32+64) = 97,216 parameters,
    # giving the 0.46M / 0.66M / 0.85M of Idelbayev's table.
    assert counts["resnet32"] == 269_722 + 2 * 97_216
    assert counts["resnet44"] == 269_722 + 4 * 97_216
    assert counts["resnet56"] == 269_722 + 6 * 97_216
    # LeNet-5 on CIFAR: 3*20*25 + 20*50*25 (no biases) + 1250*500 + 500 + 500*10 (no bias).
    assert counts["lenet5"] == 1_500 + 25_000 + 625_500 + 5_000
    # KerasNet on CIFAR: four convs with bias, fc 2304 -> 512, head 512 -> 10.
    assert counts["kerasnet"] == 896 + 9_248 + 18_496 + 36_928 + (2_304 * 512 + 512) + 5_130


def test_dnn_init_quirk() -> None:
    # Seed 000 re-creates the first and last layers after its Kaiming pass: only the hidden-to-hidden
    # layers are He-normal (std sqrt(2 / fan_in)); the others keep the default U(+-1/sqrt(fan_in)),
    # whose std is 1/sqrt(3 fan_in).
    torch.manual_seed(0)
    model = build_model("dnn5", input_shape=(1, 28, 28), num_classes=10)
    hidden = model.get_parameter("fc.linear2.weight").detach()
    first = model.get_parameter("fc.linear1.weight").detach()
    assert float(hidden.std()) == pytest.approx((2 / 512) ** 0.5, rel=0.05)
    assert float(first.std()) == pytest.approx((1 / (3 * 784)) ** 0.5, rel=0.05)


def test_option_a_shortcut_is_subsample_and_zero_pad() -> None:
    shortcut = ZeroPadShortcut(16, 32, 2)
    x = torch.randn(2, 16, 8, 8)
    out = shortcut(x)
    assert out.shape == (2, 32, 4, 4)
    # The original pads planes // 4 = 8 channels on each side.
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert not out[:, :8].any() and not out[:, 24:].any()
    assert not list(shortcut.parameters())
    model = build_model("resnet8", input_shape=(3, 32, 32), num_classes=10)
    assert isinstance(model.get_submodule("stage1.block1.shortcut"), nn.Identity)
    for stage, (c_in, c_out) in {"stage2": (16, 32), "stage3": (32, 64)}.items():
        block = model.get_submodule(f"{stage}.block1")
        assert isinstance(block.shortcut, ZeroPadShortcut)
        assert block.shortcut.stride == 2 and block.conv1.stride == (2, 2)
        assert block.conv1.in_channels == c_in and block.conv1.out_channels == c_out


def test_torchvision_model_slots_and_adapter() -> None:
    model = build_model("tv:resnet18", input_shape=(1, 32, 32), num_classes=7)
    assert isinstance(model.get_submodule("adapter"), nn.Conv2d)
    tags = slot_table(model)
    assert len(tags) == 9  # the stem relu + one reused relu per BasicBlock (4 stages x 2)
    assert tags["net.relu"] == ["conv", "stem"]
    assert tags["net.layer4.1.relu"] == ["conv"]
    assert {family_of(slot) for _, slot in iter_slots(model)} == {"relu"}
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    native = build_model("tv:resnet18", input_shape=(3, 32, 32), num_classes=7, base_activation="native")
    assert isinstance(native.get_submodule("adapter"), nn.Identity)
    assert all(isinstance(slot.act, nn.ReLU) for _, slot in iter_slots(native))


@pytest.mark.parametrize("name", ["tv:mobilenet_v3_small", "tv:efficientnet_v2_s"])
@pytest.mark.parametrize("base", ["relu", "sigmoid"])
def test_torchvision_models_leave_a_slots_output_alone(name: str, base: str) -> None:
    # ReLU and Sigmoid keep their output for backward. These models overwrote an activation's output in
    # place (MobileNetV3's Dropout(inplace=True) after its classifier's activation, EfficientNetV2's
    # `result += input` on a block ending in one), which broke the first backward pass.
    torch.manual_seed(0)
    side = small_side(name)
    model = build_model(name, input_shape=(3, side, side), num_classes=10, base_activation=base).train()
    model(torch.randn(2, 3, side, side)).square().mean().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", ["tv:mobilenet_v3_small", "tv:mnasnet0_5"])
def test_torchvision_batch_norms_keep_up_with_a_trials_few_steps(name: str) -> None:
    # torchvision builds these with BatchNorm momenta of 0.01 and 0.0003 (for ImageNet's many steps):
    # after a few epochs on digits their running statistics were still near their start, and a
    # MobileNetV3 that trained to 78 % scored chance in eval mode.
    model = build_model(name, input_shape=(1, 32, 32), num_classes=10)
    momenta = {m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)}
    assert momenta == {0.1}


def test_torchvision_pretrained_reads_the_hub_cache_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ModelError, match=r"not available offline: .*resnet18-f37072fd\.pth is missing"):
        build_model("tv:resnet18", input_shape=(3, 32, 32), num_classes=10, pretrained=True)
    # A file in the cache is used as it is (here random weights standing in for ImageNet's).
    torch.manual_seed(0)
    reference = torchvision.models.resnet18()
    (tmp_path / "checkpoints").mkdir()
    torch.save(reference.state_dict(), tmp_path / "checkpoints" / "resnet18-f37072fd.pth")
    model = build_model("tv:resnet18", input_shape=(3, 32, 32), num_classes=10, pretrained=True)
    assert torch.equal(model.get_parameter("net.layer3.0.conv1.weight"), reference.layer3[0].conv1.weight)
    assert model.get_submodule("net.fc").out_features == 10  # head resized from 1000 classes


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("resnet", {}, r"unknown model 'resnet'; choose one of: dnn2, .*resnet20.*vanillanet.*tv:NAME"),
        ("tv:not_a_net", {}, r"unknown torchvision model 'tv:not_a_net'.*resnet18"),
        ("resnet8", {"pretrained": True}, r"no pretrained weights"),
        ("vanillanet", {"input_shape": (3, 16, 16)}, r"at least 32x32 pixels, got 16x16"),
        ("dnn2", {"input_shape": (28, 28)}, r"input shape \(channels, height, width\)"),
        ("dnn2", {"num_classes": 0}, r"at least one class"),
        # LSLU needs each slot's channel count, which only the plan gives it
        ("resnet8", {"base_activation": "lslu"}, r"base_activation 'lslu': .*channel count.*put it in the plan"),
        ("tv:resnet18", {"base_activation": "lslu"}, r"base_activation 'lslu': .*put it in the plan"),
    ],
)
def test_user_errors(name: str, kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"input_shape": (3, 32, 32), "num_classes": 10, **kwargs}
    with pytest.raises(ModelError, match=message) as raised:
        build_model(name, **arguments)  # type: ignore[arg-type]
    assert isinstance(raised.value, UserError)


def test_model_info_rejects_unknown_names() -> None:
    with pytest.raises(ModelError, match="choose one of: dnn2, dnn3"):
        model_info("dnn4")
