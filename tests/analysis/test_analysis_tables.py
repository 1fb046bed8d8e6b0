"""Tables: mean ± std cells, Markdown and LaTeX text, and the files write_table produces."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aaf_search.analysis.tables import format_mean_std, to_latex, to_markdown, write_table


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "config": ["lslu_n3", "co|slu"],
            "n": [5, 5],
            "mean": [0.91234, float("nan")],
            "p": [1.234e-5, 0.5],
            "pruned": [True, False],
        }
    )


def test_format_mean_std_like_the_seed_papers() -> None:
    assert format_mean_std(0.912, 0.0035, scale=100) == "91.20 ± 0.35"
    assert format_mean_std(0.912, 0.0035, digits=3) == "0.912 ± 0.004"
    assert format_mean_std(0.912, float("nan"), scale=100) == "91.20"  # one seed: no spread to show
    assert format_mean_std(float("nan"), 0.1) == ""


def test_markdown_exact() -> None:
    assert to_markdown(_frame()) == (
        "| config | n | mean | p | pruned |\n"
        "|---|---:|---:|---:|---|\n"
        "| lslu_n3 | 5 | 0.9123 | 1.234e-05 | True |\n"
        "| co\\|slu | 5 |  | 0.5 | False |\n"
    )


def test_latex_exact_with_escapes() -> None:
    table = pd.DataFrame({"config": ["lslu_n3", "50% & up"], "acc": ["91.20 ± 0.35", "τ"], "count": [12345.0, 2.5]})
    assert to_latex(table) == (
        "\\begin{tabular}{llr}\n"
        "\\toprule\n"
        "config & acc & count \\\\\n"
        "\\midrule\n"
        "lslu\\_n3 & 91.20 $\\pm$ 0.35 & 12345 \\\\\n"
        "50\\% \\& up & $\\tau$ & 2.5 \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n"
    )
    wrapped = to_latex(table, caption="Seed robustness (5 seeds)")
    assert wrapped.startswith("\\begin{table}[t]\n\\centering\n\\caption{Seed robustness (5 seeds)}\n")
    assert wrapped.endswith("\\end{tabular}\n\\end{table}\n")


def test_write_table_writes_all_formats(tmp_path: Path) -> None:
    paths = write_table(_frame(), tmp_path / "sub" / "robust")
    assert [p.name for p in paths] == ["robust.csv", "robust.md", "robust.tex"]
    back = pd.read_csv(paths[0])
    assert list(back.columns) == ["config", "n", "mean", "p", "pruned"]
    assert back.loc[0, "mean"] == 0.91234  # the CSV keeps full precision
    assert paths[1].read_text(encoding="utf-8") == to_markdown(_frame())
    assert "\\toprule" in paths[2].read_text(encoding="utf-8")
    only = write_table(_frame(), tmp_path / "t", formats=("md",))
    assert [p.name for p in only] == ["t.md"]
    with pytest.raises(ValueError, match="html"):
        write_table(_frame(), tmp_path / "t", formats=("html",))
