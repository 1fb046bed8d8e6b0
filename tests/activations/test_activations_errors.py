"""Bad requests raise ActivationError (a UserError: one line at the CLI) that names the valid choices."""

from __future__ import annotations

import pytest
import torch

from aaf_search import activations
from aaf_search.activations import ActivationError
from aaf_search.errors import UserError


def test_activation_error_is_a_user_error() -> None:
    assert issubclass(ActivationError, UserError)
    assert issubclass(activations.FusionError, ActivationError)


def test_unknown_name_lists_the_names() -> None:
    with pytest.raises(ActivationError, match="unknown activation 'cosslu'") as info:
        activations.create("cosslu")
    for name in ("coslu", "leaf", "lslu", "relu"):
        assert name in str(info.value)


def test_names_are_case_insensitive() -> None:
    assert activations.get("LEAF") is activations.get("leaf")
    assert isinstance(activations.create("AGLU", init="AS_SILU"), activations.Activation)


def test_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(ActivationError, match="no preset 'as_gelu'") as info:
        activations.create("leaf", init="as_gelu")
    for preset in ("as_relu", "as_silu", "as_tanh", "as_sigmoid", "custom", "random"):
        assert preset in str(info.value)


def test_unknown_parameter_lists_the_parameters_and_aliases() -> None:
    with pytest.raises(ActivationError, match="no parameter p5") as info:
        activations.create("leaf", init={"p1": 1.0, "p5": 2.0})
    assert "p1, p2, p3, p4" in str(info.value)
    with pytest.raises(ActivationError, match="lambda") as info:
        activations.create("apa", init={"lamda": 0.5})
    assert "kappa" in str(info.value)


def test_lambda_alias_sets_lam() -> None:
    module = activations.create("aglu", init={"lambda": 0.5, "kappa": 2.0})
    assert module.learned_parameters() == {"lam": torch.tensor([0.5]), "kappa": torch.tensor([2.0])}


def test_unsupported_shape_lists_the_supported_ones() -> None:
    with pytest.raises(ActivationError, match="does not support shape 'channel'; it supports: network, layer, neuron"):
        activations.create("fneuron", shape="channel", channels=3)
    with pytest.raises(ActivationError, match="supports: network, layer, channel"):
        activations.create("coslu", shape="neuron", input_shape=(3,))
    with pytest.raises(ActivationError, match="choose one of: network, layer, channel, neuron"):
        activations.create("coslu", shape="pixel")  # type: ignore[arg-type]


def test_unknown_option_lists_the_options() -> None:
    with pytest.raises(ActivationError, match="no option counts; its options: count, interval"):
        activations.create("fneuron", counts=4)
    with pytest.raises(ActivationError, match="no option n; its options: none"):
        activations.create("coslu", n=3)


def test_bad_option_values() -> None:
    with pytest.raises(ActivationError, match="no basis swish; choose from: relu, sigmoid"):
        activations.create("lincomb", bases=["relu", "swish"])
    with pytest.raises(ActivationError, match="non-empty list"):
        activations.create("lincomb", bases="relu")
    with pytest.raises(ActivationError, match="count must be an integer"):
        activations.create("fneuron", count=-1)
    with pytest.raises(ActivationError, match="left < right"):
        activations.create("fneuron", interval=(1.0, -1.0))
    with pytest.raises(ActivationError, match="series length n"):
        activations.create("lslu", channels=4, n=0)


def test_missing_sizes() -> None:
    with pytest.raises(ActivationError, match="needs a positive channel count"):
        activations.create("lslu")
    with pytest.raises(ActivationError, match="needs the channel count"):
        activations.create("coslu", shape="channel")
    with pytest.raises(ActivationError, match="needs the input shape"):
        activations.create("leaf", shape="neuron")


def test_init_value_of_the_wrong_shape() -> None:
    with pytest.raises(ActivationError, match="does not fit the parameter shape"):
        activations.create("lslu", channels=2, init={"theta": [1.0, 2.0]})
    with pytest.raises(ActivationError, match="unknown init value"):
        activations.create("coslu", init={"a": ("normal", 0.0, 1.0)})


def test_integer_input_is_refused() -> None:
    with pytest.raises(ActivationError, match="floating-point"):
        activations.create("coslu")(torch.arange(3))
