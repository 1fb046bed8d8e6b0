"""User-defined spaces: a declarative YAML file, or a Python function named by ``package.module:function``.

A space file lists the parameters to search and the config field each one writes::

    # coslu_vs_sinlu.yaml: ``aaf-search --space coslu_vs_sinlu.yaml``
    name: coslu_vs_sinlu         # optional; default the file name without .yaml (also the study name)
    summary: CosLU or SinLU, per layer or shared, on DNN2
    model: dnn2                  # the defaults; --model, --dataset, --epochs override them
    dataset: digits
    epochs: 3
    batch_size: 64               # optional (64)
    precision: fp32              # optional: fp32, bf16 or fp16 (CUDA); --precision overrides it
    metric: val_accuracy         # optional: val_accuracy (maximize) or val_loss (minimize)
    base:                        # optional: a partial trial config the parameters are written onto
      plan:
        - select: all
          activation: {family: coslu}
    params:
      - name: act/family
        target: plan.0.activation.family       # dotted path into the trial config; numbers index lists
        type: categorical
        choices: [coslu, sinlu]                # both have the parameter a that act/a_init sets
      - name: act/shape
        target: plan.0.activation.shape
        type: categorical
        choices: [network, layer]
      - name: act/a_init
        target: plan.0.activation.init.a       # init and options are free-form mappings
        type: float
        low: 0.5
        high: 2.0
      - name: opt/lr
        target: optim.lr
        type: float
        low: 1.0e-4
        high: 1.0e-2
        log: true                              # optional, float and int
      - name: batch
        target: batch_size
        type: int
        low: 32
        high: 128
        step: 32                               # optional, float and int

The file is checked when it is loaded: unknown keys, a missing field, an empty choice list, a range with
``high <= low`` or a target that the trial config does not have are one-line errors naming the entry.

``--space package.module:function`` imports exactly that module and takes ``function`` from it: either a
define-by-run ``suggest(trial, defaults) -> TrialConfig`` (its docstring documents it; the space, and so
the study, is named ``package.module:function``) or a ready :class:`~aaf_search.spaces.SearchSpace`.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from aaf_search.config import ConfigError, TrialConfig, read_yaml_file, require_file
from aaf_search.spaces.space import SearchSpace, SpaceDefaults, SpaceError

TOP_KEYS = ("name", "summary", "model", "dataset", "epochs", "batch_size", "metric", "precision", "base", "params")
PARAM_TYPES = ("categorical", "float", "int")
PARAM_KEYS = {
    "categorical": ("name", "target", "type", "choices"),
    "float": ("name", "target", "type", "low", "high", "log", "step"),
    "int": ("name", "target", "type", "low", "high", "log", "step"),
}


@dataclass(frozen=True)
class ParamSpec:
    """One searched parameter of a space file: its Optuna name, the config field it sets, its values."""

    name: str
    target: tuple[str, ...]
    type: str
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, self.choices)
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def example(self) -> Any:
        """A valid value (the first choice or the low end), used to check the target when loading."""
        return self.examples()[0]

    def examples(self) -> tuple[Any, ...]:
        """Every choice, or the low end of a range: the values the loading check builds a config with."""
        if self.type == "categorical":
            return self.choices
        return (int(self.low) if self.type == "int" else float(self.low),)


@dataclass(frozen=True)
class DeclarativeSpace:
    """The define-by-run function behind a space file: write each parameter into a copy of ``base``."""

    base: Mapping[str, Any]
    params: tuple[ParamSpec, ...]

    def __post_init__(self) -> None:
        # A space's documentation is its function's docstring (``aaf-search spaces FILE`` prints it); for a
        # file, where each parameter goes says more than this class's own docstring would.
        onto = " over the file's base" if self.base else ""
        lines = [f"Each parameter is written into the trial config{onto}:"]
        width = max((len(param.name) for param in self.params), default=0)
        lines += [f"- {param.name:<{width}}  -> {'.'.join(param.target)}" for param in self.params]
        object.__setattr__(self, "__doc__", "\n".join(lines))

    def __call__(self, trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
        return self.build(defaults, {p.name: p.suggest(trial) for p in self.params})

    def build(self, defaults: SpaceDefaults, values: Mapping[str, Any]) -> TrialConfig:
        document = defaults.trial().to_dict()
        for key, value in copy.deepcopy(dict(self.base)).items():
            if key == "data" and isinstance(value, Mapping):
                document["data"].update(value)  # augment, val_fraction, options: the rest comes from defaults
            else:
                document[key] = value
        for param in self.params:
            _set_path(document, param.target, values[param.name])
        return TrialConfig.from_dict(document)


FROM_DEFAULTS = {
    "model": "the top-level 'model'",
    "epochs": "the top-level 'epochs'",
    "batch_size": "the top-level 'batch_size'",
    "precision": "the top-level 'precision'",
    "data.name": "the top-level 'dataset'",
    "data.root": "--data-root",
    "data.download": "--download",
}
"""Fields that come from the file's top level or the command line, never from ``base``: where to set them."""


def _set_path(document: Any, path: tuple[str, ...], value: Any) -> None:
    """Write ``value`` at ``path``; mappings grow missing keys, lists must already have the index."""
    node = document
    for depth, key in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise SpaceError(f"target '{'.'.join(path)}': '{where}' is not an index of a list of {len(node)}")
            index = int(key)
            if last:
                node[index] = value
            else:
                node = node[index]
        elif isinstance(node, dict):
            if last:
                node[key] = value
            else:
                node = node.setdefault(key, {})
        else:
            raise SpaceError(f"target '{'.'.join(path)}': '{where}' is inside a value, not a mapping or list")


# ---------------------------------------------------------------------------------------------------
# Space files


def load_space_file(path: Path) -> SearchSpace:
    """Read and check a space file (format in the module docstring)."""
    require_file(path, "space file", SpaceError)
    where = f"space file '{path}'"
    document = read_yaml_file(path, where, SpaceError)
    if not isinstance(document, Mapping):
        raise SpaceError(f"{where} must hold a mapping with the keys: {', '.join(TOP_KEYS)}")
    if "trial" in document:
        # An exported trial (best.yaml) is one configuration to train, not a space to search; its metadata
        # may hold 'params' (the trial's), so 'trial' alone tells the two apart.
        raise SpaceError(f"{where} is a trial config, not a space; train it with: aaf-search train --config {path}")
    _known_keys(document, TOP_KEYS, where)
    _typed_keys(document, where)
    if "params" not in document:
        raise SpaceError(f"{where} has no 'params' list: a space needs at least one parameter to search")
    raw_params = document["params"]
    if not isinstance(raw_params, list) or not raw_params:
        raise SpaceError(f"{where}: 'params' must be a non-empty list of parameters")
    params = tuple(_param(raw, f"{where}: params[{i}]") for i, raw in enumerate(raw_params))
    names = [p.name for p in params]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SpaceError(f"{where}: parameter name '{duplicates[0]}' is used twice")
    base = document.get("base", {})
    if not isinstance(base, Mapping):
        raise SpaceError(f"{where}: 'base' must be a mapping (a partial trial config)")
    for field, instead in FROM_DEFAULTS.items():
        head, _, tail = field.partition(".")
        if head in base and (not tail or (isinstance(base[head], Mapping) and tail in base[head])):
            raise SpaceError(f"{where}: 'base' may not set '{field}'; use {instead}")
    try:
        defaults = SpaceDefaults().replace(
            **{k: document.get(k) for k in ("model", "dataset", "epochs", "batch_size", "precision")}
        )
        defaults = defaults.replace(metric=document.get("metric"))
    except (SpaceError, TypeError) as exc:
        raise SpaceError(f"{where}: {exc}") from exc
    suggest = DeclarativeSpace(base=dict(base), params=params)
    # A build with each choice of each parameter (the others at their first) catches a wrong target or a
    # mistyped choice of a checked field (a shape 'chanel') now, not in trial 7. Registry names (a family
    # 'cosslu') are the pre-flight check's, which sees the command line's model and data set too.
    first = {p.name: p.example() for p in params}
    try:
        for param in params:
            for value in param.examples():
                suggest.build(defaults, {**first, param.name: value})
    except (ConfigError, SpaceError) as exc:
        raise SpaceError(f"{where}: {exc}") from exc
    name = str(document.get("name") or path.stem)
    summary = str(document.get("summary") or f"user space from {path.name}")
    # The absolute path: a study records it, and a search continuing the study from another file of the
    # same name says so (two directories' space.yaml would otherwise mix in one study unnoticed).
    source = str(path.resolve())
    return SearchSpace(name=name, summary=summary, suggest=suggest, defaults=defaults, source=source)


TOP_TYPES: dict[str, type] = {
    "name": str, "summary": str, "model": str, "dataset": str, "epochs": int, "batch_size": int, "metric": str,
    "precision": str,
}  # fmt: skip


def _typed_keys(document: Mapping[str, Any], where: str) -> None:
    """Name the key whose value has the wrong type (``epochs: ten``), before a comparison fails on it."""
    for key, kind in TOP_TYPES.items():
        value = document.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise SpaceError(f"{where}: '{key}' must be {'an integer' if kind is int else 'a string'}, got {value!r}")


def _known_keys(mapping: Mapping[str, Any], valid: tuple[str, ...], where: str) -> None:
    unknown = sorted(str(k) for k in mapping if k not in valid)
    if unknown:
        raise SpaceError(f"{where}: unknown key '{unknown[0]}'; valid keys: {', '.join(valid)}")


def _param(raw: Any, where: str) -> ParamSpec:
    if not isinstance(raw, Mapping):
        raise SpaceError(f"{where} must be a mapping with name, target, type and its values")
    for key in ("name", "target", "type"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise SpaceError(f"{where} needs '{key}' (a non-empty string)")
    where = f"{where} ({raw['name']})"
    kind = raw["type"]
    if kind not in PARAM_TYPES:
        raise SpaceError(f"{where}: unknown type '{kind}'; choose one of: {', '.join(PARAM_TYPES)}")
    _known_keys(raw, PARAM_KEYS[kind], where)
    target = tuple(raw["target"].split("."))
    if kind == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{where}: 'choices' must be a non-empty list")
        return ParamSpec(raw["name"], target, kind, choices=tuple(choices))
    number = int if kind == "int" else (int, float)
    for key in ("low", "high"):
        if isinstance(raw.get(key), bool) or not isinstance(raw.get(key), number):
            raise SpaceError(f"{where} needs '{key}' ({'an integer' if kind == 'int' else 'a number'})")
    low, high, log, step = raw["low"], raw["high"], raw.get("log", False), raw.get("step")
    if high <= low:
        raise SpaceError(f"{where}: 'high' ({high}) must be greater than 'low' ({low})")
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: 'log' must be true or false")
    if log and low <= 0:
        raise SpaceError(f"{where}: a log range needs 'low' > 0, got {low}")
    if step is not None and (isinstance(step, bool) or not isinstance(step, number) or step <= 0):
        raise SpaceError(f"{where}: 'step' must be a positive {'integer' if kind == 'int' else 'number'}")
    if step is not None and log:
        raise SpaceError(f"{where}: 'step' and 'log' cannot be combined")
    return ParamSpec(raw["name"], target, kind, low=low, high=high, log=log, step=step)


# ---------------------------------------------------------------------------------------------------
# Python spaces


def load_space_function(spec: str) -> SearchSpace:
    """``package.module:attribute``: a suggest function or a :class:`SearchSpace`; nothing else is imported."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SpaceError(f"--space '{spec}' must look like package.module:function")
    _search_current_directory()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SpaceError(f"cannot import module '{module_name}' for --space '{spec}': {exc}") from exc
    except Exception as exc:  # the user's module is broken (a SyntaxError, a failing top-level line): one line
        failure = describe_failure(exc)
        raise SpaceError(f"cannot import module '{module_name}' for --space '{spec}': {failure}") from None
    target = getattr(module, attribute, None)
    if target is None:
        raise SpaceError(f"module '{module_name}' has no attribute '{attribute}'")
    if isinstance(target, SearchSpace):
        return target
    if not callable(target):
        raise SpaceError(f"'{spec}' is a {type(target).__name__}, not a suggest(trial, defaults) function")
    _check_suggest_signature(spec, target)
    summary = (target.__doc__ or f"user space {spec}").strip().splitlines()[0]
    # Named by the whole spec, as typed: functions are often all called `suggest`, and two spaces of one
    # name would continue each other's study in the default storage.
    return SearchSpace(name=spec, summary=summary, suggest=target, defaults=SpaceDefaults(), source=spec)


def _search_current_directory() -> None:
    """Let a module in the current directory import, as under ``python -m``: a console script's
    ``sys.path`` starts at its own directory instead. Last, so that no file here shadows an installed
    package."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.append(here)


def describe_failure(exc: Exception) -> str:
    """``SyntaxError: expected ':' (badspace.py, line 1)``, ``KeyError: 'width' (mine.py:4)``: an error in a
    user's space module and where in the user's files it is, on one line."""
    if isinstance(exc, SyntaxError):
        where = f"{Path(exc.filename or '?').name}, line {exc.lineno}"
        return f"{type(exc).__name__}: {exc.msg} ({where})"
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message} ({Path(frame.filename).name}:{frame.lineno})"


def _check_suggest_signature(spec: str, target: Callable[..., Any]) -> None:
    """Refuse a callable that cannot be called as ``suggest(trial, defaults)`` (``--space os:getcwd``, say)."""
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return  # no signature to read (some built-ins): the first sample will tell
    try:
        signature.bind(None, None)
    except TypeError:
        raise SpaceError(
            f"'{spec}' takes {signature}, but a space function is called as suggest(trial, defaults)"
        ) from None
