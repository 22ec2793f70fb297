"""Plotting functions: arrays (and an optional matplotlib ``ax``) in, a figure out.

They compute nothing: colour ranges, landmarks and labels come from
:mod:`behavioral.report.levels` and :mod:`behavioral.report.views`. They never touch files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import matplotlib.colors
import matplotlib.patches
import matplotlib.patheffects
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from behavioral.report.levels import ColorScale, Landmark
from behavioral.report.text import fmt_num

__all__ = [
    "DPI",
    "NO_VALUE_COLOR",
    "WALL_COLOR",
    "plot_candidates",
    "plot_evidence",
    "plot_expected_evidence",
    "plot_feature_profiles",
    "plot_frame",
    "plot_heatmap",
    "plot_level",
    "plot_outcomes",
    "plot_split_comparison",
    "plot_weights",
]

DPI = 100
_RC = {"text.parse_math": False}  # user-supplied names may contain "$"
#: Walls on every map: the grid envs' own wall colour (RGB 100, 100, 100), so a heatmap's
#: walls look like the rendered level's.
WALL_COLOR = "#646464"
#: Cells that hold states but where nothing is drawn (e.g. absorbing states).
NO_VALUE_COLOR = "#e6e6e6"
_BAR = "#5c6bc0"


def _err(mid: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(2, n) error-bar lengths; an interval that excludes its point estimate (possible
    for percentile bootstrap intervals) is drawn up to the point, not negative."""
    mid, low, high = (np.asarray(v, dtype=np.float64) for v in (mid, low, high))
    return np.stack([np.maximum(mid - low, 0.0), np.maximum(high - mid, 0.0)])


def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Figure, Any]:
    if ax is None:
        fig = Figure(figsize=figsize, dpi=DPI)
        return fig, fig.subplots()
    return ax.figure, ax


def _outlined(
    ax: Any, x: float, y: float, text: str, size: float = 6.5, ha: str = "center"
) -> None:
    """White text with a dark outline: readable on any colour."""
    ax.text(
        x,
        y,
        text,
        ha=ha,
        va="center",
        fontsize=size,
        color="white",
        fontweight="bold",
        path_effects=[matplotlib.patheffects.withStroke(linewidth=2, foreground="black")],
        zorder=6,
        clip_on=True,
    )


def _draw_walls(ax: Any, walls: np.ndarray | None, *, offset: float) -> None:
    """Paint wall cells in :data:`WALL_COLOR` (cell (r, c) spans [c+offset, c+offset+1])."""
    if walls is None or not np.any(walls):
        return
    rows, cols = walls.shape
    rgba = np.zeros((rows, cols, 4))
    rgba[walls] = matplotlib.colors.to_rgba(WALL_COLOR)
    ax.imshow(
        rgba,
        extent=(offset, cols + offset, rows + offset, offset),
        interpolation="nearest",
        zorder=4,
        aspect="auto",
    )


def _draw_landmarks(
    ax: Any, marks: Sequence[Landmark], shape: tuple[int, int], *, offset: float
) -> None:
    """Label cells; a label in the first or last column runs inwards from the grid's edge."""
    for m in marks:
        x, ha = m.col + offset + 0.5, "center"
        if m.col == 0 and shape[1] > 1:
            x, ha = m.col + offset + 0.05, "left"
        elif m.col == shape[1] - 1 and shape[1] > 1:
            x, ha = m.col + offset + 0.95, "right"
        _outlined(ax, x, m.row + offset + 0.5, m.label, ha=ha)


def plot_heatmap(
    values: np.ndarray,
    *,
    title: str = "",
    ax: Any = None,
    cmap: str = "viridis",
    scale: ColorScale | None = None,
    cbar_label: str = "",
    note: str = "",
    walls: np.ndarray | None = None,
    landmarks: Sequence[Landmark] = (),
) -> Figure:
    """Draw a (rows, cols) grid of values.

    Args:
        values: (rows, cols) array; NaN cells are drawn in :data:`NO_VALUE_COLOR`.
        title: axes title.
        ax: matplotlib axes to draw on (a new figure when None).
        cmap: colour map (a diverging one for signed differences).
        scale: colour range, and the statement drawn instead of false contrast when the
            map is flat (:func:`behavioral.report.levels.color_scale`); default the
            values' own range.
        cbar_label: colour bar label.
        note: small text under the grid (the scale's own note is added to it).
        walls: (rows, cols) bool cells drawn as walls (:data:`WALL_COLOR`), or None.
        landmarks: cells to label (doors, pots).

    Returns:
        The figure.
    """
    values = np.asarray(values, dtype=np.float64)
    rows, cols = values.shape
    fig, ax = _axes(ax, (max(2.5, 0.38 * cols + 1.2), max(1.6, 0.38 * rows + 0.6)))
    finite = values[np.isfinite(values)]
    if scale is None:
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        scale = ColorScale(lo, hi) if hi > lo else ColorScale(lo - 0.5, hi + 0.5)
    with matplotlib.rc_context(_RC):
        sns.heatmap(
            values,
            mask=~np.isfinite(values),
            cmap=cmap,
            vmin=scale.vmin,
            vmax=scale.vmax,
            square=True,
            xticklabels=False,
            yticklabels=False,
            linewidths=0.3,
            linecolor="white",
            cbar_kws={"label": cbar_label, "shrink": 0.8},
            ax=ax,
        )
        ax.set_facecolor(NO_VALUE_COLOR)
        cbar = ax.collections[0].colorbar if ax.collections else None
        if cbar is not None:
            cbar.formatter = matplotlib.ticker.ScalarFormatter(useOffset=False)
            cbar.update_ticks()
        _draw_walls(ax, walls, offset=0.0)
        _draw_landmarks(ax, landmarks, values.shape, offset=0.0)
        if scale.flat:
            ax.text(
                0.5,
                0.5,
                scale.flat.replace(": ", ":\n", 1),
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=8,
                zorder=7,
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9, "lw": 0.5},
            )
        ax.set_title(title, fontsize=9)
        text = "\n".join(x for x in (note, scale.note) if x)
        if text:
            ax.set_xlabel(text, fontsize=7)
    return fig


def plot_level(
    frame: np.ndarray | None,
    paths: Sequence[np.ndarray],
    *,
    grid_shape: tuple[int, int],
    known_cells: np.ndarray | None = None,
    title: str = "",
    ax: Any = None,
    landmarks: Sequence[Landmark] = (),
) -> Figure:
    """A level with trajectories drawn over it.

    Args:
        frame: (H, W, 3|4) image of the level (the env's rendering), or None to draw the
            grid of ``known_cells`` instead (others as walls).
        paths: one (n, 2) array of (row, col) cells per trajectory.
        grid_shape: (rows, cols); the frame is stretched over this grid.
        known_cells: (M, 2) cells the level's states occupy (drawn when there is no frame).
        title: axes title.
        ax: axes to draw on.
        landmarks: cells to label (doors, pots).

    Returns:
        The figure.
    """
    rows, cols = grid_shape
    fig, ax = _axes(ax, (max(2.5, 0.38 * cols + 0.6), max(1.6, 0.38 * rows + 0.6)))
    extent = (-0.5, cols - 0.5, rows - 0.5, -0.5)
    with matplotlib.rc_context(_RC):
        if frame is not None:
            ax.imshow(frame, extent=extent, interpolation="nearest")
        else:
            walls = np.ones((rows, cols), dtype=bool)
            if known_cells is not None and len(known_cells):
                walls[known_cells[:, 0], known_cells[:, 1]] = False
            ax.imshow(np.ones((rows, cols, 3)), extent=extent)
            _draw_walls(ax, walls, offset=-0.5)
        palette = sns.color_palette("husl", max(len(paths), 1))
        for i, path in enumerate(paths):
            path = np.asarray(path, dtype=np.float64)
            jitter = ((i * 0.618034) % 1.0 - 0.5) * 0.35
            y, x = path[:, 0] + jitter, path[:, 1] + jitter
            ax.plot(x, y, color=palette[i], lw=1.4, alpha=0.75, zorder=5)
            ax.plot(x[:1], y[:1], "o", color=palette[i], ms=4, mec="black", mew=0.5, zorder=5)
            ax.plot(x[-1:], y[-1:], "X", color=palette[i], ms=5, mec="black", mew=0.5, zorder=5)
        _draw_landmarks(ax, landmarks, grid_shape, offset=-0.5)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("o start, X end", fontsize=7)
    return fig


def plot_weights(
    names: Sequence[str],
    weights: np.ndarray,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    *,
    title: str = "recovered feature weights",
    note: str = "",
    ax: Any = None,
) -> Figure:
    """Horizontal bars of feature weights with confidence intervals.

    Args:
        names: K feature names.
        weights: (K,) weights.
        low, high: (K,) interval bounds, or None.
        title, note: axes title and a small note under the axis.
        ax: axes to draw on.

    Returns:
        The figure.
    """
    weights = np.asarray(weights, dtype=np.float64)
    K = weights.shape[0]
    fig, ax = _axes(ax, (5.0, 0.35 * K + 1.2))
    with matplotlib.rc_context(_RC):
        y = np.arange(K)
        colors = ["#2e7d32" if w >= 0 else "#c62828" for w in weights]
        ax.barh(y, weights, color=colors, alpha=0.8)
        if low is not None and high is not None:
            lo, hi = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
            ax.errorbar(
                weights, y, xerr=_err(weights, lo, hi), fmt="none", ecolor="black", capsize=3, lw=1
            )
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels(list(names), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(note or "weight", fontsize=8)
    return fig


def plot_candidates(
    names: Sequence[str],
    roles: Sequence[str],
    log_likelihood: np.ndarray,
    ll_low: np.ndarray,
    ll_high: np.ndarray,
    delta: np.ndarray,
    delta_low: np.ndarray,
    delta_high: np.ndarray,
    epic: np.ndarray,
    epic_low: np.ndarray,
    epic_high: np.ndarray,
    *,
    ll_random: float | None = None,
    ll_recovered: float | None = None,
    axes: Sequence[Any] | None = None,
) -> Figure:
    """Three panels, one row per candidate objective, with confidence intervals: mean
    log-likelihood per episode, its difference from the base objective's (what the
    verdict tests), and the EPIC distance to the recovered reward.

    Args:
        names, roles: n candidate names and roles (``"base"`` / ``"proxy"``).
        log_likelihood, ll_low, ll_high: (n,) mean log-likelihood per episode and CI.
        delta, delta_low, delta_high: (n,) log-likelihood minus the base's, and CI.
        epic, epic_low, epic_high: (n,) EPIC distance to the recovered reward and CI.
        ll_random: log-likelihood of the null model (random actions, or the living
            reward alone when the audit fits one): a reference line.
        ll_recovered: log-likelihood under the recovered reward (a reference line).
        axes: three axes to draw on.

    Returns:
        The figure.
    """
    n = len(names)
    if axes is None:
        fig = Figure(figsize=(12.0, 0.45 * n + 1.7), dpi=DPI)
        axes = fig.subplots(1, 3, sharey=True)
    else:
        fig = axes[0].figure
    colors = ["#1a7f37" if r == "base" else "#c62828" for r in roles]
    y = np.arange(n)
    panels = (
        (log_likelihood, ll_low, ll_high, "log-likelihood per episode\n(higher: explains more)"),
        (delta, delta_low, delta_high, "difference from the base objective\n(> 0: explains more)"),
        (epic, epic_low, epic_high, "EPIC distance to the recovered reward\n(lower: closer)"),
    )
    with matplotlib.rc_context(_RC):
        for ax, (mid, lo, hi, title) in zip(axes, panels):
            mid, lo, hi = (np.asarray(v, dtype=np.float64) for v in (mid, lo, hi))
            ax.errorbar(mid, y, xerr=_err(mid, lo, hi), fmt="none", ecolor="black", capsize=4, lw=1)
            ax.scatter(mid, y, c=colors, s=40, zorder=3)
            ax.set_title(title, fontsize=9)
            ax.grid(axis="x", alpha=0.3)
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter(useOffset=False))
        axes[0].set_yticks(y)
        axes[0].set_yticklabels([f"{nm} ({r})" for nm, r in zip(names, roles)], fontsize=8)
        axes[0].set_ylim(n - 0.5, -0.5)
        if ll_random is not None:
            axes[0].axvline(ll_random, color="grey", ls=":", lw=1, label="null model")
        if ll_recovered is not None:
            axes[0].axvline(ll_recovered, color="#1565c0", ls="--", lw=1, label="recovered reward")
        if ll_random is not None or ll_recovered is not None:
            axes[0].legend(fontsize=7, loc="best")
        spread = np.abs(
            np.concatenate([np.ravel(delta_low), np.ravel(delta_high), np.ravel(delta)])
        )
        spread = spread[np.isfinite(spread)]
        if not spread.size or spread.max() < 1e-6:  # identical fits: a 1-nat axis, not 1e-8
            axes[1].set_xlim(-1.0, 1.0)
        axes[1].axvline(0, color="black", lw=0.8)
        axes[2].set_xlim(-0.02, 1.02)
        fig.tight_layout()
    return fig


def plot_feature_profiles(profiles: pd.DataFrame, *, ax: Any = None) -> Figure:
    """Grouped bars: each reward's unit-norm weights on the named features.

    Args:
        profiles: DataFrame (features x reward names), e.g. from
            :func:`behavioral.report.levels.feature_profiles`.
        ax: axes to draw on.

    Returns:
        The figure.
    """
    K, R = profiles.shape
    fig, ax = _axes(ax, (6.0, 0.3 * K * max(R, 2) / 2 + 1.5))
    with matplotlib.rc_context(_RC):
        height = 0.8 / max(R, 1)
        y = np.arange(K)
        palette = sns.color_palette("colorblind", R)
        for j, col in enumerate(profiles.columns):
            ax.barh(
                y - 0.4 + height * (j + 0.5),
                profiles[col].to_numpy(dtype=np.float64),
                height=height,
                color=palette[j],
                label=str(col),
            )
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels([str(i) for i in profiles.index], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("weight on the feature (each reward scaled to unit norm)", fontsize=8)
        ax.set_title("which features each objective rewards", fontsize=10)
        ax.legend(fontsize=7, loc="best")
    return fig


def _shared_limits(low: np.ndarray, high: np.ndarray, means: np.ndarray) -> tuple[float, float]:
    """x-limits that include 0 and every interval, with a margin; (0, 1) when all are 0."""
    vals = np.concatenate([low, high, means, [0.0]])
    vals = vals[np.isfinite(vals)]
    lo, hi = float(vals.min()), float(vals.max())
    if hi - lo < 1e-12:
        return 0.0, 1.0
    pad = 0.12 * (hi - lo)
    return (lo - pad if lo < 0 else 0.0), (hi + pad if hi > 0 else 0.0)


def plot_outcomes(
    names: Sequence[str],
    means: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    groups: Sequence[str] | None = None,
    limits: Sequence[tuple[float, float] | None] | None = None,
    title: str = "episode outcomes (mean per episode, 95% CI)",
) -> Figure:
    """Bars with intervals, one panel per group of comparable quantities.

    Rows of one group (e.g. returns, counts, shares of episodes) share their panel's
    x-axis, so their bars compare at a glance. Every bar carries its value, and a marker
    at its end, so a zero is visibly a zero and not missing data.

    Args:
        names: n row labels.
        means, low, high: (n,) means and interval bounds.
        groups: n group titles (default: one group).
        limits: per group (in order of first appearance) fixed x-limits, or None for
            limits that include 0 and every interval.
        title: figure title.

    Returns:
        The figure.
    """
    means = np.asarray(means, dtype=np.float64)
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    groups = list(groups) if groups is not None else [""] * means.shape[0]
    order = list(dict.fromkeys(groups))
    sizes = [groups.count(g) for g in order]
    fig = Figure(figsize=(7.0, 0.34 * sum(sizes) + 0.75 * len(order) + 0.6), dpi=DPI)
    axes = fig.subplots(len(order), 1, squeeze=False, height_ratios=[s + 1.2 for s in sizes])[:, 0]
    with matplotlib.rc_context(_RC):
        for gi, (ax, group) in enumerate(zip(axes, order)):
            idx = [i for i, g in enumerate(groups) if g == group]
            m, lo, hi = means[idx], low[idx], high[idx]
            y = np.arange(len(idx))
            ax.barh(y, m, color=_BAR, alpha=0.85, height=0.6)
            ax.errorbar(m, y, xerr=_err(m, lo, hi), fmt="none", ecolor="black", capsize=3, lw=1)
            ax.plot(m, y, "D", color="#283593", ms=4, zorder=4)
            fixed = limits[gi] if limits is not None and gi < len(limits) else None
            xmin, xmax = fixed or _shared_limits(lo, hi, m)
            ax.set_xlim(xmin, xmax)
            ax.axvline(0, color="black", lw=0.8)
            for yi, v, h in zip(y, m, hi):
                right = h if np.isfinite(h) else v
                ax.text(
                    min(max(right, v, 0.0), xmax) + 0.01 * (xmax - xmin),
                    yi,
                    fmt_num(v),
                    va="center",
                    fontsize=7.5,
                    clip_on=False,
                )
            ax.set_yticks(y)
            ax.set_yticklabels([str(names[i]) for i in idx], fontsize=8.5)
            ax.set_ylim(len(idx) - 0.5, -0.5)
            ax.ticklabel_format(axis="x", useOffset=False, style="plain")
            ax.tick_params(axis="x", labelsize=7.5)
            ax.set_title(group, fontsize=9, loc="left")
            ax.grid(axis="x", alpha=0.3)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
    return fig


def _bars(
    ax: Any,
    x: np.ndarray,
    mid: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    width: float,
    color: Any,
) -> float:
    """Vertical bars with intervals, a line at each bar's top (visible at 0) and its value.

    A value below a millionth of the largest magnitude drawn (and of 1) is round-off of
    0 and is labelled 0. Returns the largest magnitude drawn (0 when every bar is 0)."""
    magnitude = np.abs(np.concatenate([mid, lo, hi]))
    magnitude = magnitude[np.isfinite(magnitude)]
    tol = 1e-6 * max(1.0, float(magnitude.max()) if magnitude.size else 0.0)
    mid = np.where(np.abs(mid) < tol, 0.0, mid)
    ax.bar(x, mid, width, color=color)
    ax.errorbar(x, mid, yerr=_err(mid, lo, hi), fmt="none", ecolor="black", capsize=3, lw=1)
    # the bar's own colour, thick, over the zero line: a zero bar is a visible stroke
    ax.hlines(mid, x - width / 2, x + width / 2, colors=color, lw=3.5, zorder=3)
    for xi, v, top, bottom in zip(x, mid, hi, lo):
        if np.isfinite(v):
            end = max(v, top) if v >= 0 else min(v, bottom)  # beyond the interval's cap
            ax.annotate(
                fmt_num(v),
                (xi, end if np.isfinite(end) else v),
                xytext=(0, 3 if v >= 0 else -3),
                textcoords="offset points",
                ha="center",
                va="bottom" if v >= 0 else "top",
                fontsize=7,
            )
    drawn = np.abs(
        np.concatenate(
            [mid, np.where(np.abs(lo) < tol, 0.0, lo), np.where(np.abs(hi) < tol, 0.0, hi)]
        )
    )
    drawn = drawn[np.isfinite(drawn)]
    return float(drawn.max()) if drawn.size else 0.0


def plot_split_comparison(
    labels: Sequence[str],
    verdicts: Sequence[str],
    returns: pd.DataFrame | None,
    advantages: pd.DataFrame,
) -> Figure:
    """One policy on several splits, at a glance.

    One panel per objective with its mean return per episode on each split (each on its
    own scale), and a last panel with each proxy's log-likelihood advantage over the base
    objective on each split. Every bar carries its value and a line at its top, so a
    zero shows as a zero.

    Args:
        labels: one label per audit (e.g. the split).
        verdicts: the audits' verdicts.
        returns: long table with columns ``label``, ``objective``, ``mean``, ``low``,
            ``high`` (return of each objective per episode), or None.
        advantages: long table with columns ``label``, ``proxy``, ``delta``, ``low``,
            ``high``.

    Returns:
        The figure.
    """
    objs = list(dict.fromkeys(returns["objective"])) if returns is not None else []
    panels = len(objs) + 1
    fig = Figure(figsize=(3.4 * panels, 3.4), dpi=DPI)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    x = np.arange(len(labels))
    palette = sns.color_palette("colorblind", max(len(labels), 1))
    xt = [f"{lab}\n({v})" for lab, v in zip(labels, verdicts)]

    def columns(table: pd.DataFrame, value: str) -> tuple[np.ndarray, ...]:
        sub = table.set_index("label").reindex(labels)
        return tuple(sub[c].to_numpy(dtype=np.float64) for c in (value, "low", "high"))

    extent = [0.0] * panels  # the largest magnitude drawn in each panel
    with matplotlib.rc_context(_RC):
        for i, (ax, obj) in enumerate(zip(axes, objs)):
            assert returns is not None
            mid, lo, hi = columns(returns[returns["objective"] == obj], "mean")
            extent[i] = _bars(ax, x, mid, lo, hi, 0.6, palette)
            ax.set_title(f"return of {obj} per episode", fontsize=9)
        ax = axes[-1]
        proxies = list(dict.fromkeys(advantages["proxy"]))
        width = 0.7 / max(len(proxies), 1)
        dark = sns.color_palette("dark", max(len(proxies), 1))
        for j, prox in enumerate(proxies):
            mid, lo, hi = columns(advantages[advantages["proxy"] == prox], "delta")
            drawn = _bars(ax, x - 0.35 + width * (j + 0.5), mid, lo, hi, width, dark[j])
            extent[-1] = max(extent[-1], drawn)
        if len(proxies) > 1:
            ax.legend(
                handles=[
                    matplotlib.patches.Patch(color=dark[j], label=str(p))
                    for j, p in enumerate(proxies)
                ],
                fontsize=7,
            )
        which = f" ({proxies[0]})" if len(proxies) == 1 else ""
        ax.set_title(
            f"proxy{which} log-likelihood advantage\nover the base objective (per episode)",
            fontsize=9,
        )
        for a, drawn in zip(axes, extent):
            a.axhline(0, color="black", lw=0.8)
            a.set_xticks(x)
            a.set_xticklabels(xt, fontsize=8)
            a.use_sticky_edges = False  # room below 0, so a zero bar's stroke shows whole
            a.margins(y=0.12)
            if drawn == 0.0:  # every bar is 0: a unit axis, not a 0.05 one
                a.set_ylim(-0.15, 1.0)
        fig.tight_layout()
    return fig


def plot_evidence(
    episodes: np.ndarray,
    log_e: np.ndarray,
    labels: Sequence[str],
    threshold: float,
    *,
    highlight: Sequence[str] = (),
    ax: Any = None,
) -> Figure:
    """Anytime-valid evidence against episodes: each test's log e-value after each batch,
    and the threshold a test must reach.

    Args:
        episodes: (B,) episodes spent after each batch.
        log_e: (B, T) log e-values of the T tests then.
        labels: T test labels (``"red_door>exit"``: red door explains better than exit).
        threshold: the log e-value at which a test rejects.
        highlight: labels drawn bold (the tests the verdict turned on).
        ax: axes to draw on.
    """
    fig, ax = _axes(ax, (6.0, 3.6))
    x = np.concatenate([[0], np.asarray(episodes, dtype=np.float64)])
    palette = sns.color_palette("tab10", max(len(labels), 1))
    with matplotlib.rc_context(_RC):
        for j, name in enumerate(labels):
            y = np.concatenate([[0.0], np.asarray(log_e)[:, j]])
            bold = name in highlight
            ax.plot(
                x, y, marker="o", ms=3.5 if bold else 2.5, lw=2.2 if bold else 1.0,
                alpha=1.0 if bold else 0.6, color=palette[j % len(palette)],
                label=name.replace(">", " > "),
            )  # fmt: skip
        ax.axhline(threshold, color="black", ls="--", lw=1)
        ax.text(  # at the left: the lines end at the right, where they cross it
            x[0],
            threshold,
            f" reject: log e = {fmt_num(threshold)}",
            va="bottom",
            ha="left",
            fontsize=7,
        )
        ax.xaxis.set_major_locator(
            matplotlib.ticker.MaxNLocator(integer=True)
        )  # episodes are counts
        ax.axhline(0.0, color="#999999", lw=0.6)
        ax.set_xlabel("episodes", fontsize=8)
        ax.set_ylabel("log e-value (nats)", fontsize=8)
        ax.set_title("evidence accumulated (anytime-valid)", fontsize=9)
        ax.legend(fontsize=7, frameon=False, loc="best")
        ax.tick_params(labelsize=7)
    return fig


def plot_expected_evidence(
    episodes: np.ndarray,
    chosen: np.ndarray,
    source: np.ndarray,
    *,
    source_label: str = "random levels of the source",
    ax: Any = None,
) -> Figure:
    """The evidence the audit expected to gather: cumulative expected log-likelihood ratio
    of the levels it played, against the same number of random levels of its source, both
    under the fits of each batch.

    Args:
        episodes: (B,) episodes after each batch.
        chosen: (B,) mean expected evidence per episode of the levels each batch played.
        source: (B,) the same for random levels of the source.
        source_label: the legend's name for ``source``.
        ax: axes to draw on.
    """
    fig, ax = _axes(ax, (6.0, 3.6))
    ep = np.asarray(episodes, dtype=np.float64)
    sizes = np.diff(np.concatenate([[0.0], ep]))
    x = np.concatenate([[0.0], ep])
    with matplotlib.rc_context(_RC):
        for values, label, color in (
            (chosen, "levels chosen by the audit", "#1a7f37"),
            (source, source_label, "#8250df"),
        ):
            y = np.concatenate([[0.0], np.cumsum(sizes * np.asarray(values, dtype=np.float64))])
            ax.plot(x, y, marker="o", ms=3, lw=1.8, color=color, label=label)
        ax.set_xlabel("episodes", fontsize=8)
        ax.set_ylabel("expected evidence, cumulative (nats)", fontsize=8)
        ax.set_title("expected evidence: chosen vs random levels", fontsize=9)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.legend(fontsize=7, frameon=False, loc="upper left")
        ax.tick_params(labelsize=7)
    return fig


def plot_frame(
    frame: np.ndarray | None, *, title: str = "", note: str = "", ax: Any = None
) -> Figure:
    """A rendered level as it is (or a blank panel saying it could not be rendered).

    Args:
        frame: (H, W, 3|4) image, or None.
        title: axes title; note: text under the image.
        ax: axes to draw on.
    """
    fig, ax = _axes(ax, (2.8, 3.0))
    with matplotlib.rc_context(_RC):
        if frame is None:
            ax.text(
                0.5, 0.5, "(not rendered)", ha="center", va="center", fontsize=8, color="#57606a"
            )
        else:
            ax.imshow(frame, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(note, fontsize=7)
    return fig
