"""A study on a PostgreSQL server: search, resume, export, and two searches side by side.

The server is the session's throw-away one (see ``conftest.py``); without Debian's ``postgresql``
package or the ``psycopg`` driver these tests are skipped, with the reason, not failed.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from faults import SPACE, finished, trials
from side_by_side import search_side_by_side

from aaf_search.cli import main
from aaf_search.config import load_yaml

pytestmark = pytest.mark.slow


def test_search_resume_and_export_on_postgresql(postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    Path("space.yaml").write_text(SPACE)
    study = f"pg_{uuid.uuid4().hex[:8]}"  # the server outlives a test: each test takes a study of its own
    args = ["--space", "space.yaml", "--study", study, "--storage", postgres_url, "--backend", "local"]
    args += ["--sampler", "random", "--pruner", "none", "--epochs", "2", "--seed", "4"]

    assert main([*args, "--trials", "2"]) == 0
    assert main([*args, "--trials", "3"]) == 0  # resumes: one more trial
    found = trials(postgres_url, study)
    assert [t.number for t in finished(found)] == [0, 1, 2] and len(found) == 3
    assert found[0].user_attrs["config"]["model"] == "dnn2"

    assert main(["export", "--storage", postgres_url, "--study", study, "--out", "best.yaml"]) == 0
    config, meta = load_yaml("best.yaml")
    best = max(found, key=lambda t: t.value or 0.0)
    assert (meta["trial_number"], meta["score"]) == (best.number, best.value)
    assert config.to_dict() == best.user_attrs["config"]
    assert f"{study} trial {best.number} (rank 1" in capsys.readouterr().out


def test_two_processes_share_a_postgresql_study(postgres_url: str, tmp_path: Path) -> None:
    search_side_by_side(postgres_url, processes=2, target=4, tmp_path=tmp_path, study=f"pg_{uuid.uuid4().hex[:8]}")
