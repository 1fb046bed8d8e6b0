"""The catalog of named spaces: the single source of truth for ``--space NAME`` and ``aaf-search spaces``.

Adding a space is one define-by-run module with a ``SPACE`` and one line here.
"""

from __future__ import annotations

from aaf_search.spaces import (
    apa_init,
    leaf_init,
    lincomb_bases,
    lslu_depth,
    placement,
    pretrained_swap,
    trainable_zoo,
)
from aaf_search.spaces.space import SearchSpace

CATALOG: dict[str, SearchSpace] = {
    space.name: space
    for space in (
        lslu_depth.SPACE,
        lincomb_bases.SPACE,
        apa_init.SPACE,
        leaf_init.SPACE,
        trainable_zoo.SPACE,
        placement.SPACE,
        pretrained_swap.SPACE,
    )
}
