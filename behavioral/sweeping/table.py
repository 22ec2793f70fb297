"""The sweep's results table: one row per job, written atomically as ``results.parquet``
and ``results.csv``.

Columns, in order: the job (``job``, ``key``, ``label``, ``policy``, ``env``,
``env_kwargs``, ``split``, ``episodes``, ``seed``, ``options``), the job's tags, the
outcome (``status`` -- ``done`` this run, ``skipped`` (done by an earlier run, not
recomputed) or ``failed`` --, ``attempts``, ``error``), the audit (``verdict``, ``proxy``,
``reason``, ``base``, per-candidate evidence: see
:func:`behavioral.sweeping.worker.audit_row`), the rollout's outcome rates, the
log-likelihood of the episodes under the policy that produced them (``policy_ll``,
planners only), timings (``seconds`` and its parts; ``cpu_seconds``, the worker's CPU
time: below ``seconds`` when the machine is shared), the worker's peak memory, and
``report`` (the report directory, relative to the sweep directory in the files).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from behavioral.files import write_atomic

__all__ = ["RESERVED_COLUMNS", "build_table", "write_tables"]

JOB_COLUMNS = (
    "job",
    "key",
    "label",
    "policy",
    "env",
    "env_kwargs",
    "split",
    "episodes",
    "seed",
    "options",
)
OUTCOME_COLUMNS = ("status", "attempts", "error")
AUDIT_COLUMNS = ("verdict", "proxy", "reason", "base", "description")
TAIL_COLUMNS = (
    "policy_ll",
    "load_seconds",
    "rollout_seconds",
    "audit_seconds",
    "report_seconds",
    "seconds",
    "cpu_seconds",
    "worker_peak_rss_mb",
    "worker",
    "finished",
    "report",
)
#: Column names a job's tags may not take.
RESERVED_COLUMNS = frozenset(
    (
        *JOB_COLUMNS,
        *OUTCOME_COLUMNS,
        *AUDIT_COLUMNS,
        *TAIL_COLUMNS,
        "ll_null",
        "coinciding",
        "mean_length",
    )
)


def build_table(
    jobs: Sequence[Any],
    keys: Sequence[str],
    records: Mapping[str, Mapping[str, Any]],
    statuses: Mapping[str, str],
    reports: Mapping[str, str | None],
) -> pd.DataFrame:
    """One row per job that has a record (in job order).

    Args:
        jobs: the sweep's :class:`~behavioral.sweeping.jobs.Job` objects.
        keys: each job's key.
        records: key -> its last journal record (``done`` or ``failed``).
        statuses: key -> ``done`` / ``skipped`` / ``failed``.
        reports: key -> report directory (relative to the sweep directory) or None.
    """
    rows = []
    tag_names: dict[str, None] = {}
    for i, (job, key) in enumerate(zip(jobs, keys, strict=True)):
        rec = records.get(key)
        if rec is None:
            continue
        result = dict(rec.get("row") or {})
        row: dict[str, Any] = {
            "job": i,
            "key": key,
            "label": job.spec.label,
            "policy": job.policy,
            "env": result.pop("env", job.env),
            "env_kwargs": result.pop(
                "env_kwargs", json.dumps(dict(job.env_kwargs), sort_keys=True)
            ),
            "split": job.split or "train",
            "episodes": job.episodes,
            "seed": job.seed,
            "options": json.dumps(dict(job.options), sort_keys=True, default=str),
        }
        row.update(job.tags)
        tag_names.update(dict.fromkeys(job.tags))
        row["status"] = statuses[key]
        row["attempts"] = rec["attempt"]
        row["error"] = rec.get("error")
        row.update(result)
        row["finished"] = rec.get("time")
        row["report"] = reports.get(key)
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=[*JOB_COLUMNS, *OUTCOME_COLUMNS, *AUDIT_COLUMNS])
    return table[_column_order(table.columns, tuple(tag_names))]


def _column_order(columns: Sequence[str], tags: Sequence[str]) -> list[str]:
    head = [*JOB_COLUMNS, *tags, *OUTCOME_COLUMNS, *AUDIT_COLUMNS]
    present = set(columns)
    first = [c for c in head if c in present]
    tail = [c for c in TAIL_COLUMNS if c in present]
    middle = [c for c in columns if c not in set(first) | set(tail)]
    return first + middle + tail


def _for_parquet(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding several Python types become strings (parquet needs one)."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object:
            kinds = {type(v) for v in out[col] if v is not None and not _is_nan(v)}
            if len(kinds) > 1:
                out[col] = [None if v is None or _is_nan(v) else str(v) for v in out[col]]
    return out


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and v != v


def write_tables(table: pd.DataFrame, out: Path) -> tuple[Path, Path]:
    """Write ``results.parquet`` and ``results.csv`` into ``out`` atomically."""
    buffer = io.BytesIO()
    _for_parquet(table).to_parquet(buffer, index=False)
    parquet = write_atomic(out / "results.parquet", buffer.getvalue())
    csv = write_atomic(out / "results.csv", table.to_csv(index=False))
    return parquet, csv
