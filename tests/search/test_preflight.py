"""The pre-flight check: every choice of a space is checked before the study exists, and fp16's GPU rule."""

from __future__ import annotations

import textwrap
from pathlib import Path

import optuna
import pytest
import torch

from aaf_search import activations
from aaf_search.cli import main
from aaf_search.config import ActivationSpec, OptimConfig, PlanEntry, TrialConfig
from aaf_search.errors import UserError
from aaf_search.search.preflight import check_precision, check_space
from aaf_search.search.settings import Resources
from aaf_search.spaces import CATALOG, SearchSpace, SpaceDefaults, SpaceError
from aaf_search.spaces.probe import every_choice

TYPO = """\
    model: dnn2
    epochs: 2
    base:
      plan:
        - select: all
          activation: {family: coslu}
    params:
      - name: act/family
        target: plan.0.activation.family
        type: categorical
        choices: CHOICES
    """


@pytest.mark.parametrize("choices", ["[cosslu, coslu]", "[coslu, cosslu]"])
def test_a_typo_in_any_choice_stops_the_search_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], choices: str
) -> None:
    # One random draw found it only when it drew 'cosslu': otherwise trial 0 ran, and a later trial
    # failed with the study already written.
    (tmp_path / "typo.yaml").write_text(textwrap.dedent(TYPO.replace("CHOICES", choices)))
    storage = tmp_path / "study.log"
    code = main(["--space", str(tmp_path / "typo.yaml"), "--backend", "local", "--storage", f"journal:{storage}"])
    assert code == 2
    assert capsys.readouterr().err.splitlines() == [
        "aaf-search: error: unknown activation 'cosslu'; choose one of: " + ", ".join(activations.names())
    ]
    assert not storage.exists() and not (tmp_path / "aaf-runs").exists()


def test_a_selector_the_model_has_no_slot_for_stops_the_search_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # dnn2 is an MLP: it has fc slots, no stage ends. Trial 0 used to find out, after the study was made.
    space = TYPO.replace("select: all", "select: tag:stage_end").replace("CHOICES", "[coslu, sinlu]")
    (tmp_path / "ends.yaml").write_text(textwrap.dedent(space))
    storage = tmp_path / "study.log"
    code = main(["--space", str(tmp_path / "ends.yaml"), "--backend", "local", "--storage", f"journal:{storage}"])
    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "aaf-search: error: model 'dnn2': selector 'tag:stage_end' matches no activation slot; slots: "
    )
    assert "tags: tag:fc" in line
    assert not storage.exists() and not (tmp_path / "aaf-runs").exists()


def leaf_or_coslu(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    """A conditional typo: LEAF's second preset is misspelt, and only LEAF trials ask for it."""
    family = trial.suggest_categorical("act/family", ["coslu", "leaf"])
    init = trial.suggest_categorical("act/init/leaf", ["as_relu", "as_sigmoidd"]) if family == "leaf" else None
    lr = trial.suggest_float("opt/lr", 1e-4, 1e-2, log=True)
    return defaults.trial(plan=(PlanEntry("all", ActivationSpec(family, init=init)),), optim=OptimConfig(lr=lr))


def test_a_typo_under_a_branch_is_found_too() -> None:
    space = SearchSpace(name="conditional", summary="s", suggest=leaf_or_coslu, defaults=SpaceDefaults(model="dnn2"))
    with pytest.raises(UserError, match=r"plan entry 'all': .*'as_sigmoidd'"):
        check_space(space, space.defaults)


@pytest.mark.parametrize("broken", ["relu", "coslu"])
def test_a_user_space_that_fails_on_one_branch_is_one_line(broken: str) -> None:
    def suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
        if trial.suggest_categorical("act/family", ["relu", "coslu"]) == broken:
            raise KeyError(broken)
        return defaults.trial()

    space = SearchSpace(name="mine", summary="s", suggest=suggest, source="mine.py:suggest")
    message = rf"^space 'mine.py:suggest' failed on a sample trial: KeyError: '{broken}' \("
    with pytest.raises(SpaceError, match=message):
        check_space(space, space.defaults)


def test_every_choice_draws_each_value_once_per_branch_not_every_path() -> None:
    def suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> dict[str, object]:
        trial.suggest_categorical("a", ["a1", "a2", "a3"])
        if trial.suggest_categorical("b", ["b1", "b2"]) == "b2":
            trial.suggest_categorical("c", ["c1", "c2", "c3", "c4"])
        trial.suggest_float("x", 0.0, 1.0)
        return dict(trial.params)

    drawn = every_choice(lambda trial: suggest(trial, SpaceDefaults()))
    for name, values in {"a": {"a1", "a2", "a3"}, "b": {"b1", "b2"}, "c": {"c1", "c2", "c3", "c4"}}.items():
        assert {params[name] for params in drawn if name in params} == values
    assert len(drawn) <= 3 + 2 + 4  # one probe per value at most, where the grid has 3 * (1 + 4) paths


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_catalog_space_passes(name: str) -> None:
    check_space(CATALOG[name], CATALOG[name].defaults)


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.mark.usefixtures("no_cuda")
def test_fp16_on_a_ray_cluster_named_by_ray_address_is_left_to_the_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    # The Ray backend joins the cluster RAY_ADDRESS names, as --address: its GPUs are on other machines.
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    check_precision("fp16", "ray", Resources())
    with pytest.raises(UserError, match="precision fp16 needs a CUDA GPU and this machine has none"):
        check_precision("fp16", "local", Resources())  # the local backend trains here, whatever RAY_ADDRESS says
    monkeypatch.setenv("RAY_ADDRESS", "local")  # Ray's word for "start one here"
    with pytest.raises(UserError, match="precision fp16 needs a CUDA GPU and this machine has none"):
        check_precision("fp16", "ray", Resources())


@pytest.mark.usefixtures("no_cuda")
def test_fp16_with_an_address_flag_is_left_to_the_trials() -> None:
    check_precision("fp16", "ray", Resources(address="10.0.0.5:6379"))
    with pytest.raises(UserError, match="precision fp16 needs a CUDA GPU"):
        check_precision("fp16", "ray", Resources())
