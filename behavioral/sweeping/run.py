"""``behavioral.sweep``: run many audits, resumably, on a local process pool or on Ray."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from behavioral.specs import SpecError
from behavioral.sweeping.executors import error_message, make_executor
from behavioral.sweeping.jobs import MAX_POLICY_BYTES, Job, job_key, load_jobs
from behavioral.sweeping.journal import Journal
from behavioral.sweeping.table import build_table, write_tables

__all__ = ["REPORTS_DIR", "sweep"]

REPORTS_DIR = "reports"
#: Tasks submitted ahead per worker (the rest wait in the driver).
IN_FLIGHT_PER_WORKER = 2
#: Seconds between rewrites of the results tables while a sweep runs.
TABLE_EVERY = 5.0


def sweep(
    jobs: Any,
    *,
    executor: str = "local",
    workers: int | None = None,
    out: str | os.PathLike[str],
    address: str | None = None,
    retries: int = 1,
    progress: bool = True,
) -> pd.DataFrame:
    """Run many audits and collect them in one table; re-running resumes.

    Args:
        jobs: an iterable of job mappings (keys ``policy``, ``env``, ``env_kwargs``,
            ``split``, ``episodes``, ``seed``, ``report``, ``tags`` and audit options; see
            :mod:`behavioral.sweeping.jobs`), a spec table with ``defaults``/``jobs``/
            ``grid``, or the path of a JSON or TOML spec file.
        executor: ``"local"`` (a process pool on this machine) or ``"ray"`` (the optional
            extra ``behavioral[ray]``).
        workers: processes (local) or CPUs of the local Ray cluster started here; default
            the machine's CPU count. Ignored with ``address``.
        out: the sweep directory: ``journal.jsonl``, ``results.parquet``,
            ``results.csv`` and ``reports/<key>/`` per audit.
        address: the address of a running Ray cluster (``executor="ray"``).
        retries: how many times a failed audit is tried again (default once).
        progress: show one progress bar over all audits (with an ETA) on stderr.

    Returns:
        One row per job (columns: :mod:`behavioral.sweeping.table`), with ``status``
        ``done`` (run now), ``skipped`` (finished by an earlier run with the same key: not
        recomputed) or ``failed`` (with its ``error``, after the retries), and ``report``
        the absolute path of its report directory (None without one).
        ``.attrs`` holds the counts ``{"run": ..., "skipped": ..., "failed": ...}``.

    A failing audit never stops the sweep. Interrupted (Ctrl-C, ``kill -9``), a sweep
    keeps every audit finished so far: run it again with the same ``out`` to finish.

    Raises:
        SpecError: malformed jobs (before anything runs).
        SweepLockedError: another sweep is writing into ``out``.
        ExecutorError: an unknown executor, bad ``workers``, or Ray missing.
    """
    import multiprocessing

    if multiprocessing.parent_process() is not None and executor == "local":
        from behavioral.sweeping.executors import ExecutorError

        raise ExecutorError(
            "behavioral.sweep() was called in a worker process that imported your script: "
            "call it under `if __name__ == '__main__':` (worker processes are spawned)"
        )
    job_list = load_jobs(jobs)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise SpecError(f"retries must be a non-negative integer, got {retries!r}")
    out = Path(out)
    cache: dict[Any, str] = {}
    keys = [job_key(job, cache=cache) for job in job_list]
    with Journal(out) as journal:
        run = _Run(out, journal, job_list, keys)
        run.execute(executor, workers, address, retries, progress)
        table = run.table(absolute=True)
    table.attrs.update(run.counts())
    return table


class _Run:
    """The state of one sweep run: what is done, what runs, and the tables."""

    def __init__(self, out: Path, journal: Journal, jobs: list[Job], keys: list[str]) -> None:
        self.out, self.journal, self.jobs, self.keys = out, journal, jobs, keys
        self.by_key = {k: j for k, j in zip(keys, jobs, strict=True)}  # first job of a key
        self.records: dict[str, Mapping[str, Any]] = {}
        self.statuses: dict[str, str] = {}
        self.reports: dict[str, str | None] = {}
        self.retried: dict[str, str] = {}  # key -> error of its last retried attempt
        self._tables_written = 0.0
        _clean_partial_reports(out / REPORTS_DIR)
        for key, rec in journal.latest().items():
            if key in self.by_key and rec["status"] == "done" and self._report_intact(key, rec):
                self.records[key] = rec
                self.statuses[key] = "skipped"
                self.reports[key] = rec["row"].get("report")
        self.todo = [k for k in self.by_key if k not in self.records]

    def _report_intact(self, key: str, rec: Mapping[str, Any]) -> bool:
        report = rec["row"].get("report")
        if not self.by_key[key].report:
            return True
        return isinstance(report, str) and (self.out / report / "report.html").is_file()

    def counts(self) -> dict[str, int]:
        values = list(self.statuses.values())
        return {s if s != "done" else "run": values.count(s) for s in ("done", "skipped", "failed")}

    # -- running
    def execute(
        self, executor: str, workers: int | None, address: str | None, retries: int, progress: bool
    ) -> None:
        from tqdm.auto import tqdm

        total = len(self.by_key)
        bar = tqdm(
            total=total,
            initial=total - len(self.todo),
            desc="sweep",
            unit="audit",
            file=sys.stderr,
            dynamic_ncols=True,
            disable=not progress,
        )
        ex = make_executor(executor, workers, address) if self.todo else None
        attempts = dict.fromkeys(self.todo, 0)
        queue = list(reversed(self.todo))  # next to submit at the end
        try:
            while ex is not None and (queue or ex.pending()):
                # a bounded number in flight: memory (policy bytes) and Ctrl-C stay small
                while queue and ex.pending() < IN_FLIGHT_PER_WORKER * max(1, ex.workers):
                    key = queue.pop()
                    attempts[key] += 1
                    try:
                        ex.submit(key, _task(self.by_key[key]))
                    except (OSError, SpecError) as err:  # the file went away or grew
                        self._finish(key, attempts[key], None, error_message(err))
                        bar.update(1)
                if not ex.pending():
                    continue
                key, result, error = ex.next_done()
                if error is not None and attempts[key] <= retries:
                    self.journal.append(key, "retry", attempt=attempts[key], error=error)
                    self.retried[key] = error
                    queue.append(key)  # tried again next
                    continue
                self._finish(key, attempts[key], result, error)
                bar.update(1)
                bar.set_postfix(failed=self.counts()["failed"], refresh=False)
                self._maybe_write_tables()
        except BaseException:
            if ex is not None:
                ex.close(terminate=True)
                ex = None
            self.write_tables()
            done = len(self.records)
            sys.stderr.write(
                f"behavioral: sweep stopped with {done} of {total} audits finished in {self.out}; "
                "run it again to resume\n"
            )
            raise
        finally:
            bar.close()
            if ex is not None:
                ex.close()
        self.write_tables()

    def _finish(self, key: str, attempt: int, result: Any, error: str | None) -> None:
        last_error = self.retried.get(key)  # the error of an attempt tried again
        if error is not None:
            rec = self.journal.append(key, "failed", attempt=attempt, error=error)
            self.statuses[key] = "failed"
            self.reports[key] = None
        else:
            row = dict(result["row"])
            report = None
            if result.get("files") is not None:
                report = f"{REPORTS_DIR}/{key}"
                _write_report(self.out / REPORTS_DIR, key, result["files"])
            row["report"] = report
            rec = self.journal.append(key, "done", attempt=attempt, error=last_error, row=row)
            self.statuses[key] = "done"
            self.reports[key] = report
        self.records[key] = rec

    # -- tables
    def table(self, *, absolute: bool = False) -> pd.DataFrame:
        reports = dict(self.reports)
        if absolute:
            base = self.out.resolve()
            reports = {k: None if v is None else str(base / v) for k, v in reports.items()}
        return build_table(self.jobs, self.keys, self.records, self.statuses, reports)

    def write_tables(self) -> None:
        write_tables(self.table(), self.out)
        self._tables_written = time.monotonic()

    def _maybe_write_tables(self) -> None:
        if time.monotonic() - self._tables_written >= TABLE_EVERY:
            self.write_tables()


def _task(job: Job) -> dict[str, Any]:
    """The job's task, with a policy file's bytes: workers on other machines need no
    shared file system (the report comes back the same way)."""
    task = job.task()
    if job.spec.kind == "file":
        size = os.path.getsize(job.policy)
        if size > MAX_POLICY_BYTES:
            raise SpecError(
                f"{job.policy} is {size} bytes; a policy file may have {MAX_POLICY_BYTES}"
            )
        with open(job.policy, "rb") as fh:
            task["policy_bytes"] = fh.read(MAX_POLICY_BYTES + 1)
    return task


def _clean_partial_reports(reports: Path) -> None:
    """Remove report directories a killed sweep left half-written (``.tmp-*``)."""
    if reports.is_dir():
        for path in reports.glob(".tmp-*"):
            shutil.rmtree(path, ignore_errors=True)


def _write_report(reports: Path, key: str, files: Mapping[str, bytes]) -> None:
    """Write a worker's report files as ``reports/<key>/`` (built aside, then renamed)."""
    from behavioral.files import replace_dir

    reports.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=reports))
    try:
        os.chmod(tmp, 0o755)
        for name, data in files.items():
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                raise ValueError(f"refusing report file name {name!r}")
            path = tmp.joinpath(*rel.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        replace_dir(tmp, reports / key)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
