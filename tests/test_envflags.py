"""On/off switches from the environment: on unless set to one of the off words."""

from __future__ import annotations

import pytest

from aaf_search.envflags import switched_on

SWITCH = "AAF_TEST_SWITCH"


@pytest.mark.parametrize("value", ["0", "false", "No", " OFF "])
def test_off_words_switch_it_off(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH, value)
    assert not switched_on(SWITCH)


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", ""])
def test_anything_else_leaves_it_on(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH, value)
    assert switched_on(SWITCH)


def test_unset_is_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SWITCH, raising=False)
    assert switched_on(SWITCH)
