"""The learned activations of a saved run: exact curves per channel, the figure, and ``activations plot --run``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from matplotlib import image as mpimg
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from aaf_search.analysis import figures
from aaf_search.analysis.learned import learned_curves
from aaf_search.cli import main
from aaf_search.config import ActivationSpec, PlanEntry, TrialConfig
from aaf_search.trials.runner import TrainedRun, initial_model, load_run, run_trial

PLAN = (
    PlanEntry("tag:stem", ActivationSpec("coslu", shape="channel")),
    PlanEntry("tag:stage_end", ActivationSpec("lincomb", shape="network")),  # one module in three slots
    PlanEntry("stage1.block1.act1", ActivationSpec("lslu", options={"n": 2})),
    PlanEntry("stage2.block1.act1", ActivationSpec("apa", trainable=False)),  # frozen: not drawn
)
CONFIG = TrialConfig(model="resnet8", epochs=2, seed=11, device="cpu", plan=PLAN)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    run_trial(CONFIG, out_dir=out)
    return out


@pytest.fixture(scope="module")
def run(run_dir: Path) -> TrainedRun:
    return load_run(run_dir)


def test_each_trained_module_is_drawn_once_with_its_exact_channel_curves(run: TrainedRun) -> None:
    modules = learned_curves(run.model, initial_model(run.config, run.data, torch.device("cpu")), run.data.train_x[:2])
    assert [(m.slots, m.family) for m in modules] == [
        (("stem.act",), "coslu"),
        (("stage1.block1.act1",), "lslu"),
        (("stage1.block1.act2", "stage2.block1.act2", "stage3.block1.act2"), "lincomb"),
    ]
    coslu, lslu, lincomb = modules
    # Every channel starts as CosLU with a = b = 1 (one curve) and has learned its own (16 curves),
    # each σ(x)(x + a_c cos(b_c x)) with that channel's trained a_c, b_c.
    assert coslu.initial.shape == (201, 1) and coslu.learned.shape == (201, 16)
    stem = run.model.get_submodule("stem.act.act")
    x = torch.as_tensor(coslu.x)
    for channel in range(16):
        a, b = (float(p.detach().flatten()[channel]) for p in (stem.a, stem.b))
        expected = torch.sigmoid(x) * (x + a * torch.cos(b * x))
        assert torch.allclose(torch.as_tensor(coslu.learned[:, channel]), expected.double(), atol=1e-6)
    torch.testing.assert_close(torch.as_tensor(coslu.initial[:, 0]), (torch.sigmoid(x) * (x + torch.cos(x))).double())
    # LSLU is drawn as its element-wise series; the shared LinComb as one curve.
    series = run.model.get_submodule("stage1.block1.act1.act").elementwise(x.view(-1, 1)).flatten()
    torch.testing.assert_close(torch.as_tensor(lslu.learned[:, 0]), series.double(), rtol=1e-6, atol=1e-6)
    assert lslu.learned.shape[1] == 1 and lincomb.learned.shape[1] == 1


def test_the_figure_draws_a_panel_per_module_and_a_line_per_curve(run: TrainedRun) -> None:
    modules = learned_curves(run.model, initial_model(run.config, run.data, torch.device("cpu")), run.data.train_x[:2])
    fig = Figure()
    FigureCanvasAgg(fig)
    axes = figures.draw_learned_activations(fig, modules)
    assert [ax.get_title() for ax in axes] == [
        "stem.act: coslu\n(16 curves, one per channel or neuron; mean bold)",
        "stage1.block1.act1: lslu",
        "stage1.block1.act2 (+2 slots): lincomb",
    ]
    # CosLU: the initial curve, 16 channel curves and their mean; the others: initial and learned.
    curves = [[line for line in ax.get_lines() if len(line.get_xdata()) == 201] for ax in axes]  # not the axes lines
    assert [len(lines) for lines in curves] == [1 + 16 + 1, 2, 2]
    with pytest.raises(ValueError, match="no trained activation to draw"):
        figures.learned_activations([], "nothing.png")


def test_activations_plot_run_writes_the_figure_into_the_run(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["activations", "plot", "--run", str(run_dir), "--out", str(tmp_path)]) == 0
    assert (
        capsys.readouterr().out == f"3 trained activation module(s) of resnet8 -> {tmp_path}/learned_activations.png\n"
    )
    image = mpimg.imread(tmp_path / "learned_activations.png")
    assert image.shape[1] > 600 and (image[..., :3].max(axis=-1) - image[..., :3].min(axis=-1) > 0.2).sum() > 2000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["coslu"], "--run draws the activations a run learned; name no families with it"),
        ([], "has no trained activation to draw: its plan (coslu at all) puts in none with parameters, or freezes"),
    ],
)
def test_activations_plot_run_refusals(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frozen = CONFIG.replace(epochs=1, plan=(PlanEntry("all", ActivationSpec("coslu", trainable=False)),))
    run_trial(frozen, out_dir=tmp_path / "run")
    assert main(["activations", "plot", *args, "--run", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "run" / "learned_activations.png").exists()
