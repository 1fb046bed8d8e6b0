"""Trial configuration: plain, frozen data that fully describes one training run.

A :class:`TrialConfig` crosses process boundaries (Ray workers, the exported YAML) as plain data; the
worker resolves names through the registries. ``to_dict``/``from_dict`` round-trip without loss, and
``load_yaml``/``save_yaml`` add a schema version so that a newer file is refused instead of misread.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from aaf_search.atomic import write_text_atomically
from aaf_search.errors import UserError

SCHEMA_VERSION = 1

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("none", "cosine", "step", "warmup_cosine")
PRECISIONS = ("fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
FINETUNE_MODES = ("all", "activations")


class ConfigError(UserError):
    """A configuration field is missing, unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class ActivationSpec:
    """What to put in a slot: a registered family with its init, parameter shape and options.

    ``init`` is a preset name or a mapping of parameter values (lists for vector parameters);
    ``trainable=False`` freezes the activation's parameters at their initial values.
    """

    family: str
    init: str | dict[str, Any] | None = None
    shape: Literal["network", "layer", "channel", "neuron"] = "layer"
    options: dict[str, Any] = field(default_factory=dict)
    trainable: bool = True


@dataclass(frozen=True)
class PlanEntry:
    """One rule of an activation plan: the slots matched by ``select`` get ``activation``.

    ``select`` is ``all``, a tag (``tag:conv``), a slot name, or a glob over slot names
    (``stage*.block*.act2``). Later entries override earlier ones for the slots they match.
    """

    select: str
    activation: ActivationSpec


@dataclass(frozen=True)
class DataConfig:
    """Which data set, where it lives and how it is split.

    ``options`` holds data-set specific knobs: ``imbalance_ratio`` for the long-tailed sets, ``shape``,
    ``classes`` and ``size`` for ``synthetic``, ``resize`` to force an input size.
    """

    name: str = "digits"
    root: str = "data"
    download: bool = False
    val_fraction: float = 0.1  # of the training set, held out with a fixed seed
    augment: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser, schedule and loss settings; activation parameters may get their own lr and wd."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    act_lr: float | None = None  # None: same as lr
    act_weight_decay: float = 0.0  # weight decay on activation parameters (seed 002 decays them; most do not)
    schedule: str = "none"
    warmup_epochs: int = 0
    step_epochs: tuple[int, ...] = ()  # milestones for the step schedule
    step_gamma: float = 0.1
    label_smoothing: float = 0.0
    p24sl: bool = False  # LEAF p2/p4 slow learning (seed 003): lr/1000 with adam, lr/10 otherwise
    dspu4: bool = False  # double-stage update (seed 003): activation params first, then the rest


@dataclass(frozen=True)
class PretrainConfig:
    """Seed 001's set-up: first train the model with its base activation, then swap and fine-tune.

    The base model is trained once per (model, data, base activation, epochs, optimiser, seed) and
    cached under ``cache_dir``; ``finetune="activations"`` then trains only activation parameters.
    ``seed`` is the base training's own seed, so that every trial of a search shares one base model.
    """

    epochs: int = 10
    optim: OptimConfig = field(default_factory=OptimConfig)
    seed: int = 0
    finetune: str = "activations"
    cache_dir: str = "aaf-runs/pretrained"


@dataclass(frozen=True)
class TrialConfig:
    """Everything one training run needs; the unit that search proposes and export writes."""

    model: str = "dnn2"
    data: DataConfig = field(default_factory=DataConfig)
    base_activation: str = "relu"
    plan: tuple[PlanEntry, ...] = ()
    optim: OptimConfig = field(default_factory=OptimConfig)
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    early_stop_patience: int | None = None  # epochs without validation improvement before stopping
    pretrain: PretrainConfig | None = None

    def __post_init__(self) -> None:
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialConfig:
        return _from_plain(cls, data, "")

    def replace(self, **changes: Any) -> TrialConfig:
        return dataclasses.replace(self, **changes)

    def digest(self) -> str:
        """A short stable hash of the config (for caches and run directory names)."""
        text = json.dumps(self.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def validate(config: TrialConfig) -> None:
    """Range checks that the type system cannot express; raise :class:`ConfigError` naming the field."""
    _choice("optim.name", config.optim.name, OPTIMIZERS)
    _choice("optim.schedule", config.optim.schedule, SCHEDULES)
    _choice("precision", config.precision, PRECISIONS)
    _choice("device", config.device, DEVICES)
    if config.pretrain is not None:
        _choice("pretrain.finetune", config.pretrain.finetune, FINETUNE_MODES)
        _positive("pretrain.epochs", config.pretrain.epochs, allow_zero=True)
    _positive("epochs", config.epochs, allow_zero=True)
    _positive("batch_size", config.batch_size)
    _positive("optim.lr", config.optim.lr)
    if not 0.0 < config.data.val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction must be in (0, 1), got {config.data.val_fraction}")
    if not 0.0 <= config.optim.label_smoothing < 1.0:
        raise ConfigError(f"optim.label_smoothing must be in [0, 1), got {config.optim.label_smoothing}")
    if config.early_stop_patience is not None:
        _positive("early_stop_patience", config.early_stop_patience)


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got '{value}'")


def _positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be {bound}, got {value}")


# ---------------------------------------------------------------------------------------------------
# Plain-data conversion with type checking, so a YAML typo names its field instead of failing later.

T = TypeVar("T")


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    return value


def _from_plain(cls: type[T], data: Any, path: str) -> T:
    where = path or "config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key '{path + '.' if path else ''}{unknown[0]}'; valid keys: {', '.join(fields)}")
    kwargs = {name: _convert(hints[name], data[name], f"{path}.{name}" if path else name) for name in data}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[-1] if errors else f"{path}: unexpected value {value!r}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path} must be one of {', '.join(map(str, args))}; got '{value}'")
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _from_plain(tp, value, path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path} must be a list, got {type(value).__name__}")
        item = args[0] if args else Any
        return tuple(_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path} must be a mapping, got {type(value).__name__}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}")
        return value
    return value


# ---------------------------------------------------------------------------------------------------
# YAML files: a trial config under the key ``trial`` plus free-form metadata (score, study, versions).


def dump_yaml(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(_to_plain(document), sort_keys=False, allow_unicode=True)


META_CPU_THREADS = "cpu_threads"
"""Metadata key of an exported config: the torch CPU thread count its trial ran with (``train`` reuses it)."""


def save_yaml(path: str | Path, config: TrialConfig, **metadata: Any) -> Path:
    """Write ``config`` (and metadata) atomically: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"schema_version": SCHEMA_VERSION, "trial": config.to_dict(), **metadata}
    text = dump_yaml(document)
    write_text_atomically(path, text)
    return path


def yaml_problem(exc: yaml.YAMLError) -> str:
    """What is wrong with a YAML file, for "'PATH' {problem}": where it stops parsing, or the tag refused.

    Files are read with the safe loader, which builds only plain data: a tag such as
    ``!!python/object/apply`` (which would run code) is refused and named, not executed.
    """
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    problem = str(getattr(exc, "problem", "") or "")
    quoted = re.search(r"'([^']+)'", problem)
    if isinstance(exc, yaml.constructor.ConstructorError) and quoted:
        tag = quoted.group(1).replace("tag:yaml.org,2002:", "!!")
        return f"uses the tag '{tag}'{where}, which is refused: only plain YAML data is read, nothing in it is run"
    return f"is not valid YAML{where}"


def require_file(path: Path, what: str, error: type[UserError]) -> None:
    """``error`` naming ``path`` as ``what`` ("config file", "space file") unless it is a file."""
    if path.is_dir():
        inside = sorted(str(found) for found in path.glob("*.yaml"))
        listing = f"; YAML files in it: {', '.join(inside[:5])}" if inside else ""
        raise error(f"{what} '{path}' is a directory{listing}")
    if not path.is_file():
        raise error(f"{what} '{path}' does not exist")


def read_yaml_file(path: Path, where: str, error: type[UserError]) -> Any:
    """The plain data of the UTF-8 YAML file ``path``; ``error(f"{where} {problem}")`` if it cannot be read."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise error(f"{where} is not UTF-8 text (byte 0x{byte:02x} at offset {exc.start}); save it as UTF-8") from exc
    except yaml.YAMLError as exc:
        raise error(f"{where} {yaml_problem(exc)}") from exc


def load_yaml(path: str | Path) -> tuple[TrialConfig, dict[str, Any]]:
    """Read a config file written by :func:`save_yaml` (or by hand); returns (config, metadata)."""
    path = Path(path)
    require_file(path, "config file", ConfigError)
    document = read_yaml_file(path, f"'{path}'", ConfigError)
    if not isinstance(document, Mapping):
        raise ConfigError(f"'{path}' must hold a mapping with a 'trial' key")
    version = document.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ConfigError(
            f"'{path}' has schema_version {version}; this aaf-search reads up to {SCHEMA_VERSION}, upgrade it"
        )
    if "trial" not in document and "params" in document:
        # A space file: the parameters to search, not one configuration to train.
        raise ConfigError(f"'{path}' is a space file, not a trial config; search it with: aaf-search --space {path}")
    if "trial" not in document:
        raise ConfigError(f"'{path}' has no 'trial' key; keys found: {', '.join(map(str, document)) or 'none'}")
    config = TrialConfig.from_dict(document["trial"])
    metadata = {k: v for k, v in document.items() if k not in ("trial", "schema_version")}
    return config, metadata
