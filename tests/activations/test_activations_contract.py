"""Contract tests, parametrised over every registered activation: what the rest of the package relies on."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from activation_cases import INPUT_SHAPES, build64, build64_as, build_for, supported_inputs

from aaf_search import activations
from aaf_search.activations.fneuron import FNeuron
from aaf_search.activations.kostiuk import AHAF
from aaf_search.activations.lslu import LSLU
from aaf_search.activations.pishchik import LinComb, NormLinComb
from aaf_search.activations.registry import Activation, ActivationError, ParamShape, Reduction

NAMES = activations.names()
DTYPES = [torch.float32, torch.bfloat16, torch.float64]
REDUCTIONS = [(name, r) for name in NAMES for r in activations.get(name).reductions]
PRESETS = [(name, preset) for name in NAMES for preset in activations.get(name).presets]


def _cases(name: str) -> list[tuple[str, ParamShape, str]]:
    return [(name, mode, key) for mode in activations.get(name).shapes for key in supported_inputs(name)]


SHAPE_CASES = [case for name in NAMES for case in _cases(name)]


def _input(key: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return (3 * torch.randn(INPUT_SHAPES[key], generator=generator)).to(dtype)


def _perturb(module: Activation) -> None:
    """Move every parameter off its init so round trips are checked on distinctive values."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.rand(p.shape, generator=generator, dtype=p.dtype))


def test_registry_has_every_spec_family() -> None:
    expected = {"coslu", "sinlu", "delu", "helu", "lincomb", "normlincomb", "relun", "scaledsoftsign", "shilu"}
    expected |= {"ahaf", "leaf", "fneuron", "lslu", "apa", "aglu"}
    assert expected <= set(NAMES)
    assert set(activations.names(trainable=True)) >= expected - {"helu"}
    assert "helu" in activations.names(trainable=False)


@pytest.mark.parametrize("name", NAMES)
def test_declarations_are_consistent(name: str) -> None:
    cls = activations.get(name)
    assert cls.family == name and cls.summary and cls.source
    assert set(cls.shapes) <= set(activations.PARAM_SHAPES) and cls.shapes
    assert cls.default_preset is None or cls.default_preset in cls.presets
    assert all(p == p.lower() for p in cls.presets)
    for preset in cls.presets.values():
        assert set(preset) <= set(cls.param_names)
    assert set(cls.init_aliases.values()) <= set(cls.param_names)
    # A trainable family always has a default preset, a fixed one none.
    assert (cls.default_preset is not None) == bool(cls.param_names)


@pytest.mark.parametrize(("name", "mode", "key"), SHAPE_CASES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_forward_keeps_shape_and_dtype(name: str, mode: ParamShape, key: str, dtype: torch.dtype) -> None:
    x = _input(key)
    module = build_for(name, mode, x.shape[1:]).to(dtype)
    out = module(x.to(dtype))
    assert out.shape == x.shape and out.dtype == dtype
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_low_precision_input_to_fp32_module_returns_input_dtype(name: str) -> None:
    key = supported_inputs(name)[0]
    x = _input(key)
    module = build_for(name, "layer", x.shape[1:])
    out = module(x.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), module(x.bfloat16().float()), atol=0.02, rtol=0.02)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_no_nan_or_inf_for_extreme_inputs_at_default_init(name: str, dtype: torch.dtype) -> None:
    values = torch.cat([torch.linspace(-1e4, 1e4, 201), torch.tensor([-100.0, -89.0, -1e-3, 0.0, 1e-3, 89.0, 100.0])])
    x = (
        values.view(1, 1, 1, -1).expand(2, 3, 2, -1).contiguous()
        if name == "lslu"
        else values.view(-1, 1).expand(-1, 3)
    )
    module = build_for(name, "layer", tuple(x.shape[1:])).to(dtype)
    x = x.to(dtype).requires_grad_(True)
    out = module(x)
    assert torch.isfinite(out).all()
    grads = torch.autograd.grad(out.float().sum(), [x, *module.parameters()])
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(("name", "mode", "key"), SHAPE_CASES)
def test_parameter_shapes(name: str, mode: ParamShape, key: str) -> None:
    input_shape = INPUT_SHAPES[key][1:]
    module = build_for(name, mode, input_shape)
    expected = {"network": (1,), "layer": (1,), "channel": (input_shape[0],) + (1,) * (len(input_shape) - 1)}
    expected["neuron"] = input_shape
    base = expected[mode]
    for pname in module.param_names:
        shape = tuple(getattr(module, pname).shape)
        if isinstance(module, LinComb | NormLinComb):
            assert shape == (len(module.bases), *base)
        elif isinstance(module, FNeuron):
            assert shape == (*base, module.count + 2)
        elif isinstance(module, LSLU):
            assert shape == (module.n,)
        else:
            assert shape == base, (pname, shape)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_are_exactly_the_declared_ones(name: str) -> None:
    cls = activations.get(name)
    module = build_for(name, "layer", INPUT_SHAPES[supported_inputs(name)[0]][1:])
    assert {n for n, _ in module.named_parameters()} == set(cls.param_names) | set(cls.structural_params)
    assert list(module.learned_parameters()) == list(cls.param_names)
    assert module.trainable == bool(cls.param_names)
    assert all(isinstance(getattr(module, n), torch.nn.Parameter) for n in cls.param_names)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_and_pickle_round_trip(name: str) -> None:
    key = supported_inputs(name)[0]
    x = _input(key)
    module = build_for(name, "channel" if "channel" in activations.get(name).shapes else "layer", x.shape[1:])
    _perturb(module)
    if name == "lslu":
        module(x)  # give BatchNorm non-trivial running statistics
        module.eval()
    expected = module(x)

    fresh = build_for(name, "channel" if "channel" in activations.get(name).shapes else "layer", x.shape[1:])
    fresh.load_state_dict(module.state_dict())
    fresh.train(module.training)
    torch.testing.assert_close(fresh(x), expected, atol=0, rtol=0)

    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.load(buffer, weights_only=False)(x), expected, atol=0, rtol=0)
    torch.testing.assert_close(pickle.loads(pickle.dumps(module))(x), expected, atol=0, rtol=0)
    torch.testing.assert_close(copy.deepcopy(module)(x), expected, atol=0, rtol=0)


@pytest.mark.parametrize(("name", "reduction"), REDUCTIONS, ids=[f"{n}-{r.name}" for n, r in REDUCTIONS])
def test_declared_reductions_hold(name: str, reduction: Reduction) -> None:
    module = build64(name, reduction.init, **reduction.options)
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    x = x.view(1, 1, 1, -1).expand(1, 3, 1, -1) if name == "lslu" else x.view(-1, 1)
    out = getattr(module, reduction.via)(x)
    torch.testing.assert_close(out, reduction.reference(x), atol=reduction.atol, rtol=0)


@pytest.mark.parametrize(("name", "preset"), PRESETS)
def test_every_preset_builds_and_applies(name: str, preset: str) -> None:
    cls = activations.get(name)
    module = build64(name, preset)
    for pname, value in cls.presets[preset].items():
        param = getattr(module, pname)
        if isinstance(value, tuple) and value[0] == "uniform":
            assert (param >= value[1]).all() and (param <= value[2]).all()
            assert param.numel() == 1 or param.std() > 0
        elif isinstance(value, int | float):
            assert (param == value).all()
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    x = x.view(1, 1, 1, -1).expand(1, 3, 1, -1) if name == "lslu" else x
    assert torch.isfinite(module(x)).all()


@pytest.mark.parametrize("name", [n for n in NAMES if activations.get(n).default_preset is not None])
def test_default_init_equals_the_default_preset(name: str) -> None:
    cls = activations.get(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        implicit = build_for(name, "layer", (3, 4, 5))
        torch.manual_seed(3)
        explicit = activations.create(name, init=cls.default_preset, channels=3)
    for pname in cls.param_names:
        torch.testing.assert_close(getattr(implicit, pname), getattr(explicit, pname), atol=0, rtol=0)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "lslu"])
def test_unsupported_param_shapes_are_refused(name: str) -> None:
    cls = activations.get(name)
    for mode in set(activations.PARAM_SHAPES) - set(cls.shapes):
        with pytest.raises(ActivationError, match="supports"):
            build_for(name, mode, (3,))


def test_lslu_supports_only_layer_and_4d_input() -> None:
    for mode in ("network", "channel", "neuron"):
        with pytest.raises(ActivationError, match="supports: layer"):
            build_for("lslu", mode, (3, 4, 4))
    module = activations.create("lslu", channels=3)
    for shape in [(4, 3), (2, 3, 5), (1, 2, 3, 4, 5)]:
        with pytest.raises(ActivationError, match="4-D"):
            module(torch.zeros(shape))
    with pytest.raises(ActivationError, match="3 channels"):
        module(torch.zeros(1, 4, 5, 5))


@pytest.mark.parametrize(
    "name", [n for n in NAMES if "channel" in activations.get(n).shapes and activations.get(n).param_names]
)
def test_channel_parameters_broadcast_over_dim_1_for_any_rank(name: str) -> None:
    # Built knowing only the channel count ((C, 1, 1) parameters), used on (N, C) and (N, C, L) input:
    # each channel must see its own parameters, as if the layer were applied channel by channel.
    module = activations.create(name, shape="channel", channels=3)
    _perturb(module)
    per_channel = []
    for c in range(3):
        single = activations.create(name, shape="layer")
        with torch.no_grad():
            for pname in module.param_names:
                param = getattr(module, pname)
                index = (slice(None), c) if name in ("lincomb", "normlincomb") else (c,)
                getattr(single, pname).copy_(param[index].reshape(getattr(single, pname).shape))
        per_channel.append(single)
    for shape in [(5, 3), (5, 3, 4), (2, 3, 4, 4)]:
        x = torch.randn(shape)
        out = module(x)
        for c in range(3):
            torch.testing.assert_close(out[:, c], per_channel[c](x[:, c]))


def test_neuron_parameters_are_per_element() -> None:
    module = build64_as(AHAF, shape="neuron", input_shape=(2, 3))
    with torch.no_grad():
        module.beta.copy_(torch.arange(6, dtype=torch.float64).view(2, 3))
        module.gamma.copy_(torch.linspace(0.5, 3, 6, dtype=torch.float64).view(2, 3))
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    torch.testing.assert_close(module(x), module.beta * x * torch.sigmoid(module.gamma * x))


def test_per_channel_init_sequences_align_with_the_channel_dim() -> None:
    module = activations.create("coslu", shape="channel", channels=3, init={"a": [1.0, 2.0, 3.0]})
    assert module.learned_parameters()["a"].view(-1).tolist() == [1.0, 2.0, 3.0]
    # LinComb's w is (k, C, 1, 1): a length-k sequence is per basis even when k == C.
    lincomb = activations.create("lincomb", shape="channel", channels=4, init={"w": [1.0, 0.0, 0.0, 0.0]})
    assert lincomb.learned_parameters()["w"].view(4, 4).tolist() == [[1.0] * 4, [0.0] * 4, [0.0] * 4, [0.0] * 4]
