"""``--sampler grid`` with the Ray backend's searcher, called as Ray calls it (on the driver, no Ray started)."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import optuna
from conftest import FakeRunner
from optuna.trial import TrialState
from ray.tune.search import Searcher

from aaf_search.config import TrialConfig
from aaf_search.search import ray_trainable as wire
from aaf_search.search.objectives import resolve_objectives
from aaf_search.search.progress import ProgressLine
from aaf_search.search.ray_searcher import StudySearcher
from aaf_search.search.recording import TrialRecorder
from aaf_search.search.samplers import SamplerContext, make_sampler
from aaf_search.search.session import SearchSession
from aaf_search.search.settings import Resources
from aaf_search.search.storage import open_storage
from aaf_search.spaces import CATALOG


def test_ray_searcher_runs_the_whole_grid_two_at_a_time(tmp_path: Path) -> None:
    # The searcher tells each trial outside study.optimize: with Optuna's BruteForceSampler the last
    # tell raised "Study.stop is supposed to be invoked inside an objective function".
    space = CATALOG["pretrained_swap"]
    sampling = make_sampler("grid", 0, SamplerContext(space, space.defaults))
    assert sampling.capacity == 32
    storage = open_storage(f"journal:{tmp_path / 'study.log'}")
    study = optuna.create_study(storage=storage, direction="maximize", sampler=sampling.sampler)
    session = SearchSession(
        study=study,
        recorder=TrialRecorder(space, space.defaults, resolve_objectives(("accuracy",), space.defaults), 0),
        target=sampling.capacity,
        progress=ProgressLine("grid", sampling.capacity, stream=io.StringIO()),
        run_dir=tmp_path / "run",
        runner=FakeRunner(),
        resources=Resources(),
    )
    searcher, runner = StudySearcher(session, threads=1, workdir=tmp_path), FakeRunner()
    ids = (f"t{n}" for n in itertools.count())
    live: dict[str, dict[str, object]] = {}
    for _ in range(100):  # as Ray does with two trials at a time, until the searcher has nothing to run
        while len(live) < 2 and isinstance(config := searcher.suggest(trial_id := next(ids)), dict):
            live[trial_id] = config
        if not live:
            break
        trial_id, config = live.popitem()
        result = runner(TrialConfig.from_dict(config[wire.CONFIG_KEY]))  # type: ignore[arg-type]
        searcher.on_trial_complete(trial_id, result=wire.final_metrics(result))
    assert searcher.suggest("one more") == Searcher.FINISHED
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 32
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 32
