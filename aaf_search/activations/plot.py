"""Curves of every registered activation at each of its presets (like the seed projects' plot scripts).

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so importing or calling this never
touches the process-wide backend; seaborn supplies the style and palette.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from aaf_search.activations.lslu import LSLU
from aaf_search.activations.registry import create, get, names
from aaf_search.atomic import write_atomically

X_RANGE = (-4.0, 4.0)
POINTS = 401
SEED = 0  # random presets (APA's U(0, 1), LEAF "random", ...) are drawn from this seed
DPI = 80
OVERVIEW_COLUMNS = 6

Curve = tuple[str, np.ndarray]


def curves(name: str, x: torch.Tensor) -> list[Curve]:
    """(label, y) for each preset of ``name`` (one unlabelled curve for a fixed activation)."""
    cls = get(name)
    presets: list[str | None] = [*cls.presets] or [None]
    result: list[Curve] = []
    for preset in presets:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            module = create(name, init=preset, channels=1) if cls.needs_channels else create(name, init=preset)
        label = name if preset is None else preset + (" (default)" if preset == cls.default_preset else "")
        result.append((label, activation_curve(module, x)))
    return result


def activation_curve(module: nn.Module, x: torch.Tensor) -> np.ndarray:
    """``module`` on ``x`` without gradients, as float64 NumPy (the report's and a run's figures draw the same).

    LSLU's full output mixes neighbouring pixels (depthwise conv + BatchNorm); its curve is the element-wise
    series.
    """
    with torch.no_grad():
        y = module.elementwise(x) if isinstance(module, LSLU) else module(x)
    return y.double().cpu().numpy()


def _draw(ax: Axes, x: np.ndarray, family_curves: list[Curve], title: str, *, legend: bool) -> None:
    palette = sns.color_palette("colorblind", max(len(family_curves), 1))
    for (label, y), color in zip(family_curves, palette, strict=True):
        ax.plot(x, y, label=label, color=color, linewidth=1.6)
    ax.axhline(0, color="0.6", linewidth=0.6, zorder=0)
    ax.axvline(0, color="0.6", linewidth=0.6, zorder=0)
    ax.set_xlim(*X_RANGE)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.set_title(title)
    if legend and len(family_curves) > 1:
        ax.legend(fontsize="small", frameon=False)


def _save(fig: Figure, path: Path) -> Path:
    # Light PNG compression: the files stay small and encoding is several times faster than the default.
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", pil_kwargs={"compress_level": 1}))
    return path


def plot_activations(out_dir: Path, families: Sequence[str] = ()) -> list[Path]:
    """Write ``<family>.png`` for each of ``families`` (default: every registered activation) and
    ``overview.png`` of them all; return their paths. An unknown name raises before anything is written."""
    chosen = list(dict.fromkeys(families)) or names()
    for name in chosen:
        get(name)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x = torch.linspace(*X_RANGE, POINTS)
    x_np = x.double().numpy()
    all_curves = {name: curves(name, x) for name in chosen}
    written: list[Path] = []
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.8):
        for name, family_curves in all_curves.items():
            # Fixed margins instead of a layout engine: constrained layout doubles the drawing time.
            fig = Figure(figsize=(5.0, 3.6), dpi=DPI)
            FigureCanvasAgg(fig)
            fig.subplots_adjust(left=0.12, right=0.97, bottom=0.13, top=0.9)
            ax = fig.add_subplot()
            _draw(ax, x_np, family_curves, f"{name}: {get(name).summary}", legend=True)
            ax.title.set_fontsize("x-small")
            ax.set_xlabel("x")
            written.append(_save(fig, out_dir / f"{name}.png"))
        rows = math.ceil(len(all_curves) / OVERVIEW_COLUMNS)
        fig = Figure(figsize=(2.6 * OVERVIEW_COLUMNS, 2.2 * rows), dpi=DPI)
        FigureCanvasAgg(fig)
        fig.subplots_adjust(left=0.04, right=0.99, bottom=0.04, top=0.96, wspace=0.3, hspace=0.45)
        axes = fig.subplots(rows, OVERVIEW_COLUMNS, squeeze=False).ravel()
        for ax, (name, family_curves) in zip(axes, all_curves.items(), strict=False):
            _draw(ax, x_np, family_curves, name, legend=False)
        for ax in axes[len(all_curves) :]:
            ax.set_visible(False)
        written.append(_save(fig, out_dir / "overview.png"))
    return written
