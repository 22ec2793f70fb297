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
from behavioral.auditing.decision import DecisionConfig, Evidence, Verdict
from behavioral.auditing.sequential import SequentialTest
from behavioral.irl.maxent import Demonstration, RecoveredReward
from behavioral.tabular import TabularModel

__all__ = ["SUMMARY_VERSION", "Audit"]

#: Version of the layout of ``summary.json`` (2: typed evidence and decision, named rows).
SUMMARY_VERSION = 2


@dataclasses.dataclass(frozen=True, eq=False)
class Audit:
    """The outcome of an audit.

    Attributes:
        verdict: ``"aligned"``, ``"proxy"``, ``"indistinguishable"`` or ``"unexplained"``.
        proxy: the proxy's name when ``verdict == "proxy"``, else None.
        table: one row per candidate objective (see :func:`audit_demonstrations`).
        recovered: the recovered behavioural objective (MaxEnt IRL).
        coverage: the transitions EPIC compared rewards on (the data's, levels stacked).
        base: name of the base objective; ``proxies`` the proxies that took part in the
            verdict (aliases are not among them).
        reason: one sentence saying why the verdict was reached.
        levels: the levels' tabular models; ``demonstrations`` the state-index episodes.
        candidates: every candidate's reward array per level.
        evidence: the numbers the verdict was decided on
            (:class:`~behavioral.auditing.decision.Evidence`).
        decision: the verdict with its tests (:class:`~behavioral.auditing.decision.Verdict`).
        config: the thresholds it was decided with.
        fit_options: the nuisances and fitting options used (living reward, discounts,
            lapse and the lapse's gain when ``"auto"`` tried it, bootstrap resamples, L2).
        metadata: library version, env id and kwargs, split, seed, method, ...
        episodes: per-episode table of the dataset when the audit rolled out or loaded
            one (returns, outcomes), else None. Audits that choose their levels add where
            each episode's level came from (``key``, ``origin``, ``distance`` from the
            training distribution), the evidence it was expected to add (``expected``) and
            the log e-values after its batch (``log_e[a>b]``).
        design: audits that choose their levels (``design="active"`` or
            ``"sequential"``): the scored candidate levels, one row each
            (:func:`behavioral.design.design_table`), else None.
        sequential: the record of their anytime-valid test
            (:class:`~behavioral.auditing.sequential.SequentialTest`), else None.
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
    evidence: Evidence
    decision: Verdict
    config: DecisionConfig
    fit_options: Mapping[str, Any]
    metadata: Mapping[str, Any]
    episodes: pd.DataFrame | None = None
    design: pd.DataFrame | None = None
    sequential: SequentialTest | None = None

    @property
    def explained(self) -> bool:
        """Whether some candidate explains the behaviour better than the null model."""
        return self.decision.explained

    @property
    def distinguishable(self) -> bool:
        """Whether the data tell the base objective and the proxies apart."""
        return self.decision.distinguishable

    @property
    def aliases(self) -> Mapping[str, str]:
        """Candidates that are another candidate under another name (name -> that one)."""
        return self.evidence.aliases

    @property
    def twins(self) -> tuple[str, ...]:
        """Proxies that coincide with the named proxy on the data."""
        return self.decision.twins

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: verdict, reason, the candidate table (one row per
        candidate, each naming its objective), the evidence and decision, recovered weights."""
        table = self.table.reset_index()
        rec = self.recovered
        return {
            "summary_version": SUMMARY_VERSION,
            "verdict": self.verdict,
            "proxy": self.proxy,
            "reason": self.reason,
            "explained": self.explained,
            "distinguishable": self.distinguishable,
            "base": self.base,
            "proxies": list(self.proxies),
            "aliases": dict(self.aliases),
            "twins": list(self.twins),
            "table": json.loads(table.to_json(orient="records")),
            "recovered": {
                "method": rec.method,
                "weights": rec.weights_by_name if len(rec.feature_names) <= 64 else None,
                "converged": rec.converged,
                "iterations": rec.iterations,
                "feature_gap": rec.feature_gap,
                "log_likelihood": rec.log_likelihood,
                "l2": rec.l2,
                "n_parameters": rec.parameter_count,
            },
            "coverage": self.coverage.summary(),
            "decision": files.jsonable(_decision_dict(self.decision)),
            "evidence": files.jsonable(_evidence_dict(self.evidence)),
            "config": files.jsonable(dataclasses.asdict(self.config)),
            "fit_options": files.jsonable(dict(self.fit_options)),
            "n_episodes": len(self.demonstrations),
            "n_levels": len(self.levels),
            "metadata": files.jsonable(dict(self.metadata)),
            "sequential": None
            if self.sequential is None
            else files.jsonable(self.sequential.summary()),
            "design": None if self.design is None else _design_summary(self.design),
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

        return files.write_dir(directory, fill, overwrite=overwrite, expect=files.REPORT_FILES)

    def _repr_html_(self) -> str:
        """The report (verdict, table, figures) as HTML, for Jupyter."""
        from behavioral.report import report_html

        return report_html(self)

    def __repr__(self) -> str:
        extra = f", proxy={self.proxy!r}" if self.proxy else ""
        if self.sequential is not None:
            extra += f", design={self.sequential.design!r}"
        return (
            f"Audit(verdict={self.verdict!r}{extra}, base={self.base!r}, "
            f"episodes={len(self.demonstrations)}, levels={len(self.levels)})"
        )


#: Columns of the design table kept in ``summary.json`` (for the levels played).
_DESIGN_COLUMNS = ("key", "origin", "distance", "violations", "expected", "episodes")


def _design_summary(design: pd.DataFrame) -> dict[str, Any]:
    """The candidate levels' count and the played ones' rows (``summary.json``)."""
    played = design[design["episodes"] > 0] if "episodes" in design else design.iloc[:0]
    cols = [c for c in _DESIGN_COLUMNS if c in played.columns]
    return {
        "candidates": len(design),
        "played": files.jsonable(json.loads(played[cols].reset_index().to_json(orient="records"))),
    }


def _decision_dict(v: Verdict) -> dict[str, Any]:
    out = dataclasses.asdict(v)
    out["pair_states"] = dict(v.pair_states)
    out["twins"] = list(v.twins)
    return out


def _evidence_dict(e: Evidence) -> dict[str, Any]:
    return {
        "base": e.base,
        "proxies": list(e.proxies),
        "n_episodes": e.n_episodes,
        "confidence": e.confidence,
        "log_likelihood": dict(e.log_likelihood),
        "null_log_likelihood": e.null_log_likelihood,
        "recovered_log_likelihood": e.recovered_log_likelihood,
        "recovered_dof": e.recovered_dof,
        "pairs": {name: {**dataclasses.asdict(p), "ci": list(p.ci)} for name, p in e.pairs.items()},
        "proxy_epic": [{"proxies": list(pair), "epic": d} for pair, d in e.proxy_epic.items()],
        "aliases": dict(e.aliases),
        "uniform_log_likelihood": e.uniform_log_likelihood,
        "unurged_log_likelihood": dict(e.unurged_log_likelihood),
    }
