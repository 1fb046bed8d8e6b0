"""Every catalog space on every model it may be given (``--model``): each plan it proposes fits the model's
slots, or the space refuses the model in one line before any trial; never a trial that fails on a slot."""

from __future__ import annotations

import optuna
import pytest

from aaf_search.spaces import CATALOG, SpaceError
from aaf_search.spaces.probe import every_choice
from aaf_search.trials.models import model_names
from aaf_search.trials.plan import dataset_slots, resolve_plan

MODELS = [*model_names(), "tv:resnet18", "tv:mobilenet_v3_small"]  # a torchvision net without and with SE gates
NO_STEM_NOR_STAGE_END = {"dnn2", "dnn3", "dnn5", "lenet5", "kerasnet"}


@pytest.fixture(autouse=True)
def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", list(CATALOG))
@pytest.mark.parametrize("model", MODELS)
def test_every_choice_of_a_space_fits_the_model_or_the_space_refuses_it(model: str, name: str) -> None:
    space = CATALOG[name]
    defaults = space.defaults.replace(model=model)
    if name == "lslu_depth" and model in NO_STEM_NOR_STAGE_END:
        with pytest.raises(SpaceError, match=f"model '{model}' has no slot tagged stem or stage_end; use vanillanet"):
            space.sample(optuna.create_study().ask(), defaults)
        return
    for config in every_choice(lambda trial: space.sample(trial, defaults)):
        resolve_plan(config.plan, dataset_slots(model, "digits"))  # PlanError: a selector matches no slot


def sample(name: str, model: str, params: dict[str, object]) -> tuple[dict[str, object], list[str]]:
    """The trial's parameters and its plan's selectors, with ``params`` fixed and the rest random."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(params)
    trial = study.ask()
    config = CATALOG[name].sample(trial, CATALOG[name].defaults.replace(model=model))
    return trial.params, [entry.select for entry in config.plan]


def choices(name: str, model: str, param: str) -> tuple[object, ...]:
    """The values space ``name`` offers for categorical ``param`` on ``model``."""
    distribution = study_of(name, model).distributions[param]
    assert isinstance(distribution, optuna.distributions.CategoricalDistribution)
    return distribution.choices


def study_of(name: str, model: str) -> optuna.trial.FrozenTrial:
    """One random trial of space ``name`` on ``model``."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    CATALOG[name].sample(trial, CATALOG[name].defaults.replace(model=model))
    study.tell(trial, 0.0)
    return study.trials[0]


def test_lslu_depth_on_a_resnet_puts_stage_ends_at_the_last_block_of_each_stage() -> None:
    assert choices("lslu_depth", "resnet20", "act/placement") == ("stem", "stage_end", "all")
    _, selectors = sample("lslu_depth", "resnet20", {"act/placement": "all"})
    assert selectors == ["tag:stem", "stage1.block3.act2", "stage2.block3.act2", "stage3.block3.act2"]
    _, selectors = sample("lslu_depth", "vanillanet", {"act/placement": "stage_end"})
    assert selectors == ["stage1.act", "stage2.act", "stage3.act"]  # as before: VanillaNet's stage slots


def test_lslu_depth_on_a_torchvision_net_has_the_stem_placement_only() -> None:
    assert choices("lslu_depth", "tv:resnet18", "act/placement") == ("stem",)


def test_apa_init_without_attention_gates_searches_aglu_in_the_layers_only() -> None:
    assert choices("apa_init", "resnet20", "act/where") == ("layers",)
    _, selectors = sample("apa_init", "resnet20", {})
    assert selectors == ["all"]  # no gate entry: it would match no slot
    assert choices("apa_init", "se_resnet32", "act/where") == ("gate", "layers", "both")


def test_placement_searches_only_the_slot_groups_the_model_has() -> None:
    assert set(study_of("placement", "dnn3").params) == {"act/fc/family", "opt/lr"}  # an MLP: no conv slot
    assert set(study_of("placement", "resnet20").params) == {"act/conv/family", "opt/lr"}  # no fc slot
    assert set(study_of("placement", "kerasnet").params) == {"act/conv/family", "act/fc/family", "opt/lr"}


def test_pretrained_swap_offers_fneuron_only_where_there_are_fc_slots() -> None:
    assert choices("pretrained_swap", "resnet20", "act/family") == ("ahaf", "leaf")
    assert choices("pretrained_swap", "kerasnet", "act/family") == ("ahaf", "leaf", "fneuron")
