"""The seed-robustness stage: re-train a study's top-K configurations and a baseline under several seeds.

A single-seed winner is a coin flip, so ``aaf-search robust`` takes the K best COMPLETE configurations of a
search (distinct once the seed is set aside), adds a baseline (the best configuration's model, data and
optimiser with an empty plan and base activation ``--baseline``), and trains each under every seed of
``--seeds`` (the seed projects' 42, 100, 128, 1999, 7823).

The runs go through the same backends as a search: a :class:`RobustRecorder` hands each trial the next
(config, seed, label) of a fixed queue instead of sampling a space, and a :class:`RobustSession` counts a
failed run as done for this session. Both backends take the number of trials still to run from the
session's ``remaining()`` alone, so neither asks for more trials than were queued. They land in the
companion study ``<study>:robust`` of the same storage, each with user attrs ``source_trial``, ``label``,
``seed`` and ``config``, and the owner and heartbeat every search trial records (so that another process
does not take a live run for a dead one). Rerunning resumes: a (config, seed) pair already COMPLETE there
is reused, not rerun.
The settings are :mod:`aaf_search.analysis.robust_settings`'s, the statistics and the files
:mod:`aaf_search.analysis.robust_table`'s.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from aaf_search import activations
from aaf_search.analysis.robust_settings import SEEDS, RobustError, RobustSettings
from aaf_search.config import TrialConfig
from aaf_search.outdir import check_out_dir
from aaf_search.search import study_attrs
from aaf_search.search.backends import Backend, make_backend
from aaf_search.search.driver import check_single_writer
from aaf_search.search.export import load_study, ranked, trial_config
from aaf_search.search.objectives import resolve_objectives
from aaf_search.search.progress import ProgressLine
from aaf_search.search.recording import ATTR_CONFIG, ATTR_SEED, ATTR_SPACE, TrialRecorder
from aaf_search.search.rundir import run_dir_of
from aaf_search.search.session import SearchSession, TrialRunner
from aaf_search.search.settings import SearchSettings
from aaf_search.search.storage import open_storage
from aaf_search.search.study import count_finished, fail_interrupted, open_study, robust_name
from aaf_search.spaces import SearchSpace, SpaceDefaults

BASELINE_LABEL = "baseline"

ATTR_SOURCE_TRIAL = "source_trial"
ATTR_LABEL = "label"
ATTR_FAMILY = "family"


@dataclass(frozen=True)
class Candidate:
    """One configuration to re-train: a search trial's config (or the baseline) and its search score."""

    label: str
    source_trial: int | None  # None for the baseline
    config: TrialConfig
    search_value: float | None  # the single-seed score in the search; None for the baseline


@dataclass(frozen=True)
class RobustRun:
    """One (configuration, seed) pair; ``config`` has the seed and the epoch budget set."""

    candidate: Candidate
    seed: int
    config: TrialConfig

    @property
    def key(self) -> str:
        """What makes two runs the same run: the full config's digest (seed and epochs included)."""
        return self.config.digest()


def check_settings(settings: RobustSettings) -> None:
    """Reject bad options before any storage is opened."""
    if settings.top_k < 1:
        raise RobustError(f"--top-k must be >= 1, got {settings.top_k}")
    if not settings.seeds:
        raise RobustError("--seeds names no seed")
    if settings.epochs is not None and settings.epochs < 1:
        raise RobustError(f"--epochs must be > 0, got {settings.epochs}")
    if settings.baseline not in activations.names():
        raise RobustError(
            f"unknown --baseline activation '{settings.baseline}'; choose one of: {', '.join(activations.names())}"
        )


def config_without_seed(config: TrialConfig) -> str:
    """Two trials that differ only by their seed are one configuration."""
    return config.replace(seed=0).digest()


def candidates(study: optuna.Study, top_k: int, baseline: str) -> list[Candidate]:
    """The baseline, then the ``top_k`` best distinct COMPLETE configurations of ``study``, best first."""
    trials = ranked(study)
    if not trials:
        raise RobustError(f"study '{study.study_name}' has no complete trial to re-train yet")
    chosen: list[Candidate] = []
    seen: set[str] = set()
    for trial in trials:
        config = trial_config(trial)
        key = config_without_seed(config)
        if key in seen:
            continue
        seen.add(key)
        chosen.append(Candidate(f"#{trial.number}", trial.number, config, float(trial.values[0])))
        if len(chosen) == top_k:
            break
    return [Candidate(BASELINE_LABEL, None, baseline_config(chosen[0].config, baseline), None), *chosen]


def baseline_config(best: TrialConfig, baseline: str) -> TrialConfig:
    """The best configuration's model, data, optimiser and budget with no plan and ``baseline`` everywhere.

    Seed 001's set-up fine-tunes only the activations of a pre-trained model; with no trainable activation
    there is nothing to fine-tune, so the baseline fine-tunes the whole pre-trained model instead.
    """
    pretrain = best.pretrain
    if pretrain is not None and pretrain.finetune == "activations":
        pretrain = dataclasses.replace(pretrain, finetune="all")
    return best.replace(plan=(), base_activation=baseline, pretrain=pretrain)


def plan_runs(chosen: Sequence[Candidate], seeds: Sequence[int], epochs: int | None) -> list[RobustRun]:
    """Every (candidate, seed) pair, seed by seed, so an interrupted stage still has paired results.

    The seed also seeds a pre-trained base model (seed 001's set-up): the spread over seeds is that of the
    whole recipe, base training included, while the candidates under one seed still share one base
    (cached), which keeps the comparison paired. A search keeps one base for all its trials instead.
    """
    runs = []
    for seed in seeds:
        for candidate in chosen:
            config = candidate.config.replace(seed=seed)
            if config.pretrain is not None:
                config = config.replace(pretrain=dataclasses.replace(config.pretrain, seed=seed))
            if epochs is not None:
                config = config.replace(epochs=epochs)
            runs.append(RobustRun(candidate, seed, config))
    return runs


def completed_runs(companion: optuna.Study) -> dict[str, FrozenTrial]:
    """Run key -> the first COMPLETE trial of the companion study that trained that exact config."""
    done: dict[str, FrozenTrial] = {}
    for trial in companion.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if ATTR_CONFIG in trial.user_attrs:
            done.setdefault(TrialConfig.from_dict(trial.user_attrs[ATTR_CONFIG]).digest(), trial)
    return done


def _queued_only(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    raise RuntimeError("robustness trials take their config from the queue, not from a space")


@dataclass(frozen=True)
class RobustRecorder(TrialRecorder):
    """A :class:`TrialRecorder` whose trials take the next queued run instead of sampling a space.

    ``configure`` may be called from several threads (a Ray backend's driver): ``itertools.count`` hands
    out each index once. The start (with owner and heartbeat), epochs, completion, pruning and failure are
    recorded exactly as in a search.
    """

    runs: tuple[RobustRun, ...] = ()
    _cursor: itertools.count[int] = field(default_factory=itertools.count, compare=False, repr=False)

    def configure(self, trial: optuna.Trial) -> tuple[TrialConfig, dict[str, Any]]:
        index = next(self._cursor)
        if index >= len(self.runs):
            raise RuntimeError(f"the backend asked for run {index + 1} of {len(self.runs)} queued")
        run = self.runs[index]
        return run.config, {
            ATTR_SPACE: self.space.name,
            ATTR_LABEL: run.candidate.label,
            ATTR_SOURCE_TRIAL: run.candidate.source_trial,
            ATTR_SEED: run.seed,
            ATTR_CONFIG: run.config.to_dict(),
        }


@dataclass
class RobustSession(SearchSession):
    """A session whose failed runs count as done: a diverged seed is recorded (FAIL), not replaced.

    ``failed_before`` is how many FAIL trials the companion held when the session started.
    """

    failed_before: int = 0

    def remaining(self) -> int:
        failed = len(self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))) - self.failed_before
        return max(self.target - count_finished(self.study) - failed, 0)

    def out_dir(self, trial: optuna.Trial, config: TrialConfig) -> Path:
        """``trial``'s directory, holding the checkpoint an interrupted run of the same (config, seed)
        left in its own, if one did: a seed run killed at epoch 150 of 200 carries on from there.

        Only FAIL trials' directories are looked in: a RUNNING trial's checkpoint is a live run's.
        """
        failed = self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        earlier = (self.trial_dir(t.number) for t in failed)
        return self._carrying_on(trial, config, earlier, "an interrupted run of its config")


@dataclass(frozen=True)
class RobustOutcome:
    """What the stage did: the source and companion studies, every planned run, and how many ran."""

    study: optuna.Study
    companion: optuna.Study
    candidates: tuple[Candidate, ...]
    runs: tuple[RobustRun, ...]
    ran: int
    reused: int
    out: Path


def run_robust(
    settings: RobustSettings,
    *,
    study: optuna.Study | None = None,
    runner: TrialRunner | None = None,
    stream: TextIO | None = None,
) -> RobustOutcome:
    """Re-train the top-K configurations and the baseline under every seed; reuse the runs already done.

    ``study`` is the source study when the caller has loaded it already (from ``settings``' storage and
    study name); by default it is loaded here.
    """
    stream = stream or sys.stderr
    check_settings(settings)
    if len(settings.seeds) == 1:
        # `--seeds 5` reads like "five seeds"; it is seed 5 alone, and the table's statistics need two.
        print(
            f"note: --seeds names one seed ({settings.seeds[0]}); confidence intervals and tests need at least "
            f"two, e.g. --seeds {','.join(map(str, SEEDS))}",
            file=stream,
        )
    backend = make_backend(settings.backend)
    if study is None:
        study = load_study(settings.storage, settings.study)
    space_name = str(study.user_attrs.get(study_attrs.SPACE, study.study_name))
    search = SearchSettings(space=space_name, backend=settings.backend, resources=settings.resources)
    backend.check(search)
    out = settings.out or run_dir_of(study.study_name, study.user_attrs) / "robust"
    check_out_dir(out, "--out" if settings.out else "robust directory")  # before the companion study is written

    chosen = candidates(study, settings.top_k, settings.baseline)
    if len(chosen) - 1 < settings.top_k:
        print(f"note: study '{study.study_name}' has {len(chosen) - 1} distinct complete configurations", file=stream)
    runs = plan_runs(chosen, settings.seeds, settings.epochs)
    metric = str(study.user_attrs.get(study_attrs.METRIC, "val_accuracy"))
    direction = study.directions[0].name.lower()
    storage = open_storage(settings.storage)  # the companion lives beside the source study
    check_single_writer(storage, settings.storage, robust_name(study.study_name))  # as a search does
    companion = open_study(
        storage,
        robust_name(study.study_name),
        directions=[direction],
        sampler=optuna.samplers.RandomSampler(),  # nothing is sampled: configs come from the queue
        pruner=optuna.pruners.NopPruner(),  # every seed trains its full budget
        attrs={
            study_attrs.SOURCE_STUDY: study.study_name,
            study_attrs.SPACE: space_name,
            study_attrs.OBJECTIVES: ["accuracy"],
            study_attrs.METRIC: metric,
            study_attrs.SETTINGS: settings.record(),
        },
    )
    interrupted = fail_interrupted(companion, storage)
    if interrupted:
        print(f"note: marked {len(interrupted)} run(s) left RUNNING by an interrupted run as FAIL", file=stream)

    done = completed_runs(companion)
    todo: dict[str, RobustRun] = {}
    for run in runs:
        if run.key not in done:
            todo.setdefault(run.key, run)  # the baseline may equal a candidate (a search trial of the base)
    reused = len({run.key for run in runs} & set(done))
    print(
        f"robust '{study.study_name}': {len(chosen) - 1} configurations + baseline x {len(settings.seeds)} seeds; "
        f"{reused} run(s) reused, {len(todo)} to run",
        file=stream,
    )
    if todo:
        _run_queue(settings, backend, companion, list(todo.values()), metric, space_name, runner, out, stream)
    return RobustOutcome(study, companion, tuple(chosen), tuple(runs), len(todo), reused, out)


def _run_queue(
    settings: RobustSettings,
    backend: Backend,
    companion: optuna.Study,
    todo: list[RobustRun],
    metric: str,
    space_name: str,
    runner: TrialRunner | None,
    out: Path,
    stream: TextIO,
) -> None:
    defaults = SpaceDefaults(metric=metric)
    space = SearchSpace(robust_name(space_name), "queued robustness runs", _queued_only, defaults)
    recorder = RobustRecorder(space, defaults, resolve_objectives(("accuracy",), defaults), 0, runs=tuple(todo))
    target = count_finished(companion) + len(todo)
    progress = ProgressLine.for_study(companion, companion.study_name, target, stream=stream)
    session = RobustSession(
        study=companion,
        recorder=recorder,
        target=target,
        progress=progress,
        run_dir=out,
        runner=runner or _run_trial(),
        resources=settings.resources,
        failed_before=len(companion.get_trials(deepcopy=False, states=(TrialState.FAIL,))),
    )
    progress.show()  # at once, as a search's: a seed run trains the full budget
    try:
        backend.run(session)
    finally:
        progress.close()


def _run_trial() -> TrialRunner:
    from aaf_search.trials.runner import run_trial

    # Seed runs train the full budget, often the longest runs of a project: each keeps a checkpoint.
    return functools.partial(run_trial, resumable=True)
