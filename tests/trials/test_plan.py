"""Activation plans: selectors, overrides, sharing, freezing and parameter summaries on a tiny model."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from aaf_search.config import ActivationSpec, PlanEntry
from aaf_search.trials.loop import evaluate
from aaf_search.trials.plan import (
    PlanError,
    activation_parameters,
    apply_plan,
    describe_slots,
    freeze_all_but_activations,
    select_slots,
    summarize_activation_params,
    uniform_plan,
)
from aaf_search.trials.slots import ActivationSlot, iter_slots


class TinyNet(nn.Module):
    """Two conv slots (the first one the stem) and one fc slot."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.stem = nn.Module()
        self.stem.act = ActivationSlot("relu", tags=("conv", "stem"))
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.act2 = ActivationSlot("relu", tags=("conv", "stage_end"))
        self.fc1 = nn.Linear(6 * 8 * 8, 5)
        self.fc = nn.Module()
        self.fc.act1 = ActivationSlot("relu", tags=("fc",))
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act2(self.conv2(self.stem.act(self.conv1(x))))
        return self.head(self.fc.act1(self.fc1(x.flatten(1))))


def example() -> torch.Tensor:
    return torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def test_slot_table_has_names_tags_and_shapes() -> None:
    slots = describe_slots(TinyNet(), example())
    assert list(slots) == ["stem.act", "act2", "fc.act1"]
    assert slots["stem.act"].tags == {"conv", "stem"}
    assert slots["stem.act"].shapes == ((4, 8, 8),)
    assert slots["fc.act1"].shapes == ((5,),)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("all", ["stem.act", "act2", "fc.act1"]),
        ("tag:conv", ["stem.act", "act2"]),
        ("tag:fc", ["fc.act1"]),
        ("fc.act1", ["fc.act1"]),
        ("*.act*", ["stem.act", "fc.act1"]),
    ],
)
def test_selectors(selector: str, expected: list[str]) -> None:
    assert select_slots(describe_slots(TinyNet(), example()), selector) == expected


def test_selector_that_matches_nothing_lists_slots_and_tags() -> None:
    with pytest.raises(PlanError) as error:
        select_slots(describe_slots(TinyNet(), example()), "tag:attention_gate")
    message = str(error.value)
    assert "slots: stem.act, act2, fc.act1" in message
    assert "tag:conv" in message and "tag:stem" in message


def test_later_entries_override_earlier_ones_and_others_keep_the_base() -> None:
    model = TinyNet()
    plan = (
        PlanEntry("tag:conv", ActivationSpec("silu")),
        PlanEntry("stem.act", ActivationSpec("prelu", shape="channel")),
    )
    apply_plan(model, plan, example())
    acts = {name: slot.act for name, slot in iter_slots(model)}
    assert acts["stem.act"].family == "prelu"
    assert acts["stem.act"].a.shape == (4, 1, 1)
    assert acts["act2"].family == "silu"
    assert acts["fc.act1"].family == "relu"


def test_network_shape_shares_one_module_and_layer_shape_does_not() -> None:
    shared, separate = TinyNet(), TinyNet()
    apply_plan(shared, uniform_plan("prelu", shape="network"), example())
    apply_plan(separate, uniform_plan("prelu", shape="layer"), example())
    assert len(activation_parameters(shared)) == 1
    assert len(activation_parameters(separate)) == 3


def test_neuron_shape_takes_the_slot_shape() -> None:
    model = TinyNet()
    apply_plan(model, uniform_plan("prelu", shape="neuron"), example())
    assert [p.shape for p in activation_parameters(model)] == [(4, 8, 8), (6, 8, 8), (5,)]


def test_untrainable_spec_freezes_the_activation() -> None:
    model = TinyNet()
    apply_plan(model, uniform_plan("prelu", trainable=False), example())
    assert all(not p.requires_grad for p in activation_parameters(model))


def test_freeze_all_but_activations_trains_only_activations() -> None:
    model = TinyNet()
    apply_plan(model, uniform_plan("prelu"), example())
    trainable = freeze_all_but_activations(model)
    assert {id(p) for p in model.parameters() if p.requires_grad} == {id(p) for p in trainable}
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(example()).sum().backward()
    optimizer.step()
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {"stem.act.act.a", "act2.act.a", "fc.act1.act.a"}


def test_summary_reports_mean_min_max_per_slot_and_parameter() -> None:
    model = TinyNet()
    apply_plan(
        model,
        uniform_plan("prelu", shape="channel", init={"a": [0.1, 0.2, 0.3, 0.6]}, selectors=["stem.act"]),
        example(),
    )
    summary = summarize_activation_params(model)
    assert list(summary) == ["stem.act"]
    assert summary["stem.act"]["a"] == pytest.approx({"mean": 0.3, "min": 0.1, "max": 0.6})


class ScalarReads(TorchDispatchMode):
    """Counts tensors read one scalar at a time (``float(t)``, ``t.item()``): each waits for a GPU."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.count += func is torch.ops.aten._local_scalar_dense.default
        return func(*args, **(kwargs or {}))


def test_summary_and_evaluation_read_their_numbers_in_one_copy() -> None:
    model = TinyNet()
    apply_plan(model, uniform_plan("leaf", shape="channel") + uniform_plan("lincomb", selectors=["fc.act1"]), example())
    with ScalarReads() as reads:
        summary = summarize_activation_params(model)
        loss, accuracy = evaluate(model, example(), torch.tensor([0, 1]))
    assert reads.count == 0
    assert len(summary["fc.act1"]["w"]["values"]) == 4 and set(summary["stem.act"]) == {"p1", "p2", "p3", "p4"}
    assert loss > 0 and accuracy in (0.0, 0.5, 1.0)
