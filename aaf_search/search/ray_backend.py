"""The Ray backend: trials run as Ray Tune trials on workers, the study stays on the driver.

The driver has already opened the study, failed what a killed run left RUNNING and chosen the target
count; resuming therefore reads the study and never restores Ray's own experiment state (whose
scheduler state does not survive a restore, ray#30838). Ray contributes what it is good at: workers,
resources per trial, concurrency, and reused actors (``reuse_actors=True``: 0.2–0.4 s per short trial
instead of 2.1–2.5 s, mostly a fresh worker's ``import torch``).

:class:`~aaf_search.search.ray_searcher.StudySearcher` asks and tells the study and
:class:`~aaf_search.search.ray_scheduler.StudyPruningScheduler` stops what the Optuna pruner prunes.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aaf_search.errors import UserError
from aaf_search.search.session import SearchSession
from aaf_search.search.settings import Resources, SearchSettings
from aaf_search.search.study import INTERRUPTED_REASON

CONNECT_TIMEOUT = 3.0  # seconds an address gets to accept a connection, and again to reply, before it "does not answer"
GCS_PORT = 6379  # Ray's default head-node port for host:port addresses
CLIENT_PORT = 10001  # Ray Client's default port for ray:// addresses
CURRENT_CLUSTER_FILE = Path("/tmp/ray/ray_current_cluster")  # where `ray start --head` records its address
NEW_OUTPUT_ENV = "RAY_AIR_NEW_OUTPUT"
BACKEND_LOG_ENV = "RAY_BACKEND_LOG_LEVEL"
CONTROLLER_LOGGER = "ray.tune.execution.tune_controller"
# How an address is checked to speak gRPC (HTTP/2), as Ray's head node and Ray Client do.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HTTP2_SETTINGS_HEADER = bytes(3) + b"\x04" + bytes(5)  # an empty SETTINGS frame: length 0, type 4, stream 0
FRAME_HEADER_BYTES = 9


class RayBackend:
    """Runs a session's trials with Ray Tune; starts a local Ray unless one is running or ``--address`` is given.

    With ``--address``, :meth:`check` already joins the cluster: something other than Ray may accept the
    TCP connection (a proxy), and only joining tells, before the study is opened or changed.
    """

    def __init__(self) -> None:
        self._joined = False  # check() joined a cluster that run() must leave

    def check(self, settings: SearchSettings) -> None:
        resources = settings.resources
        if resources.cpus_per_trial is not None and resources.cpus_per_trial <= 0:
            raise UserError(f"--cpus-per-trial must be > 0, got {resources.cpus_per_trial:g}")
        if resources.gpus_per_trial is not None:
            check_gpus_per_trial(resources.gpus_per_trial)
        if resources.max_concurrent is not None and resources.max_concurrent < 1:
            raise UserError(f"--max-concurrent must be >= 1, got {resources.max_concurrent}")
        address = cluster_address(resources.address)
        if address is not None:
            check_reachable(address)
            self._joined = connect(address)
            return  # the cluster's CPUs and GPUs are checked in run()
        cpus = os.cpu_count() or 1
        if resources.cpus_per_trial is not None and resources.cpus_per_trial > cpus:
            raise UserError(f"--cpus-per-trial {resources.cpus_per_trial:g} but this machine has {cpus} CPU cores")
        if resources.gpus_per_trial:
            gpus = local_gpu_count()
            if resources.gpus_per_trial > gpus:
                raise UserError(f"--gpus-per-trial {resources.gpus_per_trial:g} but this machine has {gpus} GPU(s)")

    def run(self, session: SearchSession) -> None:
        import ray

        started = self._joined or connect(cluster_address(session.resources.address))
        try:
            _tune(session)
        finally:
            if started:
                ray.shutdown()


@dataclass(frozen=True)
class TrialResources:
    """What each trial gets and how many run at once, fitted to the cluster Ray reports."""

    cpus: float
    gpus: float
    concurrent: int

    @property
    def threads(self) -> int:
        return max(1, int(self.cpus))


def fit_resources(resources: Resources, cluster_cpus: float, cluster_gpus: float) -> TrialResources:
    """Fill in the defaults (1 CPU; 1 GPU when the cluster has any) and refuse what cannot fit."""
    cpus = resources.cpus_per_trial if resources.cpus_per_trial is not None else 1.0
    gpus = resources.gpus_per_trial if resources.gpus_per_trial is not None else (1.0 if cluster_gpus >= 1 else 0.0)
    if cpus > cluster_cpus:
        raise UserError(f"--cpus-per-trial {cpus:g} but the Ray cluster has {cluster_cpus:g} CPUs")
    if gpus > cluster_gpus:
        raise UserError(f"--gpus-per-trial {gpus:g} but the Ray cluster has {cluster_gpus:g} GPUs")
    fits = math.floor(cluster_cpus / cpus + 1e-9)
    if gpus > 0:
        fits = min(fits, math.floor(cluster_gpus / gpus + 1e-9))
    # Only as many trials as fit: a trial Ray cannot place yet would already have been asked from
    # the study, and the sampler would propose it without the results of the trials before it.
    concurrent = min(resources.max_concurrent, fits) if resources.max_concurrent is not None else fits
    return TrialResources(cpus=cpus, gpus=gpus, concurrent=max(concurrent, 1))


def _tune(session: SearchSession) -> None:
    import ray
    from ray import tune

    from aaf_search.search.ray_scheduler import StudyPruningScheduler
    from aaf_search.search.ray_searcher import StudySearcher
    from aaf_search.search.ray_trainable import worker_trainable

    cluster = ray.cluster_resources()
    fitted = fit_resources(session.resources, cluster.get("CPU", 0.0), cluster.get("GPU", 0.0))
    searcher = StudySearcher(session, threads=fitted.threads, workdir=Path.cwd())
    tuner = tune.Tuner(
        # The session's runner (run_trial, or a stand-in for benchmarks) travels to the workers by reference,
        # through the object store; train_trial travels by value, so that a worker starts fast.
        tune.with_resources(
            tune.with_parameters(worker_trainable(), runner=session.runner), {"cpu": fitted.cpus, "gpu": fitted.gpus}
        ),
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=StudyPruningScheduler(searcher),
            num_samples=-1,  # the searcher says when the study holds enough trials
            max_concurrent_trials=fitted.concurrent,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=time.strftime("tune-%Y%m%d-%H%M%S"),
            storage_path=str((session.run_dir / "ray").resolve()),
            verbose=0,  # the progress line is the output
            failure_config=tune.FailureConfig(max_failures=0),  # a crashed trial is FAIL, not retried by Ray
        ),
    )
    try:
        # Ray's newer console output prints a box even at verbose=0; its controller logs every crashed
        # trial's traceback, which the progress line replaces with one line and the path of error.txt.
        with _environment({NEW_OUTPUT_ENV: "0"}), _silenced(CONTROLLER_LOGGER):
            tuner.fit()
    except KeyboardInterrupt:  # a second Ctrl-C, while Ray was still stopping its trials
        searcher.abandon(INTERRUPTED_REASON)
        raise
    if searcher.running:
        # Ray ends its loop on the first Ctrl-C and returns; trials it stopped are still ours to tell.
        numbers = searcher.abandon(INTERRUPTED_REASON)
        session.progress.note(f"interrupted: trial(s) {numbers} marked FAIL ({INTERRUPTED_REASON})")
        raise KeyboardInterrupt
    if searcher.abort_reason is not None:
        raise UserError(searcher.abort_reason)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables that Ray reads in this process, and restore them afterwards."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _silenced(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    before = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(before)


def connect(address: str | None) -> bool:
    """Join the Ray at ``address``, or start a local one; ``True`` when this call started Ray."""
    # Ray's C++ client logs a warning a second while it retries an address that is not Ray's; its level
    # is read when ray is first imported, hence the import inside. (Only when joining: setting it costs
    # one log line of its own.)
    quiet = {BACKEND_LOG_ENV: os.environ.get(BACKEND_LOG_ENV, "error")} if address is not None else {}
    with _environment(quiet):
        import ray

        if ray.is_initialized():
            return False  # a caller (a notebook, a test) runs Ray already; use it and leave it running
        # Workers' output stays in their log files and Ray logs only errors: the progress line is the output.
        if address is None:
            ray.init(
                num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
            )
            return True
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0]
            raise UserError(f"cannot join the Ray cluster at '{address}': {reason}") from exc
    return True


def cluster_address(address: str | None) -> str | None:
    """The cluster to join: ``--address``, else ``RAY_ADDRESS`` as Ray itself reads it; ``None`` starts one."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address == "local":
        return None
    if address == "auto":
        return _running_cluster()
    return address


def _running_cluster() -> str:
    try:
        recorded = CURRENT_CLUSTER_FILE.read_text().strip()
    except OSError:
        recorded = ""
    if not recorded:
        raise UserError(
            "--address auto: no running Ray cluster found on this machine; start one with 'ray start --head' "
            "or leave out --address to start a local one"
        )
    return recorded


def check_reachable(address: str) -> None:
    """Refuse, in about :data:`CONNECT_TIMEOUT` seconds, an address where Ray does not answer.

    ``ray.init`` against a dead address retries for much longer and ends in a traceback; against a port
    where another server listens (a web server, the dashboard's port) it blocks in Ray's C++ client for
    good and ignores Ctrl-C. Both Ray's head node and Ray Client speak gRPC, so a port that does not
    answer an HTTP/2 greeting with an HTTP/2 frame is not Ray's. Clusters with TLS
    (``RAY_USE_TLS``) get the TCP check only.
    """
    host, port = split_address(address)
    greet = os.environ.get("RAY_USE_TLS", "0").lower() in ("0", "false", "")
    reply = None
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT) as connection:
            if greet:
                reply = _http2_reply(connection)
    except OSError as exc:
        why = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()
        raise UserError(
            f"Ray address '{address}' does not answer ({why}); start the cluster (ray start --head) "
            "or leave out --address to start a local Ray"
        ) from exc
    if reply is not None and not _is_settings_frame(reply):
        what = f"it replied {reply!r}" if reply else "it closed the connection without a reply"
        raise UserError(
            f"Ray address '{address}' is not a Ray cluster ({what}); give the address that "
            "'ray start --head' printed (HOST:6379, or ray://HOST:10001 for Ray Client)"
        )


def _http2_reply(connection: socket.socket) -> bytes:
    """Greet ``connection`` as an HTTP/2 client and return the first frame header it sends back."""
    connection.sendall(HTTP2_PREFACE + HTTP2_SETTINGS_HEADER)
    reply = b""
    while len(reply) < FRAME_HEADER_BYTES:
        chunk = connection.recv(FRAME_HEADER_BYTES - len(reply))
        if not chunk:
            break
        reply += chunk
    return reply


def _is_settings_frame(header: bytes) -> bool:
    # An HTTP/2 server's first frame is SETTINGS (type 4) on stream 0.
    return len(header) == FRAME_HEADER_BYTES and header[3] == 0x04 and header[5:] == bytes(4)


def split_address(address: str) -> tuple[str, int]:
    """``host:port``, ``ray://host[:port]`` or ``host`` -> (host, port), with Ray's default ports."""
    client = address.startswith("ray://")
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port
    except ValueError as exc:
        raise UserError(f"--address '{address}' has no valid port") from exc
    if not parts.hostname:
        raise UserError(f"--address '{address}' names no host; use HOST:PORT, ray://HOST:PORT or auto")
    return parts.hostname, port or (CLIENT_PORT if client else GCS_PORT)


def check_gpus_per_trial(gpus: float) -> None:
    if gpus < 0:
        raise UserError(f"--gpus-per-trial must be >= 0, got {gpus:g}")
    if gpus > 1 and not float(gpus).is_integer():
        raise UserError(f"--gpus-per-trial above 1 must be a whole number (Ray's rule), got {gpus:g}")


def local_gpu_count() -> int:
    import torch

    return torch.cuda.device_count()
