"""The result of an audit (:class:`Audit`): verdict, evidence, recovered reward, and how it is
saved and shown."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from behavioral import compare, files
from behavioral.irl.maxent import Demonstration, RecoveredReward
from behavioral.tabular import TabularModel

__all__ = ["REPORT_FILES", "Audit"]

#: Files of which a directory must hold one for ``Audit.save(..., overwrite=True)`` to
#: replace it (an audit report or a comparison report), so that ``overwrite`` never
#: deletes an unrelated directory.
REPORT_FILES = ("summary.json", "report.html")


@dataclasses.dataclass(frozen=True, eq=False)
class Audit:
    """The outcome of an audit.

    Attributes:
        verdict: ``"aligned"``, ``"proxy"``, ``"indistinguishable"`` or ``"unexplained"``.
        proxy: the proxy's name when ``verdict == "proxy"``, else None.
        table: one row per candidate objective (see :func:`audit_demonstrations`).
        recovered: the recovered behavioural objective (MaxEnt IRL).
        coverage: the transitions EPIC compared rewards on (the data's, levels stacked).
        base: name of the base objective; ``proxies`` the others.
        reason: one sentence saying why the verdict was reached.
        levels: the levels' tabular models; ``demonstrations`` the state-index episodes.
        episodes: per-episode table of the dataset when the audit rolled out or loaded
            one (returns, outcomes), else None.
        candidates: every candidate's reward array per level.
        stats: numbers behind the verdict (likelihood-ratio test, explained fraction,
            pairwise differences with confidence intervals).
        metadata: library version, env id and kwargs, split, seed, method, ...
    """

    verdict: str
    proxy: str | None
    table: pd.DataFrame
    recovered: RecoveredReward
    coverage: compare.Coverage
    base: str
    proxies: tuple[str, ...]
    reason: str
    levels: tuple[TabularModel, ...]
    demonstrations: tuple[Demonstration, ...]
    candidates: Mapping[str, list[np.ndarray]]
    stats: Mapping[str, Any]
    metadata: Mapping[str, Any]
    episodes: pd.DataFrame | None = None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: verdict, reason, the candidate table, recovered weights."""
        return {
            "verdict": self.verdict,
            "proxy": self.proxy,
            "reason": self.reason,
            "base": self.base,
            "proxies": list(self.proxies),
            "table": json.loads(self.table.to_json(orient="records")),
            "recovered": {
                "method": self.recovered.method,
                "weights": self.recovered.weights_by_name
                if len(self.recovered.feature_names) <= 64
                else None,
                "converged": self.recovered.converged,
                "iterations": self.recovered.iterations,
                "feature_gap": self.recovered.feature_gap,
                "log_likelihood": self.recovered.log_likelihood,
                "l2": self.recovered.l2,
            },
            "coverage": self.coverage.summary(),
            "stats": files.jsonable(dict(self.stats)),
            "n_episodes": len(self.demonstrations),
            "n_levels": len(self.levels),
            "metadata": files.jsonable(dict(self.metadata)),
        }

    def save(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the audit to ``directory`` (``summary.json``; the report module adds
        ``report.html``, ``report.md`` and PNG heatmaps when available).

        Written through :mod:`behavioral.files`: the directory is staged next to its final
        place and renamed into it, so an existing report is never half-overwritten; it is
        replaced only with ``overwrite=True`` (and only if it is a report directory), and
        one that appears while the report is being written is kept.

        Returns:
            The report directory (absolute).

        Raises:
            OutputExistsError: ``directory`` exists (or appeared meanwhile) and
                ``overwrite`` is False, or it is not a report directory.
            OutputBusyError: another process is writing the same directory.
            OutputError: ``directory`` cannot be written.
        """
        def fill(tmp: Path) -> None:
            (tmp / "summary.json").write_text(files.dumps_json(self.summary()), encoding="utf-8")
            try:
                from behavioral import report  # the HTML/PNG report, when installed
            except ImportError:  # pragma: no cover - report module absent
                report = None
            if report is not None and hasattr(report, "write_report"):
                report.write_report(self, tmp)

        return files.write_dir(directory, fill, overwrite=overwrite, expect=REPORT_FILES)

    def _repr_html_(self) -> str:
        """The report (verdict, table, figures) as HTML, for Jupyter."""
        from behavioral.report import report_html

        return report_html(self)

    def __repr__(self) -> str:
        extra = f", proxy={self.proxy!r}" if self.proxy else ""
        return (
            f"Audit(verdict={self.verdict!r}{extra}, base={self.base!r}, "
            f"episodes={len(self.demonstrations)}, levels={len(self.levels)})"
        )
