"""``behavioral sweep SPEC --out DIR``: the command-line face of :func:`behavioral.sweep`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_executor_arguments", "add_parser", "cmd_sweep", "summarize"]


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    """``--executor``, ``--workers``, ``--address``, ``--retries``, ``--no-progress``."""
    from behavioral.cli.types import non_negative_int, positive_int

    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where the audits run: a local process pool or Ray (default: %(default)s)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="processes (local) or CPUs of the local Ray cluster (default: every CPU)",
    )
    p.add_argument(
        "--address", default=None, help="address of a running Ray cluster (with --executor ray)"
    )
    p.add_argument(
        "--retries",
        type=non_negative_int,
        default=1,
        help="times a failed audit is tried again (default: %(default)s)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to ``sub`` (an argparse subparsers object)."""
    p = sub.add_parser(
        "sweep",
        help="run many audits from a JSON/TOML spec (resumable; local processes or Ray)",
        description="Run every audit a spec file lists (jobs, or grids of alternatives; see "
        "behavioral.sweeping.jobs) and collect them in OUT/results.parquet and "
        "OUT/results.csv, one row per audit, with each report in OUT/reports/<key>/. "
        "Running it again with the same --out skips every audit already finished, so an "
        "interrupted sweep resumes where it stopped. A failed audit is retried, then "
        "recorded with its error; it never stops the sweep.",
    )
    p.add_argument("spec", help="the sweep spec: a .json or .toml file")
    p.add_argument("--out", required=True, help="the sweep directory (created or resumed)")
    add_executor_arguments(p)
    p.set_defaults(func=cmd_sweep)
    return p


def summarize(table: Any, out: Any) -> str:
    """Lines for the terminal: counts, verdicts, where the tables are."""
    counts = table.attrs
    lines = [
        f"{len(table)} audits: {counts.get('run', 0)} run, {counts.get('skipped', 0)} skipped "
        f"(finished earlier), {counts.get('failed', 0)} failed"
    ]
    if "verdict" in table.columns and table["verdict"].notna().any():
        verdicts = table["verdict"].fillna("(failed)").value_counts()
        lines.append("verdicts: " + ", ".join(f"{v} {n}" for v, n in verdicts.items()))
    lines.append(f"results: {out}/results.csv, {out}/results.parquet")
    return "\n".join(lines)


def failure_line(table: Any, out: Any) -> str | None:
    """The one error line when some audits failed, else None."""
    failed = table[table["status"] == "failed"] if "status" in table.columns else table.iloc[:0]
    if failed.empty:
        return None
    first = failed.iloc[0]
    return (
        f"{len(failed)} of {len(table)} audits failed; first: {first['label']}: "
        f"{first['error']} (every error in {out}/results.csv)"
    )


def cmd_sweep(args: argparse.Namespace) -> int:
    from behavioral.sweeping.run import sweep

    table = sweep(
        args.spec,
        executor=args.executor,
        workers=args.workers,
        out=args.out,
        address=args.address,
        retries=args.retries,
        progress=not args.no_progress,
    )
    print(summarize(table, args.out))
    failure = failure_line(table, args.out)
    if failure is not None:
        sys.stderr.write(f"behavioral: error: {failure}\n")
        return 1
    return 0
