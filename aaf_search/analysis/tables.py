"""Tables as CSV, Markdown and LaTeX, and the ``mean ± std`` cells of the seed papers' tables.

Markdown and LaTeX are written here rather than by pandas: ``DataFrame.to_markdown`` needs ``tabulate``,
which is not a dependency, and ``to_latex`` goes through the Styler (Jinja2) and would leave ``±``, ``_`` and
``%`` unescaped. Both formatters are a few lines and give byte-stable output for the tests.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from aaf_search.atomic import write_atomically, write_text_atomically

FORMATS = ("csv", "md", "tex")
FLOAT_FORMAT = "{:.4g}"  # 4 significant digits: accuracies read 0.9123, p-values 1.2e-05
NA = ""  # how a missing value is written in Markdown and LaTeX

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "τ": r"$\tau$",
    "θ": r"$\theta$",
    "ω": r"$\omega$",
    "λ": r"$\lambda$",
    "κ": r"$\kappa$",
}


def format_mean_std(mean: float, std: float, *, digits: int = 2, scale: float = 1.0) -> str:
    """``"91.20 ± 0.35"``: mean and std times ``scale`` (100 for percent), ``digits`` after the point.

    A NaN std (a single seed) gives the mean alone; a NaN mean gives ``""``.
    """
    if mean is None or math.isnan(mean):
        return NA
    text = f"{mean * scale:.{digits}f}"
    if std is None or math.isnan(std):
        return text
    return f"{text} ± {std * scale:.{digits}f}"


def _cell(value: object, float_format: str) -> str:
    if value is None:
        return NA
    if isinstance(value, bool):  # before the number check: bool is an int
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return NA
        # Whole numbers in a float column (a count next to NaNs): 12345, not 1.234e+04.
        if number.is_integer() and abs(number) >= 1e4 and abs(number) < 1e15:
            return str(int(number))
        return float_format.format(number)
    if value is pd.NA or value is pd.NaT:
        return NA
    return str(value)


def _rows(table: pd.DataFrame, float_format: str) -> list[list[str]]:
    return [[_cell(v, float_format) for v in row] for row in table.itertuples(index=False, name=None)]


def _numeric(table: pd.DataFrame) -> list[bool]:
    return [pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype) for dtype in table.dtypes]


def to_markdown(table: pd.DataFrame, *, float_format: str = FLOAT_FORMAT) -> str:
    """A GitHub pipe table; numeric columns right-aligned, ``|`` in cells escaped."""
    header = [str(c) for c in table.columns]
    body = _rows(table, float_format)

    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    rule = ["---:" if numeric else "---" for numeric in _numeric(table)]
    return "\n".join([line(header), "|" + "|".join(rule) + "|", *(line(r) for r in body)]) + "\n"


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters (and ±, τ, θ, ω, λ, κ) escaped for a tabular cell."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(table: pd.DataFrame, *, float_format: str = FLOAT_FORMAT, caption: str | None = None) -> str:
    """A booktabs ``tabular``, in a ``table`` float when ``caption`` is given (needs ``\\usepackage{booktabs}``)."""
    spec = "".join("r" if numeric else "l" for numeric in _numeric(table))
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(latex_escape(str(c)) for c in table.columns) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in _rows(table, float_format)]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption is not None:
        lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(caption)}}}", *lines, r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(
    table: pd.DataFrame,
    stem: Path | str,
    *,
    formats: Sequence[str] = FORMATS,
    float_format: str = FLOAT_FORMAT,
    caption: str | None = None,
) -> list[Path]:
    """Write ``table`` as ``stem.csv`` / ``stem.md`` / ``stem.tex`` (those in ``formats``); return the paths.

    The CSV keeps full precision (it is data); Markdown and LaTeX use ``float_format`` (they are for reading).
    The index is not written: put anything that matters into a column first.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown table format(s) {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        if fmt == "csv":
            write_atomically(path, lambda tmp: table.to_csv(tmp, index=False))
        elif fmt == "md":
            write_text_atomically(path, to_markdown(table, float_format=float_format))
        else:
            write_text_atomically(path, to_latex(table, float_format=float_format, caption=caption))
        written.append(path)
    return written
