"""Where a sweep's audits run: a local process pool, or Ray.

Both take tasks with :meth:`submit` and hand back finished ones with :meth:`next_done`
as they finish (not in submission order), each with its result or its error message; the
sweep decides what to retry. Both run one audit per CPU with one thread each.

* :class:`LocalExecutor`: ``concurrent.futures.ProcessPoolExecutor`` whose workers are
  forked from a ``forkserver`` that imported the audit's libraries once (torch, imitation,
  gymnasium, SB3, the report: seconds per worker otherwise, paid again by every sweep),
  with one thread per library; workers ignore SIGINT (the driver handles Ctrl-C and
  terminates them) and exit on their own when the driver dies (``kill -9``), so no
  orphan keeps computing. Where ``forkserver`` is unavailable, workers are spawned.
* :class:`RayExecutor`: ``ray.init(num_cpus=workers)`` for a local cluster, or
  ``address=`` of an existing one; one CPU per task; results streamed back with
  ``ray.wait``. The cluster is shut down afterwards only if the executor started it.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Mapping
from typing import Any

from behavioral.errors import BehavioralError

__all__ = ["EXECUTORS", "ExecutorError", "LocalExecutor", "RayExecutor", "make_executor"]

EXECUTORS = ("local", "ray")


class ExecutorError(BehavioralError, ValueError):
    """An unknown executor, a bad worker count, or Ray missing or unreachable."""


def error_message(err: BaseException) -> str:
    """``TypeName: message`` on one line (the cause of a Ray task error)."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        err = cause
    raw = err.args[0] if isinstance(err, KeyError) and err.args else err
    text = " ".join(str(raw).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# ----------------------------------------------------------------------------- local


#: Modules the forkserver imports once for every worker it forks.
PRELOAD = (
    "behavioral.sweeping.worker",
    "behavioral_envs",
    "behavioral.auditing",
    "behavioral.rollout",
    "behavioral.specs",
    "stable_baselines3",
    "behavioral.report",
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process reused the pid
        return False
    return True


def _watch_driver(driver: int, parent: int) -> None:
    while True:
        if os.getppid() != parent or not _alive(driver):
            os._exit(1)  # the driver is gone: nobody will read our result
        time.sleep(0.5)


def _init_worker(driver: int) -> None:
    """Pool worker set-up: ignore Ctrl-C (the driver stops us), one thread per library,
    and leave when the driver (or the forkserver, which leaves with it) dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from behavioral.sweeping.worker import _THREAD_VARS

    for var in _THREAD_VARS:
        os.environ[var] = "1"
    os.environ.setdefault("TQDM_DISABLE", "1")
    threading.Thread(target=_watch_driver, args=(driver, os.getppid()), daemon=True).start()


def _context() -> multiprocessing.context.BaseContext:
    """A ``forkserver`` context whose server preloads :data:`PRELOAD` with one thread per
    library (else ``spawn``)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")  # pragma: no cover - Windows
    from multiprocessing import forkserver

    from behavioral.sweeping.worker import _THREAD_VARS

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(PRELOAD))
    saved = {var: os.environ.get(var) for var in (*_THREAD_VARS, "TQDM_DISABLE")}
    try:  # the server inherits the environment it starts with
        os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
        forkserver.ensure_running()
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    return ctx


class LocalExecutor:
    """A pool of ``workers`` spawned processes on this machine."""

    def __init__(self, workers: int) -> None:
        self.workers = int(workers)
        self._pool: cf.ProcessPoolExecutor | None = None
        self._futures: dict[cf.Future[Any], str] = {}

    @property
    def description(self) -> str:
        return f"local process pool, {self.workers} worker(s)"

    def _ensure_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_context(),
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
        return self._pool

    def submit(self, task_id: str, task: Mapping[str, Any]) -> None:
        from behavioral.sweeping.worker import run_job

        future = self._ensure_pool().submit(run_job, dict(task))
        self._futures[future] = task_id

    def pending(self) -> int:
        return len(self._futures)

    def next_done(self) -> tuple[str, Any, str | None]:
        """(task id, result, None) or (task id, None, error message) of a finished task."""
        done, _ = cf.wait(list(self._futures), return_when=cf.FIRST_COMPLETED)
        future = next(iter(done))
        task_id = self._futures.pop(future)
        try:
            return task_id, future.result(), None
        except cf.process.BrokenProcessPool as err:
            # A worker died (killed, out of memory): every task in flight fails with it.
            # A fresh pool takes the retries.
            self._discard_pool()
            return task_id, None, error_message(err) or "a worker process died"
        except Exception as err:
            return task_id, None, error_message(err)

    def _discard_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self, *, terminate: bool = False) -> None:
        """Shut the pool down; ``terminate`` kills running workers instead of waiting."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if terminate:  # kill the running audits, then let the pool tidy its queues up
            processes = list((getattr(pool, "_processes", None) or {}).values())
            for proc in processes:
                if proc.is_alive():
                    proc.terminate()
            for proc in processes:
                proc.join(timeout=5)
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            pool.shutdown(wait=True)
        self._futures.clear()


# ----------------------------------------------------------------------------- ray


class RayExecutor:
    """Tasks on a Ray cluster: a local one of ``workers`` CPUs, or the one at ``address``."""

    def __init__(self, workers: int | None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorError("executor='ray' needs Ray: pip install 'behavioral[ray]'") from None
        from behavioral.sweeping.worker import _THREAD_VARS, run_job

        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            env_vars = {var: "1" for var in _THREAD_VARS}
            env_vars["TQDM_DISABLE"] = "1"
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "runtime_env": {"env_vars": env_vars},
            }
            try:
                if address is not None:
                    ray.init(address=address, **kwargs)
                else:
                    ray.init(
                        num_cpus=workers or os.cpu_count() or 1,
                        object_store_memory=256 * 2**20,
                        **kwargs,
                    )
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise ExecutorError(f"cannot start or reach Ray: {error_message(err)}") from None
        self.workers = int(ray.cluster_resources().get("CPU", 0))
        self._remote = ray.remote(num_cpus=1, max_retries=0)(run_job)
        self._refs: dict[Any, str] = {}

    @property
    def description(self) -> str:
        return f"Ray cluster, {self.workers} CPU(s)"

    def submit(self, task_id: str, task: Mapping[str, Any]) -> None:
        self._refs[self._remote.remote(dict(task))] = task_id

    def pending(self) -> int:
        return len(self._refs)

    def next_done(self) -> tuple[str, Any, str | None]:
        ready, _ = self._ray.wait(list(self._refs), num_returns=1)
        ref = ready[0]
        task_id = self._refs.pop(ref)
        try:
            return task_id, self._ray.get(ref), None
        except Exception as err:
            return task_id, None, error_message(err)

    def close(self, *, terminate: bool = False) -> None:
        if terminate:
            for ref in list(self._refs):
                try:
                    self._ray.cancel(ref, force=True)
                except Exception:  # already finished or gone
                    pass
        self._refs.clear()
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()


def make_executor(
    executor: str, workers: int | None, address: str | None = None
) -> LocalExecutor | RayExecutor:
    """The executor named ``executor`` (``"local"`` or ``"ray"``).

    Raises:
        ExecutorError: unknown executor, ``workers < 1``, ``address`` without Ray, or Ray
            missing.
    """
    if executor not in EXECUTORS:
        raise ExecutorError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    if workers is not None and (
        isinstance(workers, bool) or int(workers) != workers or workers < 1
    ):
        raise ExecutorError(f"workers must be a positive integer, got {workers!r}")
    if executor == "local":
        if address is not None:
            raise ExecutorError("address= is for executor='ray'")
        return LocalExecutor(workers or os.cpu_count() or 1)
    return RayExecutor(workers, address)
