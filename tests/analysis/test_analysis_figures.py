"""Figures: each writes a non-trivial PNG from a tiny frame; the drawing functions put the right artists."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib import image as mpimg
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from aaf_search import activations
from aaf_search.analysis import figures
from aaf_search.analysis.figures import ShapeRow

MIN_PNG_BYTES = 5_000
# Pixels whose channels differ by more than 0.2 are coloured: an empty whitegrid axes has none (white and
# grey only), so a figure must have drawn its data to pass. A 2-pixel line across a panel is ~1000 of them.
MIN_COLOURED_PIXELS = 500


def _ax() -> Axes:
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def _history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "number": [0, 1, 2, 3, 4, 5],
            "value": [0.80, 0.85, 0.60, np.nan, 0.83, 0.90],
            "state": ["COMPLETE", "COMPLETE", "PRUNED", "FAIL", "COMPLETE", "COMPLETE"],
        }
    )


def _curves() -> pd.DataFrame:
    rows = []
    finals = {
        0: (0.80, "COMPLETE"),
        1: (0.90, "COMPLETE"),
        2: (0.85, "COMPLETE"),
        3: (0.5, "PRUNED"),
        4: (0.4, "PRUNED"),
    }
    for number, (final, state) in finals.items():
        epochs = 4 if state == "COMPLETE" else 2
        for epoch in range(1, epochs + 1):
            rows.append({"number": number, "epoch": epoch, "value": final * epoch / epochs, "state": state})
    return pd.DataFrame(rows)


def _assert_png(paths: list[Path]) -> None:
    assert paths[0].suffix == ".png"
    assert paths[0].stat().st_size > MIN_PNG_BYTES
    image = mpimg.imread(paths[0])[..., :3]
    coloured = int(((image.max(axis=-1) - image.min(axis=-1)) > 0.2).sum())
    assert coloured > MIN_COLOURED_PIXELS, coloured


def test_optimisation_history_best_so_far_and_states(tmp_path: Path) -> None:
    ax = _ax()
    figures.draw_optimisation_history(ax, _history())
    # best so far over the complete trials 0, 1, 4, 5 (the pruned 0.60 does not count), extended to trial 5
    (step,) = ax.lines
    assert list(np.asarray(step.get_ydata())) == pytest.approx([0.80, 0.85, 0.85, 0.90, 0.90])
    # complete points, pruned crosses, failed ticks (+ the empty legend proxy for "failed")
    sizes = [len(np.asarray(c.get_offsets())) for c in ax.collections]
    assert sizes == [4, 1, 1, 0]
    assert "4 complete, 1 pruned, 1 failed" in ax.get_title()
    minimise = _ax()
    figures.draw_optimisation_history(minimise, _history(), direction="minimize")
    assert list(np.asarray(minimise.lines[0].get_ydata())) == pytest.approx([0.80, 0.80, 0.80, 0.80, 0.80])
    paths = figures.optimisation_history(_history(), tmp_path / "history.png", svg=True)
    _assert_png(paths)
    assert paths[1].suffix == ".svg" and b"<svg" in paths[1].read_bytes()[:500]


def test_learning_curves_top_k_and_pruned_dashed(tmp_path: Path) -> None:
    ax = _ax()
    figures.draw_learning_curves(ax, _curves(), top_k=2)
    styles = [(line.get_linestyle(), line.get_label()) for line in ax.lines]
    # two pruned trials dashed, then the top two complete trials (#1 at 0.90, #2 at 0.85) solid
    assert [s for s, _ in styles] == ["--", "--", "-", "-"]
    assert [label for _, label in styles[2:]] == ["#1", "#2"]
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["#1", "#2", "pruned (2)"]
    assert figures.top_trials(_curves(), 2, direction="minimize") == [0, 2]
    _assert_png(figures.learning_curves(_curves(), tmp_path / "curves.png", top_k=2))


def _objectives_frame() -> pd.DataFrame:
    # accuracy up, params down: #0, #1 and #3 trade one for the other, #2 is beaten by #1 on both.
    return pd.DataFrame(
        {
            "number": [0, 1, 2, 3, 4],
            "value": [0.90, 0.80, 0.70, 0.95, math.nan],  # #4 failed
            "params": [2000.0, 1000.0, 1500.0, 5000.0, math.nan],
            "latency": [0.2, 0.1, 0.3, 0.4, math.nan],
            "pareto": [True, True, False, True, False],
        }
    )


def test_pareto_front(tmp_path: Path) -> None:
    fig = Figure()
    FigureCanvasAgg(fig)
    (ax,) = figures.draw_pareto_front(fig, _objectives_frame(), [("accuracy", "maximize"), ("params", "minimize")])
    assert ax.get_xlabel() == "params (minimize)" and ax.get_ylabel() == "accuracy (maximize)"
    assert sorted(t.get_text() for t in ax.texts) == ["#0", "#1", "#3"]  # the front, labelled
    (step,) = ax.get_lines()  # with two objectives, the attained boundary: by params, accuracy rises
    assert list(step.get_xdata()) == [1000.0, 2000.0, 5000.0] and list(step.get_ydata()) == [0.80, 0.90, 0.95]
    assert fig.get_suptitle() == "Pareto front: 3 of 4 complete trials"

    three = [("accuracy", "maximize"), ("params", "minimize"), ("latency", "minimize")]
    fig = Figure()
    FigureCanvasAgg(fig)
    axes = figures.draw_pareto_front(fig, _objectives_frame(), three)
    assert [a.get_xlabel() for a in axes] == ["params (minimize)", "latency (minimize)"]
    assert not any(a.get_lines() for a in axes)  # a 2-D view of a 3-D front is no staircase
    with pytest.raises(ValueError, match="at least two objectives"):
        figures.draw_pareto_front(fig, _objectives_frame(), three[:1])
    _assert_png(figures.pareto_front(_objectives_frame(), tmp_path / "pareto.png", three))


def test_param_importances(tmp_path: Path) -> None:
    ax = _ax()
    figures.draw_param_importances(ax, {"act/family": 0.7, "lr": 0.2, "act/n": 0.1})
    # bars bottom to top in increasing importance, so the largest is on top
    assert [p.get_width() for p in ax.patches if isinstance(p, Rectangle)] == pytest.approx([0.1, 0.2, 0.7])
    assert ax.get_title() == "parameter importances"
    ax = _ax()
    # from how many trials, so that a reader discounts bars from a handful
    figures.draw_param_importances(ax, {"lr": 1.0}, trials=3)
    assert ax.get_title() == "parameter importances (3 complete trials)"
    _assert_png(figures.param_importances({"act/family": 0.7, "lr": 0.2, "act/n": 0.1}, tmp_path / "imp.png"))


def test_accuracy_by_family(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(
        {
            "family": ["coslu"] * 6 + ["relu"] * 6,
            "value": np.r_[0.9 + 0.01 * rng.standard_normal(6), 0.85 + 0.01 * rng.standard_normal(6)],
            "source": ["search", "search", "search", "seeds", "seeds", "seeds"] * 2,
        }
    )
    ax = _ax()
    figures.draw_accuracy_by_family(ax, scores)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["coslu", "relu"]  # best median first
    _assert_png(figures.accuracy_by_family(scores, tmp_path / "family.png"))


def _robust_table() -> pd.DataFrame:
    """Two configurations and the baseline over seeds 1-3, with intervals as the robustness stage writes them."""
    return pd.DataFrame(
        {
            "label": ["baseline", "#4", "#9"],
            "family": ["relu", "aglu", "coslu"],
            "robust_rank": [pd.NA, 2, 1],
            "mean": [0.90, 0.91, 0.95],
            "ci_low": [0.88, 0.89, 0.94],
            "ci_high": [0.92, 0.93, 0.96],
            "mean_diff": [np.nan, 0.01, 0.05],
            "diff_ci_low": [np.nan, -0.02, 0.03],
            "diff_ci_high": [np.nan, 0.04, 0.07],
            "seed_1": [0.90, 0.92, 0.95],
            "seed_2": [0.89, 0.90, 0.94],
            "seed_3": [0.91, np.nan, 0.96],  # #4's third seed did not finish
        }
    )


def test_seed_robustness_scores_and_paired_differences_per_configuration(tmp_path: Path) -> None:
    fig = Figure(figsize=(10, 3))
    FigureCanvasAgg(fig)
    scores_ax, diff_ax = figures.draw_seed_robustness(fig, _robust_table(), best="#9")

    # Best mean on top, the baseline last; the robust best named in its row.
    labels = sorted((t.get_position()[1], t.get_text()) for t in scores_ax.get_yticklabels())
    assert labels == [(0, "baseline relu"), (1, "#4 aglu"), (2, "#9 coslu (robust best)")]  # bottom to top
    # Each configuration's per-seed differences from the baseline at the same seed, in %.
    dots = [line for line in diff_ax.lines if line.get_marker() == "o"]
    by_row = {round(line.get_ydata()[0]): list(line.get_xdata()) for line in dots}
    assert by_row[2] == pytest.approx([5.0, 5.0, 5.0])  # #9: 0.95 - 0.90, 0.94 - 0.89, 0.96 - 0.91
    assert by_row[1][:2] == pytest.approx([2.0, 1.0]) and math.isnan(by_row[1][2])
    assert 0 not in by_row  # the baseline has no difference from itself
    # The mean differences with their intervals: #4's crosses 0, #9's lies above it.
    horizontal = [line for line in diff_ax.lines if len(line.get_ydata()) == 2 and len(set(line.get_ydata())) == 1]
    intervals = sorted((line.get_ydata()[0], *line.get_xdata()) for line in horizontal)
    assert intervals == [(1, pytest.approx(-2.0), pytest.approx(4.0)), (2, pytest.approx(3.0), pytest.approx(7.0))]
    assert [tuple(line.get_xdata()) for line in scores_ax.lines if line.get_marker() == "D"] == [
        pytest.approx((95.0,)),
        pytest.approx((91.0,)),
        pytest.approx((90.0,)),
    ]
    _assert_png(figures.seed_robustness(_robust_table(), tmp_path / "robust.png", best="#9"))


def test_activation_shapes_initial_vs_learned(tmp_path: Path) -> None:
    rows = [
        # LSLU's element-wise series with θ = (2, 1, 1), ω = (0, 0, -0.5): g(x) = relu(2 relu(x) - 0.5)
        ShapeRow("features.1", "lslu", None, {"theta": [2.0, 1.0, 1.0], "omega": [0.0, 0.0, -0.5]}, {"n": 3}),
        ShapeRow("features.4", "coslu", "default", {"a": 0.5, "b": 2.0}, shape="channel"),
        ShapeRow("classifier.1", "lincomb", None, {"w": 0.3}),
    ]
    fig = Figure(figsize=(9, 3))
    FigureCanvasAgg(fig)
    axes = figures.draw_activation_shapes(fig, rows)
    assert len(axes) == 3
    initial, learned = axes[0].lines[:2]
    x = np.asarray(learned.get_xdata())
    assert np.allclose(initial.get_ydata(), np.maximum(x, 0))  # the default series is ReLU
    assert np.allclose(learned.get_ydata(), np.maximum(2 * np.maximum(x, 0) - 0.5, 0))
    assert "channel means" in axes[1].get_title()
    assert "w as mean" in axes[2].get_title()
    _assert_png(figures.activation_shapes(rows, tmp_path / "shapes.png"))


def test_param_trajectories(tmp_path: Path) -> None:
    rows = [
        {
            "number": 7,
            "epoch": e,
            "slot": slot,
            "param": param,
            "mean": base + 0.1 * e,
            "min": base,
            "max": base + 0.2 * e,
        }
        for e in range(1, 5)
        for slot in ("stage1", "stage2")
        for param, base in (("theta", 1.0), ("omega", 0.0))
    ]
    trajectories = pd.DataFrame(rows)
    fig = Figure(figsize=(8, 3))
    FigureCanvasAgg(fig)
    axes = figures.draw_param_trajectories(fig, trajectories)
    assert [ax.get_title() for ax in axes] == ["theta", "omega"]
    assert [len(ax.lines) for ax in axes] == [2, 2]  # one line per slot
    assert len(axes[0].collections) == 2  # a min-max band per slot
    _assert_png(figures.param_trajectories(trajectories, tmp_path / "trajectories.png"))


def _visible_ticks(ax: Axes) -> list[float]:
    low, high = ax.get_xlim()
    return [float(t) for t in ax.get_xticks() if low <= t <= high]


def test_epoch_axes_tick_whole_epochs_only() -> None:
    curves = _curves()
    two_epochs = curves[curves["epoch"] <= 2]  # matplotlib's default ticks 1, 1.2, 1.4, ... here
    ax = _ax()
    figures.draw_learning_curves(ax, two_epochs)
    assert _visible_ticks(ax) == [1.0, 2.0]
    fig = Figure(figsize=(8, 3))
    FigureCanvasAgg(fig)
    trajectories = pd.DataFrame(
        [{"number": 1, "epoch": e, "slot": "fc.act1", "param": "lam", "mean": 0.1 * e} for e in (1, 2)]
    )
    (panel,) = figures.draw_param_trajectories(fig, trajectories)
    assert _visible_ticks(panel) == [1.0, 2.0]


def test_trajectories_legend_is_beside_the_panels_and_names_every_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AGLU (lam, kappa) in two slots, PReLU (a) in another: no panel has every slot, and the first has two.
    rows = [
        {"number": 3, "epoch": e, "slot": slot, "param": param, "mean": 0.1 * e * k}
        for e in range(1, 4)
        for k, (slot, param) in enumerate(
            [("stem.act", "lam"), ("stem.act", "kappa"), ("fc.act1", "a"), ("stage1.act", "lam")], start=1
        )
    ]
    saved: list[Figure] = []
    save = figures._save
    monkeypatch.setattr(figures, "_save", lambda fig, path, svg: saved.append(fig) or save(fig, path, svg))
    _assert_png(figures.param_trajectories(pd.DataFrame(rows), tmp_path / "trajectories.png"))
    (fig,) = saved
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["lam", "kappa", "a"]
    assert all(ax.get_legend() is None for ax in axes)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["stem.act", "stage1.act", "fc.act1"]
    box = legend.get_window_extent()
    assert not any(box.overlaps(ax.get_window_extent()) for ax in axes)  # it covers no panel's lines
    assert fig.bbox.contains(box.x1 - 1, box.y0 + 1)  # and it is on the figure, not cut off


def test_missing_columns_name_what_is_needed() -> None:
    with pytest.raises(ValueError, match="state"):
        figures.draw_learning_curves(_ax(), pd.DataFrame({"number": [0], "epoch": [1], "value": [0.5]}))


@pytest.mark.parametrize("family", activations.names())
def test_every_registered_family_has_a_shape_curve(family: str) -> None:
    # Every declared parameter learned as 0.5 (a mean, as the epoch reports store): builds, draws, is finite.
    x = torch.linspace(-4, 4, 33, dtype=torch.float64)
    learned = {name: 0.5 for name in activations.get(family).param_names}
    initial, after, _ = figures.shape_curves(ShapeRow("slot", family, None, learned), x)
    assert initial.shape == after.shape == (33,)
    assert np.isfinite(initial).all() and np.isfinite(after).all()
