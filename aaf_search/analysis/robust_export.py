"""``aaf-search export --robust``: the robust best of a study as a config YAML, with its per-seed scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from aaf_search.analysis.robust import completed_runs
from aaf_search.analysis.robust_table import ATTR_BEST, ATTR_SUMMARY, SEED_PREFIX
from aaf_search.config import META_CPU_THREADS, TrialConfig, save_yaml
from aaf_search.errors import UserError
from aaf_search.search import study_attrs
from aaf_search.search.export import provenance
from aaf_search.search.recording import ATTR_CPU_THREADS


def robust_export(study: optuna.Study, companion: optuna.Study | None) -> tuple[TrialConfig, dict[str, Any]]:
    """(config, metadata) of the robust best stored by the last ``aaf-search robust`` of ``study``.

    The config is the one trained under the first robustness seed, so ``aaf-search train --config``
    reproduces that run (with that run's CPU thread count, when it recorded one); ``scores`` lists every
    seed's ``{seed, score}`` and ``score`` is their mean.
    """
    if companion is None or ATTR_BEST not in companion.user_attrs:
        raise UserError(f"study '{study.study_name}' has no robustness results; run aaf-search robust first")
    best = companion.user_attrs[ATTR_BEST]
    if best.get("config") is None or best.get("trial") is None:
        raise UserError(f"study '{study.study_name}' has no robust best: {best.get('reason', 'unknown reason')}")
    rows = {row["label"]: row for row in companion.user_attrs.get(ATTR_SUMMARY, [])}
    row = rows[best["config"]]
    # A list, not a mapping: YAML mapping keys are written as strings, and the seed is a number.
    scores = [
        {"seed": int(key[len(SEED_PREFIX) :]), "score": value}
        for key, value in row.items()
        if key.startswith(SEED_PREFIX) and value is not None
    ]
    config = TrialConfig.from_dict(best["trial"])
    trained = completed_runs(companion).get(config.digest())
    threads = trained.user_attrs.get(ATTR_CPU_THREADS) if trained is not None else None
    metadata = {
        "score": row["mean"],
        "scores": scores,
        "std": row["std"],
        "ci": [row["ci_low"], row["ci_high"]],
        "worst": row["worst"],
        "baseline_mean": best["baseline_mean"],
        "baseline_diff": row["mean_diff"],
        # a summary stored by a version before the paired interval has no such columns
        "baseline_diff_ci": [row.get("diff_ci_low"), row.get("diff_ci_high")],
        "metric": companion.user_attrs.get(study_attrs.METRIC, "val_accuracy"),
        "study": study.study_name,
        "trial_number": row["source_trial"],
        "robust": best["reason"],
        **({META_CPU_THREADS: threads} if threads is not None else {}),
        **provenance(),
    }
    return config, metadata


def write_robust_export(path: Path, study: optuna.Study, companion: optuna.Study | None) -> Path:
    """Write :func:`robust_export` to ``path`` (atomically, via ``save_yaml``)."""
    config, metadata = robust_export(study, companion)
    return save_yaml(path, config, **metadata)
