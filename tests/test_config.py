"""Trial configs round-trip through YAML without loss, and bad files get a one-line error naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from aaf_search.config import (
    SCHEMA_VERSION,
    ActivationSpec,
    ConfigError,
    DataConfig,
    OptimConfig,
    PlanEntry,
    PretrainConfig,
    TrialConfig,
    load_yaml,
    save_yaml,
)


def rich_config() -> TrialConfig:
    return TrialConfig(
        model="kerasnet",
        data=DataConfig(name="synthetic", options={"shape": [3, 16, 16], "classes": 5}),
        plan=(
            PlanEntry("tag:conv", ActivationSpec("leaf", init="as_relu", shape="neuron")),
            PlanEntry("fc.act1", ActivationSpec("apa", init={"lambda": 0.5, "kappa": [1.0, 2.0]}, trainable=False)),
        ),
        optim=OptimConfig(name="sgd", lr=0.1, schedule="step", step_epochs=(5, 8), p24sl=True),
        epochs=12,
        seed=7,
        pretrain=PretrainConfig(epochs=3),
    )


def test_yaml_round_trip_is_lossless(tmp_path: Path) -> None:
    config = rich_config()
    path = save_yaml(tmp_path / "trial.yaml", config, score=0.9, study="s")
    loaded, metadata = load_yaml(path)
    assert loaded == config
    assert loaded.digest() == config.digest()
    assert metadata == {"score": 0.9, "study": "s"}
    assert f"schema_version: {SCHEMA_VERSION}" in path.read_text()


def test_digest_changes_with_any_field() -> None:
    config = rich_config()
    assert config.digest() != config.replace(seed=8).digest()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("trial: {epochs: ten}", "epochs must be an integer, got 'ten'"),
        ("trial: {optim: {nme: adam}}", "unknown key 'optim.nme'; valid keys: name, lr"),
        ("trial: {optim: {name: lbfgs}}", "optim.name must be one of adam, adamw, sgd, rmsprop; got 'lbfgs'"),
        ("trial: {epochs: -1}", "epochs must be >= 0, got -1"),
        ("trial: {plan: [{select: all, activation: {family: leaf, shape: pixel}}]}", "plan[0].activation.shape"),
        ("schema_version: 99\ntrial: {}", "schema_version 99; this aaf-search reads up to 1"),
        ("trial: [1, 2", "is not valid YAML at line"),
        ("model: dnn2", "has no 'trial' key"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_yaml(path)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "absent.yaml")


def test_yaml_is_read_with_a_safe_loader(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("trial: !!python/object/apply:os.system ['echo pwned']")
    with pytest.raises(ConfigError, match=r"uses the tag '!!python/object/apply:os\.system'"):
        load_yaml(path)
