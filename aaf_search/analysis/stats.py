"""Seed-robustness statistics: summaries over seeds, rank stability, paired tests, and the robust best.

Everything here is a pure function over plain numbers or a pandas DataFrame, so the robustness stage,
the report and the tests share one implementation. A configuration's scores are its metric values under
the re-training seeds (the seed projects use 42, 100, 128, 1999, 7823); a baseline is scored under the
same seeds, which is what makes the comparisons *paired*.

Small samples are the normal case (3-5 seeds), so every function states what it returns when a
statistic is undefined (NaN plus a plain-language ``note``) instead of raising or warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

Direction = Literal["maximize", "minimize"]
DIRECTIONS: tuple[Direction, ...] = ("maximize", "minimize")

N_BOOT = 10_000  # bootstrap resamples; the bounds' Monte-Carlo error shrinks as 1/sqrt(N_BOOT)
CONFIDENCE = 0.95
BOOT_SEED = 0  # fixed so that a table is reproducible bit for bit

SUMMARY_COLUMNS = ("config", "n", "mean", "std", "ci_low", "ci_high", "worst")
"""Columns of :func:`summary_table`, the robustness table that :func:`robust_best` reads."""


@dataclass(frozen=True)
class Summary:
    """One configuration's scores over seeds (see :func:`summarise`)."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    worst: float


@dataclass(frozen=True)
class Tau:
    """Kendall's τ_b between two rankings, its two-sided p-value, and why either is NaN."""

    tau: float
    p_value: float
    n: int
    note: str = ""


@dataclass(frozen=True)
class Paired:
    """A candidate against the baseline over the same seeds (see :func:`paired_comparison`)."""

    n: int
    mean_diff: float
    sd_diff: float
    effect_size: float  # Cohen's d_z
    t_statistic: float
    t_p_value: float
    wilcoxon_statistic: float
    wilcoxon_p_value: float
    note: str = ""


@dataclass(frozen=True)
class RobustBest:
    """The robust best configuration, or ``config=None`` with the reason in ``reason``."""

    config: str | None
    mean: float
    ci_low: float
    ci_high: float
    baseline_mean: float
    reason: str


def _scores(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise ValueError(f"{what}: no scores")
    if not np.all(np.isfinite(array)):
        # A diverged seed has no score; the caller decides whether it counts as the worst or is dropped.
        raise ValueError(f"{what}: scores must be finite, got {array.tolist()}")
    return array


def _check_direction(direction: str) -> Direction:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got '{direction}'")
    return direction


def bootstrap_ci(
    scores: Sequence[float] | np.ndarray,
    *,
    n_boot: int = N_BOOT,
    confidence: float = CONFIDENCE,
    seed: int = BOOT_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Draw ``n_boot`` resamples x*_b of size n with replacement, take their means m_b = (1/n) Σ_i x*_{b,i},
    and return the (α/2, 1 − α/2) empirical quantiles of {m_b}, α = 1 − ``confidence`` (Efron &
    Tibshirani 1993, ch. 13). All resamples are drawn as one (n_boot, n) index matrix. For n < 2 the
    interval is undefined and (NaN, NaN) is returned: one score resampled is the same score.
    """
    x = _scores(scores, "bootstrap_ci")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if x.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def summarise(
    scores: Sequence[float] | np.ndarray,
    *,
    direction: Direction = "maximize",
    n_boot: int = N_BOOT,
    confidence: float = CONFIDENCE,
    seed: int = BOOT_SEED,
) -> Summary:
    """Mean, sample standard deviation, bootstrap CI of the mean, and worst score over seeds.

    mean = (1/n) Σ x_i;  std = sqrt(Σ (x_i − mean)² / (n − 1))  (ddof = 1, NaN for n = 1);
    CI = :func:`bootstrap_ci`;  worst = min x_i when maximising, max x_i when minimising.
    """
    x = _scores(scores, "summarise")
    direction = _check_direction(direction)
    low, high = bootstrap_ci(x, n_boot=n_boot, confidence=confidence, seed=seed)
    std = float(np.std(x, ddof=1)) if x.size > 1 else math.nan
    worst = float(x.min() if direction == "maximize" else x.max())
    return Summary(n=int(x.size), mean=float(x.mean()), std=std, ci_low=low, ci_high=high, worst=worst)


def summary_table(
    scores_by_config: Mapping[str, Sequence[float]],
    *,
    direction: Direction = "maximize",
    n_boot: int = N_BOOT,
    confidence: float = CONFIDENCE,
    seed: int = BOOT_SEED,
) -> pd.DataFrame:
    """One :func:`summarise` row per configuration, columns :data:`SUMMARY_COLUMNS`, best mean first."""
    rows = [
        {"config": config, **vars(summarise(s, direction=direction, n_boot=n_boot, confidence=confidence, seed=seed))}
        for config, s in scores_by_config.items()
    ]
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return table.sort_values("mean", ascending=direction == "minimize", kind="stable").reset_index(drop=True)


def kendall_tau(rank_a: Sequence[float] | np.ndarray, rank_b: Sequence[float] | np.ndarray) -> Tau:
    """Kendall's τ_b between two rankings of the same configurations (element i of each is config i).

    τ_b = (P − Q) / sqrt((P + Q + T_a)(P + Q + T_b)), P/Q the concordant/discordant pairs and T_a/T_b the
    pairs tied only in a/only in b (scipy's default variant, so tied scores are handled). τ depends only on
    the orders, so scores can be passed instead of ranks: τ(search scores, seed means) is the rank
    stability of the search. Undefined (NaN, with a note) for n < 2 or when either ranking is constant.
    """
    a = np.asarray(rank_a, dtype=float).ravel()
    b = np.asarray(rank_b, dtype=float).ravel()
    if a.size != b.size:
        raise ValueError(f"kendall_tau: rankings differ in length ({a.size} vs {b.size})")
    n = int(a.size)
    if n < 2:
        return Tau(math.nan, math.nan, n, f"τ needs at least 2 configurations, got {n}")
    if np.all(a == a[0]) or np.all(b == b[0]):
        return Tau(math.nan, math.nan, n, "one ranking is constant (all tied), so τ is undefined")
    result = sps.kendalltau(a, b)
    return Tau(float(result.statistic), float(result.pvalue), n)


EQUAL_TOLERANCE = 1e-12
"""Relative spread below which differences count as all equal."""


def paired_comparison(
    candidate_scores: Sequence[float] | np.ndarray,
    baseline_scores: Sequence[float] | np.ndarray,
) -> Paired:
    """Candidate vs baseline over the same seeds: differences d_i = candidate_i − baseline_i.

    - mean difference d̄ = (1/n) Σ d_i and s_d = sqrt(Σ (d_i − d̄)² / (n − 1));
    - effect size Cohen's d_z = d̄ / s_d (Cohen 1988; the paired-samples d, on the differences);
    - paired t-test: t = d̄ / (s_d / √n), n − 1 degrees of freedom, two-sided (``scipy.stats.ttest_rel``);
    - Wilcoxon signed-rank, two-sided, zero differences dropped (``scipy.stats.wilcoxon``); exact null
      distribution for small n without ties. With n = 5 seeds its smallest possible p-value is
      2/2⁵ = 0.0625, so it can never reach 0.05: report it, but do not read it as a verdict alone.

    The sign of d̄ is raw: for a minimised metric a negative d̄ is the improvement. NaN with a ``note`` for
    n < 2 or when every difference is zero; the t-test and d_z are NaN when all differences are equal
    (s_d = 0, the statistic is not defined).
    """
    c = _scores(candidate_scores, "paired_comparison (candidate)")
    b = _scores(baseline_scores, "paired_comparison (baseline)")
    if c.size != b.size:
        raise ValueError(f"paired_comparison: {c.size} candidate scores but {b.size} baseline scores")
    d = c - b
    n = int(d.size)
    mean_diff = float(d.mean())
    nan = math.nan
    if n < 2:
        note = f"paired tests need at least 2 seeds, got {n}"
        return Paired(n, mean_diff, nan, nan, nan, nan, nan, nan, note)
    sd = float(np.std(d, ddof=1))
    if np.all(d == 0.0):
        return Paired(n, 0.0, 0.0, nan, nan, nan, nan, nan, "all differences are zero (identical scores)")
    notes: list[str] = []
    # Equal differences in float arithmetic leave an sd of rounding noise (1e-17), not 0: the t statistic
    # would then be a huge number made of that noise.
    if sd <= EQUAL_TOLERANCE * max(abs(mean_diff), 1.0):
        d_z = t_stat = t_p = nan
        notes.append("all differences are equal (sd 0): t-test and d_z undefined")
    else:
        d_z = mean_diff / sd
        t = sps.ttest_rel(c, b)
        t_stat, t_p = float(t.statistic), float(t.pvalue)
    zeros = int(np.sum(d == 0.0))
    if zeros:
        notes.append(f"{zeros} zero difference(s) dropped by Wilcoxon")
    with warnings.catch_warnings():
        # scipy warns when it falls back from the exact to the normal approximation (ties, zeros);
        # the note above already says so.
        warnings.simplefilter("ignore", UserWarning)
        w = sps.wilcoxon(d)
    return Paired(n, mean_diff, sd, d_z, t_stat, t_p, float(w.statistic), float(w.pvalue), "; ".join(notes))


def robust_best(table: pd.DataFrame, baseline: float, *, direction: Direction = "maximize") -> RobustBest:
    """The configuration with the best mean whose confidence bound beats the baseline mean.

    Maximising: among rows with ci_low > baseline, the one with the largest mean; minimising: among rows
    with ci_high < baseline, the smallest mean. ``table`` has the :data:`SUMMARY_COLUMNS` (at least
    config, mean, ci_low, ci_high), e.g. from :func:`summary_table`; ``baseline`` is the baseline's mean
    over the same seeds. Rows with an undefined CI (one seed) never qualify.
    """
    direction = _check_direction(direction)
    missing = [c for c in ("config", "mean", "ci_low", "ci_high") if c not in table.columns]
    if missing:
        raise ValueError(f"robust_best: table lacks column(s) {', '.join(missing)}")
    nan = math.nan
    if table.empty:
        return RobustBest(None, nan, nan, nan, baseline, "no configuration was re-trained over seeds")
    maximize = direction == "maximize"
    bound = "ci_low" if maximize else "ci_high"
    beats = table[bound] > baseline if maximize else table[bound] < baseline
    winners = table[beats.fillna(False).astype(bool)]
    if winners.empty:
        defined = table.dropna(subset=[bound])
        if defined.empty:
            return RobustBest(
                None, nan, nan, nan, baseline, "no configuration has a confidence interval (needs 2+ seeds each)"
            )
        closest = defined.loc[defined[bound].idxmax() if maximize else defined[bound].idxmin()]
        side = "lower" if maximize else "upper"
        reason = (
            f"no configuration's CI {side} bound beats the baseline mean {baseline:.4g} "
            f"(closest: {closest['config']} with {side} bound {closest[bound]:.4g})"
        )
        return RobustBest(None, nan, nan, nan, baseline, reason)
    row = winners.loc[winners["mean"].idxmax() if maximize else winners["mean"].idxmin()]
    word = "lower" if maximize else "upper"
    reason = (
        f"{row['config']} has the best mean {row['mean']:.4g} among configurations whose CI {word} bound "
        f"beats the baseline mean {baseline:.4g} ({len(winners)} of {len(table)} do)"
    )
    return RobustBest(
        str(row["config"]), float(row["mean"]), float(row["ci_low"]), float(row["ci_high"]), baseline, reason
    )
