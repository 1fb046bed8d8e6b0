"""The few lines printed when a search ends: counts, the best trial (or the Pareto front), where things are."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from optuna.trial import FrozenTrial, TrialState

from aaf_search.search.export import ranked
from aaf_search.search.objectives import format_value
from aaf_search.search.recording import stored_category
from aaf_search.search.rundir import run_dirs_of, saved_weights
from aaf_search.search.storage import redact
from aaf_search.search.study import objective_names

if TYPE_CHECKING:
    from aaf_search.search.driver import SearchOutcome

PARETO_SHOWN = 10  # Pareto-front trials listed; the dashboard shows them all


def failure_breakdown(trials: Sequence[FrozenTrial]) -> str:
    """`` (2 diverged, 1 oom)``: the failed trials by category, most frequent first; empty without failures."""
    categories = Counter(stored_category(t) for t in trials if t.state == TrialState.FAIL)
    if not categories:
        return ""
    return " (" + ", ".join(f"{count} {category}" for category, count in categories.most_common()) + ")"


def summarize(outcome: SearchOutcome, storage_url: str) -> str:
    study = outcome.study
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in TrialState}
    objectives = objective_names(study)
    lines = [
        f"study '{study.study_name}' (space {outcome.space.name}): {counts[TrialState.COMPLETE]} complete, "
        f"{counts[TrialState.PRUNED]} pruned, {counts[TrialState.FAIL]} failed{failure_breakdown(trials)}",
    ]
    if outcome.timed_out:
        lines.append("stopped by --timeout short of --trials; run the command again to continue the study")
    best = ranked(study)
    if not best:
        lines.append("no trial completed, so there is no best config yet")
    elif len(objectives) == 1:
        top = best[0]
        test = top.user_attrs.get("test_accuracy")
        test_text = f", test accuracy {test:.4f}" if isinstance(test, float) else ""
        lines.append(f"best: trial {top.number}, {study.user_attrs.get('metric')} {top.values[0]:.4f}{test_text}")
        lines += [f"  {name} = {value}" for name, value in top.params.items()]
    else:
        front = sorted(study.best_trials, key=lambda t: t.number)
        lines.append(f"Pareto front ({', '.join(objectives)}): {len(front)} trials")
        for trial in front[:PARETO_SHOWN]:
            values = ", ".join(f"{n} {format_value(n, v)}" for n, v in zip(objectives, trial.values, strict=False))
            lines.append(f"  trial {trial.number}: {values}")
    if outcome.best_path is not None:
        lines.append(f"best config: {outcome.best_path}  (aaf-search train --config {outcome.best_path})")
        # The best trial may be one an earlier search wrote into another --out.
        weights = saved_weights([outcome.run_dir, *run_dirs_of(study.study_name, study.user_attrs)], best[0].number)
        if weights is not None:
            lines.append(f"best weights: {weights}  (aaf-search activations plot --run {weights})")
    lines.append(f"dashboard: optuna-dashboard {redact(storage_url)}")
    return "\n".join(lines)
