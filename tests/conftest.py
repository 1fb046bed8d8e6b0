"""Suite-wide defaults.

The activations run the eager reference implementation unless a test selects another, so that no test
pays for ``torch.compile`` by accident (the default "auto" compiles fused kernels). ``setdefault``: running
``AAF_ACTIVATION_IMPL=fused AAF_ACTIVATION_COMPILE=0 pytest`` puts the whole suite through the fused path.

Kernels the suite compiles are stored in a directory of its own, so that no test loads what an earlier
run (or the user's searches) compiled, and the suite leaves nothing in the user's store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from aaf_search.activations import kernel_store

os.environ.setdefault("AAF_ACTIVATION_IMPL", "eager")


@pytest.fixture(autouse=True, scope="session")
def _kernel_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(kernel_store.ENV_DIRECTORY, str(tmp_path_factory.mktemp("kernels")))
        yield
