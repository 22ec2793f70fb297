"""The result of an audit (:class:`Audit`): verdict, evidence, recovered reward, and how it is
saved and shown."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from behavioral import compare
from behavioral.files import replace_dir
from behavioral.irl.maxent import Demonstration, RecoveredReward
from behavioral.tabular import TabularModel

__all__ = ["Audit"]


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
            "stats": _jsonable(dict(self.stats)),
            "n_episodes": len(self.demonstrations),
            "n_levels": len(self.levels),
            "metadata": _jsonable(dict(self.metadata)),
        }

    def save(self, directory: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the audit to ``directory`` (``summary.json``; the report module adds
        ``report.html``, ``report.md`` and PNG heatmaps when available).

        The directory is written next to its final place and renamed into it, so an
        existing report is never half-overwritten; it is replaced only with
        ``overwrite=True``.
        """
        target = Path(directory)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a report is meant to be read
        try:
            with open(tmp / "summary.json", "w", encoding="utf-8") as fh:
                json.dump(self.summary(), fh, indent=2, allow_nan=False)
            try:
                from behavioral import report  # the HTML/PNG report, when installed
            except ImportError:  # pragma: no cover - report module absent
                report = None
            if report is not None and hasattr(report, "write_report"):
                report.write_report(self, tmp)
            replace_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

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


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    return x
