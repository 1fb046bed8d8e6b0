"""The report's figures, from tidy DataFrames, as PNG (and SVG on request).

Each figure has a ``draw_*`` function that draws on a given matplotlib Axes or Figure (so tests and
other layouts can inspect or compose it) and a function of the same name without the prefix that makes
the figure, saves it and returns the written paths, PNG first.

Figures are drawn on matplotlib's Agg canvas directly, never through pyplot, so nothing here selects a
backend or opens a window (the same choice as :mod:`aaf_search.activations.plot`); seaborn supplies the
style and draws on the Axes it is given.

Inputs (one row per observation, column names fixed so the report layer can build them from a study):

==========================  ============================================================================
figure                      frame
==========================  ============================================================================
optimisation_history        number, value, state (COMPLETE / PRUNED / FAIL / ...)
pareto_front                number, value (the first objective), one column per further objective, pareto
param_importances           a mapping param -> importance
accuracy_by_family          family, value, source ("search" or "seeds")
seed_robustness             the robustness table: label, family, robust_rank, mean, ci_low, ci_high,
                            mean_diff, diff_ci_low, diff_ci_high, and one seed_<seed> column per seed
learning_curves             number, epoch, value, state
activation_shapes           a sequence of :class:`ShapeRow`, one per slot
learned_activations         a sequence of :class:`LearnedCurves`, one per trained activation module
param_trajectories          number, epoch, slot, param, mean (optionally min, max)
==========================  ============================================================================
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib import MatplotlibDeprecationWarning
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from aaf_search.activations.plot import activation_curve
from aaf_search.activations.registry import (
    RANDOM_UNIFORM,
    Activation,
    InitSpec,
    InitValue,
    ParamShape,
    create,
    get,
    preset_values,
)
from aaf_search.analysis.robust import BASELINE_LABEL
from aaf_search.analysis.robust_table import SEED_PREFIX
from aaf_search.atomic import write_atomically

DPI = 100
X_RANGE = (-4.0, 4.0)  # where activation shapes are drawn, as in the activation plots
POINTS = 401
INIT_SEED = 0  # random init presets (APA's U(0, 1), ...) are drawn with this seed for the "initial" curve
MAX_COLUMNS = 4  # facets per row in the multi-panel figures
LEGEND_INCHES_PER_CHAR = 0.06  # about the width of an x-small legend character

COMPLETE, PRUNED, FAIL = "COMPLETE", "PRUNED", "FAIL"
COLORS = {"complete": "#0173b2", "best": "#de8f05", "pruned": "0.55", "fail": "#d55e00", "init": "0.45"}
DIRECTIONS = ("maximize", "minimize")
SEED_DOT_OFFSET = 0.18  # seeds' dots sit just above their row's interval line, which would hide them
SEED_ROBUSTNESS_COLUMNS = (
    "label",
    "family",
    "robust_rank",
    "mean",
    "ci_low",
    "ci_high",
    "mean_diff",
    "diff_ci_low",
    "diff_ci_high",
)


# ---------------------------------------------------------------------------------------------- helpers


def _new_figure(width: float, height: float, layout: Literal["constrained"] | None = None) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _draw_and_save(
    size: tuple[float, float],
    draw: Callable[[Figure], object],
    path: Path | str,
    svg: bool,
    *,
    layout: Literal["constrained"] | None = None,
) -> list[Path]:
    """A figure of ``size`` inches in the report's style, drawn by ``draw`` and saved to ``path`` (see
    :func:`_save`). Without a layout engine ``tight_layout`` fits the panels; a constrained one fits them
    as it draws (and makes room for a legend beside them)."""
    with _style(), _context():
        fig = _new_figure(*size, layout=layout)
        draw(fig)
        if layout is None:
            fig.tight_layout()
        return _save(fig, path, svg)


def _save(fig: Figure, path: Path | str, svg: bool) -> list[Path]:
    png = Path(path).with_suffix(".png")
    png.parent.mkdir(parents=True, exist_ok=True)
    # Light PNG compression: several times faster to encode than the default, files stay small.
    write_atomically(png, lambda tmp: fig.savefig(tmp, format="png", pil_kwargs={"compress_level": 1}))
    written = [png]
    if svg:
        write_atomically(png.with_suffix(".svg"), lambda tmp: fig.savefig(tmp, format="svg"))
        written.append(png.with_suffix(".svg"))
    return written


def _style() -> Any:
    return sns.axes_style("whitegrid")


def _context() -> Any:
    return sns.plotting_context("notebook", font_scale=0.8)


def _state(value: object) -> str:
    """``"COMPLETE"`` from ``"COMPLETE"``, ``"complete"`` or ``TrialState.COMPLETE``."""
    return str(getattr(value, "name", value)).upper()


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: the frame lacks column(s) {', '.join(missing)}; it needs {', '.join(columns)}")


def _check_direction(direction: str) -> bool:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got '{direction}'")
    return direction == "maximize"


def _grid(fig: Figure, count: int) -> list[Axes]:
    columns = min(MAX_COLUMNS, max(count, 1))
    rows = math.ceil(max(count, 1) / columns)
    axes = list(fig.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes[count:]:
        ax.set_visible(False)
    return axes[:count]


def _grid_size(count: int, width: float = 3.4, height: float = 2.8) -> tuple[float, float]:
    columns = min(MAX_COLUMNS, max(count, 1))
    return width * columns, height * math.ceil(max(count, 1) / columns) + 0.4


# ---------------------------------------------------------------------------------- optimisation history


def draw_optimisation_history(
    ax: Axes, trials: pd.DataFrame, *, direction: str = "maximize", metric: str = "objective value"
) -> None:
    """Complete trials as points, the best-so-far as a step line, pruned and failed trials set apart.

    best-so-far(k) = max (min when minimising) of the values of complete trials numbered <= k. A pruned
    trial's value, when the frame has one, is its last reported intermediate value and is drawn as a grey
    cross; it does not enter the best-so-far (it is not an objective value). Failed trials, and pruned
    ones without a value, are ticks along the bottom edge.
    """
    _require(trials, ("number", "value", "state"), "optimisation_history")
    maximize = _check_direction(direction)
    frame = trials.assign(state=trials["state"].map(_state)).sort_values("number")
    complete = frame[(frame["state"] == COMPLETE) & frame["value"].notna()]
    pruned = frame[frame["state"] == PRUNED]
    pruned_valued = pruned[pruned["value"].notna()]
    bottom = pd.concat([frame[frame["state"] == FAIL], pruned[pruned["value"].isna()]])
    ax.scatter(complete["number"], complete["value"], s=22, color=COLORS["complete"], label="complete", zorder=3)
    if not complete.empty:
        best = complete["value"].cummax() if maximize else complete["value"].cummin()
        # Extend the last step to the last trial so the line spans the whole study.
        xs = [*complete["number"], frame["number"].max()]
        ys = [*best, best.iloc[-1]]
        ax.step(xs, ys, where="post", color=COLORS["best"], linewidth=2, label="best so far", zorder=4)
    if not pruned_valued.empty:
        ax.scatter(
            pruned_valued["number"],
            pruned_valued["value"],
            marker="x",
            s=22,
            color=COLORS["pruned"],
            label="pruned (last reported)",
            zorder=2,
        )
    if not bottom.empty:
        # Blended transform: x in trial numbers, y in axes fraction, so the ticks sit on the bottom edge
        # whatever the value range.
        colors = [COLORS["fail"] if s == FAIL else COLORS["pruned"] for s in bottom["state"]]
        ax.scatter(
            bottom["number"], [0.02] * len(bottom), marker="|", s=120, c=colors, transform=ax.get_xaxis_transform()
        )
        if (bottom["state"] == FAIL).any():
            ax.scatter([], [], marker="|", s=120, color=COLORS["fail"], label="failed")
    counts = frame["state"].value_counts()
    ax.set_title(
        f"{len(frame)} trials: {counts.get(COMPLETE, 0)} complete, {counts.get(PRUNED, 0)} pruned, "
        f"{counts.get(FAIL, 0)} failed ({direction})"
    )
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.legend(fontsize="small", loc="best")


def optimisation_history(
    trials: pd.DataFrame,
    path: Path | str,
    *,
    direction: str = "maximize",
    metric: str = "objective value",
    svg: bool = False,
) -> list[Path]:
    """Save :func:`draw_optimisation_history` to ``path`` (``.png``); return the written paths."""
    return _draw_and_save(
        (6.4, 4.0),
        lambda fig: draw_optimisation_history(fig.add_subplot(), trials, direction=direction, metric=metric),
        path,
        svg,
    )


# ------------------------------------------------------------------------------------------ pareto front


def draw_pareto_front(fig: Figure, trials: pd.DataFrame, objectives: Sequence[tuple[str, str]]) -> list[Axes]:
    """The first objective against each further one, one panel each, the Pareto front set apart.

    ``objectives`` are (name, direction) pairs, the first for ``value``, each further one naming its column.
    Complete trials are points; those on the front (column ``pareto``, over all objectives) are drawn on
    top and labelled with their trial number. With two objectives the front is also a step line: the
    boundary of what the search attained.
    """
    if len(objectives) < 2:
        raise ValueError(f"pareto_front needs at least two objectives, got {len(objectives)}")
    (first, first_direction), others = objectives[0], objectives[1:]
    _require(trials, ("number", "value", "pareto", *(name for name, _ in others)), "pareto_front")
    for _, direction in objectives:
        _check_direction(direction)
    complete = trials[trials["value"].notna()]
    on_front = complete["pareto"].astype(bool)
    front, rest = complete[on_front], complete[~on_front]
    axes = _grid(fig, len(others))
    for ax, (name, direction) in zip(axes, others, strict=True):
        ax.scatter(rest[name], rest["value"], s=18, color=COLORS["complete"], alpha=0.6, label="complete", zorder=2)
        ax.scatter(front[name], front["value"], s=30, color=COLORS["best"], label="Pareto front", zorder=4)
        for _, row in front.iterrows():
            ax.annotate(
                f"#{int(row['number'])}",
                (row[name], row["value"]),
                xytext=(3, 3),
                textcoords="offset points",
                fontsize="x-small",
            )
        if len(others) == 1 and len(front) > 1:
            ordered = front.sort_values(name, ascending=direction == "minimize")
            ax.step(ordered[name], ordered["value"], where="post", color=COLORS["best"], linewidth=1.2, zorder=3)
        ax.ticklabel_format(axis="x", useOffset=False)  # parameter counts in full, not "+1.04e5"
        ax.margins(0.1)  # room for the labels of the outermost points
        ax.set_xlabel(f"{name} ({direction})")
        ax.set_ylabel(f"{first} ({first_direction})")
        ax.legend(fontsize="x-small", loc="best")
    fig.suptitle(f"Pareto front: {len(front)} of {len(complete)} complete trials", fontsize="medium")
    return axes


def pareto_front(
    trials: pd.DataFrame, path: Path | str, objectives: Sequence[tuple[str, str]], *, svg: bool = False
) -> list[Path]:
    """Save :func:`draw_pareto_front` to ``path``; return the written paths."""
    size = _grid_size(len(objectives) - 1, width=4.2, height=3.4)
    return _draw_and_save(size, lambda fig: draw_pareto_front(fig, trials, objectives), path, svg, layout="constrained")


# ------------------------------------------------------------------------------------ param importances


def draw_param_importances(ax: Axes, importances: Mapping[str, float], *, trials: int | None = None) -> None:
    """Horizontal bars, most important on top (e.g. from ``optuna.importance.get_param_importances``).

    ``trials``, the complete trials the importances come from, goes into the title: from a handful of
    trials the bars are mostly noise, and the reader should see how few there were.
    """
    if not importances:
        ax.text(0.5, 0.5, "no importances (needs 2+ complete trials)", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    items = sorted(importances.items(), key=lambda kv: kv[1])
    names = [k for k, _ in items]
    values = [float(v) for _, v in items]
    ax.barh(names, values, color=COLORS["complete"])
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize="small")
    ax.set_xlim(0, max(max(values) * 1.15, 1e-9))
    ax.set_xlabel("importance")
    title = "parameter importances"
    if trials is not None:
        title += f" ({trials} complete trial{'' if trials == 1 else 's'})"
    ax.set_title(title)


def param_importances(
    importances: Mapping[str, float], path: Path | str, *, trials: int | None = None, svg: bool = False
) -> list[Path]:
    """Save :func:`draw_param_importances` to ``path``; return the written paths."""
    size = (6.4, 0.8 + 0.35 * max(len(importances), 2))
    return _draw_and_save(
        size, lambda fig: draw_param_importances(fig.add_subplot(), importances, trials=trials), path, svg
    )


# ---------------------------------------------------------------------------------- accuracy by family


def draw_accuracy_by_family(
    ax: Axes, scores: pd.DataFrame, *, direction: str = "maximize", metric: str = "accuracy"
) -> None:
    """Box plot per family and source (search trials vs seed re-runs) with every score as a point.

    Families are ordered by their median, best first.
    """
    _require(scores, ("family", "value", "source"), "accuracy_by_family")
    maximize = _check_direction(direction)
    frame = scores.dropna(subset=["value"])
    medians = frame.groupby("family")["value"].median().sort_values(ascending=not maximize)
    order = list(medians.index)
    hue_order = [s for s in ("search", "seeds") if s in set(frame["source"])] or sorted(set(frame["source"]))
    common: dict[str, Any] = {"data": frame, "x": "value", "y": "family", "hue": "source", "order": order}
    with warnings.catch_warnings():
        # seaborn 0.13 passes matplotlib 3.11's deprecated ``vert`` to ``bxp``; nothing for us to change.
        warnings.simplefilter("ignore", MatplotlibDeprecationWarning)
        sns.boxplot(**common, hue_order=hue_order, ax=ax, fliersize=0, palette="pastel", linewidth=1)
    sns.stripplot(**common, hue_order=hue_order, ax=ax, dodge=True, size=3.5, palette="dark", legend=False)
    ax.set_xlabel(metric)
    ax.set_ylabel("")
    ax.set_title(f"{metric} by activation family")


def accuracy_by_family(
    scores: pd.DataFrame,
    path: Path | str,
    *,
    direction: str = "maximize",
    metric: str = "accuracy",
    svg: bool = False,
) -> list[Path]:
    """Save :func:`draw_accuracy_by_family` to ``path``; return the written paths."""
    families = scores["family"].nunique() if "family" in scores.columns else 1
    return _draw_and_save(
        (6.4, 1.2 + 0.5 * max(families, 2)),
        lambda fig: draw_accuracy_by_family(fig.add_subplot(), scores, direction=direction, metric=metric),
        path,
        svg,
    )


# ------------------------------------------------------------------------------------- seed robustness


def draw_seed_robustness(
    fig: Figure,
    table: pd.DataFrame,
    *,
    metric: str = "accuracy",
    percent: bool = True,
    best: str | None = None,
) -> list[Axes]:
    """The robustness table as two panels sharing one row per configuration (best mean on top, baseline last).

    Left, each seed's score (dots) and the mean (diamond) with its 95 % t interval; right, each seed's paired
    difference from the baseline's score at that seed, and the mean difference with its interval, beside
    a line at 0: a configuration is robustly better where its whole interval lies on the better side.
    ``best`` (a label) is the robust best, named in its row. ``percent`` shows scores in %.
    """
    _require(table, SEED_ROBUSTNESS_COLUMNS, "seed_robustness")
    seeds = [c for c in table.columns if c.startswith(SEED_PREFIX)]
    scale = 100.0 if percent else 1.0
    unit = " (%)" if percent else ""
    baseline_rows = table["label"] == BASELINE_LABEL
    baseline = table[baseline_rows]
    configs = table[~baseline_rows].sort_values("robust_rank", na_position="last", kind="stable")
    rows = pd.concat([configs, baseline])
    baseline_scores = baseline[seeds].iloc[0] if len(baseline) else pd.Series(np.nan, index=seeds)
    scores_ax, diff_ax = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(rows))[::-1]  # the first row on top
    for position, (_, row) in zip(y, rows.iterrows(), strict=True):
        is_baseline = row["label"] == BASELINE_LABEL
        color = COLORS["init"] if is_baseline else COLORS["best"] if row["label"] == best else COLORS["complete"]
        seed_row = np.full(len(seeds), position + SEED_DOT_OFFSET)
        scores_ax.plot(row[seeds].astype(float) * scale, seed_row, "o", color=color, alpha=0.6, markersize=4)
        _mean_and_interval(scores_ax, position, row["mean"], row["ci_low"], row["ci_high"], scale, color)
        if is_baseline:
            continue
        diffs = (row[seeds].astype(float) - baseline_scores.astype(float)) * scale
        diff_ax.plot(diffs, seed_row, "o", color=color, alpha=0.6, markersize=4)
        _mean_and_interval(diff_ax, position, row["mean_diff"], row["diff_ci_low"], row["diff_ci_high"], scale, color)
    diff_ax.axvline(0.0, color="0.3", linewidth=1, linestyle="--")
    labels = [
        f"{row['label']} {row['family']}" + (" (robust best)" if row["label"] == best else "")
        for _, row in rows.iterrows()
    ]
    scores_ax.set_yticks(y, labels)
    scores_ax.set_ylim(-0.6, len(rows) - 0.4)
    scores_ax.set_xlabel(f"{metric}{unit}")
    scores_ax.set_title(f"{metric} over {len(seeds)} seed{'' if len(seeds) == 1 else 's'}: mean and 95 % interval")
    diff_ax.set_xlabel(f"Δ {metric} vs baseline{unit}")
    diff_ax.set_title("paired difference from the baseline, same seeds")
    return [scores_ax, diff_ax]


def _mean_and_interval(
    ax: Axes, position: float, mean: float, low: float, high: float, scale: float, color: str
) -> None:
    if pd.isna(mean):
        return
    if not (pd.isna(low) or pd.isna(high)):
        ax.plot([low * scale, high * scale], [position, position], color=color, linewidth=2.2)
    ax.plot([mean * scale], [position], "D", color=color, markersize=6, markeredgecolor="white")


def seed_robustness(
    table: pd.DataFrame,
    path: Path | str,
    *,
    metric: str = "accuracy",
    percent: bool = True,
    best: str | None = None,
    svg: bool = False,
) -> list[Path]:
    """Save :func:`draw_seed_robustness` to ``path``; return the written paths."""
    return _draw_and_save(
        (10.0, 1.2 + 0.45 * max(len(table), 2)),
        lambda fig: draw_seed_robustness(fig, table, metric=metric, percent=percent, best=best),
        path,
        svg,
    )


# -------------------------------------------------------------------------------------- learning curves


def top_trials(curves: pd.DataFrame, top_k: int, *, direction: str = "maximize") -> list[int]:
    """Numbers of the ``top_k`` complete trials by their best value over epochs, best first."""
    maximize = _check_direction(direction)
    complete = curves[curves["state"].map(_state) == COMPLETE].dropna(subset=["value"])
    grouped = complete.groupby("number")["value"]
    best = grouped.max() if maximize else grouped.min()
    return [int(n) for n in best.sort_values(ascending=not maximize, kind="stable").index[:top_k]]


def draw_learning_curves(
    ax: Axes, curves: pd.DataFrame, *, top_k: int = 5, direction: str = "maximize", metric: str = "value"
) -> None:
    """Per-epoch value of the ``top_k`` complete trials (coloured) and of every pruned trial (grey, dashed).

    Pruned trials are drawn so that the reader sees where the pruner cut and whether a stopped trial was
    still climbing; other complete trials are left out to keep the top ones readable.
    """
    _require(curves, ("number", "epoch", "value", "state"), "learning_curves")
    frame = curves.assign(state=curves["state"].map(_state)).sort_values(["number", "epoch"])
    top = top_trials(frame, top_k, direction=direction)
    pruned = sorted(int(n) for n in frame.loc[frame["state"] == PRUNED, "number"].unique())
    for number in pruned:
        run = frame[frame["number"] == number]
        ax.plot(run["epoch"], run["value"], color=COLORS["pruned"], linestyle="--", linewidth=1, alpha=0.7)
    palette = sns.color_palette("colorblind", max(len(top), 1))
    for number, color in zip(top, palette, strict=False):
        run = frame[frame["number"] == number]
        ax.plot(run["epoch"], run["value"], color=color, marker="o", markersize=3, linewidth=1.8, label=f"#{number}")
    handles, labels = ax.get_legend_handles_labels()
    if pruned:
        handles.append(Line2D([], [], color=COLORS["pruned"], linestyle="--", linewidth=1))
        labels.append(f"pruned ({len(pruned)})")
    if handles:
        ax.legend(handles, labels, fontsize="small", loc="best")
    complete = frame.loc[frame["state"] == COMPLETE, "number"].nunique()
    ax.set_title(f"learning curves: top {len(top)} of {complete} complete trials, {len(pruned)} pruned")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at 1.5
    ax.set_ylabel(metric)


def learning_curves(
    curves: pd.DataFrame,
    path: Path | str,
    *,
    top_k: int = 5,
    direction: str = "maximize",
    metric: str = "value",
    svg: bool = False,
) -> list[Path]:
    """Save :func:`draw_learning_curves` to ``path``; return the written paths."""
    return _draw_and_save(
        (6.4, 4.0),
        lambda fig: draw_learning_curves(fig.add_subplot(), curves, top_k=top_k, direction=direction, metric=metric),
        path,
        svg,
    )


# ------------------------------------------------------------------------------------ activation shapes


@dataclass(frozen=True)
class ShapeRow:
    """One activation slot of a trial: its family, how it started and what it learned.

    ``init`` is what the trial config's ``ActivationSpec.init`` holds (a preset name, a dict of values,
    or ``None`` for the default). ``learned`` maps parameter names to a number or a list of numbers; the
    per-epoch reports store one mean per parameter (see :func:`aaf_search.analysis.shapes.learned_values`),
    so for ``channel`` and ``neuron`` shapes, and for vector parameters (LinComb's ``w``, LSLU's θ/ω,
    F-neuron's weights), the drawn curve uses that mean and its title says so.
    """

    slot: str
    family: str
    init: InitSpec = None
    learned: Mapping[str, float | Sequence[float]] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    shape: ParamShape = "layer"


def _build(row: ShapeRow, init: InitSpec) -> Activation:
    cls = get(row.family)
    # Drawn as one scalar set per parameter: "layer" where the family has it (all trainable ones do).
    shape: ParamShape = "layer" if "layer" in cls.shapes else cls.shapes[0]
    options = dict(row.options)
    if cls.needs_channels:
        options["channels"] = 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(INIT_SEED)
        return create(row.family, init=init, shape=shape, **options)


def shape_curves(row: ShapeRow, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(initial y, learned y, caveats) of one slot on ``x``; caveats name what was drawn from means.

    The learned module starts from the same init as the initial one and then takes every learned value, so
    a parameter missing from ``learned`` (frozen, or not reported) keeps its initial value.
    """
    initial = _build(row, row.init)
    cls = get(row.family)
    values: dict[str, InitValue] = dict(preset_values(cls, row.init))
    caveats: list[str] = []
    if any(isinstance(v, tuple) and v and v[0] == RANDOM_UNIFORM for v in values.values()):
        # The trial drew its random init from its own seed, which the stored summary does not keep.
        caveats.append("random init redrawn")
    collapsed = []
    for name, value in row.learned.items():
        param = getattr(initial, cls.init_aliases.get(name, name), None)
        array = np.asarray(value, dtype=float)
        if array.ndim == 0 and isinstance(param, torch.Tensor) and param.numel() > 1:
            collapsed.append(name)
        values[name] = float(array) if array.ndim == 0 else [float(v) for v in array.ravel()]
    # Re-resolve through create so that aliases and family-specific value shapes are handled as usual.
    learned = _build(row, values)
    if row.shape in ("channel", "neuron"):
        caveats.append(f"{row.shape} means")
    if collapsed:
        caveats.append(f"{', '.join(collapsed)} as mean")
    return activation_curve(initial, x), activation_curve(learned, x), caveats


def draw_activation_shapes(fig: Figure, rows: Sequence[ShapeRow]) -> list[Axes]:
    """One panel per slot: the initial function (grey, dashed) and the learned one, on x ∈ [-4, 4]."""
    x = torch.linspace(*X_RANGE, POINTS, dtype=torch.float64)
    axes = _grid(fig, len(rows))
    x_np = x.numpy()
    for ax, row in zip(axes, rows, strict=True):
        y_init, y_learned, caveats = shape_curves(row, x)
        ax.plot(x_np, y_init, color=COLORS["init"], linestyle="--", linewidth=1.4, label="initial")
        ax.plot(x_np, y_learned, color=COLORS["complete"], linewidth=2, label="learned")
        ax.axhline(0, color="0.7", linewidth=0.6, zorder=0)
        ax.axvline(0, color="0.7", linewidth=0.6, zorder=0)
        ax.set_xlim(*X_RANGE)
        title = f"{row.slot}: {row.family}"
        if caveats:
            title += f"\n({'; '.join(caveats)})"
        ax.set_title(title, fontsize="small")
    if axes:
        axes[0].legend(fontsize="small", loc="best")
    return axes


def activation_shapes(rows: Sequence[ShapeRow], path: Path | str, *, svg: bool = False) -> list[Path]:
    """Save :func:`draw_activation_shapes` to ``path``; return the written paths."""
    if not rows:
        raise ValueError("activation_shapes: no slots to draw (the trial has no trainable activation)")
    return _draw_and_save(_grid_size(len(rows)), lambda fig: draw_activation_shapes(fig, rows), path, svg)


@dataclass(frozen=True)
class LearnedCurves:
    """One trained activation module: the slots it fills, its family, and its curves before and after.

    Each curve array is (points, K), one column per distinct channel curve (K = 1 when every channel
    computes the same function); :func:`aaf_search.analysis.learned.learned_curves` computes them.
    """

    slots: tuple[str, ...]  # several when the plan shares one module across slots (shape "network")
    family: str
    x: np.ndarray
    initial: np.ndarray
    learned: np.ndarray


CHANNEL_CURVES_DRAWN = 64  # per panel; a wider layer's curves beyond these add ink, not information


def draw_learned_activations(fig: Figure, modules: Sequence[LearnedCurves]) -> list[Axes]:
    """One panel per module: the function before training (grey, dashed) and after it; with per-channel
    parameters, one thin line per channel and their mean in bold."""
    axes = _grid(fig, len(modules))
    for ax, module in zip(axes, modules, strict=True):
        for column in module.initial.T[:CHANNEL_CURVES_DRAWN]:
            ax.plot(module.x, column, color=COLORS["init"], linestyle="--", linewidth=1.2)
        channels = module.learned.shape[1]
        if channels > 1:
            for column in module.learned.T[:CHANNEL_CURVES_DRAWN]:
                ax.plot(module.x, column, color=COLORS["complete"], linewidth=0.6, alpha=0.35)
        ax.plot(module.x, module.learned.mean(axis=1), color=COLORS["complete"], linewidth=2)
        ax.axhline(0, color="0.7", linewidth=0.6, zorder=0)
        ax.axvline(0, color="0.7", linewidth=0.6, zorder=0)
        ax.set_xlim(module.x[0], module.x[-1])
        where = module.slots[0] + (f" (+{len(module.slots) - 1} slots)" if len(module.slots) > 1 else "")
        title = f"{where}: {module.family}"
        if channels > 1:
            drawn = "" if channels <= CHANNEL_CURVES_DRAWN else f", the first {CHANNEL_CURVES_DRAWN} drawn"
            title += f"\n({channels} curves, one per channel or neuron{drawn}; mean bold)"
        ax.set_title(title, fontsize="small")
    if axes:
        handles = [
            Line2D([], [], color=COLORS["init"], linestyle="--", label="before training"),
            Line2D([], [], color=COLORS["complete"], linewidth=2, label="learned"),
        ]
        axes[0].legend(handles=handles, fontsize="small", loc="best")
    return axes


def learned_activations(modules: Sequence[LearnedCurves], path: Path | str, *, svg: bool = False) -> list[Path]:
    """Save :func:`draw_learned_activations` to ``path``; return the written paths."""
    if not modules:
        raise ValueError("learned_activations: no trained activation to draw")
    return _draw_and_save(_grid_size(len(modules)), lambda fig: draw_learned_activations(fig, modules), path, svg)


# ---------------------------------------------------------------------------------- param trajectories


def draw_param_trajectories(fig: Figure, trajectories: pd.DataFrame) -> list[Axes]:
    """One panel per parameter: its per-epoch mean, one line per slot (a band from min to max if given).

    Several trial numbers in the frame are told apart by line style. The legend, every slot of every panel,
    is the figure's, right of the panels in a constrained layout (as :func:`param_trajectories` draws it):
    inside a panel it would hide that panel's lines.
    """
    _require(trajectories, ("number", "epoch", "slot", "param", "mean"), "param_trajectories")
    params = list(dict.fromkeys(trajectories["param"]))
    axes = _grid(fig, len(params))
    slots = list(dict.fromkeys(trajectories["slot"]))
    palette = dict(zip(slots, sns.color_palette("colorblind", len(slots)), strict=True))
    numbers = sorted(trajectories["number"].unique())
    styles = dict(zip(numbers, ["-", "--", ":", "-."] * (len(numbers) // 4 + 1), strict=False))
    band = "min" in trajectories.columns and "max" in trajectories.columns
    for ax, param in zip(axes, params, strict=True):
        panel = trajectories[trajectories["param"] == param]
        for (number, slot), run in panel.groupby(["number", "slot"], sort=False):
            run = run.sort_values("epoch")
            label = str(slot) if len(numbers) == 1 else f"{slot} #{number}"
            color = palette[slot]
            ax.plot(
                run["epoch"],
                run["mean"],
                color=color,
                linestyle=styles[number],
                marker="o",
                markersize=2.5,
                label=label,
            )
            if band and (run["max"] > run["min"]).any():
                ax.fill_between(run["epoch"], run["min"], run["max"], color=color, alpha=0.15, linewidth=0)
        ax.set_title(param)
        ax.set_xlabel("epoch")
        ax.set_ylabel("value")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    entries = _legend_entries(axes)
    if entries:
        fig.legend(list(entries.values()), list(entries), loc="outside right upper", fontsize="x-small")
    return axes


def _legend_entries(axes: Sequence[Axes]) -> dict[str, Any]:
    """Label -> handle of every labelled line in ``axes``, each label once, in drawing order."""
    entries: dict[str, Any] = {}
    for ax in axes:
        handles, labels = ax.get_legend_handles_labels()
        for handle, label in zip(handles, labels, strict=True):
            entries.setdefault(label, handle)
    return entries


def param_trajectories(trajectories: pd.DataFrame, path: Path | str, *, svg: bool = False) -> list[Path]:
    """Save :func:`draw_param_trajectories` to ``path``; return the written paths."""
    count = trajectories["param"].nunique() if "param" in trajectories.columns else 1
    width, height = _grid_size(count)
    longest = max((len(str(s)) for s in trajectories.get("slot", pd.Series(dtype=str)).unique()), default=0)
    # Constrained: it makes room right of the panels for the legend (widened by about its width).
    size = (width + 0.6 + LEGEND_INCHES_PER_CHAR * longest, height)
    return _draw_and_save(size, lambda fig: draw_param_trajectories(fig, trajectories), path, svg, layout="constrained")
