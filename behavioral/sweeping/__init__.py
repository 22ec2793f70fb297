"""Sweeps: many audits -- policies, seeds, splits, training checkpoints -- run on a local
process pool or on Ray, resumable, collected in one table.

``behavioral.sweep(jobs, executor="local" | "ray", workers=None, out=DIR)`` is the entry
point (:func:`behavioral.sweeping.run.sweep`); jobs and spec files:
:mod:`behavioral.sweeping.jobs`; the journal that makes a sweep resumable:
:mod:`behavioral.sweeping.journal`; the executors: :mod:`behavioral.sweeping.executors`;
one audit in a worker: :mod:`behavioral.sweeping.worker`; the table:
:mod:`behavioral.sweeping.table`. Names load on first use (workers import this package
before they limit their threads).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "sweep": "behavioral.sweeping.run",
    "Job": "behavioral.sweeping.jobs",
    "job_key": "behavioral.sweeping.jobs",
    "load_jobs": "behavioral.sweeping.jobs",
    "read_spec": "behavioral.sweeping.jobs",
    "JournalError": "behavioral.sweeping.journal",
    "SweepLockedError": "behavioral.sweeping.journal",
    "ExecutorError": "behavioral.sweeping.executors",
}

__all__ = [
    "ExecutorError",
    "Job",
    "JournalError",
    "SweepLockedError",
    "job_key",
    "load_jobs",
    "read_spec",
    "sweep",
]

if TYPE_CHECKING:  # pragma: no cover
    from behavioral.sweeping.executors import ExecutorError
    from behavioral.sweeping.jobs import Job, job_key, load_jobs, read_spec
    from behavioral.sweeping.journal import JournalError, SweepLockedError
    from behavioral.sweeping.run import sweep


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'behavioral.sweeping' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
