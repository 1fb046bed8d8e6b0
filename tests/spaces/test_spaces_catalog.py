"""Contract tests over every catalog space: valid configs, documented parameters, one training step."""

from __future__ import annotations

import optuna
import pytest
import torch
import torch.nn.functional as F

from aaf_search import activations
from aaf_search.activations.registry import preset_values
from aaf_search.config import TrialConfig
from aaf_search.spaces import CATALOG, SearchSpace
from aaf_search.trials.models import build_model, model_info
from aaf_search.trials.plan import apply_plan

SAMPLES = 8  # random draws per space: enough to visit every branch of the small catalog spaces


def sample_configs(space: SearchSpace, n: int = SAMPLES, seed: int = 0) -> list[tuple[dict, TrialConfig]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn = []
    for _ in range(n):
        trial = study.ask()
        config = space.sample(trial)
        drawn.append((dict(trial.params), config))
        study.tell(trial, 0.0)
    return drawn


@pytest.fixture(autouse=True)
def quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", list(CATALOG))
def test_space_samples_valid_configs(name: str) -> None:
    space = CATALOG[name]
    for params, config in sample_configs(space):
        assert config.model == space.defaults.model
        assert config.data.name == "digits"
        assert config.epochs == space.defaults.epochs <= 5  # seconds per trial on a CPU
        assert all("/" in key for key in params), params
        for entry in config.plan:
            spec = entry.activation
            family = activations.get(spec.family)
            assert spec.shape in family.shapes, (spec.family, spec.shape)
            preset_values(family, spec.init)  # raises on an unknown preset or parameter name
            assert set(spec.options) <= set(family.option_names)
        assert TrialConfig.from_dict(config.to_dict()) == config  # plain data, as export writes it


@pytest.mark.parametrize("name", list(CATALOG))
def test_space_documents_its_parameters(name: str) -> None:
    space = CATALOG[name]
    assert space.summary and space.source
    for params, _ in sample_configs(space):
        for key in params:
            group = key.rsplit("/", 1)[0] + "/"
            assert key in space.doc or group in space.doc, f"{name}: '{key}' is not in the docstring"


def test_space_names_match_catalog_keys() -> None:
    assert list(CATALOG) == [
        "lslu_depth",
        "lincomb_bases",
        "apa_init",
        "leaf_init",
        "trainable_zoo",
        "placement",
        "pretrained_swap",
    ]
    assert all(key == space.name for key, space in CATALOG.items())


@pytest.mark.parametrize("name", list(CATALOG))
def test_sampled_configs_build_and_train_one_step(name: str) -> None:
    space = CATALOG[name]
    size = max(8, model_info(space.defaults.model).min_input_size or 8)
    x = torch.randn(4, 1, size, size)
    y = torch.tensor([0, 1, 2, 3])
    for _, config in sample_configs(space, n=3, seed=1):
        torch.manual_seed(0)
        model = build_model(
            config.model, input_shape=(1, size, size), num_classes=10, base_activation=config.base_activation
        )
        apply_plan(model, config.plan, x[:2])
        optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.optim.lr)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimiser.step()
        assert torch.isfinite(loss), (name, config.plan)
