"""The robustness stage's results: per-configuration statistics over seeds, its files, and its study attrs.

From the runs of :mod:`aaf_search.analysis.robust` and the companion trials that trained them, one row per
configuration (baseline first): mean, std, 95 % t interval and worst over seeds; the paired difference
from the baseline over the seeds both have, with its 95 % t interval, the paired t-test, Wilcoxon test and
Cohen's d_z; the rank in the search and over seeds. Then Kendall's τ between the two rankings and the
robust best (:mod:`aaf_search.analysis.stats`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial

from aaf_search.analysis import stats
from aaf_search.analysis.frame import direction_of, family_of, first_value
from aaf_search.analysis.robust import BASELINE_LABEL, Candidate, RobustOutcome, RobustRun, completed_runs
from aaf_search.analysis.tables import format_mean_std, to_latex, to_markdown, write_table
from aaf_search.atomic import write_text_atomically
from aaf_search.search import study_attrs

ROBUST_COLUMNS = (
    "label",
    "source_trial",
    "family",
    "search_value",
    "search_rank",
    "n",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "worst",
    "robust_rank",
    "mean_diff",
    "diff_ci_low",
    "diff_ci_high",
    "effect_size",
    "t_statistic",
    "t_p_value",
    "wilcoxon_statistic",
    "wilcoxon_p_value",
    "test_mean",
    "test_std",
    "note",
)
"""The columns of ``robust.csv`` before the per-seed scores, which follow as ``seed_<seed>``."""

SEED_PREFIX = "seed_"
ATTR_SUMMARY = "robust_summary"  # companion study attrs, read by the report and export --robust
ATTR_BEST = "robust_best"
ATTR_TAU = "kendall_tau"
ATTR_SEEDS = "robust_seeds"


@dataclass(frozen=True)
class RobustResult:
    """The robustness table (:data:`ROBUST_COLUMNS` + seed columns), Kendall's τ and the robust best."""

    table: pd.DataFrame
    tau: stats.Tau
    best: stats.RobustBest
    best_config: dict[str, Any] | None  # the robust best's config at the first seed, for export --robust
    metric: str
    direction: stats.Direction
    seeds: tuple[int, ...]


def robust_result(
    candidates: Sequence[Candidate],
    runs: Sequence[RobustRun],
    done: Mapping[str, FrozenTrial],
    *,
    metric: str,
    direction: stats.Direction,
) -> RobustResult:
    """The statistics of the runs that are COMPLETE in ``done`` (run key -> companion trial)."""
    seeds = tuple(dict.fromkeys(run.seed for run in runs))
    scores: dict[str, dict[int, float]] = {c.label: {} for c in candidates}
    tests: dict[str, list[float]] = {c.label: [] for c in candidates}
    for run in runs:
        trial = done.get(run.key)
        if trial is None:
            continue
        scores[run.candidate.label][run.seed] = first_value(trial)
        test = trial.user_attrs.get("test_accuracy")
        if isinstance(test, int | float):
            tests[run.candidate.label].append(float(test))
    baseline = scores.get(BASELINE_LABEL, {})
    bounds = score_bounds(metric)
    rows = [_row(c, scores[c.label], tests[c.label], baseline, direction, seeds, bounds) for c in candidates]
    table = pd.DataFrame(rows, columns=[*ROBUST_COLUMNS, *(f"{SEED_PREFIX}{s}" for s in seeds)])
    table = table.astype({"source_trial": "Int64", "search_rank": "Int64", "robust_rank": "Int64"})
    maximize = direction == "maximize"
    configs = table[(table["label"] != BASELINE_LABEL) & (table["n"] > 0)]
    table.loc[configs.index, "robust_rank"] = _ranks(configs["mean"], maximize)
    searched = table[table["label"] != BASELINE_LABEL]
    table.loc[searched.index, "search_rank"] = _ranks(searched["search_value"], maximize)
    tau = stats.kendall_tau(configs["search_value"].to_numpy(float), configs["mean"].to_numpy(float))
    best = _best(configs, baseline, direction)
    config = None
    if best.config is not None:
        run = next(r for r in runs if r.candidate.label == best.config and r.seed == seeds[0])
        config = run.config.to_dict()
    return RobustResult(table, tau, best, config, metric, direction, seeds)


def _row(
    candidate: Candidate,
    scores: Mapping[int, float],
    tests: Sequence[float],
    baseline: Mapping[int, float],
    direction: stats.Direction,
    seeds: Sequence[int],
    bounds: tuple[float, float],
) -> dict[str, Any]:
    nan = math.nan
    row: dict[str, Any] = {
        "label": candidate.label,
        "source_trial": candidate.source_trial,
        # A configuration without trainable activations (the baseline) by the activation it keeps everywhere.
        "family": family_of(candidate.config.to_dict()) if candidate.config.plan else candidate.config.base_activation,
        "search_value": nan if candidate.search_value is None else candidate.search_value,
        "n": len(scores),
        "note": "",
    }
    row.update({f"{SEED_PREFIX}{seed}": scores.get(seed, nan) for seed in seeds})
    if scores:
        row.update(vars(stats.summarise(list(scores.values()), direction=direction, bounds=bounds)))
    else:
        row.update({"mean": nan, "std": nan, "ci_low": nan, "ci_high": nan, "worst": nan, "note": "no seed finished"})
    row["test_mean"] = sum(tests) / len(tests) if tests else nan
    row["test_std"] = pd.Series(tests, dtype=float).std() if len(tests) > 1 else nan
    common = [seed for seed in seeds if seed in scores and seed in baseline]
    if candidate.label != BASELINE_LABEL and common:
        paired = stats.paired_comparison([scores[s] for s in common], [baseline[s] for s in common])
        row.update(
            {
                "mean_diff": paired.mean_diff,
                "diff_ci_low": paired.diff_ci_low,
                "diff_ci_high": paired.diff_ci_high,
                "effect_size": paired.effect_size,
                "t_statistic": paired.t_statistic,
                "t_p_value": paired.t_p_value,
                "wilcoxon_statistic": paired.wilcoxon_statistic,
                "wilcoxon_p_value": paired.wilcoxon_p_value,
                "note": paired.note,
            }
        )
    return row


def score_bounds(metric: str) -> tuple[float, float]:
    """The range a score of ``metric`` cannot leave: [0, 1] for an accuracy, [0, ∞) for a loss."""
    return (0.0, 1.0) if "accuracy" in metric else (0.0, math.inf)


def _ranks(values: pd.Series, maximize: bool) -> pd.Series:
    return values.rank(ascending=not maximize, method="min").astype("Int64")


def _best(configs: pd.DataFrame, baseline: Mapping[int, float], direction: stats.Direction) -> stats.RobustBest:
    if not baseline:
        nan = math.nan
        return stats.RobustBest(None, nan, nan, nan, nan, nan, "the baseline has no finished seed to compare with")
    baseline_mean = sum(baseline.values()) / len(baseline)
    table = configs.rename(columns={"label": "config"})
    return stats.robust_best(table, baseline_mean, direction=direction)


# -------------------------------------------------------------------------------------------- display


def percent(metric: str) -> bool:
    """Accuracies read as percentages in the papers' tables; losses stay as they are."""
    return "accuracy" in metric


def display_table(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """A robustness table (:data:`ROBUST_COLUMNS`) as the seed papers print it: ``mean ± std`` (in % for
    accuracies), CI, worst, and the paired difference and tests against the baseline."""
    scale = 100.0 if percent(metric) else 1.0
    digits = 2 if percent(metric) else 4
    unit = " (%)" if percent(metric) else ""

    def number(value: float) -> str:
        return "" if pd.isna(value) else f"{value * scale:.{digits}f}"

    def intervals(low: str, high: str) -> list[str]:
        pairs = zip(table[low], table[high], strict=True)
        return ["" if pd.isna(lo) else f"[{number(lo)}, {number(hi)}]" for lo, hi in pairs]

    return pd.DataFrame(
        {
            "config": table["label"],
            "family": table["family"],
            f"search{unit}": [number(v) for v in table["search_value"]],
            f"mean ± std{unit}": [
                format_mean_std(m, s, digits=digits, scale=scale)
                for m, s in zip(table["mean"], table["std"], strict=True)
            ],
            "95% CI": intervals("ci_low", "ci_high"),
            "worst": [number(v) for v in table["worst"]],
            "n": table["n"],
            "Δ vs baseline": [number(v) for v in table["mean_diff"]],
            "95% CI of Δ": intervals("diff_ci_low", "diff_ci_high"),
            "d_z": table["effect_size"],
            "p (t)": table["t_p_value"],
            "p (Wilcoxon)": table["wilcoxon_p_value"],
        }
    )


def tau_line(tau: stats.Tau) -> str:
    if math.isnan(tau.tau):
        return f"Kendall τ (search rank vs seed-mean rank): undefined ({tau.note})"
    return f"Kendall τ (search rank vs seed-mean rank): {tau.tau:.3f} (p = {tau.p_value:.3g}, n = {tau.n})"


def best_line(best: stats.RobustBest) -> str:
    if best.config is None:
        return f"Robust best: none; {best.reason}."
    return f"Robust best: {best.reason}."


def markdown(result: RobustResult, study: str) -> str:
    """``robust.md``: what was compared, the table, τ and the robust best."""
    seeds = ", ".join(map(str, result.seeds))
    floor = 2 / 2 ** len(result.seeds)  # Wilcoxon's exact two-sided p when every difference has one sign
    lines = [
        f"# Seed robustness of study '{study}'",
        "",
        f"Metric {result.metric} ({result.direction}), seeds {seeds}; the paired tests compare each "
        "configuration with the baseline over the seeds both finished (with "
        f"{len(result.seeds)} seeds, Wilcoxon's two-sided p is at least {floor:.4g}).",
        "",
        to_markdown(display_table(result.table, result.metric)).rstrip("\n"),
        "",
        tau_line(result.tau),
        "",
        best_line(result.best),
        "",
    ]
    return "\n".join(lines)


def text(result: RobustResult) -> str:
    """The readable table printed at the end of ``aaf-search robust``."""
    shown = display_table(result.table, result.metric)
    for column in ("d_z", "p (t)", "p (Wilcoxon)"):  # the only numeric columns that can be empty
        shown[column] = [_fmt(v) for v in shown[column]]
    return "\n".join([shown.to_string(index=False), tau_line(result.tau), best_line(result.best)])


def _fmt(value: Any) -> str:
    return "" if value is None or pd.isna(value) else f"{float(value):.3g}"


# ---------------------------------------------------------------------------------------------- output


def write_files(result: RobustResult, out: Path, study: str) -> list[Path]:
    """``robust.csv`` (full precision, every column), ``robust.md`` and ``robust.tex`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = write_table(result.table, out / "robust", formats=("csv",))
    md = out / "robust.md"
    write_text_atomically(md, markdown(result, study))
    tex = out / "robust.tex"
    caption = f"Seed robustness of {study}: {result.metric} over seeds {', '.join(map(str, result.seeds))}"
    write_text_atomically(tex, to_latex(display_table(result.table, result.metric), caption=caption))
    return [*written, md, tex]


def plain(value: Any) -> Any:
    """JSON-safe: NaN and pandas' NA become ``None`` (the dashboard's JSON.parse rejects ``NaN``)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return plain(value.item())
    return value


def store(result: RobustResult, companion: optuna.Study) -> None:
    """Put the summary into the companion study's attrs and its dashboard note."""
    rows = [{key: plain(v) for key, v in row.items()} for row in result.table.to_dict(orient="records")]
    companion.set_user_attr(ATTR_SUMMARY, rows)
    companion.set_user_attr(ATTR_SEEDS, list(result.seeds))
    companion.set_user_attr(ATTR_TAU, {k: plain(v) for k, v in asdict(result.tau).items()})
    best = {k: plain(v) for k, v in asdict(result.best).items()}
    companion.set_user_attr(ATTR_BEST, {**best, "trial": result.best_config})
    import optuna_dashboard

    optuna_dashboard.save_note(companion, markdown(result, str(companion.user_attrs.get(study_attrs.SOURCE_STUDY))))


def conclude(outcome: RobustOutcome) -> tuple[RobustResult, list[Path]]:
    """The statistics of a finished :func:`~aaf_search.analysis.robust.run_robust`, written and stored."""
    result = robust_result(
        outcome.candidates,
        outcome.runs,
        completed_runs(outcome.companion),
        metric=str(outcome.study.user_attrs.get(study_attrs.METRIC, "val_accuracy")),
        direction=direction_of(outcome.study),
    )
    written = write_files(result, outcome.out, outcome.study.study_name)
    store(result, outcome.companion)
    return result, written
