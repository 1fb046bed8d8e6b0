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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

Direction = Literal["maximize", "minimize"]
DIRECTIONS: tuple[Direction, ...] = ("maximize", "minimize")

CONFIDENCE = 0.95
"""Confidence of the intervals: of the mean over seeds, and of the mean paired difference from the baseline."""


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
    diff_ci_low: float  # t-interval of the mean difference
    diff_ci_high: float
    note: str = ""


@dataclass(frozen=True)
class RobustBest:
    """The robust best configuration, or ``config=None`` with the reason in ``reason``."""

    config: str | None
    mean: float
    mean_diff: float  # against the baseline over the seeds both finished, with its t interval
    diff_ci_low: float
    diff_ci_high: float
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


def t_interval(scores: Sequence[float] | np.ndarray, *, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t confidence interval of the mean: x̄ ± t_{1−α/2, n−1} · s / √n, α = 1 − ``confidence``.

    Why t and not a bootstrap: with the 3-5 seeds a robustness stage runs, a percentile bootstrap's
    "95 %" interval covers the true mean of normal scores only about 75 % (n = 3) to 84 % (n = 5) of
    the time, because resampling so few values cannot show the spread the sample has not seen; the t
    interval is exact for normal scores at any n. (NaN, NaN) for n < 2 (no spread to estimate); a
    zero-width interval when every score is equal.
    """
    x = _scores(scores, "t_interval")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if x.size < 2:
        return math.nan, math.nan
    half = float(sps.t.ppf(0.5 + confidence / 2.0, x.size - 1)) * float(np.std(x, ddof=1)) / math.sqrt(x.size)
    mean = float(x.mean())
    return mean - half, mean + half


def summarise(
    scores: Sequence[float] | np.ndarray,
    *,
    direction: Direction = "maximize",
    confidence: float = CONFIDENCE,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> Summary:
    """Mean, sample standard deviation, t confidence interval of the mean, and worst score over seeds.

    mean = (1/n) Σ x_i;  std = sqrt(Σ (x_i − mean)² / (n − 1))  (ddof = 1, NaN for n = 1);
    CI = :func:`t_interval`, cut to ``bounds``, the range the score cannot leave (an accuracy's [0, 1]):
    with few seeds and a wide spread the t interval reaches past it, and the cut interval covers the
    true mean whenever the uncut one does;  worst = min x_i when maximising, max x_i when minimising.
    """
    x = _scores(scores, "summarise")
    direction = _check_direction(direction)
    low, high = t_interval(x, confidence=confidence)
    low, high = max(low, bounds[0]), min(high, bounds[1])  # NaN (n < 2) stays NaN: max(nan, b) is nan
    std = float(np.std(x, ddof=1)) if x.size > 1 else math.nan
    worst = float(x.min() if direction == "maximize" else x.max())
    return Summary(n=int(x.size), mean=float(x.mean()), std=std, ci_low=low, ci_high=high, worst=worst)


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
    - the t confidence interval of d̄ (:func:`t_interval` of the d_i), which :func:`robust_best` reads;
    - Wilcoxon signed-rank, two-sided, zero differences dropped (``scipy.stats.wilcoxon``); exact null
      distribution for small n without ties. With n = 5 seeds its smallest possible p-value is
      2/2⁵ = 0.0625, so it can never reach 0.05: report it, but do not read it as a verdict alone.

    The sign of d̄ is raw: for a minimised metric a negative d̄ is the improvement. NaN with a ``note`` for
    n < 2; the tests are NaN when every difference is zero; the t-test and d_z are NaN when all
    differences are equal (s_d = 0, the statistic is not defined), and the interval is then d̄ itself.
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
        return Paired(n, mean_diff, nan, nan, nan, nan, nan, nan, nan, nan, note)
    sd = float(np.std(d, ddof=1))
    if np.all(d == 0.0):
        return Paired(n, 0.0, 0.0, nan, nan, nan, nan, nan, 0.0, 0.0, "all differences are zero (identical scores)")
    diff_low, diff_high = t_interval(d)
    notes: list[str] = []
    # Equal differences in float arithmetic leave an sd of rounding noise (1e-17), not 0: the t statistic
    # would then be a huge number made of that noise.
    if sd <= EQUAL_TOLERANCE * max(abs(mean_diff), 1.0):
        d_z = t_stat = t_p = nan
        diff_low = diff_high = mean_diff
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
    return Paired(
        n, mean_diff, sd, d_z, t_stat, t_p, float(w.statistic), float(w.pvalue), diff_low, diff_high, "; ".join(notes)
    )


ROBUST_BEST_COLUMNS = ("config", "mean", "mean_diff", "diff_ci_low", "diff_ci_high")
"""What :func:`robust_best` reads of each configuration's row."""


def robust_best(table: pd.DataFrame, baseline: float, *, direction: Direction = "maximize") -> RobustBest:
    """The configuration with the best mean among those that beat the baseline with 95 % confidence.

    A configuration beats the baseline when its paired difference from it over the same seeds (the t
    interval of :func:`paired_comparison`) lies wholly on the better side of 0: diff_ci_low > 0 when
    maximising, diff_ci_high < 0 when minimising. Pairing by seed removes what a seed does to both runs
    (its initialisation and data order), and the baseline's own spread counts, which comparing a
    configuration's interval with the baseline's mean would ignore. ``table`` has the
    :data:`ROBUST_BEST_COLUMNS`; ``baseline`` is the baseline's mean, quoted in the reason. Rows with an
    undefined interval (fewer than 2 seeds shared with the baseline) never qualify.
    """
    direction = _check_direction(direction)
    missing = [c for c in ROBUST_BEST_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"robust_best: table lacks column(s) {', '.join(missing)}")
    nan = math.nan
    if table.empty:
        return RobustBest(None, nan, nan, nan, nan, baseline, "no configuration was re-trained over seeds")
    maximize = direction == "maximize"
    bound = "diff_ci_low" if maximize else "diff_ci_high"
    beats = table[bound] > 0 if maximize else table[bound] < 0
    winners = table[beats.fillna(False).astype(bool)]
    if winners.empty:
        defined = table.dropna(subset=[bound])
        if defined.empty:
            reason = "no configuration shares 2+ seeds with the baseline, so none has a confidence interval"
            return RobustBest(None, nan, nan, nan, nan, baseline, reason)
        closest = defined.loc[defined[bound].idxmax() if maximize else defined[bound].idxmin()]
        reason = (
            f"no configuration beats the baseline (mean {baseline:.4g}) with 95 % confidence over the seeds "
            f"(closest: {closest['config']}, difference {_interval(closest)})"
        )
        return RobustBest(None, nan, nan, nan, nan, baseline, reason)
    row = winners.loc[winners["mean"].idxmax() if maximize else winners["mean"].idxmin()]
    reason = (
        f"{row['config']} has the best mean {row['mean']:.4g} among the configurations that beat the baseline "
        f"(mean {baseline:.4g}) with 95 % confidence over the seeds ({len(winners)} of {len(table)}; its "
        f"difference {_interval(row)})"
    )
    return RobustBest(
        str(row["config"]),
        float(row["mean"]),
        float(row["mean_diff"]),
        float(row["diff_ci_low"]),
        float(row["diff_ci_high"]),
        baseline,
        reason,
    )


def _interval(row: pd.Series) -> str:
    return f"{row['mean_diff']:+.4g}, 95 % CI [{row['diff_ci_low']:+.4g}, {row['diff_ci_high']:+.4g}]"
