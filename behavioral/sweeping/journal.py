"""The sweep's journal: an append-only JSON-lines file, one record per finished attempt,
each written with ``fsync`` before the sweep moves on.

It is the sweep's memory: a re-run reads it and skips every audit whose last record says
``done``, so an interrupted sweep (Ctrl-C, ``kill -9``, a power cut) resumes where it
stopped. A record is only ever appended whole: a line cut short by a kill (the only way a
line can be incomplete) is dropped when the journal is next opened, which also takes an
exclusive lock so that two sweeps never write into one directory.

Record (one JSON object per line)::

    {"v": 1, "key": "<24 hex>", "status": "done" | "failed" | "retry",
     "attempt": 1, "error": null | "TypeName: message", "row": {...} | null,
     "time": "2026-01-01T00:00:00+00:00"}

``retry`` records a failed attempt that is tried again; ``failed`` the last failed
attempt; ``done`` a finished audit and its row.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from behavioral.errors import BehavioralError

__all__ = ["JOURNAL_NAME", "Journal", "JournalError", "SweepLockedError"]

JOURNAL_NAME = "journal.jsonl"
LOCK_NAME = ".sweep.lock"
#: Largest journal read (bytes); a record is a few kilobytes.
MAX_JOURNAL_BYTES = 1 << 30
STATUSES = ("done", "failed", "retry")
_KEY = re.compile(r"[0-9a-f]{24}")


class JournalError(BehavioralError, ValueError):
    """The journal of a sweep directory is corrupt or not a sweep journal."""


class SweepLockedError(BehavioralError, RuntimeError):
    """Another sweep is writing into the same output directory."""


class Journal:
    """The journal of sweep directory ``out`` (a context manager holding its lock).

    Attributes:
        records: every valid record read at opening and appended since, in order.
        dropped_tail: whether an incomplete last line was dropped at opening.
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.path = self.out / JOURNAL_NAME
        self.records: list[dict[str, Any]] = []
        self.dropped_tail = False
        self._lock_fd: int | None = None
        self._fh: Any = None

    def __enter__(self) -> Journal:
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            self.records = list(self._read())
            self._fh = open(self.path, "ab")  # closed in __exit__
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._unlock()

    # -- lock
    def _lock(self) -> None:
        fd = os.open(self.out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no advisory locks (Windows)
            self._lock_fd = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SweepLockedError(
                f"another sweep is writing into {self.out} (it holds {LOCK_NAME})"
            ) from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    # -- reading
    def _read(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        if size > MAX_JOURNAL_BYTES:
            raise JournalError(f"{self.path} is {size} bytes (at most {MAX_JOURNAL_BYTES})")
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a record cut short by a kill: it was never acknowledged
            self.dropped_tail = True
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
            data = data[:end]
        for number, line in enumerate(data.splitlines(), start=1):
            if line.strip():
                yield _check_record(line, f"{self.path}:{number}")

    def latest(self) -> dict[str, dict[str, Any]]:
        """key -> the last ``done`` or ``failed`` record of that key."""
        out: dict[str, dict[str, Any]] = {}
        for rec in self.records:
            if rec["status"] in ("done", "failed"):
                out[rec["key"]] = rec
        return out

    # -- writing
    def append(
        self,
        key: str,
        status: str,
        *,
        attempt: int,
        error: str | None = None,
        row: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one record and ``fsync`` it; returns the record."""
        if self._fh is None:
            raise RuntimeError("the journal is not open (use it as a context manager)")
        rec = {
            "v": 1,
            "key": key,
            "status": status,
            "attempt": int(attempt),
            "error": error,
            "row": None if row is None else _json_safe(dict(row)),
            "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        line = json.dumps(rec, allow_nan=False, separators=(",", ":")) + "\n"
        _check_record(line.encode("utf-8"), "new record")
        self._fh.write(line.encode("utf-8"))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records.append(rec)
        return rec


def _check_record(line: bytes, where: str) -> dict[str, Any]:
    try:
        rec = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise JournalError(f"{where}: not a JSON record ({err})") from None
    if not isinstance(rec, dict) or rec.get("v") != 1:
        raise JournalError(f"{where}: not a version-1 sweep journal record")
    if not isinstance(rec.get("key"), str) or not _KEY.fullmatch(rec["key"]):
        raise JournalError(f"{where}: bad key {rec.get('key')!r}")
    if rec.get("status") not in STATUSES:
        raise JournalError(f"{where}: bad status {rec.get('status')!r}")
    if rec["status"] == "done" and not isinstance(rec.get("row"), dict):
        raise JournalError(f"{where}: a 'done' record without its row")
    if not isinstance(rec.get("attempt"), int) or isinstance(rec.get("attempt"), bool):
        raise JournalError(f"{where}: bad attempt {rec.get('attempt')!r}")
    row = rec.get("row")
    if isinstance(row, dict):
        for k, v in row.items():
            if not (v is None or isinstance(v, (bool, int, float, str))):
                raise JournalError(f"{where}: row value {k!r} is not a scalar")
    return rec


def _json_safe(row: dict[str, Any]) -> dict[str, Any]:
    """Scalars only; non-finite floats become None (JSON has no NaN)."""
    import math

    out: dict[str, Any] = {}
    for k, v in row.items():
        if hasattr(v, "item") and not isinstance(v, (str, bytes)):
            v = v.item()  # NumPy scalars
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        if not (v is None or isinstance(v, (bool, int, float, str))):
            v = str(v)
        out[str(k)] = v
    return out
