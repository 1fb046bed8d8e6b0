"""Seed-robustness statistics against hand-computed values on fixed inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from aaf_search.analysis.stats import (
    SUMMARY_COLUMNS,
    bootstrap_ci,
    kendall_tau,
    paired_comparison,
    robust_best,
    summarise,
    summary_table,
)

SMALL_BOOT = 2_000  # enough for the exact-quantile cases below, and fast


def test_summarise_mean_std_worst_by_hand() -> None:
    s = summarise([0.9, 0.92, 0.91])
    assert s.n == 3
    assert s.mean == pytest.approx(0.91, abs=1e-12)
    # deviations -0.01, 0.01, 0: sum of squares 2e-4 over n - 1 = 2 -> variance 1e-4 -> std 0.01
    assert s.std == pytest.approx(0.01, abs=1e-12)
    assert s.worst == 0.9
    assert summarise([0.9, 0.92, 0.91], direction="minimize").worst == 0.92


def test_bootstrap_ci_three_points_is_min_and_max() -> None:
    # Of the 27 equally likely resamples, one has mean 0.90 and one 0.92 (p = 1/27 = 3.7% each, above
    # the 2.5% tails), so the percentile interval's bounds are exactly the smallest and largest score.
    low, high = bootstrap_ci([0.9, 0.92, 0.91])
    assert (low, high) == (pytest.approx(0.90, abs=1e-12), pytest.approx(0.92, abs=1e-12))


def test_bootstrap_ci_contains_mean_and_is_deterministic() -> None:
    scores = [0.912, 0.905, 0.921, 0.899, 0.917]
    first = bootstrap_ci(scores, n_boot=SMALL_BOOT, seed=7)
    assert first == bootstrap_ci(scores, n_boot=SMALL_BOOT, seed=7)
    assert first != bootstrap_ci(scores, n_boot=SMALL_BOOT, seed=8)
    assert first[0] < np.mean(scores) < first[1]
    assert min(scores) <= first[0] and first[1] <= max(scores)
    # Wider confidence -> wider interval.
    wide = bootstrap_ci(scores, n_boot=SMALL_BOOT, seed=7, confidence=0.99)
    assert wide[0] <= first[0] and wide[1] >= first[1]


def test_one_seed_has_no_spread_and_no_interval() -> None:
    s = summarise([0.9])
    assert s.mean == 0.9 and s.worst == 0.9 and s.n == 1
    assert math.isnan(s.std) and math.isnan(s.ci_low) and math.isnan(s.ci_high)


@pytest.mark.parametrize("bad", [[], [0.9, float("nan")], [float("inf")]])
def test_summarise_rejects_empty_and_non_finite(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        summarise(bad)


def test_summary_table_columns_and_order() -> None:
    table = summary_table({"a": [0.90, 0.91], "b": [0.95, 0.93], "c": [0.80, 0.82]}, n_boot=SMALL_BOOT)
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    assert list(table["config"]) == ["b", "a", "c"]
    assert table.loc[0, "mean"] == pytest.approx(0.94)
    assert table.loc[0, "worst"] == 0.93
    low = summary_table({"a": [1.0, 2.0], "b": [0.5, 0.7]}, direction="minimize", n_boot=SMALL_BOOT)
    assert list(low["config"]) == ["b", "a"]
    assert low.loc[0, "worst"] == 0.7


def test_kendall_tau_reversed_identical_and_ties() -> None:
    reversed_ = kendall_tau([1, 2, 3, 4], [4, 3, 2, 1])
    assert reversed_.tau == pytest.approx(-1.0)
    assert reversed_.n == 4 and reversed_.note == ""
    # n = 4, no ties: exact p = 2 * 1/4! = 1/12
    assert reversed_.p_value == pytest.approx(1 / 12)
    assert kendall_tau([0.9, 0.8, 0.7], [0.95, 0.85, 0.75]).tau == pytest.approx(1.0)
    # a = [1,2,2,3], b = [1,2,3,3]: 4 concordant, 0 discordant, 1 pair tied only in a, 1 only in b:
    # tau_b = 4 / sqrt((4 + 1) * (4 + 1)) = 0.8
    assert kendall_tau([1, 2, 2, 3], [1, 2, 3, 3]).tau == pytest.approx(0.8)


def test_kendall_tau_undefined_cases_say_why() -> None:
    one = kendall_tau([1], [1])
    assert math.isnan(one.tau) and math.isnan(one.p_value) and "at least 2" in one.note
    flat = kendall_tau([0.9, 0.9, 0.9], [1, 2, 3])
    assert math.isnan(flat.tau) and "constant" in flat.note
    with pytest.raises(ValueError, match="length"):
        kendall_tau([1, 2], [1, 2, 3])


def test_paired_comparison_by_hand() -> None:
    # differences 1, 2, 3: mean 2, sd 1, d_z = 2, t = 2 / (1 / sqrt 3) = 2 sqrt 3 on 2 df.
    # t(2 df) has CDF 1/2 + t / (2 sqrt(2 + t^2)), so p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(12 / 14).
    p = paired_comparison([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert p.n == 3
    assert p.mean_diff == pytest.approx(2.0)
    assert p.sd_diff == pytest.approx(1.0)
    assert p.effect_size == pytest.approx(2.0)
    assert p.t_statistic == pytest.approx(2 * math.sqrt(3))
    assert p.t_p_value == pytest.approx(1 - math.sqrt(6 / 7))
    # Wilcoxon, 3 positive differences: W- = 0, the most extreme of 2^3 sign patterns -> p = 2 / 8.
    assert p.wilcoxon_statistic == 0.0
    assert p.wilcoxon_p_value == pytest.approx(0.25)
    assert p.note == ""


def test_wilcoxon_matches_scipys_documented_example() -> None:
    # scipy.stats.wilcoxon docs: Cucurbita height differences, two-sided p = 0.041259765625, statistic 24.
    d = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]
    p = paired_comparison(d, [0] * len(d))
    assert p.wilcoxon_statistic == 24.0
    assert p.wilcoxon_p_value == pytest.approx(0.041259765625)


def test_five_seeds_wilcoxon_floor() -> None:
    p = paired_comparison([0.93, 0.94, 0.92, 0.95, 0.96], [0.91, 0.915, 0.9, 0.91, 0.905])
    assert p.wilcoxon_p_value == pytest.approx(2 / 2**5)  # the smallest p five seeds can give
    assert p.t_p_value < 0.05


def test_paired_comparison_degenerate_cases() -> None:
    same = paired_comparison([0.9, 0.91, 0.92], [0.9, 0.91, 0.92])
    assert same.mean_diff == 0.0
    assert math.isnan(same.t_p_value) and math.isnan(same.wilcoxon_p_value) and math.isnan(same.effect_size)
    assert "zero" in same.note
    one = paired_comparison([0.9], [0.8])
    assert one.mean_diff == pytest.approx(0.1) and math.isnan(one.t_p_value) and "at least 2" in one.note
    constant = paired_comparison([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert math.isnan(constant.t_p_value) and math.isnan(constant.effect_size)
    assert constant.wilcoxon_p_value == pytest.approx(0.25)
    assert "sd 0" in constant.note
    with_zero = paired_comparison([1.0, 2.0, 3.0, 5.0], [1.0, 1.0, 1.0, 1.0])
    assert "1 zero difference" in with_zero.note
    with pytest.raises(ValueError, match="baseline"):
        paired_comparison([1.0, 2.0], [1.0])


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "config": ["A", "B", "C"],
            "mean": [0.93, 0.95, 0.92],
            "ci_low": [0.915, 0.90, 0.921],
            "ci_high": [0.945, 0.99, 0.925],
        }
    )


def test_robust_best_takes_best_mean_among_those_beating_the_baseline() -> None:
    best = robust_best(_table(), 0.91)
    # A and C have lower bounds above 0.91; B has the best mean but its bound (0.90) does not beat it.
    assert best.config == "A"
    assert (best.mean, best.ci_low, best.ci_high) == (0.93, 0.915, 0.945)
    assert "2 of 3" in best.reason


def test_robust_best_none_with_reason() -> None:
    none = robust_best(_table(), 0.925)
    assert none.config is None and math.isnan(none.mean)
    assert "0.925" in none.reason and "closest: C" in none.reason
    empty = robust_best(_table().iloc[:0], 0.9)
    assert empty.config is None and "no configuration" in empty.reason
    no_ci = robust_best(_table().assign(ci_low=float("nan")), 0.5)
    assert no_ci.config is None and "2+ seeds" in no_ci.reason


def test_robust_best_minimize_uses_the_upper_bound() -> None:
    losses = pd.DataFrame(
        {
            "config": ["A", "B", "C"],
            "mean": [0.30, 0.25, 0.32],
            "ci_low": [0.28, 0.1, 0.31],
            "ci_high": [0.33, 0.45, 0.34],
        }
    )
    best = robust_best(losses, 0.35, direction="minimize")
    assert best.config == "A"  # B's mean is lower but its upper bound 0.45 does not beat 0.35
    assert robust_best(losses, 0.32, direction="minimize").config is None


def test_robust_best_end_to_end_from_scores() -> None:
    seeds = {"coslu": [0.95, 0.96, 0.955], "lslu": [0.99, 0.90, 0.995]}
    baseline = summarise([0.93, 0.935, 0.925], n_boot=SMALL_BOOT)
    table = summary_table(seeds, n_boot=SMALL_BOOT)
    assert list(table["config"]) == ["lslu", "coslu"]  # lslu has the better mean, 0.9617 vs 0.955
    # With three seeds the 95% interval spans the lowest to the highest score (see above): lslu's lower
    # bound 0.90 is below the baseline mean 0.93, coslu's 0.95 is above it.
    best = robust_best(table, baseline.mean)
    assert best.config == "coslu"
    assert best.ci_low == pytest.approx(0.95)
