"""Tie a run directory to one study, so that two studies never write their trials into one directory.

A run directory (``aaf-runs/<study>`` or ``--out``) holds ``trials/NNNN`` and ``best.yaml``; trial numbers
start at 0 in every study, so a study of the same name in another storage, or one made again after the
first was deleted, would overwrite the other's weights and metrics. ``study.json`` in the directory names
the storage and the study it belongs to; a search refuses a directory that names another study.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage

from aaf_search.atomic import write_text_atomically
from aaf_search.errors import UserError
from aaf_search.search import study_attrs
from aaf_search.search.storage import JOURNAL_PREFIX, SQLITE_PREFIX, redact, sqlite_database
from aaf_search.search.study import existing_attrs

RUNS_DIR = Path("aaf-runs")  # where a search, its report and its robustness runs write unless --out says
MARKER = "study.json"
OUTPUTS = ("trials", "best.yaml")  # what a search writes into its run directory
WEIGHTS = "model.pt"  # a trial directory's weights, as aaf_search.trials.runner saves them


UNSAFE_IN_DIRECTORY_NAMES = re.compile(r"[^\w.+=@-]")


def trial_dir(run_dir: Path, number: int) -> Path:
    """Where trial ``number`` of a search writes its weights, config and metrics CSV."""
    return run_dir / OUTPUTS[0] / f"{number:04d}"


def run_dir_of(study_name: str, attrs: Mapping[str, Any] | None) -> Path:
    """The run directory of study ``study_name`` (whose user attrs are ``attrs``): where its searches wrote.

    That is the directory its latest search recorded (``--out``, say) while it is there, and
    ``aaf-runs/<study>`` for a study without one (a new study, one made by an earlier version, one whose
    directory was moved away). A recorded directory under the current one is given relative to it.
    """
    recorded = (attrs or {}).get(study_attrs.RUN_DIR)
    if not isinstance(recorded, str) or not Path(recorded).is_dir():
        return study_run_dir(study_name)
    return _shortened(Path(recorded))


def run_dirs_of(study_name: str, attrs: Mapping[str, Any] | None) -> list[Path]:
    """Every run directory of the study that is there, latest first: :func:`run_dir_of` (there or not),
    then those its earlier searches wrote into (a search continued with another ``--out``)."""
    latest = run_dir_of(study_name, attrs)
    recorded = (attrs or {}).get(study_attrs.RUN_DIRS)
    earlier = [Path(path) for path in reversed(recorded) if isinstance(path, str)] if isinstance(recorded, list) else []
    dirs = [latest]
    for path in earlier:
        if path.is_dir() and path.resolve() not in {d.resolve() for d in dirs}:
            dirs.append(_shortened(path))
    return dirs


def saved_weights(run_dirs: Sequence[Path], number: int) -> Path | None:
    """Trial ``number``'s directory in the first of ``run_dirs`` where it saved its weights, if any."""
    for run_dir in run_dirs:
        path = trial_dir(run_dir, number)
        if (path / WEIGHTS).is_file():
            return path
    return None


def record_run_dir(storage: BaseStorage, name: str, run_dir: Path) -> Path | None:
    """Record ``run_dir`` as study ``name``'s run directory; the one recorded before when it was another."""
    study_id = storage.get_study_id_from_name(name)
    attrs = storage.get_study_user_attrs(study_id)
    before = attrs.get(study_attrs.RUN_DIR)
    path = str(run_dir.resolve())
    if before == path:
        return None
    # Studies recorded before RUN_DIRS have their latest directory only.
    earlier = attrs.get(study_attrs.RUN_DIRS, [before] if isinstance(before, str) else [])
    earlier = earlier if isinstance(earlier, list) else []
    storage.set_study_user_attr(study_id, study_attrs.RUN_DIRS, [*(d for d in earlier if d != path), path])
    storage.set_study_user_attr(study_id, study_attrs.RUN_DIR, path)
    return _shortened(Path(before)) if isinstance(before, str) else None


def _shortened(path: Path) -> Path:
    """An absolute ``path`` relative to the current directory when it lies under it, as the user would write it."""
    with contextlib.suppress(ValueError):
        return path.relative_to(Path.cwd())
    return path


def study_run_dir(study_name: str) -> Path:
    """``aaf-runs/<study>``, the name made one harmless path component.

    Optuna takes any string as a study name; as a path, ``../x`` or ``/x`` would write outside
    ``aaf-runs`` and ``a/b`` would nest. Characters other than letters, digits and ``_.+=@-``, and leading
    dots, become ``_``. Names that differ only there share a directory, which :func:`check_run_dir`
    refuses to the second study.
    """
    name = UNSAFE_IN_DIRECTORY_NAMES.sub("_", study_name)
    without_dots = name.lstrip(".")
    return RUNS_DIR / ("_" * (len(name) - len(without_dots)) + without_dots)


@dataclass(frozen=True)
class StudyIdentity:
    """Which study a run directory belongs to."""

    storage: str  # the storage URL, file paths made absolute, passwords redacted
    study: str
    study_id: int  # Optuna's id of the study in its storage
    uid: str | None  # the study's ``study_uid`` attr; None for studies made before it was recorded

    def same_study(self, other: StudyIdentity) -> bool:
        # Studies from before the uid fall back on where they are stored.
        by_uid = self.same_uid(other.uid)
        if by_uid is not None:
            return by_uid
        return (self.storage, self.study, self.study_id) == (other.storage, other.study, other.study_id)

    def same_uid(self, uid: str | None) -> bool | None:
        """Whether ``uid`` is this study's uid; ``None`` when either is unknown (a study of an earlier version).

        The uid tells a study from one made again under its name (Optuna may reuse a deleted study's id).
        """
        if self.uid is None or uid is None:
            return None
        return self.uid == uid

    def describe(self) -> str:
        return f"study '{self.study}' in {self.storage}"


def identify(storage: BaseStorage, label: str, name: str) -> StudyIdentity:
    """The identity of existing study ``name`` in ``storage`` (whose :func:`storage_label` is ``label``)."""
    uid = (existing_attrs(storage, name) or {}).get(study_attrs.UID)
    return StudyIdentity(label, name, storage.get_study_id_from_name(name), uid)


def storage_label(url: str) -> str:
    """``url`` as a marker records it: a journal or SQLite file by its absolute path, any password redacted."""
    if url.startswith(JOURNAL_PREFIX):
        return JOURNAL_PREFIX + str(Path(url[len(JOURNAL_PREFIX) :]).resolve())
    database = sqlite_database(url)
    if database is not None and "?" not in url:
        return SQLITE_PREFIX + str(database.path.resolve())
    return redact(url)


@dataclass(frozen=True)
class RunDirState:
    """What :func:`inspect_run_dir` found: the marker, and whether search outputs are there."""

    path: Path
    marker: StudyIdentity | None
    has_outputs: bool


def inspect_run_dir(path: Path) -> RunDirState:
    """Whether ``path`` holds search outputs, then its marker; call it before the study is looked up.

    The order makes the check safe against a search starting beside this one: that search creates the
    study, then writes the marker, then trial outputs, so outputs seen here imply that its marker is
    read here, and a marker read here implies that its study is there when this process looks.
    """
    has_outputs = any((path / name).exists() for name in OUTPUTS)
    return RunDirState(path, read_marker(path), has_outputs)


def read_marker(path: Path) -> StudyIdentity | None:
    marker = path / MARKER
    try:
        data: Any = json.loads(marker.read_text(encoding="utf-8"))
        return StudyIdentity(str(data["storage"]), str(data["study"]), int(data["study_id"]), data.get("uid"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"run directory '{path}': cannot read {MARKER} ({exc}); use --out DIR or remove it") from None


def check_run_dir(state: RunDirState, study: StudyIdentity | None, name: str, storage: str) -> None:
    """Refuse a run directory that belongs to another study than ``name`` in ``storage`` (a label).

    ``study`` is that study's identity, or ``None`` while it does not exist yet.

    A directory without a marker is taken (earlier versions wrote none), except by a new study when it
    already holds trial outputs: those belong to a study this storage no longer (or never) had.
    """
    way_out = "use --out DIR or --study NEW_NAME, or move that directory away"
    found = state.marker
    if found is None:
        if study is None and state.has_outputs:
            raise UserError(
                f"run directory '{state.path}' holds the trials of an earlier study, and study '{name}' is new; "
                f"{way_out}"
            )
        return
    if study is not None and found.same_study(study):
        return
    same_name = (found.study, found.storage) == (name, storage)
    was = " (an earlier study of that name)" if same_name else ""
    raise UserError(f"run directory '{state.path}' belongs to {found.describe()}{was}; {way_out}")


def belongs_to(path: Path, study: optuna.Study) -> bool:
    """Whether the run directory ``path`` holds the trials of ``study``, as its marker says.

    For reading a study's outputs (the report): a directory without a marker (earlier versions) is
    taken to be the study's; a marker that cannot be read is not.
    """
    try:
        marker = read_marker(path)
    except UserError:
        return False
    if marker is None:
        return True
    by_uid = marker.same_uid(study.user_attrs.get(study_attrs.UID))
    return by_uid if by_uid is not None else marker.study == study.study_name


def claim_run_dir(path: Path, study: StudyIdentity) -> None:
    """Check ``path`` again now that ``study`` exists, and write its marker if it has none (atomically)."""
    state = inspect_run_dir(path)
    if state.marker is None:
        path.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path / MARKER, json.dumps(asdict(study), indent=2) + "\n")
        return
    check_run_dir(state, study, study.study, study.storage)
