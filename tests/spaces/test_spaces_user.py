"""User spaces: the documented YAML format, its one-line errors, and module:function spaces."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from aaf_search import activations
from aaf_search.config import OptimConfig, TrialConfig
from aaf_search.search.preflight import check_space
from aaf_search.spaces import CATALOG, SearchSpace, SpaceError, resolve_space
from aaf_search.spaces import user as user_module
from aaf_search.spaces.probe import every_choice, grid_paths


def docstring_example() -> str:
    """The space file printed in ``aaf_search.spaces.user``'s docstring, so the docs stay runnable."""
    doc = user_module.__doc__ or ""
    block = doc.split("::", 1)[1].split("\n\nThe file is checked", 1)[0]
    return textwrap.dedent(block)


def write(tmp_path: Path, text: str, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_docstring_example_loads_and_samples(tmp_path: Path) -> None:
    space = resolve_space(str(write(tmp_path, docstring_example(), "coslu_vs_sinlu.yaml")))
    assert space.name == "coslu_vs_sinlu"
    assert (space.defaults.model, space.defaults.epochs, space.direction) == ("dnn2", 3, "maximize")
    trial = optuna.trial.FixedTrial(
        {"act/family": "sinlu", "act/shape": "network", "act/a_init": 1.5, "opt/lr": 0.003, "batch": 96}
    )
    config = space.sample(trial)  # type: ignore[arg-type]
    assert config.model == "dnn2" and config.epochs == 3 and config.batch_size == 96
    assert config.optim == OptimConfig(lr=0.003)
    (entry,) = config.plan
    assert (entry.select, entry.activation.family, entry.activation.shape) == ("all", "sinlu", "network")
    assert entry.activation.init == {"a": 1.5}


def test_a_space_file_is_documented_by_where_its_parameters_go(tmp_path: Path) -> None:
    space = resolve_space(str(write(tmp_path, docstring_example(), "coslu_vs_sinlu.yaml")))
    assert space.doc.splitlines()[:3] == [
        "Each parameter is written into the trial config over the file's base:",
        "- act/family  -> plan.0.activation.family",
        "- act/shape   -> plan.0.activation.shape",
    ]
    assert space.doc.splitlines()[-1] == "- batch       -> batch_size"


def test_docstring_example_passes_the_checks_a_search_makes_and_builds(tmp_path: Path) -> None:
    # Copied into a file as the README says, the example must run: every choice of every parameter is
    # checked against the registries before the study opens (a family without the parameter 'a' that
    # act/a_init sets is refused there), and each sampled activation is built with its init.
    space = resolve_space(str(write(tmp_path, docstring_example(), "coslu_vs_sinlu.yaml")))
    check_space(space, space.defaults)
    configs = every_choice(lambda trial: space.sample(trial, space.defaults))
    assert {config.plan[0].activation.family for config in configs} == {"coslu", "sinlu"}
    for config in configs:
        spec = config.plan[0].activation
        module = activations.create(spec.family, init=spec.init, shape=spec.shape)
        assert float(module.a.detach()) == pytest.approx(spec.init["a"])  # type: ignore[index]


def test_command_line_defaults_override_the_file(tmp_path: Path) -> None:
    space = resolve_space(str(write(tmp_path, docstring_example())))
    defaults = space.defaults.replace(model="dnn3", epochs=1, dataset="synthetic")
    trial = optuna.trial.FixedTrial(
        {"act/family": "coslu", "act/shape": "layer", "act/a_init": 1.0, "opt/lr": 0.01, "batch": 32}
    )
    config = space.sample(trial, defaults)  # type: ignore[arg-type]
    assert (config.model, config.epochs, config.data.name) == ("dnn3", 1, "synthetic")


MINIMAL = """\
model: dnn2
params:
  - {name: opt/lr, target: optim.lr, type: float, low: 0.001, high: 0.01}
"""


def test_precision_comes_from_the_file_unless_the_command_line_says_otherwise(tmp_path: Path) -> None:
    space = resolve_space(str(write(tmp_path, "precision: bf16\n" + MINIMAL)))
    trial = optuna.trial.FixedTrial({"opt/lr": 0.01})
    assert space.sample(trial, space.defaults).precision == "bf16"  # type: ignore[arg-type]
    assert space.sample(trial, space.defaults.replace(precision="fp32")).precision == "fp32"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- just a list\n", "must hold a mapping"),
        ("model: dnn2\n", "has no 'params' list"),
        ("modle: dnn2\nparams: []\n", "unknown key 'modle'; valid keys: name, summary, model"),
        ("params: []\n", "'params' must be a non-empty list"),
        ("params:\n  - {name: a, target: optim.lr, type: float, low: 1, high: 1}\n", "'high' (1) must be greater"),
        ("params:\n  - {name: a, target: optim.lr, type: uniform, low: 0, high: 1}\n", "unknown type 'uniform'"),
        ("params:\n  - {name: a, target: optim.lr, type: categorical, choices: []}\n", "'choices' must be a non-empty"),
        ("params:\n  - {name: a, target: optim.lrr, type: float, low: 0.1, high: 1}\n", "unknown key 'optim.lrr'"),
        (
            "params:\n  - {name: a, target: plan.0.activation.family, type: categorical, choices: [relu]}\n",
            "not an index",
        ),
        ("params:\n  - {name: a, target: optim.lr, type: float, low: 0, high: 1, log: true}\n", "needs 'low' > 0"),
        (  # a mistyped second choice of a checked field, found when loading rather than in some later trial
            "params:\n  - {name: a, target: optim.name, type: categorical, choices: [adam, adma]}\n",
            "optim.name must be one of",
        ),
        ("params:\n  - {name: a, target: epochs, type: int, low: 1, high: 3, steps: 1}\n", "unknown key 'steps'"),
        ("params:\n  - {target: optim.lr, type: float, low: 0.1, high: 1}\n", "needs 'name'"),
        ("epochs: 0\n" + MINIMAL.split("\n", 1)[1], "epochs must be >= 1"),
        ("metric: top5\n" + MINIMAL.split("\n", 1)[1], "unknown metric 'top5'; choose one of: val_accuracy, val_loss"),
        ("base: {model: dnn5}\n" + MINIMAL.split("\n", 1)[1], "'base' may not set 'model'; use the top-level 'model'"),
        ("precision: fp64\n" + MINIMAL.split("\n", 1)[1], "unknown precision 'fp64'; choose one of: fp32, bf16, fp16"),
        ("base: {precision: bf16}\n" + MINIMAL.split("\n", 1)[1], "'base' may not set 'precision'; use the top-level"),
        ("params: [\n", "is not valid YAML at line"),
        (
            "params:\n  - {name: a, target: optim.lr, type: float, low: 0.1, high: 1}\n"
            "  - {name: a, target: optim.lr, type: float, low: 0.1, high: 1}\n",
            "parameter name 'a' is used twice",
        ),
    ],
)
def test_bad_space_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpaceError) as caught:
        resolve_space(str(path))
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_space_file(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match=r"space file '.*nope.yaml' does not exist"):
        resolve_space(str(tmp_path / "nope.yaml"))


def test_unknown_space_lists_the_catalog() -> None:
    with pytest.raises(SpaceError) as caught:
        resolve_space("lslu_dpeth")
    assert str(caught.value).startswith(f"unknown space 'lslu_dpeth'; choose one of: {', '.join(CATALOG)}")


def test_module_function_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_spaces.py").write_text(
        textwrap.dedent(
            '''
            from aaf_search.config import OptimConfig

            def lr_only(trial, defaults):
                """Only the learning rate."""
                return defaults.trial(optim=OptimConfig(lr=trial.suggest_float("opt/lr", 1e-3, 1e-2)))

            NOT_CALLABLE = 3
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    space = resolve_space("my_spaces:lr_only")
    assert (space.name, space.summary, space.source) == ("my_spaces:lr_only", "Only the learning rate.", space.name)
    config = space.sample(optuna.trial.FixedTrial({"opt/lr": 0.005}))  # type: ignore[arg-type]
    assert config.optim.lr == 0.005 and config.model == "dnn3"
    with pytest.raises(SpaceError, match="module 'my_spaces' has no attribute 'missing'"):
        resolve_space("my_spaces:missing")
    with pytest.raises(SpaceError, match=re.escape("'my_spaces:NOT_CALLABLE' is a int, not a suggest")):
        resolve_space("my_spaces:NOT_CALLABLE")
    with pytest.raises(SpaceError, match="cannot import module 'no_such_module_here'"):
        resolve_space("no_such_module_here:f")


def test_a_module_in_the_current_directory_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The aaf-search console script does not put the current directory on sys.path, as python -m does.
    (tmp_path / "here_spaces.py").write_text("def suggest(trial, defaults):\n    return defaults.trial()\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    assert resolve_space("here_spaces:suggest").name == "here_spaces:suggest"
    assert sys.path[-1] == str(tmp_path)  # last: a file here never shadows an installed package


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("def suggest(trial, defaults)\n    pass\n", "SyntaxError: expected ':' (space_{n}.py, line 1)"),
        ("x = 1\nraise RuntimeError('set  AAF_DATA\\nfirst')\n", "RuntimeError: set AAF_DATA first (space_{n}.py:2)"),
        ("import no_such_helper_module\n", "No module named 'no_such_helper_module'"),
    ],
)
def test_a_module_that_fails_to_import_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, error: str
) -> None:
    n = len(list(tmp_path.iterdir()))
    module = f"space_{n}"  # a fresh name per case: Python caches the modules it imported
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    message = f"cannot import module '{module}' for --space '{module}:suggest': {error.format(n=n)}"
    with pytest.raises(SpaceError) as caught:
        resolve_space(f"{module}:suggest")
    assert str(caught.value) == message  # a SpaceError: the command line prints it alone, exit code 2


def test_module_path_may_name_a_search_space(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_space("aaf_search.spaces.trainable_zoo:SPACE") is CATALOG["trainable_zoo"]


def test_a_space_must_return_a_trial_config() -> None:
    space = SearchSpace(name="broken", summary="returns a dict", suggest=lambda trial, d: {"model": "dnn2"})  # type: ignore[arg-type,return-value]
    with pytest.raises(SpaceError, match="space 'broken' returned dict, not a TrialConfig"):
        space.sample(optuna.trial.FixedTrial({}))  # type: ignore[arg-type]


def test_grid_walks_every_path_of_a_conditional_space() -> None:
    def suggest(trial: optuna.Trial, defaults: object) -> TrialConfig:
        if trial.suggest_categorical("act/family", ["relu", "lslu"]) == "lslu":
            trial.suggest_int("act/n", 1, 3)
        trial.suggest_categorical("opt/name", ["adam", "sgd"])
        return TrialConfig()

    space = SearchSpace(name="cond", summary="s", suggest=suggest)  # type: ignore[arg-type]
    paths = grid_paths(space, space.defaults)
    # relu x 2 optimisers, lslu x 3 lengths x 2 optimisers: act/n only on the lslu paths
    relu = [{"act/family": "relu", "opt/name": name} for name in ("adam", "sgd")]
    lslu = [{"act/family": "lslu", "act/n": n, "opt/name": name} for n in (1, 2, 3) for name in ("adam", "sgd")]
    assert paths == relu + lslu


def test_grid_rejects_a_continuous_parameter() -> None:
    with pytest.raises(SpaceError, match="space 'trainable_zoo' has the continuous parameter 'opt/lr'"):
        grid_paths(CATALOG["trainable_zoo"], CATALOG["trainable_zoo"].defaults)
