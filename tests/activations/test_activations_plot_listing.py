"""The registry listing and the activation plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aaf_search import activations
from aaf_search.activations import ActivationError
from aaf_search.activations.listing import format_registry, option_defaults
from aaf_search.activations.plot import curves, plot_activations


def test_format_registry_lists_every_family_with_its_declarations() -> None:
    text = format_registry()
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["name", "kind"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == set(activations.names())
    assert "trainable" in rows["leaf"] and "as_relu*" in rows["leaf"] and "p1, p2, p3, p4" in rows["leaf"]
    assert "fixed" in rows["relu"]
    assert "count=16, interval=[-4,4]" in rows["fneuron"]
    assert "channels (required), n=3" in rows["lslu"] and "(weight)" in rows["lslu"]
    assert "bases=[relu,sigmoid,tanh,softsign]" in rows["lincomb"]
    assert "seed 004" in rows["aglu"] and "network, layer, channel" in rows["aglu"]
    # A function without parameters is the same at any shape: every fixed one, HELU included, says "all".
    fixed = [row.split() for row in rows.values() if row.split()[1] == "fixed"]
    assert {name for name, *_ in fixed} >= {"relu", "silu", "helu"}
    assert all(columns[3] == "all" for columns in fixed), fixed


def test_option_defaults_come_from_the_constructor() -> None:
    assert option_defaults(activations.get("lslu")) == {"n": 3}
    assert option_defaults(activations.get("coslu")) == {}


def test_curves_are_deterministic_for_random_presets() -> None:
    x = torch.linspace(-4, 4, 9)
    first = dict(curves("apa", x))
    torch.manual_seed(123)  # the global seed must not matter
    second = dict(curves("apa", x))
    assert list(first) == ["default (default)", "readme", "as_sigmoid", "as_gumbel"]
    for label in first:
        np.testing.assert_array_equal(first[label], second[label])
    np.testing.assert_allclose(first["as_sigmoid"], torch.sigmoid(x).numpy(), atol=1e-6)
    np.testing.assert_allclose(dict(curves("lslu", x))["default (default)"], torch.relu(x).numpy())


@pytest.fixture(scope="module")
def plots(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return plot_activations(tmp_path_factory.mktemp("plots"))


def test_plot_activations_of_chosen_families(tmp_path: Path) -> None:
    written = plot_activations(tmp_path / "some", ["coslu", "apa", "coslu"])
    assert [p.name for p in written] == ["coslu.png", "apa.png", "overview.png"]
    with pytest.raises(ActivationError, match=r"unknown activation 'cosluu'; choose one of: .*coslu"):
        plot_activations(tmp_path / "none", ["coslu", "cosluu"])
    assert not (tmp_path / "none").exists()  # refused before anything was written


def test_plot_activations_writes_one_png_per_family_and_an_overview(plots: list[Path]) -> None:
    assert {p.stem for p in plots} == {*activations.names(), "overview"}
    for path in plots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5_000, path
    overview = next(p for p in plots if p.stem == "overview")
    assert overview.stat().st_size > 100_000
