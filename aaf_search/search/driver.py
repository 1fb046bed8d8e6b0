"""Run a search: check everything, open the study, hand the trials to a backend, export the best.

Every check that can fail on user input runs before the study is created or changed, so a mistake
leaves an existing study exactly as it was.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import optuna
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage

from aaf_search.errors import UserError
from aaf_search.outdir import check_out_dir
from aaf_search.search import study_attrs
from aaf_search.search.backends import make_backend
from aaf_search.search.enqueue import enqueue_points, resolve_points, waiting_beyond
from aaf_search.search.export import ranked, write_export
from aaf_search.search.liveness import ATTR_OWNER, describe, this_process
from aaf_search.search.objectives import resolve_objectives
from aaf_search.search.progress import ProgressLine
from aaf_search.search.pruners import PRUNERS, choose_pruner, make_pruner
from aaf_search.search.recording import TrialRecorder
from aaf_search.search.rundir import (
    check_run_dir,
    claim_run_dir,
    identify,
    inspect_run_dir,
    record_run_dir,
    run_dir_of,
    storage_label,
    study_run_dir,
)
from aaf_search.search.samplers import SAMPLERS, SamplerContext, make_sampler
from aaf_search.search.seeds import sampler_seed
from aaf_search.search.session import SearchSession, TrialRunner
from aaf_search.search.settings import SearchSettings
from aaf_search.search.storage import open_storage, several_writers
from aaf_search.search.study import (
    TASK_ATTRS,
    check_compatible,
    check_same_distributions,
    count_finished,
    create_once,
    existing_attrs,
    fail_interrupted,
    live_trials,
    load_session,
    retry_cut_off,
    running_trials,
)
from aaf_search.search.tables import lookup
from aaf_search.spaces import SearchSpace, resolve_space
from aaf_search.spaces.resolve import SPACE_FILE_SUFFIXES


@dataclass(frozen=True)
class SearchOutcome:
    study: optuna.Study
    space: SearchSpace
    run_dir: Path
    best_path: Path | None  # the exported best config; None when no trial completed
    gave_up: bool = False  # stopped short of --trials because a whole round of trials failed
    timed_out: bool = False  # stopped starting trials because --timeout passed (perhaps short of --trials)


def run_search(
    settings: SearchSettings, *, runner: TrialRunner | None = None, stream: TextIO | None = None
) -> SearchOutcome:
    """Run (or continue) the search ``settings`` describe; ``runner`` replaces ``run_trial`` in tests."""
    stream = stream or sys.stderr
    if settings.trials < 1:
        raise UserError(f"--trials must be > 0, got {settings.trials}")
    if settings.epochs is not None and settings.epochs < 1:
        raise UserError(f"--epochs must be > 0, got {settings.epochs}")
    if settings.timeout is not None and not settings.timeout > 0:
        raise UserError(f"--timeout must be > 0 seconds, got {settings.timeout:g}")
    if settings.study is not None and not settings.study.strip():
        raise UserError("--study must not be empty; leave it out to name the study after the space")
    space = resolve_space(settings.space)
    lookup(SAMPLERS, settings.sampler, "sampler")
    backend = make_backend(settings.backend)
    if settings.pruner is not None:
        lookup(PRUNERS, settings.pruner, "pruner")
    # Imported after the checks above: the pre-flight imports the models (torch, seconds), and a
    # mistyped space, table name or number is refused at once.
    from aaf_search.search.preflight import check_precision, check_space

    defaults = space.defaults.replace(
        model=settings.model,
        dataset=settings.dataset,
        data_root=settings.data_root,
        download=settings.download,
        epochs=settings.epochs,
        precision=settings.precision,
    )
    check_precision(defaults.precision, settings.backend, settings.resources)
    objectives = resolve_objectives(settings.objectives, defaults)
    names = [o.name for o in objectives]
    backend.check(settings)
    pruner = make_pruner(choose_pruner(settings.pruner, len(objectives)), defaults.epochs)
    context = SamplerContext(space, defaults, len(objectives))
    # Built once now, to refuse a sampler that does not fit (cmaes with two objectives, a grid over a
    # continuous parameter) before the study exists; the search's own is seeded from the study below.
    make_sampler(settings.sampler, settings.seed, context)
    distributions = check_space(space, defaults)
    if settings.enqueue and settings.sampler == "grid":
        raise UserError("--enqueue does not combine with --sampler grid, which runs every path of the space itself")
    enqueued = resolve_points(settings.enqueue, distributions)
    name = settings.study or space.name
    run_dir = settings.out or study_run_dir(name)
    check_out_dir(run_dir, "--out" if settings.out else "run directory")

    storage = open_storage(settings.storage)
    if settings.out is None:
        # A study continued without --out keeps writing where its earlier searches did.
        own = run_dir_of(name, existing_attrs(storage, name))
        if own != run_dir:
            run_dir = own
            check_out_dir(run_dir, "the study's run directory")
    directions = [o.direction for o in objectives]
    attrs = {
        study_attrs.SPACE: space.name,
        study_attrs.SPACE_SOURCE: space.source,
        study_attrs.OBJECTIVES: names,
        # The task (TASK_ATTRS): a later search continues the study only on the same one.
        study_attrs.MODEL: defaults.model,
        study_attrs.DATASET: defaults.dataset,
        study_attrs.EPOCHS: defaults.epochs,
        study_attrs.METRIC: defaults.metric,
        study_attrs.SEED: settings.seed,
        study_attrs.SETTINGS: settings.record(),
    }
    study_seed, trials_before = begin_study(
        storage, settings, name, space, attrs, directions, distributions, run_dir, stream
    )
    # Processes started together on a shared storage see the same study: without their own seeds
    # they would propose the same configurations, each trial trained twice.
    shared = several_writers(settings.storage)
    process = this_process() if shared else None
    sampling = make_sampler(settings.sampler, sampler_seed(study_seed, trials_before, process), context)
    study = load_session(storage, name, sampler=sampling.sampler, pruner=pruner, settings=settings.record())
    interrupted = fail_interrupted(study, storage)
    if interrupted:
        print(f"note: marked {len(interrupted)} trial(s) left RUNNING by an interrupted run as FAIL", file=stream)
    others = running_trials(storage, name)
    if others:
        owners = ", ".join(sorted({describe(t.user_attrs.get(ATTR_OWNER)) for t in others}))
        print(f"note: {len(others)} trial(s) of study '{name}' are running in other processes ({owners})", file=stream)
    if settings.retry_failed:
        retried = retry_cut_off(study)
        if retried:
            print(f"note: retrying the parameters of cut-off trial(s) {retried}", file=stream)
    if enqueued:
        added = enqueue_points(study, enqueued)
        known = f" ({len(enqueued) - added} already in the study)" if added < len(enqueued) else ""
        print(f"note: enqueued {added} configuration(s) to run first{known}", file=stream)
        left_over = waiting_beyond(study, settings.trials)
        if left_over:
            print(
                f"note: {left_over} enqueued configuration(s) do not fit in --trials {settings.trials}; "
                "they wait in the study for a run with more trials",
                file=stream,
            )

    target = settings.trials if sampling.capacity is None else min(settings.trials, sampling.capacity)
    if target < settings.trials:
        print(f"note: the grid has {target} paths; the search stops at {target} finished trials", file=stream)
    finished = count_finished(study)
    if finished >= target:
        print(
            f"note: study '{name}' already holds {finished} finished trials (--trials {settings.trials}); "
            "nothing to run (a larger --trials runs more)",
            file=stream,
        )
    progress = ProgressLine.for_study(study, name, target, stream=stream, budget=settings.timeout)
    session = SearchSession(
        study=study,
        recorder=TrialRecorder(space, defaults, objectives, study_seed),
        target=target,
        progress=progress,
        run_dir=run_dir,
        runner=runner or _run_trial(),
        resources=settings.resources,
        shared=shared,
        timeout=settings.timeout,
        retry_failed=settings.retry_failed,
    )
    if finished < target:
        progress.show()  # at once: a first trial can take minutes, and a backend seconds to start
    try:
        backend.run(session)
    finally:
        progress.close()
    best = ranked(study)
    best_path = write_export(run_dir / "best.yaml", study, best[0], rank=1) if best else None
    return SearchOutcome(
        study=study,
        space=space,
        run_dir=run_dir,
        best_path=best_path,
        gave_up=session.gave_up,
        timed_out=session.timed_out,
    )


def begin_study(
    storage: BaseStorage,
    settings: SearchSettings,
    name: str,
    space: SearchSpace,
    attrs: dict[str, Any],
    directions: list[str],
    distributions: Mapping[str, BaseDistribution],
    run_dir: Path,
    stream: TextIO,
) -> tuple[int, int]:
    """Create study ``name`` with ``attrs``, or check that this search may continue it; claim ``run_dir``.

    Returns the study's seed and how many trials it held. A refusal (another space, objectives or task,
    a categorical parameter whose choices differ from the study's, a run directory of another study) comes
    before anything is written to the study or the directory, except when another process creates the
    study in between (then only this process's marker check runs after the creation).
    """
    label = storage_label(settings.storage)
    found = inspect_run_dir(run_dir)  # before the study is looked up: see inspect_run_dir

    def compatible() -> bool:
        task = {key: attrs[key] for key in TASK_ATTRS}
        if not check_compatible(
            storage, name, space.name, attrs[study_attrs.OBJECTIVES], task=task, directions=directions
        ):
            return False
        check_same_distributions(storage, name, distributions)
        return True

    continuing = compatible()
    check_run_dir(found, identify(storage, label, name) if continuing else None, name, label)
    if continuing:
        check_single_writer(storage, settings.storage, name)
    elif not create_once(storage, name, directions, attrs):
        # Another search created the study since compatible() looked: continue it as if it had been there,
        # which also takes its seed (trial seeds derive from the stored one) or refuses its other task.
        continuing = compatible()
    claim_run_dir(run_dir, identify(storage, label, name))
    note_moved_run_dir(name, record_run_dir(storage, name, run_dir), run_dir, stream)
    return continued(storage, name, settings.seed, space, stream) if continuing else (settings.seed, 0)


def continued(storage: BaseStorage, name: str, seed: int, space: SearchSpace, stream: TextIO) -> tuple[int, int]:
    """The seed and trial count a search continues existing study ``name`` with (given ``--seed seed``)."""
    stored = existing_attrs(storage, name) or {}
    # The study's own seed wins: per-trial seeds must keep deriving from the seed it started with.
    study_seed = stored.get(study_attrs.SEED, seed)
    if study_seed != seed:
        print(f"note: study '{name}' was started with --seed {study_seed}; continuing with it", file=stream)
    note_other_space_file(name, stored.get(study_attrs.SPACE_SOURCE), space, stream)
    trials_before = len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
    return int(study_seed), trials_before


def note_moved_run_dir(name: str, before: Path | None, run_dir: Path, stream: TextIO) -> None:
    """Say where study ``name``'s earlier trials are when this search writes into another run directory."""
    if before is None:
        return
    where = "wrote its earlier trials into" if before.is_dir() else "had its run directory in"
    gone = "" if before.is_dir() else ", which is not there any more"
    print(f"note: study '{name}' {where} {before}{gone}; this search writes into {run_dir}", file=stream)


def note_other_space_file(name: str, started_from: str | None, space: SearchSpace, stream: TextIO) -> None:
    """Say so when study ``name``, started from space file ``started_from``, is continued from another file.

    Space files are recorded by their absolute path; earlier versions recorded the path as given, so a
    relative record is read from the current directory.
    """
    if not space.source.endswith(SPACE_FILE_SUFFIXES) or started_from is None:
        return
    if Path(started_from).resolve() != Path(space.source).resolve():
        print(
            f"note: study '{name}' was started from {started_from}; this search reads {space.source} "
            "(a space file of the same name; --study NEW_NAME keeps them apart)",
            file=stream,
        )


def check_single_writer(storage: BaseStorage, url: str, name: str) -> None:
    """Refuse a second search on a SQLite study that a live process is searching.

    SQLite locks the whole file for every write; two searches on one file end, sooner or later, in
    "database is locked" failures halfway through a trial. The journal file and the RDB servers are
    made for several writers, so this is said before anything is written.
    """
    if several_writers(url):
        return
    live = live_trials(storage, name)
    if live:
        raise UserError(
            f"study '{name}' is being searched right now by {describe(live[0].user_attrs.get(ATTR_OWNER))}, "
            f"and SQLite does not take several writers; to run searches side by side use "
            f"--storage journal:PATH or a postgresql:// (or mysql://) URL"
        )


def _run_trial() -> TrialRunner:
    # Imported here: the training stack (torch, data sets) is only needed once trials run.
    from aaf_search.trials.runner import run_trial

    # Each trial keeps a checkpoint (at most 2 % of its time), so that --retry-failed carries an
    # interrupted one on instead of training it from epoch 0 again.
    return functools.partial(run_trial, resumable=True)
