"""The activation registry: the single source of truth for every activation the tool knows.

Each family is one class decorated with :func:`register`. The class declares its parameters, the
parameter shapes it supports, its named init presets and the known functions it reduces to; the CLI
listing, the plots, the search spaces and the contract tests all read those declarations from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

import torch
from torch import Tensor, nn

from aaf_search.errors import UserError

ParamShape = Literal["network", "layer", "channel", "neuron"]
PARAM_SHAPES: tuple[ParamShape, ...] = ("network", "layer", "channel", "neuron")
"""How many parameter sets an activation has.

``network``: one set shared by every slot that uses the same module (seed 000's global sharing);
``layer``: one set per slot; ``channel``: one per channel (dim 1 of an ``(N, C, ...)`` input);
``neuron``: one per element of the input without the batch dimension.
"""

InitValue = float | Sequence[float] | Tensor | tuple[Any, ...]
"""One parameter's initial value: a number (filled), a sequence, a tensor, or a tagged tuple such as
``("uniform", low, high)`` (a random draw) or a family-specific tag (F-neuron's ``("knots", "tanh")``)."""
InitSpec = str | Mapping[str, InitValue] | None


class ActivationError(UserError):
    """A user asked for an activation, preset, parameter or shape that does not exist."""


@dataclass(frozen=True)
class Reduction:
    """A parameter setting under which a family equals a known function.

    ``init`` is a preset name or a dict of parameter values; ``reference`` is the known function;
    ``atol`` is the tolerance the contract test uses on inputs in [-3, 3]; ``options`` are passed to
    :func:`create`; ``via`` names the module method that equals ``reference`` (``"forward"``, or LSLU's
    ``"elementwise"``, whose full forward also mixes neighbouring pixels).
    """

    name: str
    init: str | Mapping[str, InitValue]
    reference: Callable[[Tensor], Tensor]
    atol: float = 1e-6
    options: Mapping[str, Any] = field(default_factory=dict)
    via: str = "forward"


class Activation(nn.Module):
    """Base class of every registered activation.

    Subclasses set the class attributes below and implement ``forward``. Learnable parameters are
    ``nn.Parameter`` attributes named exactly as in ``param_names``.
    """

    family: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    source: ClassVar[str] = ""  # which seed project / paper the family comes from
    param_names: ClassVar[tuple[str, ...]] = ()
    shapes: ClassVar[tuple[ParamShape, ...]] = ("network", "layer")
    presets: ClassVar[Mapping[str, Mapping[str, InitValue]]] = {}
    default_preset: ClassVar[str | None] = None
    reductions: ClassVar[tuple[Reduction, ...]] = ()
    option_names: ClassVar[tuple[str, ...]] = ()
    init_aliases: ClassVar[Mapping[str, str]] = {}  # init key -> attribute, e.g. {"lambda": "lam"}
    # Trainable tensors that belong to the module but are not activation-shape parameters (LSLU's
    # depthwise kernel and BatchNorm affine): no presets, not reported per epoch.
    structural_params: ClassVar[tuple[str, ...]] = ()
    # The constructor takes ``channels`` (LSLU's depthwise conv and BatchNorm are sized by it).
    needs_channels: ClassVar[bool] = False
    # Whether a forward with gradients has taken the fused path (see activations.fused.uses_fused).
    trained_fused = False

    @property
    def trainable(self) -> bool:
        return bool(self.param_names)

    def init_parameter(self, name: str, value: InitValue) -> None:
        """Write one initial value into parameter ``name`` (called under ``no_grad``).

        Families whose presets depend on options (LinComb's basis count, F-neuron's knots) override this
        to resolve their own value shapes and tags, then defer to this default.
        """
        param = getattr(self, name, None)
        if isinstance(param, Tensor):
            write_value(param, value, self.family, name)

    def learned_parameters(self) -> dict[str, Tensor]:
        """The declared learnable parameters by their spec names (detached views)."""
        return {name: getattr(self, name).detach() for name in self.param_names if hasattr(self, name)}


A = TypeVar("A", bound=type[Activation])

_REGISTRY: dict[str, type[Activation]] = {}


def register(cls: A) -> A:
    """Class decorator that adds an activation family to the registry under ``cls.family``."""
    name = cls.family
    if not name:
        raise TypeError(f"{cls.__name__} must set the class attribute 'family'")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise TypeError(f"activation '{name}' is registered twice ({_REGISTRY[name].__name__}, {cls.__name__})")
    _REGISTRY[name] = cls
    return cls


def _ensure_loaded() -> None:
    # The family modules register themselves on import; importing the package imports them all.
    import aaf_search.activations  # noqa: F401


def names(*, trainable: bool | None = None) -> list[str]:
    """Every registered activation name, sorted; ``trainable`` filters learnable/fixed ones."""
    _ensure_loaded()
    selected = [n for n, c in _REGISTRY.items() if trainable is None or bool(c.param_names) == trainable]
    return sorted(selected)


def get(name: str) -> type[Activation]:
    """The class registered as ``name`` (case-insensitive), or an error listing the valid names."""
    _ensure_loaded()
    key = name.lower()
    if key not in _REGISTRY:
        raise ActivationError(f"unknown activation '{name}'; choose one of: {', '.join(names())}")
    return _REGISTRY[key]


def create(
    name: str,
    *,
    init: InitSpec = None,
    shape: ParamShape = "layer",
    channels: int | None = None,
    input_shape: Sequence[int] | None = None,
    **options: Any,
) -> Activation:
    """Build the activation ``name``.

    Args:
        name: a registered family (see :func:`names`).
        init: a preset name (``"as_relu"``), a dict of parameter values keyed by the family's parameter
            names (missing ones take the default preset), or ``None`` for the default.
        shape: one of :data:`PARAM_SHAPES` supported by the family.
        channels: the channel count, required for ``shape="channel"`` and for families with
            ``needs_channels`` (LSLU), which receive it as the constructor argument ``channels``.
        input_shape: the input shape without the batch dimension, required for ``shape="neuron"``.
        options: family options (LinComb ``bases``, F-neuron ``count``/``interval``, LSLU ``n``, ...).
    """
    cls = get(name)
    if shape not in PARAM_SHAPES:
        raise ActivationError(f"unknown parameter shape '{shape}'; choose one of: {', '.join(PARAM_SHAPES)}")
    if shape not in cls.shapes:
        raise ActivationError(
            f"activation '{cls.family}' does not support shape '{shape}'; it supports: {', '.join(cls.shapes)}"
        )
    unknown = sorted(set(options) - set(cls.option_names))
    if unknown:
        valid = ", ".join(cls.option_names) or "none"
        raise ActivationError(f"activation '{cls.family}' has no option {', '.join(unknown)}; its options: {valid}")
    param_shape = resolve_param_shape(cls.family, shape, channels, input_shape)
    if cls.needs_channels:
        options["channels"] = _channel_count(cls.family, channels, input_shape)
    module = cls(param_shape=param_shape, **options)
    apply_init(module, init)
    return module


def _channel_count(family: str, channels: int | None, input_shape: Sequence[int] | None) -> int:
    if channels is None and input_shape is not None:
        channels = int(input_shape[0])
    if channels is None or channels < 1:
        raise ActivationError(f"activation '{family}' needs a positive channel count (channels=C or input_shape)")
    return channels


def resolve_param_shape(
    family: str, shape: ParamShape, channels: int | None, input_shape: Sequence[int] | None
) -> tuple[int, ...]:
    """The tensor shape of one parameter for a given sharing mode.

    Per-channel parameters are shaped ``(C, 1, ..., 1)`` so that they broadcast over dim 1 of the input
    (the trailing ones are added by the family from ``input_shape`` when known, else for 4-D inputs).
    """
    if shape in ("network", "layer"):
        return (1,)
    if shape == "channel":
        if channels is None:
            if input_shape is None:
                raise ActivationError(f"activation '{family}' with shape 'channel' needs the channel count")
            channels = int(input_shape[0])
        trailing = len(input_shape) - 1 if input_shape is not None else 2
        return (channels,) + (1,) * trailing
    if input_shape is None:
        raise ActivationError(f"activation '{family}' with shape 'neuron' needs the input shape")
    return tuple(int(d) for d in input_shape)


def preset_values(cls: type[Activation], init: InitSpec) -> dict[str, InitValue]:
    """Resolve ``init`` into parameter values: defaults first, then the preset or the explicit dict."""
    values: dict[str, InitValue] = {}
    if cls.default_preset is not None:
        values.update(cls.presets[cls.default_preset])
    if init is None:
        return values
    if isinstance(init, str):
        key = init.lower()
        if key not in cls.presets:
            valid = ", ".join(cls.presets) or "none"
            raise ActivationError(f"activation '{cls.family}' has no preset '{init}'; its presets: {valid}")
        values.update(cls.presets[key])
        return values
    init = {cls.init_aliases.get(key, key): value for key, value in init.items()}
    unknown = sorted(set(init) - set(cls.param_names))
    if unknown:
        valid = ", ".join([*cls.init_aliases, *cls.param_names]) or "none"
        raise ActivationError(
            f"activation '{cls.family}' has no parameter {', '.join(unknown)}; its parameters: {valid}"
        )
    values.update(init)
    return values


RANDOM_UNIFORM = "uniform"


def apply_init(module: Activation, init: InitSpec) -> None:
    """Write the initial values given by ``init`` into ``module``'s parameters.

    A value may be a number (filled), a sequence (one value per channel for a ``(C, 1, ..., 1)``
    parameter; otherwise broadcast to the parameter's shape along its last dimension where lengths
    match, else element-wise), or ``("uniform", low, high)`` for a random draw from torch's global
    generator (APA's U(0, 1) init). Families may override :meth:`Activation.init_parameter`.
    """
    values = preset_values(type(module), init)
    with torch.no_grad():
        for name, value in values.items():
            module.init_parameter(name, value)


def write_value(param: Tensor, value: Any, family: str, name: str) -> None:
    """Write a number, a sequence, a tensor or a ``("uniform", low, high)`` draw into ``param``."""
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        if value[0] == RANDOM_UNIFORM and len(value) == 3:
            param.uniform_(float(value[1]), float(value[2]))
            return
        raise ActivationError(f"activation '{family}': unknown init value {value!r} for '{name}'")
    tensor = torch.as_tensor(value, dtype=param.dtype)
    if tensor.ndim == 0:
        param.fill_(float(tensor))
        return
    if tensor.ndim == 1 and param.ndim > 1 and param.numel() == param.shape[0] == tensor.shape[0]:
        # One value per channel for a (C, 1, ..., 1) parameter: align with dim 0, not the last dim.
        tensor = tensor.view(param.shape)
    try:
        param.copy_(tensor.expand_as(param) if tensor.shape != param.shape else tensor)
    except RuntimeError as exc:
        raise ActivationError(
            f"activation '{family}': value for '{name}' has shape {tuple(tensor.shape)}, "
            f"which does not fit the parameter shape {tuple(param.shape)}"
        ) from exc
