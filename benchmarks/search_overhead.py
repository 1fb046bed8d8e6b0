"""What the search machinery costs per trial, with a trivial objective, against bare Optuna / bare Ray Tune.

Local: ``aaf-search``'s local backend (space -> config, per-trial seed, user attrs, intermediate values,
progress line) against a bare ``study.optimize`` loop that suggests one float and reports it, on the same
kind of storage and with the same sampler (the TPE that ``--sampler tpe`` builds), interleaved (see
:data:`STORAGES` for the two SQLite rows). Target: at most 10 ms per trial more.

Ray: ``aaf-search``'s Ray backend (study-owning searcher, pruning scheduler, our trainable wrapper)
against bare Ray Tune with Ray's ``OptunaSearch`` and a trainable that imports torch and torchvision
(as any real trainable does; our stand-in runner imports the same) and reports once, both with
``reuse_actors=True`` and the same concurrency. Target: at most 10 % more wall time per trial.

    python benchmarks/search_overhead.py [--trials 60] [--repeats 3] [--storage [sqlite] [sqlite-wal] [journal]]
                                         [--ray] [--ray-trials 20] [--with-timeout]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch

from aaf_search.config import TrialConfig
from aaf_search.search.driver import run_search
from aaf_search.search.samplers import SamplerContext, make_sampler
from aaf_search.search.settings import Resources, SearchSettings
from aaf_search.search.storage import open_storage
from aaf_search.spaces import SearchSpace, SpaceDefaults
from aaf_search.spaces.catalog import CATALOG
from aaf_search.trials.report import EpochReport, TrialResult

PROBE_SPACE = "overhead_probe"


def probe_suggest(trial: optuna.Trial, defaults: SpaceDefaults) -> TrialConfig:
    """One float, like the bare objective: the machinery around it is what is measured."""
    return defaults.trial(epochs=1).replace(seed=int(1000 * trial.suggest_float("x", 0.0, 1.0)))


def instant_runner(
    config: TrialConfig, *, on_epoch: Callable[[EpochReport], None] | None = None, out_dir: Path | None = None
) -> TrialResult:
    """A trial that trains nothing: one epoch report with the value the bare objective returns."""
    value = config.seed / 1000.0
    report = EpochReport(1, 1.0, 1.0, value, 0.0, 1e-3, {})
    if on_epoch is not None:
        on_epoch(report)
    return TrialResult(value, 1.0, value, 1, 1, 0, 0, "cpu", 0.0, False, (report,))


def importing_runner(
    config: TrialConfig, *, on_epoch: Callable[[EpochReport], None] | None = None, out_dir: Path | None = None
) -> TrialResult:
    """:func:`instant_runner` after the imports of a real trial, which bare Ray Tune's trainable pays too."""
    import torch  # noqa: F401
    import torchvision  # noqa: F401

    return instant_runner(config, on_epoch=on_epoch, out_dir=out_dir)


STORAGES = ("sqlite", "sqlite-wal", "journal")
"""Local-part storages. aaf-search opens every SQLite file in WAL mode; bare Optuna gets SQLite's defaults
(rollback journal, a disk wait per commit) under "sqlite" and the same WAL settings under "sqlite-wal",
which isolates the machinery's own cost."""


def storage_url(kind: str, folder: Path, tag: str) -> str:
    return f"sqlite:///{folder / tag}.db" if kind.startswith("sqlite") else f"journal:{folder / tag}.log"


def bare_optuna(trials: int, kind: str, url: str) -> float:
    # Timed from before the storage opens (creating a SQLite file's tables takes ~0.1 s), as run_search is.
    started = time.perf_counter()
    # "sqlite": Optuna opens the URL itself, with SQLite's defaults; the others as aaf-search opens them
    # (a journal file; SQLite with the write-ahead log).
    storage: Any = url if kind == "sqlite" else open_storage(url)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.report(x, 1)
        trial.should_prune()
        return x

    sampler = make_sampler("tpe", 0, SamplerContext(CATALOG[PROBE_SPACE], CATALOG[PROBE_SPACE].defaults)).sampler
    study = optuna.create_study(storage=storage, direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=trials)
    return time.perf_counter() - started


def ours_local(trials: int, url: str, folder: Path, timeout: float | None = None) -> float:
    settings = SearchSettings(
        space=PROBE_SPACE,
        trials=trials,
        backend="local",
        storage=url,
        out=folder / "run",
        pruner="median",
        timeout=timeout,
    )
    started = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        run_search(settings, runner=instant_runner, stream=quiet)
    return time.perf_counter() - started


def bare_ray(trials: int, concurrency: int, url: str) -> float:
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    def trainable(config: dict[str, Any]) -> None:
        # Any real PyTorch trainable imports these in its worker; ours does too (importing_runner).
        import torch  # noqa: F401
        import torchvision  # noqa: F401

        tune.report({"value": config["x"]})

    started = time.perf_counter()
    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0.0, 1.0)},
        tune_config=tune.TuneConfig(
            search_alg=OptunaSearch(metric="value", mode="max", seed=0, storage=open_storage(url)),
            num_samples=trials,
            max_concurrent_trials=concurrency,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=tempfile.mkdtemp(prefix="bare-ray-"), verbose=0),
    )
    tuner.fit()
    return time.perf_counter() - started


def ours_ray(trials: int, concurrency: int, url: str, folder: Path) -> float:
    settings = SearchSettings(
        space=PROBE_SPACE,
        trials=trials,
        backend="ray",
        storage=url,
        out=folder / "ray-run",
        pruner="none",
        resources=Resources(cpus_per_trial=1, max_concurrent=concurrency),
    )
    started = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        run_search(settings, runner=importing_runner, stream=quiet)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--storage",
        choices=STORAGES,
        nargs="*",
        default=list(STORAGES),
        help="storages for the local part; none (a bare --storage) skips it",
    )
    parser.add_argument("--ray", action="store_true", help="also measure the Ray backend (starts a local Ray)")
    parser.add_argument("--ray-trials", type=int, default=20)
    parser.add_argument(
        "--with-timeout",
        action="store_true",
        help="run our local search under a --timeout that never expires (one study.optimize call per trial)",
    )
    args = parser.parse_args()
    timeout = 86400.0 if args.with_timeout else None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    CATALOG[PROBE_SPACE] = SearchSpace(PROBE_SPACE, "overhead probe", probe_suggest, SpaceDefaults(epochs=1))

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, optuna {optuna.__version__}"
    )
    if args.storage:
        print(f"{'storage':<12}{'bare ms/trial':>15}{'ours ms/trial':>15}{'added ms/trial':>16}  target <= 10 ms")
    for kind in args.storage:
        bare_times, our_times = [], []
        for repeat in range(args.repeats):  # interleaved so machine load hits both alike
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp)
                bare_times.append(bare_optuna(args.trials, kind, storage_url(kind, folder, f"bare{repeat}")))
                our_times.append(ours_local(args.trials, storage_url(kind, folder, f"ours{repeat}"), folder, timeout))
        bare = statistics.median(bare_times) / args.trials * 1000
        ours = statistics.median(our_times) / args.trials * 1000
        print(f"{kind:<12}{bare:>15.2f}{ours:>15.2f}{ours - bare:>16.2f}")

    if args.ray:
        import ray

        concurrency = 2
        ray.init(num_cpus=concurrency, include_dashboard=False, log_to_driver=False)
        try:
            bare_times, our_times = [], []
            # Round 0 is a warm-up, not counted: the first Tune run of a process pays for Ray's own imports.
            for repeat in range(args.repeats + 1):
                with tempfile.TemporaryDirectory() as tmp:  # the same kind of storage for both
                    folder = Path(tmp)
                    bare = bare_ray(args.ray_trials, concurrency, storage_url("journal", folder, "bare"))
                    ours = ours_ray(args.ray_trials, concurrency, storage_url("journal", folder, "ours"), folder)
                if repeat > 0:
                    bare_times.append(bare / args.ray_trials * 1000)
                    our_times.append(ours / args.ray_trials * 1000)
        finally:
            ray.shutdown()
        print("ray ms/trial per round: bare " + " ".join(f"{t:.0f}" for t in bare_times), end="")
        print(", ours " + " ".join(f"{t:.0f}" for t in our_times))
        for label, pick in (("median", statistics.median), ("min", min)):
            bare, ours = pick(bare_times), pick(our_times)
            print(f"ray {label}: bare Tune {bare:.0f} ms/trial, ours {ours:.0f} ms/trial, ratio {ours / bare:.2f}")
        print("     (target <= 1.10; both reuse actors, same concurrency, journal storage)")


if __name__ == "__main__":
    main()
