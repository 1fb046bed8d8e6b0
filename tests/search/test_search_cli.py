"""The search, export and spaces verbs through ``aaf_search.cli.main``: bad input, listings, export."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
import torch
from conftest import FakeRunner

from aaf_search.cli import main
from aaf_search.config import load_yaml
from aaf_search.search import SearchSettings, run_search
from aaf_search.spaces import CATALOG

STORAGE = "sqlite:///runs/study.db"


@pytest.fixture
def existing_study() -> optuna.Study:
    """A finished two-trial trainable_zoo study that every bad command below must leave alone."""
    settings = SearchSettings(
        space="trainable_zoo", trials=2, sampler="random", pruner="none", storage=STORAGE, epochs=1
    )
    run_search(settings, runner=FakeRunner())
    return optuna.load_study(study_name="trainable_zoo", storage=STORAGE)


def snapshot(study: optuna.Study) -> tuple[object, ...]:
    trials = study.get_trials()
    return len(trials), [t.state for t in trials], study.user_attrs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--objectives", "accuracy,params", "--sampler", "cmaes"], "sampler 'cmaes' is single-objective"),
        (["--sampler", "grid"], "sampler 'grid' needs finite choices"),
    ],
)
def test_a_sampler_that_does_not_fit_is_refused_before_the_study_is_made(
    existing_study: optuna.Study, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capsys.readouterr()
    assert main(["--space", "trainable_zoo", "--study", "fresh", "--epochs", "1", *args, "--storage", STORAGE]) == 2
    assert message in capsys.readouterr().err
    # A study made with this sampler's objectives would refuse every later search of that name.
    assert optuna.get_all_study_names(STORAGE) == ["trainable_zoo"]
    assert not Path("aaf-runs/fresh").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "nope"], "aaf-search: error: unknown space 'nope'; choose one of: lslu_depth, lincomb_bases"),
        (["--space", "trainable_zoo", "--sampler", "annealing"], "unknown sampler 'annealing'; choose one of: tpe,"),
        (["--space", "trainable_zoo", "--pruner", "patient"], "unknown pruner 'patient'; choose one of: asha,"),
        (["--space", "trainable_zoo", "--backend", "slurm"], "unknown backend 'slurm'; choose one of: local"),
        (["--space", "trainable_zoo", "--trials", "0"], "aaf-search: error: --trials must be > 0, got 0"),
        (["--space", "trainable_zoo", "--epochs", "0"], "aaf-search: error: --epochs must be > 0, got 0"),
        (["--space", "trainable_zoo", "--study", " "], "aaf-search: error: --study must not be empty; leave it out"),
        (["--space", "trainable_zoo", "--objectives", "params"], "--objectives must start with accuracy"),
        (["--space", "trainable_zoo", "--objectives", "accuracy,speed"], "unknown objective 'speed'"),
        (["--space", "trainable_zoo", "--epochs", "1", "--sampler", "grid"], "sampler 'grid' needs finite choices"),
        (["--space", "trainable_zoo", "--backend", "local", "--address", "10.0.0.1:6379"], "--address is a Ray option"),
        (
            ["--space", "leaf_init", "--study", "trainable_zoo"],
            "study 'trainable_zoo' was created by space 'trainable_zoo'",
        ),
        (
            ["--space", "trainable_zoo", "--epochs", "3"],
            "study 'trainable_zoo' was searched with --epochs 1, not --epochs 3: their scores do not compare",
        ),
        (
            ["--space", "trainable_zoo", "--study", "zoo2", "--out", "aaf-runs/trainable_zoo"],
            "run directory 'aaf-runs/trainable_zoo' belongs to study 'trainable_zoo' in sqlite:///",
        ),
        (["--space", "bad.yaml"], "space file 'bad.yaml': unknown key 'modle'"),
        (["--space", "trainable_zoo", "--trials", "x"], "aaf-search search: argument --trials: invalid int value: 'x'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    existing_study: optuna.Study, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    Path("bad.yaml").write_text("modle: dnn2\nparams: []\n")
    before = snapshot(existing_study)
    capsys.readouterr()
    assert main([*args, "--storage", STORAGE]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert message in err
    assert snapshot(existing_study) == before


@pytest.mark.parametrize(
    "url",
    ["postgresql://aaf:secret@127.0.0.1:1/aaf", "nonsense-url", "sqlite:////proc/no/such/dir/aaf.db"],
)
def test_unreachable_storage_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], url: str) -> None:
    assert main(["--space", "trainable_zoo", "--storage", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aaf-search: error: cannot ") and err.count("\n") == 1
    assert "secret" not in err  # passwords never reach the terminal


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        ("runs.db", "not a storage URL; for a SQLite file write sqlite:///runs.db, for a journal file journal:runs.db"),
        ("sqlite3:///runs.db", "no database type 'sqlite3'; use sqlite:///FILE, journal:FILE or a postgresql://"),
    ],
)
def test_a_storage_value_that_is_no_url_names_the_forms(
    capsys: pytest.CaptureFixture[str], url: str, advice: str
) -> None:
    assert main(["--space", "trainable_zoo", "--storage", url]) == 2
    err = capsys.readouterr().err
    assert advice in err and err.count("\n") == 1
    assert not Path("runs.db").exists()


def test_export_writes_the_ranked_trial(existing_study: optuna.Study, capsys: pytest.CaptureFixture[str]) -> None:
    ranked = sorted(existing_study.trials, key=lambda t: -t.value)  # type: ignore[operator]
    assert main(["export", "--storage", STORAGE, "--out", "second.yaml", "--rank", "2"]) == 0
    config, meta = load_yaml("second.yaml")
    assert config.to_dict() == ranked[1].user_attrs["config"]
    assert meta["trial_number"] == ranked[1].number and meta["rank"] == 2 and meta["score"] == ranked[1].value
    assert meta["study"] == "trainable_zoo" and meta["space"] == "trainable_zoo"
    assert set(meta["versions"]) == {"aaf-search", "torch", "optuna"}
    assert meta["git_revision"] is None or len(meta["git_revision"].split("+")[0]) == 40
    assert f"trainable_zoo trial {ranked[1].number} (rank 2" in capsys.readouterr().out

    assert main(["export", "--storage", STORAGE, "--rank", "3"]) == 2
    assert "--rank must be between 1 and 2" in capsys.readouterr().err
    # by trial number (a point of a Pareto front, say): the same file, with its rank
    assert main(["export", "--storage", STORAGE, "--out", "by_number.yaml", "--trial", str(ranked[1].number)]) == 0
    by_number, by_number_meta = load_yaml("by_number.yaml")
    assert by_number == config and (by_number_meta["trial_number"], by_number_meta["rank"]) == (ranked[1].number, 2)
    missing = max(t.number for t in existing_study.trials) + 1
    assert main(["export", "--storage", STORAGE, "--trial", str(missing)]) == 2
    numbers = ", ".join(str(t.number) for t in sorted(existing_study.trials, key=lambda t: t.number))
    assert f"--trial {missing}: study 'trainable_zoo' has no complete trial {missing}; complete trials: {numbers}" in (
        capsys.readouterr().err
    )
    assert main(["export", "--storage", STORAGE, "--study", "other"]) == 2
    assert "no study 'other' in the storage; studies: trainable_zoo" in capsys.readouterr().err


def test_spaces_lists_every_space_with_docs_params_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces"]) == 0
    out = capsys.readouterr().out
    for name, space in CATALOG.items():
        assert f"{name}: {space.summary}" in out
        assert f"model {space.defaults.model}, dataset digits, {space.defaults.epochs} epochs" in out
        assert f"batch {space.defaults.batch_size}, fp32, val_accuracy (maximize)" in out
    assert "act/n/stage1" in out and "int 1..4" in out
    assert "opt/lr" in out and "float 0.0001..0.01 (log)" in out
    assert main(["spaces", "--brief"]) == 0
    assert capsys.readouterr().out.count("\n") == len(CATALOG)


def test_spaces_sample_shows_drawn_configurations_and_what_they_put_where(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["spaces", "lslu_depth", "--sample", "3", "--seed", "2"]) == 0
    blocks = capsys.readouterr().out.split("\n\n")
    assert [block.splitlines()[0] for block in blocks] == ["sample 1", "sample 2", "sample 3"]
    # The plan follows the drawn placement: the stem, the three stage ends, or both.
    placed = {
        "stem": ["tag:stem"],
        "stage_end": ["stage1.act", "stage2.act", "stage3.act"],
        "all": ["tag:stem", "stage1.act", "stage2.act", "stage3.act"],
    }
    for block in blocks:
        placement = re.search(r"act/placement=(\w+)", block)
        assert placement is not None
        entries = [line.split("->")[0].strip() for line in block.splitlines() if "->" in line]
        assert entries == placed[placement.group(1)]
        assert all("-> lslu, shape layer, init theta=" in line for line in block.splitlines() if "->" in line)
        assert block.splitlines()[-1].startswith("  vanillanet on digits, 5 epochs, batch 32, adam lr ")
    # The same seed draws the same configurations.
    assert main(["spaces", "lslu_depth", "--sample", "3", "--seed", "2"]) == 0
    assert capsys.readouterr().out.split("\n\n") == blocks


@pytest.mark.slow  # about 20 s on 2 cores: real training of four 2-epoch trials, then one reproduction
def test_search_end_to_end_on_digits(odd_pruner: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The real runner: complete and pruned trials, then the exported config reproduces its score."""
    from aaf_search.trials.runner import run_trial

    args = ["--space", "trainable_zoo", "--trials", "4", "--epochs", "2", "--sampler", "random", "--backend", "local"]
    assert main([*args, "--pruner", odd_pruner, "--storage", STORAGE, "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "study 'trainable_zoo' (space trainable_zoo): 2 complete, 2 pruned, 0 failed" in out
    study = optuna.load_study(study_name="trainable_zoo", storage=STORAGE)
    assert [t.state.name for t in study.trials] == ["COMPLETE", "PRUNED", "COMPLETE", "PRUNED"]
    complete = study.trials[0]
    assert sorted(complete.intermediate_values) == [1, 2]
    assert complete.user_attrs["epochs_run"] == 2 and complete.user_attrs["device"] == "cpu"
    assert complete.user_attrs["param_count"] > 0 and 0.0 <= complete.user_attrs["test_accuracy"] <= 1.0
    assert complete.user_attrs["fused_activations"] == []  # the suite runs eager (tests/conftest.py)
    assert Path("aaf-runs/trainable_zoo/trials/0000/metrics.csv").is_file()

    config, meta = load_yaml("aaf-runs/trainable_zoo/best.yaml")
    assert meta["cpu_threads"] == study.best_trial.user_attrs["cpu_threads"] == torch.get_num_threads()
    assert run_trial(config).val_accuracy == meta["score"] == study.best_value


@pytest.mark.parametrize(
    ("options", "hint"),
    [
        ([], " (add --retry-failed to carry the interrupted trials on from their checkpoints)"),
        (["--retry-failed"], ""),  # the command already retries them
    ],
)
def test_ctrl_c_prints_the_command_that_resumes_the_search(
    options: list[str], hint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def ctrl_c(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("aaf_search.search.run_search", ctrl_c)
    command = ["--space", "trainable_zoo", "--storage", STORAGE, *options]
    assert main(command) == 130
    resume = "aaf-search: to resume, run the same command again: aaf-search " + " ".join(command)
    assert capsys.readouterr().err.splitlines()[-1] == resume + hint
