"""Seeds derived from the study seed, so that every trial and every sampler session can be replayed.

The derivation is a hash, not ``seed + number``: neighbouring study seeds must not share trial seeds
(study 0's trial 1 would otherwise be study 1's trial 0).
"""

from __future__ import annotations

import hashlib

SEED_BITS = 31  # torch, numpy and Optuna all accept seeds below 2**31


def derive_seed(study_seed: int, *labels: object) -> int:
    """A stable seed in [0, 2**31) from the study seed and any labels (``"trial", 7``)."""
    text = ":".join(str(part) for part in (study_seed, *labels))
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") % (1 << SEED_BITS)


def trial_seed(study_seed: int, trial_number: int) -> int:
    """The training seed of trial ``trial_number``; stored in the trial's user attrs as ``seed``."""
    return derive_seed(study_seed, "trial", trial_number)


def sampler_seed(study_seed: int, trials_before: int, process: str | None = None) -> int:
    """The sampler's seed for a session that starts with ``trials_before`` trials in the study.

    A resumed search must not replay the random draws of the first session (its first proposals
    would repeat the first session's), so the seed also depends on how far the study got. Processes
    that share a study (``process``: which one this is) must not draw the same proposals either.
    """
    return derive_seed(study_seed, "sampler", trials_before, *([process] if process else []))
