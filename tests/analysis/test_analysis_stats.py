"""Seed-robustness statistics against hand-computed values on fixed inputs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from aaf_search.analysis.stats import kendall_tau, paired_comparison, robust_best, summarise, t_interval

T_975_2DF = 4.302652729911275  # the 97.5 % quantile of Student's t with 2 degrees of freedom


def test_summarise_mean_std_worst_by_hand() -> None:
    s = summarise([0.9, 0.92, 0.91])
    assert s.n == 3
    assert s.mean == pytest.approx(0.91, abs=1e-12)
    # deviations -0.01, 0.01, 0: sum of squares 2e-4 over n - 1 = 2 -> variance 1e-4 -> std 0.01
    assert s.std == pytest.approx(0.01, abs=1e-12)
    assert s.worst == 0.9
    assert summarise([0.9, 0.92, 0.91], direction="minimize").worst == 0.92


def test_t_interval_by_hand() -> None:
    # mean 0.91, s = 0.01, n = 3: 0.91 ± t(0.975, 2 df) · 0.01 / √3
    half = T_975_2DF * 0.01 / math.sqrt(3)
    low, high = t_interval([0.9, 0.92, 0.91])
    assert (low, high) == (pytest.approx(0.91 - half, abs=1e-12), pytest.approx(0.91 + half, abs=1e-12))
    wide = t_interval([0.9, 0.92, 0.91], confidence=0.99)
    assert wide[0] < low and wide[1] > high
    assert t_interval([0.9, 0.9]) == (pytest.approx(0.9), pytest.approx(0.9))  # no spread, no width


@pytest.mark.parametrize("n", [3, 5])
def test_t_interval_covers_the_true_mean_95_percent_of_the_time(n: int) -> None:
    # 2000 samples of n normal scores: the coverage of a 95 % interval is within 1 point of 95 %
    # (a percentile bootstrap gives about 75 % at n = 3 and 84 % at n = 5).
    rng = np.random.default_rng(0)
    samples = rng.normal(0.9, 0.01, size=(2000, n))
    hits = [low <= 0.9 <= high for low, high in map(t_interval, samples)]
    assert np.mean(hits) == pytest.approx(0.95, abs=0.01)


def test_the_interval_stops_where_the_score_must() -> None:
    # Three seeds of 0.99, 1.0 and 0.80: the t interval reaches past an accuracy of 1.
    half = T_975_2DF * math.sqrt(((0.99 - 0.93) ** 2 + 0.07**2 + 0.13**2) / 2) / math.sqrt(3)
    open_ended = summarise([0.99, 1.0, 0.80])
    assert (open_ended.ci_low, open_ended.ci_high) == (pytest.approx(0.93 - half), pytest.approx(0.93 + half))
    assert open_ended.ci_high > 1.0
    cut = summarise([0.99, 1.0, 0.80], bounds=(0.0, 1.0))
    assert (cut.ci_low, cut.ci_high) == (open_ended.ci_low, 1.0)
    assert cut.mean == open_ended.mean and cut.std == open_ended.std
    assert math.isnan(summarise([0.9], bounds=(0.0, 1.0)).ci_high)  # no interval from one seed


def test_one_seed_has_no_spread_and_no_interval() -> None:
    s = summarise([0.9])
    assert s.mean == 0.9 and s.worst == 0.9 and s.n == 1
    assert math.isnan(s.std) and math.isnan(s.ci_low) and math.isnan(s.ci_high)


@pytest.mark.parametrize("bad", [[], [0.9, float("nan")], [float("inf")]])
def test_summarise_rejects_empty_and_non_finite(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        summarise(bad)


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
    half = T_975_2DF / math.sqrt(3)
    assert (p.diff_ci_low, p.diff_ci_high) == (pytest.approx(2 - half), pytest.approx(2 + half))
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
    assert (constant.diff_ci_low, constant.diff_ci_high) == (pytest.approx(1.0), pytest.approx(1.0))
    with_zero = paired_comparison([1.0, 2.0, 3.0, 5.0], [1.0, 1.0, 1.0, 1.0])
    assert "1 zero difference" in with_zero.note
    with pytest.raises(ValueError, match="baseline"):
        paired_comparison([1.0, 2.0], [1.0])


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "config": ["A", "B", "C"],
            "mean": [0.93, 0.95, 0.92],
            "mean_diff": [0.02, 0.04, 0.01],
            "diff_ci_low": [0.005, -0.01, 0.002],
            "diff_ci_high": [0.035, 0.09, 0.018],
        }
    )


def test_robust_best_takes_best_mean_among_those_beating_the_baseline() -> None:
    best = robust_best(_table(), 0.91)
    # A and C beat the baseline (their difference intervals lie above 0); B has the best mean but its
    # interval reaches below 0.
    assert best.config == "A"
    assert (best.mean, best.mean_diff, best.diff_ci_low, best.diff_ci_high) == (0.93, 0.02, 0.005, 0.035)
    assert "2 of 3" in best.reason and "0.91" in best.reason


def test_robust_best_none_with_reason() -> None:
    none = robust_best(_table().assign(diff_ci_low=[-0.01, -0.02, -0.001]), 0.925)
    assert none.config is None and math.isnan(none.mean)
    assert "0.925" in none.reason and "closest: C" in none.reason
    empty = robust_best(_table().iloc[:0], 0.9)
    assert empty.config is None and "no configuration" in empty.reason
    no_ci = robust_best(_table().assign(diff_ci_low=float("nan")), 0.5)
    assert no_ci.config is None and "2+ seeds" in no_ci.reason


def test_robust_best_minimize_uses_the_upper_bound() -> None:
    losses = pd.DataFrame(
        {
            "config": ["A", "B", "C"],
            "mean": [0.30, 0.25, 0.32],
            "mean_diff": [-0.05, -0.1, -0.03],
            "diff_ci_low": [-0.07, -0.25, -0.05],
            "diff_ci_high": [-0.03, 0.05, -0.01],
        }
    )
    best = robust_best(losses, 0.35, direction="minimize")
    assert best.config == "A"  # B's mean is lower but its interval reaches above 0
    assert robust_best(losses.assign(diff_ci_high=0.01), 0.35, direction="minimize").config is None


def test_robust_best_reads_the_pairing_by_seed() -> None:
    # Seeds move both runs together: "paired" is 0.004-0.006 above the baseline under every seed, yet
    # its own interval reaches far below the baseline's mean. "unpaired" has the better mean but its gain is not
    # consistent: under seed 3 it is below the baseline.
    baseline = [0.90, 0.95, 0.92]
    scores = {"paired": [0.904, 0.956, 0.925], "unpaired": [0.95, 0.97, 0.91]}
    rows = []
    for config, values in scores.items():
        paired = paired_comparison(values, baseline)
        rows.append(
            {
                "config": config,
                "mean": np.mean(values),
                "mean_diff": paired.mean_diff,
                "diff_ci_low": paired.diff_ci_low,
                "diff_ci_high": paired.diff_ci_high,
            }
        )
    assert summarise(scores["paired"]).ci_low < np.mean(baseline)
    best = robust_best(pd.DataFrame(rows), float(np.mean(baseline)))
    assert best.config == "paired"
    half = T_975_2DF * 0.001 / math.sqrt(3)  # differences 0.004, 0.006, 0.005: mean 0.005, sd 0.001
    assert (best.diff_ci_low, best.diff_ci_high) == (pytest.approx(0.005 - half), pytest.approx(0.005 + half))
