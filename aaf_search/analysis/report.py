"""``aaf-search report``: a study's tables, figures and an ``index.md`` that links them, from the storage.

Tables (CSV, Markdown, LaTeX): every trial with its parameters and state (in a study of several
objectives, its other objectives' values and whether it is on the Pareto front); the leaderboard by
activation family; the seed-robustness table when ``aaf-search robust`` ran. Figures (PNG, SVG on
request): the optimisation history, the Pareto front (several objectives), parameter importances, the
metric by family, the seed-robustness runs (when ``aaf-search robust`` ran), learning curves, the
learned activation shapes of the best trial and their trajectories over epochs, all from the storage
alone; and, from the weights that trial saved in the search's run
directory, the exact curves its activations learned (one per channel where the parameters are per
channel). A figure that cannot be drawn is skipped with a note in ``index.md`` (the reason in plain
words), never with an error.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from aaf_search.analysis import figures
from aaf_search.analysis.frame import (
    curves_frame,
    direction_of,
    directions_of,
    history_frame,
    trajectories_frame,
    trials_frame,
)
from aaf_search.analysis.robust_table import ATTR_BEST, ATTR_SUMMARY, SEED_PREFIX, display_table, percent
from aaf_search.analysis.shapes import shape_rows
from aaf_search.analysis.tables import write_table
from aaf_search.atomic import write_text_atomically
from aaf_search.errors import UserError
from aaf_search.search import study_attrs
from aaf_search.search.export import ranked
from aaf_search.search.pruners import choose_pruner
from aaf_search.search.recording import ATTR_ACTIVATION_PARAMS
from aaf_search.search.rundir import belongs_to, saved_weights, trial_dir
from aaf_search.search.study import objective_names, sessions

TOP_CURVES = 5  # learning curves drawn in colour; the rest of the complete trials are left out
LEADERBOARD_COLUMNS = ("family", "trials", "complete", "pruned", "failed", "best", "median", "best_trial")


@dataclass
class Report:
    """What :func:`write_report` wrote: tables and figures by name (PNG first), and notes on what it skipped."""

    out: Path
    tables: dict[str, list[Path]] = field(default_factory=dict)
    figures: dict[str, list[Path]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    index: Path | None = None


def leaderboard(trials: pd.DataFrame, direction: str) -> pd.DataFrame:
    """One row per family: trial counts by state, best and median value of its complete trials, best first."""
    maximize = direction == "maximize"
    rows = []
    for family, group in trials.groupby("family", sort=False):
        complete = group[group["state"] == TrialState.COMPLETE.name].dropna(subset=["value"])
        best_index = (complete["value"].idxmax() if maximize else complete["value"].idxmin()) if len(complete) else None
        rows.append(
            {
                "family": family,
                "trials": len(group),
                "complete": len(complete),
                "pruned": int((group["state"] == TrialState.PRUNED.name).sum()),
                "failed": int((group["state"] == TrialState.FAIL.name).sum()),
                "best": complete.loc[best_index, "value"] if best_index is not None else math.nan,
                "median": complete["value"].median() if len(complete) else math.nan,
                "best_trial": complete.loc[best_index, "number"] if best_index is not None else pd.NA,
            }
        )
    table = pd.DataFrame(rows, columns=list(LEADERBOARD_COLUMNS)).astype({"best_trial": "Int64"})
    return table.sort_values("best", ascending=not maximize, na_position="last", kind="stable").reset_index(drop=True)


def robust_rows(companion: optuna.Study | None) -> pd.DataFrame | None:
    """The stored robustness table of the last ``aaf-search robust``, or ``None`` when there is none."""
    if companion is None or not companion.user_attrs.get(ATTR_SUMMARY):
        return None
    return pd.DataFrame(companion.user_attrs[ATTR_SUMMARY])


def seed_scores(robust: pd.DataFrame | None) -> pd.DataFrame:
    """``family, value, source="seeds"``: every seed's score of every re-trained configuration."""
    if robust is None:
        return pd.DataFrame(columns=["family", "value", "source"])
    seeds = [c for c in robust.columns if c.startswith(SEED_PREFIX)]
    long = robust.melt(id_vars=["family"], value_vars=seeds, value_name="value").dropna(subset=["value"])
    return long.assign(source="seeds")[["family", "value", "source"]]


def shapes_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial that learned activation parameters (the best may be the plain baseline)."""
    return next((t for t in ranked(study) if t.user_attrs.get(ATTR_ACTIVATION_PARAMS)), None)


def write_report(
    study: optuna.Study, companion: optuna.Study | None, out: Path, *, svg: bool = False, runs: Sequence[Path] = ()
) -> Report:
    """Write every table and figure of ``study`` (and its robustness companion) into ``out``, then ``index.md``.

    ``runs`` are the search's run directories, the first looked in first: the one figure that needs
    more than the storage, the activations the best trial learned, is drawn from the weights it saved
    in one of them.
    """
    report = Report(out)
    direction = direction_of(study)
    metric = str(study.user_attrs.get(study_attrs.METRIC, "value"))
    trials = trials_frame(study)
    complete = trials[trials["state"] == TrialState.COMPLETE.name]
    robust = robust_rows(companion)

    def table(name: str, frame: pd.DataFrame, caption: str) -> None:
        report.tables[name] = write_table(frame, out / name, caption=caption)

    def figure(name: str, draw: Callable[[Path], list[Path]], skip: str | None = None) -> None:
        if skip is not None:
            report.notes.append(f"{name}: skipped, {skip}")
            return
        report.figures[name] = draw(out / f"{name}.png")

    table("trials", trials, f"All trials of {study.study_name}")
    table("leaderboard", leaderboard(trials, direction), f"Leaderboard by activation family ({metric})")
    if robust is not None:
        table("robust", display_table(robust, metric), f"Seed robustness of {study.study_name} ({metric})")
    else:
        report.notes.append("robust: no robustness table or figure yet (aaf-search robust adds them)")

    figure(
        "history",
        lambda p: figures.optimisation_history(history_frame(trials), p, direction=direction, metric=metric, svg=svg),
        None if len(trials) else "the study has no trial",
    )
    if len(study.directions) > 1:
        objectives = list(zip(objective_names(study), directions_of(study), strict=True))
        figure(
            "pareto",
            lambda p: figures.pareto_front(trials, p, objectives, svg=svg),
            None if len(complete) else "no complete trial",
        )
    importances, why = _importances(study, len(complete))
    figure("importances", lambda p: figures.param_importances(importances, p, trials=len(complete), svg=svg), why)
    scores = pd.concat([complete[["family", "value"]].assign(source="search"), seed_scores(robust)])
    figure(
        "families",
        lambda p: figures.accuracy_by_family(scores, p, direction=direction, metric=metric, svg=svg),
        None if scores["value"].notna().any() else "no complete trial",
    )
    if robust is not None:
        robust_best = (companion.user_attrs.get(ATTR_BEST) or {}).get("config") if companion is not None else None
        figure(
            "robust",
            lambda p: figures.seed_robustness(
                robust, p, metric=metric, percent=percent(metric), best=robust_best, svg=svg
            ),
        )
    curves = curves_frame(study)
    figure(
        "curves",
        lambda p: figures.learning_curves(curves, p, top_k=TOP_CURVES, direction=direction, metric=metric, svg=svg),
        None if len(curves) else "no trial reported an epoch",
    )
    best = shapes_trial(study)
    rows, slots = shape_rows(best) if best is not None else ([], [])
    no_shapes = "no complete trial learned activation parameters"
    figure("shapes", lambda p: figures.activation_shapes(rows, p, svg=svg), None if rows else no_shapes)
    trajectories = trajectories_frame(best, slots) if best is not None else pd.DataFrame()
    figure(
        "trajectories",
        lambda p: figures.param_trajectories(trajectories, p, svg=svg),
        None if len(trajectories) else f"{no_shapes} with a per-epoch history",
    )
    learned, why = _learned(study, best, runs) if best is not None else ([], no_shapes)
    figure("learned", lambda p: figures.learned_activations(learned, p, svg=svg), why)
    report.index = write_index(report, study, companion, trials, best)
    return report


def _learned(
    study: optuna.Study, trial: FrozenTrial, runs: Sequence[Path]
) -> tuple[list[figures.LearnedCurves], str | None]:
    """The curves the activations of ``trial`` learned, from its saved weights, or why there are none."""
    if not runs:
        return [], "no run directory given to read trial weights from"
    there = [path for path in runs if path.is_dir()]
    if not there:
        return [], f"no run directory '{runs[0]}' with the trials' weights (--runs names the search's)"
    own = [path for path in there if belongs_to(path, study)]
    if not own:
        return [], f"run directory '{there[0]}' holds another study's trials"
    path = saved_weights(own, trial.number)
    if path is None:
        looked = "' or '".join(str(trial_dir(run_dir, trial.number)) for run_dir in own)
        return [], f"trial {trial.number} saved no weights in '{looked}'"
    # Imported here: it builds models, and every other figure of the report is drawn from the storage.
    from aaf_search.analysis.learned import learned_in_run

    try:
        _, modules = learned_in_run(path)
    except UserError as exc:  # its data set is not on this machine, its weights are of another model, ...
        return [], f"trial {trial.number}'s saved run could not be loaded: {exc}"
    return modules, None if modules else f"trial {trial.number}'s saved run has no trained activation"


def _importances(study: optuna.Study, complete: int) -> tuple[dict[str, float], str | None]:
    """Optuna's default importances of the first objective, or the reason there are none."""
    if complete < 2:
        return {}, f"parameter importances need 2+ complete trials, the study has {complete}"
    target: Callable[[FrozenTrial], float] | None = None
    if len(study.directions) > 1:
        # The default evaluator (PED-ANOVA) reads a target as "lower is better"; a single objective's
        # direction it reads from the study itself.
        sign = -1.0 if direction_of(study) == "maximize" else 1.0
        target = lambda trial: sign * trial.values[0]  # noqa: E731
    try:
        with warnings.catch_warnings():
            # "Some regimes have less than 2 trials": expected in a small study, and the figure says how few.
            warnings.simplefilter("ignore", UserWarning)
            values = optuna.importance.get_param_importances(study, target=target)
    except (ValueError, RuntimeError) as exc:  # e.g. every complete trial has the same parameters
        return {}, f"parameter importances failed: {exc}"
    if not values:
        return {}, "no parameter varies across the complete trials"
    return {name: float(v) for name, v in values.items()}, None


def write_index(
    report: Report,
    study: optuna.Study,
    companion: optuna.Study | None,
    trials: pd.DataFrame,
    shapes_from: FrozenTrial | None,
) -> Path:
    """``index.md``: the study in a few lines (space, budget, trials by state, best, robust best) and links."""
    attrs = study.user_attrs
    # The latest search's settings: a study continued with a larger --trials (or another sampler) runs to
    # that; studies that kept no sessions have their creating search's.
    settings = (sessions(study) or [attrs.get(study_attrs.SETTINGS, {})])[-1]
    counts = trials["state"].value_counts()
    states = ", ".join(f"{counts[s]} {s.lower()}" for s in counts.index)
    metric = attrs.get(study_attrs.METRIC, "value")
    epochs = attrs.get(study_attrs.EPOCHS) or settings.get("epochs")  # the space's default resolved, if recorded
    lines = [
        f"# Study '{study.study_name}'",
        "",
        f"- space: {attrs.get(study_attrs.SPACE, '?')} ({attrs.get(study_attrs.SPACE_SOURCE) or 'no source recorded'})",
        f"- budget: {_plural(settings.get('trials', '?'), 'trial')} of "
        f"{_plural(epochs, 'epoch') if epochs else 'the space default epochs'}, "
        f"sampler {settings.get('sampler', '?')}, pruner {_pruner(study, settings)}, "
        f"{metric} ({direction_of(study)})",
        f"- trials: {len(trials)} ({states or 'none'})",
    ]
    best = ranked(study)
    if best:
        top = best[0]
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in top.params.items())
        family = trials.loc[trials["number"] == top.number, "family"].iloc[0]
        lines.append(f"- best: trial {top.number} ({family}), {metric} {top.values[0]:.4f}; {params}")
    else:
        lines.append("- best: no trial completed yet")
    lines.append(f"- robust best: {_robust_best(companion)}")
    drawn = [
        what
        for name, what in (
            ("shapes", "activation shapes"),
            ("trajectories", "trajectories"),
            ("learned", "learned activations"),
        )
        if name in report.figures
    ]
    if shapes_from is not None and drawn:  # only the figures written: a skipped one is in the notes instead
        listed = " and ".join(drawn) if len(drawn) < 3 else f"{', '.join(drawn[:-1])} and {drawn[-1]}"
        lines.append(f"- {listed}: trial {shapes_from.number}")
    lines += ["", "## Tables", ""]
    lines += [f"- {name}: " + " · ".join(_link(report.out, p) for p in paths) for name, paths in report.tables.items()]
    lines += ["", "## Figures", ""]
    for name, paths in report.figures.items():
        lines += [f"### {name}", "", f"![{name}]({_link_target(report.out, paths[0])})", ""]
        if len(paths) > 1:
            lines += [" · ".join(_link(report.out, p) for p in paths), ""]
    if report.notes:
        lines += ["## Notes", "", *(f"- {note}" for note in report.notes), ""]
    index = report.out / "index.md"
    write_text_atomically(index, "\n".join(lines) + "\n")
    return index


def _plural(count: object, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _pruner(study: optuna.Study, settings: Mapping[str, Any]) -> str:
    """The pruner the search ran with: ``--pruner``, else the one the search chose for the study's objectives."""
    if "pruner" not in settings:
        return "?"
    try:
        return choose_pruner(settings["pruner"], len(study.directions))
    except UserError:  # a name this version does not know: as recorded
        return str(settings["pruner"])


def _robust_best(companion: optuna.Study | None) -> str:
    best = companion.user_attrs.get(ATTR_BEST) if companion is not None else None
    if best is None:
        return "not computed (run aaf-search robust)"
    if best.get("config") is None:
        return f"none; {best.get('reason')}"
    return str(best.get("reason"))


def _link_target(out: Path, path: Path) -> str:
    return path.relative_to(out).as_posix()


def _link(out: Path, path: Path) -> str:
    target = _link_target(out, path)
    return f"[{path.suffix.lstrip('.')}]({target})"
