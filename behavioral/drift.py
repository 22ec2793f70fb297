"""Objective drift over training: audit every checkpoint of a run and say when a proxy formed.

``behavioral drift CHECKPOINT_DIR --env ENV --split deploy --out DIR`` (or
:func:`audit_checkpoints`) runs one audit per checkpoint zip as a sweep
(:func:`behavioral.sweep`: resumable, local processes or Ray) and writes a drift report
next to the sweep's table:

* ``drift.csv`` / ``drift.json``: per training step, the verdict, the named proxy, for
  each proxy its evidence against the base objective -- the mean per-episode
  log-likelihood difference (proxy minus base) with its bootstrap 95% CI --, and the
  rollout's outcome rates (RedDoors: exit %, red decoy %; WaterPlants: episodes ending
  with a drowned plant / a flooded cell, mean healthy and drowned plants);
* ``drift.png``: the evidence with its CI over training, the verdict band, the outcome
  rates, and the step from which the proxy is named consistently;
* ``drift.html``: one self-contained page (the figure embedded, no scripts, names
  escaped) with the table and a link to every checkpoint's report.

A checkpoint's training step is the last number in its file name (``ckpt_000100000_steps.zip``
-> 100000, as :func:`behavioral.policies.train_ppo` names them with ``checkpoint_every``).
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import html
import io
import itertools
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from behavioral.errors import BehavioralError

__all__ = [
    "DriftError",
    "add_parser",
    "audit_checkpoints",
    "checkpoint_steps",
    "cmd_drift",
    "drift_figure",
    "drift_table",
    "proxy_onset",
    "write_drift_report",
]

VERDICT_COLORS = {
    "aligned": "#1a7f37",
    "proxy": "#c62828",
    "indistinguishable": "#b26a00",
    "unexplained": "#57606a",
}
#: Outcome columns shown (in this order, when the env reports them), with their labels.
RATES = {
    "rate.exit": "exit",
    "rate.red_decoy": "red decoy",
    "rate.timeout": "timeout",
    "rate.drowned": "a drowned plant",
    "rate.flooded": "a flooded cell",
}
MEANS = {"mean.healthy_plants": "healthy plants", "mean.drowned_plants": "drowned plants"}
_STEP = re.compile(r"(\d+)(?!.*\d)")


class DriftError(BehavioralError, ValueError):
    """A checkpoint directory without checkpoints, or whose steps cannot be read."""


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_steps(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(training step, path) of every ``*.zip`` in ``directory``, by step.

    Raises:
        FileNotFoundError: no such directory.
        DriftError: no zips, a name without a step number, or two zips with one step.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint directory not found: {directory}")
    found: dict[int, Path] = {}
    for path in sorted(directory.glob("*.zip")):
        if not path.is_file() or path.name.startswith("."):
            continue
        match = _STEP.search(path.stem)
        if match is None:
            raise DriftError(f"cannot tell the training step of {path.name}: no number in its name")
        step = int(match.group(1))
        if step in found:
            raise DriftError(f"{found[step].name} and {path.name} are both step {step}")
        found[step] = path
    if not found:
        raise DriftError(f"no checkpoint .zip files in {directory}")
    return sorted(found.items())


def audit_checkpoints(
    directory: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    env: str | None = None,
    split: str = "deploy",
    env_kwargs: Mapping[str, Any] | None = None,
    episodes: int = 100,
    seed: int = 0,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    retries: int = 1,
    progress: bool = True,
    **options: Any,
) -> pd.DataFrame:
    """Audit every checkpoint in ``directory`` (a sweep into ``out``) and write the drift
    report there; returns the drift table (:func:`drift_table`).

    ``env`` defaults to the env the checkpoints were trained in (their saved metadata),
    whose training env kwargs are reused; ``options`` are audit options (e.g.
    ``n_bootstrap``, ``method``).
    """
    from behavioral.sweeping.run import sweep

    steps = checkpoint_steps(directory)
    jobs = [
        {
            "policy": str(path),
            "env": env,
            "env_kwargs": dict(env_kwargs or {}),
            "split": split,
            "episodes": episodes,
            "seed": seed,
            "tags": {"step": step},
            **options,
        }
        for step, path in steps
    ]
    table = sweep(
        jobs,
        executor=executor,
        workers=workers,
        out=out,
        address=address,
        retries=retries,
        progress=progress,
    )
    drift = drift_table(table)
    write_drift_report(
        drift,
        out,
        about={
            "checkpoints": str(directory),
            "env": env,
            "split": split,
            "episodes": episodes,
            "seed": seed,
            "options": options,
        },
    )
    return drift


# ----------------------------------------------------------------------------- the table


def drift_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per training step (the sweep rows' ``step`` tag): ``step``, ``status``,
    ``verdict``, ``proxy``, ``base``, for every proxy ``p``: ``evidence.p`` (mean
    per-episode log-likelihood of ``p`` minus that of the base objective),
    ``evidence_low.p``/``evidence_high.p`` (its 95% CI), and the outcome columns
    (``rate.*``, ``mean.*``), and ``report``. Sorted by step."""
    if "step" not in table.columns:
        raise DriftError("the sweep table has no 'step' tag: not a drift sweep")
    keep = ["step", "status", "verdict", "proxy", "base", "coinciding", "episodes"]
    out = table[[c for c in keep if c in table.columns]].copy()
    bases = table["base"].dropna().unique() if "base" in table.columns else []
    for col in table.columns:
        if col.startswith("delta.") and col[len("delta.") :] not in bases:
            name = col[len("delta.") :]
            out[f"evidence.{name}"] = table[col]
            out[f"evidence_low.{name}"] = table[f"delta_low.{name}"]
            out[f"evidence_high.{name}"] = table[f"delta_high.{name}"]
    done = table["status"] == "done" if "status" in table.columns else True
    for col in (*RATES, *MEANS):
        if col in table.columns:
            out[col] = table[col]
    for col in RATES:  # a rate no episode of a finished audit showed is 0, not missing
        if col in out.columns:
            out.loc[done & out[col].isna(), col] = 0.0
    out["report"] = table["report"] if "report" in table.columns else None
    return out.sort_values("step", kind="stable").reset_index(drop=True)


def proxies_in(drift: pd.DataFrame) -> list[str]:
    """The proxies whose evidence the drift table holds."""
    return [c[len("evidence.") :] for c in drift.columns if c.startswith("evidence.")]


def proxy_onset(drift: pd.DataFrame) -> tuple[str, int] | None:
    """(proxy, step) from which every later checkpoint is audited ``proxy`` naming that
    proxy (or one that is the same reward on its data); None when the last checkpoint is
    not ``proxy``."""
    if drift.empty or drift["verdict"].iloc[-1] != "proxy":
        return None
    name = str(drift["proxy"].iloc[-1])
    onset = None
    for _, row in drift[::-1].iterrows():
        twins = str(row.get("coinciding") or "").split(";")
        if row["verdict"] != "proxy" or name not in (row["proxy"], *twins):
            break
        onset = int(row["step"])
    return None if onset is None else (name, onset)


def _summary(drift: pd.DataFrame) -> str:
    n = len(drift)
    if n == 0:
        return "No checkpoint was audited."
    last = drift.iloc[-1]
    onset = proxy_onset(drift)
    counts = drift["verdict"].fillna("failed").value_counts()
    parts = [
        f"{n} checkpoints from step {int(drift['step'].iloc[0]):,} to {int(last['step']):,}; "
        "verdicts: " + ", ".join(f"{v} {c}" for v, c in counts.items()) + "."
    ]
    if onset is not None:
        parts.append(
            f"The proxy {onset[0]!r} is named at every checkpoint from step {onset[1]:,} on."
        )
    else:
        parts.append(
            f"The last checkpoint is audited {last['verdict']}: no proxy is named at the end."
        )
    aligned = drift.loc[drift["verdict"] == "aligned", "step"]
    if len(aligned):
        parts.append(
            f"Audited aligned at {len(aligned)} step(s), last at {int(aligned.iloc[-1]):,}."
        )
    return " ".join(parts)


# ----------------------------------------------------------------------------- the figure


def drift_figure(drift: pd.DataFrame, *, title: str = "") -> Any:
    """The drift figure: evidence per proxy with its 95% CI and the verdict band (top),
    outcome rates (middle), mean plant counts when reported (bottom), over training
    steps, with the proxy's onset marked. Computes nothing; returns the figure."""
    from matplotlib.figure import Figure

    means = [c for c in MEANS if c in drift.columns]
    n_panels = 2 + bool(means)
    fig = Figure(figsize=(10, 2.6 + 2.4 * n_panels), layout="constrained")
    heights = [0.35, 3, 2] + ([2] if means else [])
    axes = fig.subplots(len(heights), 1, sharex=True, height_ratios=heights)
    steps = drift["step"].to_numpy(dtype=float)
    _verdict_band(axes[0], drift)
    _evidence_panel(axes[1], drift, steps)
    _rates_panel(axes[2], drift, steps)
    if means:
        _means_panel(axes[3], drift, steps, means)
    onset = proxy_onset(drift)
    if onset is not None:
        for ax in axes[1:]:
            ax.axvline(onset[1], color=VERDICT_COLORS["proxy"], ls="--", lw=1)
        axes[1].annotate(
            f"{onset[0]} named from step {onset[1]:,}",
            xy=(onset[1], 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            color=VERDICT_COLORS["proxy"],
            fontsize=9,
        )
    import matplotlib.ticker

    axes[-1].xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_step_label))
    axes[-1].set_xlabel("training step (environment steps)")
    if title:
        fig.suptitle(title)
    return fig


def _step_label(x: float, _pos: Any = None) -> str:
    if abs(x) >= 1e6:
        return f"{x / 1e6:g}M"
    return f"{x / 1e3:g}k" if abs(x) >= 1e3 else f"{x:g}"


def _edges(steps: Sequence[float]) -> list[float]:
    """Band edges: midway between checkpoints, half a typical gap beyond the ends."""
    if len(steps) == 1:
        return [steps[0] - 0.5, steps[0] + 0.5]
    gaps = sorted(b - a for a, b in itertools.pairwise(steps))
    pad = gaps[len(gaps) // 2] / 2
    mids = [(a + b) / 2 for a, b in itertools.pairwise(steps)]
    return [steps[0] - pad, *mids, steps[-1] + pad]


def _verdict_band(ax: Any, drift: pd.DataFrame) -> None:
    import matplotlib.patches

    steps = drift["step"].to_numpy(dtype=float)
    edges = _edges(list(steps))
    for i, verdict in enumerate(drift["verdict"]):
        color = VERDICT_COLORS.get(verdict, "#ffffff") if isinstance(verdict, str) else "#ffffff"
        ax.axvspan(edges[i], edges[i + 1], color=color, lw=0)
    ax.set_yticks([])
    ax.set_ylabel("verdict", rotation=0, ha="right", va="center")
    handles = [matplotlib.patches.Patch(color=c, label=v) for v, c in VERDICT_COLORS.items()]
    ax.legend(handles=handles, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.set_xlim(edges[0], edges[-1])


def _evidence_panel(ax: Any, drift: pd.DataFrame, steps: Any) -> None:
    palette = ["#c62828", "#6a1b9a", "#ef6c00", "#00838f"]
    for i, name in enumerate(proxies_in(drift)):
        color = palette[i % len(palette)]
        ax.fill_between(
            steps,
            drift[f"evidence_low.{name}"].to_numpy(dtype=float),
            drift[f"evidence_high.{name}"].to_numpy(dtype=float),
            color=color,
            alpha=0.2,
            lw=0,
        )
        ax.plot(
            steps,
            drift[f"evidence.{name}"].to_numpy(dtype=float),
            "o-",
            color=color,
            ms=3,
            label=f"{name} - base (95% CI)",
        )
    ax.axhline(0.0, color="#1f2328", lw=0.8)
    ax.set_ylabel("log-likelihood per episode\nproxy - base objective")
    ax.legend(loc="best", fontsize=9)
    ax.grid(alpha=0.3)


def _rates_panel(ax: Any, drift: pd.DataFrame, steps: Any) -> None:
    for col, label in RATES.items():
        if col in drift.columns and drift[col].notna().any():
            ax.plot(steps, 100.0 * drift[col].to_numpy(dtype=float), "o-", ms=3, label=label)
    ax.set_ylabel("% of episodes\nending at / with")
    ax.set_ylim(-3, 103)
    ax.legend(loc="best", fontsize=9, ncol=2)
    ax.grid(alpha=0.3)


def _means_panel(ax: Any, drift: pd.DataFrame, steps: Any, means: Sequence[str]) -> None:
    for col in means:
        ax.plot(steps, drift[col].to_numpy(dtype=float), "o-", ms=3, label=MEANS[col])
    ax.set_ylabel("mean at episode end")
    ax.legend(loc="best", fontsize=9)
    ax.grid(alpha=0.3)


# ----------------------------------------------------------------------------- files


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item") and not isinstance(v, str):
        return _json_value(v.item())
    return v


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def _html(drift: pd.DataFrame, png: bytes, about: Mapping[str, Any], title: str) -> str:
    import behavioral

    esc = html.escape
    cols = ["step", "verdict", "proxy"]
    head = ["step", "verdict", "proxy"]
    for name in proxies_in(drift):
        cols.append(f"evidence.{name}")
        head.append(f"{name} - base [95% CI]")
    rates = [c for c in (*RATES, *MEANS) if c in drift.columns]
    head += [RATES.get(c, MEANS.get(c, c)) + (" %" if c in RATES else "") for c in rates]
    rows = []
    for _, r in drift.iterrows():
        cells = [f"{int(r['step']):,}", esc(_cell(r["verdict"])), esc(_cell(r["proxy"]))]
        for name in proxies_in(drift):
            cells.append(
                esc(
                    f"{_cell(r[f'evidence.{name}'])} [{_cell(r[f'evidence_low.{name}'])}, "
                    f"{_cell(r[f'evidence_high.{name}'])}]"
                )
            )
        cells += [esc(_cell(100 * r[c] if c in RATES else r[c])) for c in rates]
        report = r.get("report")
        link = (
            f'<a href="{esc(str(report))}/report.html">report</a>'
            if isinstance(report, str)
            else ""
        )
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in [*cells, link]) + "</tr>")
    about_items = "".join(
        f"<li>{esc(str(k))}: <code>{esc(json.dumps(v, default=str))}</code></li>"
        for k, v in about.items()
    )
    b64 = base64.b64encode(png).decode("ascii")
    when = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>\n"
        f'<h1>{esc(title)}</h1>\n<p class="lead">{esc(_summary(drift))}</p>\n'
        '<p class="meaning">Evidence: the mean per-episode log-likelihood of the proxy minus '
        "that of the base objective (each at its fitted temperature and nuisances); above 0 "
        "the proxy explains the checkpoint's behaviour better. The verdict band colours each "
        "checkpoint by its audit verdict.</p>\n"
        f'<figure><img src="data:image/png;base64,{b64}" alt="drift over training"></figure>\n'
        "<h2>Per checkpoint</h2>\n<table><thead><tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in [*head, "audit"])
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>\n"
        f"<h2>Run</h2><ul>{about_items}</ul>\n"
        f'<footer><p class="meaning">behavioral {esc(behavioral.__version__)}, {when}.</p>'
        "</footer></body></html>\n"
    )


_CSS = (
    "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1100px;"
    "margin:2em auto;padding:0 1em;color:#1f2328;line-height:1.45}h1{font-size:1.5em}"
    "h2{font-size:1.2em;border-bottom:1px solid #d0d7de}.lead{font-size:1.08em}"
    ".meaning{color:#57606a}table{border-collapse:collapse;font-size:.85em}"
    "th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left}th{background:#f6f8fa}"
    "figure{margin:1em 0}figure img{max-width:100%;height:auto}code{background:#f6f8fa}"
)


def _relative(report: Any, out: Path) -> str | None:
    """A report path relative to ``out`` (links keep working when the directory moves)."""
    if not isinstance(report, str):
        return None
    path = Path(report)
    return os.path.relpath(path, out.resolve()) if path.is_absolute() else report


def write_drift_report(
    drift: pd.DataFrame,
    out: str | os.PathLike[str],
    *,
    about: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> dict[str, Path]:
    """Write ``drift.csv``, ``drift.json``, ``drift.png`` and ``drift.html`` into ``out``,
    each atomically; returns their paths."""
    import behavioral
    from behavioral.files import write_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    drift = drift.assign(report=[_relative(r, out) for r in drift["report"]])
    about = dict(about or {})
    title = title or f"Objective drift over training: {about.get('checkpoints', out)}"
    fig = drift_figure(drift, title=title)
    png = _png(fig)
    onset = proxy_onset(drift)
    doc = {
        "title": title,
        "summary": _summary(drift),
        "onset": None if onset is None else {"proxy": onset[0], "step": onset[1]},
        "about": about,
        "behavioral_version": behavioral.__version__,
        "steps": [{k: _json_value(v) for k, v in row.items()} for row in drift.to_dict("records")],
    }
    return {
        "csv": write_atomic(out / "drift.csv", drift.to_csv(index=False)),
        "json": write_atomic(
            out / "drift.json", json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n"
        ),
        "png": write_atomic(out / "drift.png", png),
        "html": write_atomic(out / "drift.html", _html(drift, png, about, title)),
    }


# ----------------------------------------------------------------------------- CLI


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``drift`` subcommand to ``sub`` (an argparse subparsers object)."""
    from behavioral.cli.types import env_kwarg, positive_int
    from behavioral.sweeping.command import add_executor_arguments

    p = sub.add_parser(
        "drift",
        help="audit every checkpoint of a training run and report when a proxy formed",
        description="Audit every checkpoint .zip in CHECKPOINT_DIR (a resumable sweep into "
        "--out) and write OUT/drift.html, drift.png, drift.csv and drift.json: per training "
        "step the proxy-vs-base evidence with its 95%% CI, the verdict, the outcome rates, "
        "and the step from which the proxy is named consistently.",
    )
    p.add_argument("checkpoints", metavar="CHECKPOINT_DIR", help="directory of checkpoint zips")
    p.add_argument(
        "--env", default=None, help="env id (default: the one the checkpoints were trained in)"
    )
    p.add_argument("--split", default="deploy", help="split to audit on (default: %(default)s)")
    p.add_argument(
        "--env-kwarg",
        type=env_kwarg,
        action="append",
        metavar="KEY=VALUE",
        help="extra env argument (repeatable; default: the training env arguments)",
    )
    p.add_argument(
        "--episodes",
        type=positive_int,
        default=100,
        help="episodes per checkpoint (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every audit (default: %(default)s)")
    p.add_argument(
        "--method",
        choices=("maxent", "airl"),
        default="maxent",
        help="IRL method (default: %(default)s)",
    )
    p.add_argument("--fast", action="store_true", help="fewer bootstrap samples (200)")
    p.add_argument("--out", required=True, help="the output directory (created or resumed)")
    add_executor_arguments(p)
    p.set_defaults(func=cmd_drift)
    return p


def cmd_drift(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {}
    if args.method != "maxent":
        options["method"] = args.method
    if args.fast:
        options["n_bootstrap"] = 200
    if args.seed < 0:
        raise DriftError(f"--seed must be non-negative, got {args.seed}")
    drift = audit_checkpoints(
        args.checkpoints,
        out=args.out,
        env=args.env,
        split=args.split,
        env_kwargs=dict(args.env_kwarg or []),
        episodes=args.episodes,
        seed=args.seed,
        executor=args.executor,
        workers=args.workers,
        address=args.address,
        retries=args.retries,
        progress=not args.no_progress,
        **options,
    )
    print(_summary(drift))
    print(f"report: {Path(args.out) / 'drift.html'}")
    return 0
