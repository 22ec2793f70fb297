"""Reports of audits: reward heatmaps, candidate and weight plots, HTML and Markdown.

Three layers, each usable alone:

1. **Plotting functions** (``plot_*``) take arrays and an optional matplotlib ``ax`` and
   return the figure. They compute nothing.
2. **Views** (``level_layout``, ``cell_values``, ``visitation``, ``canonical_difference``,
   ``maxent_weight_intervals``, ``feature_profiles``, ...) turn an audit's models,
   rewards and demonstrations into the arrays the plots draw.
3. **Writers**: :func:`write_report` (called by :meth:`behavioral.auditing.Audit.save`) adds
   ``report.html`` (self-contained: images embedded as base64 data URIs, no external
   assets, every user-supplied name escaped), ``report.md`` and the PNGs to a directory;
   :func:`write_comparison_report` puts one policy's audits on several splits side by
   side; :func:`report_html` renders an audit in Jupyter.

How rewards are drawn on a grid. A reward array is (S,) -- ``r(s)``, collected on
leaving ``s`` -- or (S, A) -- ``r(s, a)``. A level's states map to grid cells through
``model.cells`` (several states share a cell when the state holds more than the agent's
position, as in WaterPlants, where it also holds the plants' and the floor's status). A
state reward is drawn at the state's cell; a state-action reward at the cell the step
*leads to* (where the door is entered, where the water lands), weighted by the transition
probability. Each cell shows the mean over the states or steps drawn there; steps taken
from absorbing states (after the episode ended) are left out. Models without cells are
laid out by state index.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import html
import io
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import matplotlib.patches
import matplotlib.ticker
import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.stats
import seaborn as sns
from matplotlib.figure import Figure

from behavioral import compare
from behavioral.files import replace_dir, write_atomic
from behavioral.tabular import TabularModel, absorbing_states

if TYPE_CHECKING:
    from behavioral.auditing import Audit
    from behavioral.irl.maxent import Demonstration, RecoveredReward

__all__ = [
    "SCOPE_CAVEAT",
    "VERDICT_MEANING",
    "LevelLayout",
    "canonical_difference",
    "cell_values",
    "feature_profiles",
    "level_frame",
    "level_layout",
    "maxent_weight_intervals",
    "plot_candidates",
    "plot_feature_profiles",
    "plot_heatmap",
    "plot_level",
    "plot_outcomes",
    "plot_split_comparison",
    "plot_weights",
    "report_html",
    "report_markdown",
    "save_png",
    "visitation",
    "write_comparison_report",
    "write_report",
]

#: What each verdict means, in one sentence (shown under the verdict).
VERDICT_MEANING = {
    "aligned": "The base objective explains the behaviour best, and every proxy is "
    "distinguishable from it on this data.",
    "proxy": "A named proxy explains the behaviour significantly better than the base "
    "objective: the policy pursues the proxy here.",
    "indistinguishable": "On this data the base objective and some proxy cannot be told "
    "apart; audit the policy on levels where they differ.",
    "unexplained": "No candidate objective explains the behaviour; the recovered reward is "
    "the best description of what it does.",
}

#: The scope caveat every report states.
SCOPE_CAVEAT = (
    "The audit measures the behavioural objective on the data it was given. A proxy that "
    "coincides with the base objective on every level in the data (EPIC distance 0 on its "
    "coverage) is invisible to any method: such a policy is reported as "
    "indistinguishable, never as aligned."
)

VERDICT_COLORS = {
    "aligned": "#1a7f37",
    "proxy": "#c62828",
    "indistinguishable": "#b26a00",
    "unexplained": "#57606a",
}
_DPI = 100
_RC = {"text.parse_math": False}  # user-supplied names may contain "$"


# ============================================================================ views


@dataclasses.dataclass(frozen=True)
class LevelLayout:
    """Where a level's states are drawn.

    Attributes:
        cells: (S, 2) int (row, col) of every state.
        shape: (rows, cols) of the grid.
        synthetic: True when the model has no cells and states are laid out by index.
    """

    cells: np.ndarray
    shape: tuple[int, int]
    synthetic: bool

    @property
    def n_cells(self) -> int:
        return self.shape[0] * self.shape[1]

    def cell_matrix(self) -> sp.csr_array:
        """(S, rows*cols) one-hot map of each state to its cell."""
        S = self.cells.shape[0]
        flat = self.cells[:, 0] * self.shape[1] + self.cells[:, 1]
        return sp.csr_array((np.ones(S), (np.arange(S), flat)), shape=(S, self.n_cells))


def level_layout(model: TabularModel, grid_shape: tuple[int, int] | None = None) -> LevelLayout:
    """The grid layout of a level: its ``cells``, or states by index when it has none.

    Args:
        model: the level.
        grid_shape: (rows, cols) of the grid the cells live in (e.g. the observation's
            spatial shape); default one more than the largest row and column.
    """
    if model.cells is not None:
        cells = np.asarray(model.cells, dtype=np.int64)
        shape = (int(cells[:, 0].max()) + 1, int(cells[:, 1].max()) + 1)
        if grid_shape is not None and grid_shape[0] >= shape[0] and grid_shape[1] >= shape[1]:
            shape = (int(grid_shape[0]), int(grid_shape[1]))
        return LevelLayout(cells, shape, False)
    S = model.n_states
    cols = S if S <= 40 else math.ceil(math.sqrt(S))
    idx = np.arange(S)
    return LevelLayout(
        np.stack([idx // cols, idx % cols], axis=1), (math.ceil(S / cols), cols), True
    )


def _grid_shape(model: TabularModel) -> tuple[int, int] | None:
    obs = model.observations
    if obs is not None and np.ndim(obs) == 4:
        return int(obs.shape[2]), int(obs.shape[3])
    return None


def cell_values(
    model: TabularModel, reward: np.ndarray, layout: LevelLayout, *, arrival: bool = True
) -> np.ndarray:
    """A reward drawn on the grid (see the module docstring).

    Args:
        model: the level.
        reward: (S,) or (S, A) reward.
        layout: from :func:`level_layout`.
        arrival: draw a state-action reward at the cell each step leads to (mean). False:
            at the state it is taken in, as the best action's reward (max over actions) --
            used when states have no cells, where one absorbing state may end several
            different steps.

    Returns:
        (rows, cols) mean reward per cell; NaN where nothing is drawn.
    """
    r = np.asarray(reward, dtype=np.float64)
    C = layout.cell_matrix()
    live = (~absorbing_states(model)).astype(np.float64)
    if r.ndim == 2 and not arrival:
        r = r.max(axis=1)
    if r.ndim == 1:
        total = (r * live) @ C
        count = live @ C
    else:
        A = model.n_actions
        w = np.repeat(live, A)  # rows (s, a) of non-absorbing s
        arrive = model.transitions.T @ (w * r.reshape(-1))  # (S,) sum of p * r into s'
        count_s = model.transitions.T @ w
        total = arrive @ C
        count = count_s @ C
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
    return out.reshape(layout.shape)


def visitation(demonstrations: Sequence[Demonstration], layout: LevelLayout) -> np.ndarray:
    """(rows, cols) number of visits of the demonstrations (of one level) to each cell.

    Every time step counts once, including each episode's last state.
    """
    counts = np.zeros(layout.n_cells)
    for d in demonstrations:
        cells = layout.cells[d.states]
        np.add.at(counts, cells[:, 0] * layout.shape[1] + cells[:, 1], 1.0)
    return counts.reshape(layout.shape)


def _feasible_triples(model: TabularModel) -> tuple[np.ndarray, ...]:
    """(s, a, s', p) of every transition out of a non-absorbing state."""
    T = sp.csr_array(model.transitions)
    A = model.n_actions
    rows = np.repeat(np.arange(T.shape[0]), np.diff(T.indptr))
    s, a = rows // A, rows % A
    keep = ~absorbing_states(model)[s] & (T.data > 0)
    return s[keep], a[keep], T.indices[keep], T.data[keep]


def canonical_difference(
    model: TabularModel,
    recovered: np.ndarray,
    base: np.ndarray,
    layout: LevelLayout,
    *,
    arrival: bool = True,
) -> np.ndarray:
    """Where the recovered reward parts from the base objective on one level.

    Both rewards are EPIC-canonicalised (``behavioral.compare.canonical_values``, uniform
    state and action distributions on this level), so potential shaping, shifts and
    positive scaling do not show, then standardised to mean 0 and variance 1 over the
    level's transitions (every action of every non-absorbing state, weighted by its
    probability): the Z-scores of EPIC, whose root-mean-square difference is twice the
    EPIC distance on that coverage. ``Z_recovered - Z_base`` is drawn at the cell each
    transition leads to (mean weighted by transition probability). A reward that is
    constant on the level (equivalent to 0) has Z = 0.

    Args:
        model: the level.
        recovered, base: (S,) or (S, A) rewards on the level.
        layout: from :func:`level_layout`.
        arrival: draw each transition at the cell it leads to (else where it starts).

    Returns:
        (rows, cols) array; positive where the recovered reward rewards arriving more than
        the base objective does; NaN where nothing is drawn.
    """
    s, a, t, p = _feasible_triples(model)
    A, gamma = model.n_actions, model.discount
    w = p / p.sum()

    def z(reward: np.ndarray) -> np.ndarray:
        vals = compare.canonical_values(reward, s, a, t, discount=gamma, n_actions=A)
        mean = float(w @ vals)
        std = math.sqrt(max(float(w @ (vals - mean) ** 2), 0.0))
        if std <= 1e-9 * max(float(np.max(np.abs(vals))), 1e-300):
            return np.zeros_like(vals)
        return (vals - mean) / std

    diff = z(np.asarray(recovered, dtype=np.float64)) - z(np.asarray(base, dtype=np.float64))
    at = t if arrival else s
    flat = layout.cells[at, 0] * layout.shape[1] + layout.cells[at, 1]
    total = np.bincount(flat, weights=p * diff, minlength=layout.n_cells)
    count = np.bincount(flat, weights=p, minlength=layout.n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
    return out.reshape(layout.shape)


def maxent_weight_intervals(
    models: Sequence[TabularModel],
    demonstrations: Sequence[Demonstration],
    recovered: RecoveredReward,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame | None:
    """Confidence intervals of MaxEnt feature weights from the Fisher information.

    The Hessian of the (regularised) MaxEnt dual ``-g`` at the fitted weights is the
    mean over episodes of the covariance of discounted feature counts under the fitted
    policy, plus ``l2 * I``: the expected Fisher information per episode. We take it by
    central finite differences of the exact gradient (2K gradient evaluations) and use
    the Laplace approximation ``theta ~ N(theta_hat, (N H)^-1)``. It is asymptotic: it
    assumes the model class is right and does not resample episodes (a refitting
    bootstrap would, at B times the cost of the fit).

    Returns:
        DataFrame indexed by feature name with ``weight``, ``se``, ``low``, ``high``;
        None when the reward was not fitted by MaxEnt on named model features.
    """
    from behavioral.irl.maxent import MaxEntObjective

    if recovered.method != "maxent" or recovered.feature_mode != "model":
        return None
    if len(recovered.feature_names) > 64:
        return None
    problem = MaxEntObjective(list(models), list(demonstrations), features="model", l2=recovered.l2)
    theta = np.asarray(recovered.weights, dtype=np.float64)
    K, N = theta.shape[0], problem.n_demos
    hess = np.zeros((K, K))
    for k in range(K):
        h = 1e-4 * max(1.0, abs(theta[k]))
        e = np.zeros(K)
        e[k] = h
        g_plus = problem.value_and_grad(theta + e)[1]
        g_minus = problem.value_and_grad(theta - e)[1]
        hess[:, k] = (g_plus - g_minus) / (2 * h)
    hess = 0.5 * (hess + hess.T)
    cov = np.linalg.pinv(N * hess, hermitian=True)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    zq = float(scipy.stats.norm.ppf(0.5 + confidence / 2))
    return pd.DataFrame(
        {"weight": theta, "se": se, "low": theta - zq * se, "high": theta + zq * se},
        index=pd.Index(recovered.feature_names, name="feature"),
    )


def feature_profiles(
    models: Sequence[TabularModel],
    rewards: Mapping[str, Sequence[np.ndarray]],
    *,
    max_levels: int = 4,
    rtol: float = 1e-6,
) -> pd.DataFrame | None:
    """Each reward written as weights on the levels' named features, scaled to unit norm.

    Solves ``features @ w = reward`` by least squares over (at most ``max_levels``)
    levels. A reward that is not (up to ``rtol``) linear in the features gets NaN.

    Args:
        models: the levels (with the same ``feature_names``).
        rewards: name -> one (S,) or (S, A) array per level.

    Returns:
        DataFrame (features x reward names) of unit-norm weight vectors, or None when
        the models have no features.
    """
    use = list(models)[:max_levels]
    if not use or any(m.features is None for m in use):
        return None
    names = use[0].feature_names
    if any(m.feature_names != names for m in use):
        return None
    blocks = []
    for m in use:
        f = m.features
        blocks.append(
            f.reshape(m.n_states * m.n_actions, -1)
            if f.ndim == 3
            else np.repeat(f, m.n_actions, axis=0)
        )
    F = np.concatenate(blocks)
    live = np.concatenate([np.repeat(~absorbing_states(m), m.n_actions) for m in use])
    F = F[live]
    out = {}
    for name, arrays in rewards.items():
        y = np.concatenate(
            [
                (r if r.ndim == 2 else np.repeat(r[:, None], m.n_actions, axis=1)).reshape(-1)
                for m, r in zip(use, arrays)
            ]
        )[live]
        w, *_ = np.linalg.lstsq(F, y, rcond=None)
        resid = float(np.max(np.abs(F @ w - y))) if y.size else 0.0
        norm = float(np.linalg.norm(w))
        if resid > rtol * max(1.0, float(np.max(np.abs(y)))) or norm == 0.0:
            out[name] = np.full(len(names), np.nan)
        else:
            out[name] = w / norm
    return pd.DataFrame(out, index=pd.Index(names, name="feature"))


def level_frame(audit: Audit, level: int) -> np.ndarray | None:
    """The env's ``rgb_array`` frame at the start of the first episode on ``level``.

    The env is re-made from the audit's metadata (``env_id``, ``env_kwargs``) and reset
    with the episode's recorded ``reset_seed``. None when that is not possible (no env id
    or episodes table, an env without ``rgb_array`` rendering, or a render that fails).
    """
    meta = audit.metadata
    env_id = meta.get("env_id")
    if not env_id or audit.episodes is None or "reset_seed" not in audit.episodes.columns:
        return None
    first = next((i for i, d in enumerate(audit.demonstrations) if d.level == level), None)
    if first is None:
        return None
    import gymnasium as gym

    try:
        env = gym.make(env_id, render_mode="rgb_array", **dict(meta.get("env_kwargs") or {}))
    except Exception:  # the report must not fail because the env cannot be re-made
        return None
    try:
        env.reset(seed=int(audit.episodes["reset_seed"].tolist()[first]))
        frame = env.render()
    except Exception:  # an env whose rendering fails: draw the layout instead
        return None
    finally:
        env.close()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] not in (3, 4):
        return None
    return frame


# ============================================================================ plots


def _err(mid: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """(2, n) error-bar lengths; an interval that excludes its point estimate (possible
    for percentile bootstrap intervals) is drawn up to the point, not negative."""
    mid, low, high = (np.asarray(v, dtype=np.float64) for v in (mid, low, high))
    return np.stack([np.maximum(mid - low, 0.0), np.maximum(high - mid, 0.0)])


def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Figure, Any]:
    if ax is None:
        fig = Figure(figsize=figsize, dpi=_DPI)
        return fig, fig.subplots()
    return ax.figure, ax


def plot_heatmap(
    values: np.ndarray,
    *,
    title: str = "",
    ax: Any = None,
    cmap: str = "viridis",
    center: float | None = None,
    cbar_label: str = "",
    note: str = "",
) -> Figure:
    """Draw a (rows, cols) grid of values; NaN cells are drawn as grey background.

    Args:
        values: (rows, cols) array.
        title: axes title.
        ax: matplotlib axes to draw on (a new figure when None).
        cmap: colour map (a diverging one with ``center`` for signed differences).
        center: value at the centre of the colour map, or None.
        cbar_label: colour bar label.
        note: small text under the grid.

    Returns:
        The figure.
    """
    values = np.asarray(values, dtype=np.float64)
    rows, cols = values.shape
    fig, ax = _axes(ax, (max(2.5, 0.38 * cols + 1.2), max(1.6, 0.38 * rows + 0.6)))
    with matplotlib.rc_context(_RC):
        finite = values[np.isfinite(values)]
        kwargs: dict[str, Any] = {}
        if center is not None and finite.size:
            lim = float(np.max(np.abs(finite - center))) or 1.0
            kwargs.update(vmin=center - lim, vmax=center + lim)
        elif finite.size and finite.min() == finite.max():
            kwargs.update(vmin=finite.min() - 0.5, vmax=finite.max() + 0.5)
        sns.heatmap(
            values,
            mask=~np.isfinite(values),
            cmap=cmap,
            center=center,
            square=True,
            xticklabels=False,
            yticklabels=False,
            linewidths=0.3,
            linecolor="white",
            cbar_kws={"label": cbar_label, "shrink": 0.8},
            ax=ax,
            **kwargs,
        )
        ax.set_facecolor("#bdbdbd")
        cbar = ax.collections[0].colorbar if ax.collections else None
        if cbar is not None:
            cbar.formatter = matplotlib.ticker.ScalarFormatter(useOffset=False)
            cbar.update_ticks()
        ax.set_title(title, fontsize=9)
        if note:
            ax.set_xlabel(note, fontsize=7)
    return fig


def plot_level(
    frame: np.ndarray | None,
    paths: Sequence[np.ndarray],
    *,
    grid_shape: tuple[int, int],
    known_cells: np.ndarray | None = None,
    title: str = "",
    ax: Any = None,
) -> Figure:
    """A level with trajectories drawn over it.

    Args:
        frame: (H, W, 3|4) image of the level (the env's rendering), or None to draw the
            grid of ``known_cells`` instead.
        paths: one (n, 2) array of (row, col) cells per trajectory.
        grid_shape: (rows, cols); the frame is stretched over this grid.
        known_cells: (M, 2) cells the level's states occupy (drawn light when there is no
            frame).
        title: axes title.
        ax: axes to draw on.

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
            grid = np.zeros((rows, cols))
            if known_cells is not None and len(known_cells):
                grid[known_cells[:, 0], known_cells[:, 1]] = 1.0
            ax.imshow(grid, extent=extent, cmap="Greys_r", vmin=-0.6, vmax=1.2)
        palette = sns.color_palette("husl", max(len(paths), 1))
        for i, path in enumerate(paths):
            path = np.asarray(path, dtype=np.float64)
            jitter = ((i * 0.618034) % 1.0 - 0.5) * 0.35
            y, x = path[:, 0] + jitter, path[:, 1] + jitter
            ax.plot(x, y, color=palette[i], lw=1.4, alpha=0.75)
            ax.plot(x[:1], y[:1], "o", color=palette[i], ms=4, mec="black", mew=0.5)
            ax.plot(x[-1:], y[-1:], "X", color=palette[i], ms=5, mec="black", mew=0.5)
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
                weights,
                y,
                xerr=_err(weights, lo, hi),
                fmt="none",
                ecolor="black",
                capsize=3,
                lw=1,
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
        fig = Figure(figsize=(12.0, 0.45 * n + 1.7), dpi=_DPI)
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
        axes[0].set_yticks(y)
        axes[0].set_yticklabels([f"{nm} ({r})" for nm, r in zip(names, roles)], fontsize=8)
        axes[0].set_ylim(n - 0.5, -0.5)
        if ll_random is not None:
            axes[0].axvline(ll_random, color="grey", ls=":", lw=1, label="null model")
        if ll_recovered is not None:
            axes[0].axvline(ll_recovered, color="#1565c0", ls="--", lw=1, label="recovered reward")
        if ll_random is not None or ll_recovered is not None:
            axes[0].legend(fontsize=7, loc="best")
        axes[1].axvline(0, color="black", lw=0.8)
        axes[2].set_xlim(-0.02, 1.02)
        fig.tight_layout()
    return fig


def plot_feature_profiles(profiles: pd.DataFrame, *, ax: Any = None) -> Figure:
    """Grouped bars: each reward's unit-norm weights on the named features.

    Args:
        profiles: DataFrame (features x reward names), e.g. from :func:`feature_profiles`.
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


def plot_outcomes(
    names: Sequence[str],
    means: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    title: str = "episode outcomes (mean per episode, 95% CI)",
    axes: Sequence[Any] | None = None,
) -> Figure:
    """Small multiples: one bar with its interval per quantity, each on its own scale
    (returns of different objectives can differ by orders of magnitude).

    Args:
        names: n labels.
        means, low, high: (n,) means and interval bounds.
        title: figure title.
        axes: n axes to draw on.

    Returns:
        The figure.
    """
    means = np.asarray(means, dtype=np.float64)
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    n = means.shape[0]
    if axes is None:
        fig = Figure(figsize=(6.0, 0.62 * n + 0.9), dpi=_DPI)
        axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    else:
        fig = axes[0].figure
    with matplotlib.rc_context(_RC):
        for i, ax in enumerate(axes):
            ax.barh([0], [means[i]], color="#5c6bc0", alpha=0.85, height=0.6)
            ax.errorbar(
                [means[i]],
                [0],
                xerr=_err(means[i : i + 1], low[i : i + 1], high[i : i + 1]),
                fmt="none",
                ecolor="black",
                capsize=3,
                lw=1,
            )
            lim = max(abs(low[i]), abs(high[i]), abs(means[i])) * 1.15
            if not lim > 1e-9:  # all zero: a unit axis, not a 1e-11 one
                lim = 1.0
            ax.set_xlim(
                min(0.0, -lim if means[i] < 0 or low[i] < 0 else 0.0),
                lim if high[i] > 0 else 0.05 * lim,
            )
            ax.ticklabel_format(axis="x", useOffset=False, style="plain")
            ax.axvline(0, color="black", lw=0.8)
            ax.set_yticks([0])
            ax.set_yticklabels([str(names[i])], fontsize=8)
            ax.tick_params(axis="x", labelsize=7)
            ax.text(1.01, 0.5, _num(means[i]), transform=ax.transAxes, va="center", fontsize=8)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
    return fig


def plot_split_comparison(
    labels: Sequence[str],
    verdicts: Sequence[str],
    returns: pd.DataFrame | None,
    advantages: pd.DataFrame,
) -> Figure:
    """One policy on several splits, at a glance.

    One panel per objective with its mean return per episode on each split (each on its
    own scale), and a last panel with each proxy's log-likelihood advantage over the base
    objective on each split.

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
    fig = Figure(figsize=(3.4 * panels, 3.3), dpi=_DPI)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    x = np.arange(len(labels))
    palette = sns.color_palette("colorblind", max(len(labels), 1))
    xt = [f"{lab}\n({v})" for lab, v in zip(labels, verdicts)]

    def bars(
        ax: Any, table: pd.DataFrame, value: str, offset: float, width: float, color: Any
    ) -> None:
        sub = table.set_index("label").reindex(labels)
        mid = sub[value].to_numpy(dtype=np.float64)
        lo, hi = sub["low"].to_numpy(dtype=np.float64), sub["high"].to_numpy(dtype=np.float64)
        ax.bar(x + offset, mid, width, color=color)
        ax.errorbar(
            x + offset, mid, yerr=_err(mid, lo, hi), fmt="none", ecolor="black", capsize=3, lw=1
        )

    with matplotlib.rc_context(_RC):
        for ax, obj in zip(axes, objs):
            assert returns is not None
            bars(ax, returns[returns["objective"] == obj], "mean", 0.0, 0.6, palette)
            ax.set_title(f"return of {obj} per episode", fontsize=9)
        ax = axes[-1]
        proxies = list(dict.fromkeys(advantages["proxy"]))
        width = 0.7 / max(len(proxies), 1)
        dark = sns.color_palette("dark", max(len(proxies), 1))
        for j, prox in enumerate(proxies):
            bars(
                ax,
                advantages[advantages["proxy"] == prox],
                "delta",
                -0.35 + width * (j + 0.5),
                width,
                dark[j],
            )
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
        for a in axes:
            a.axhline(0, color="black", lw=0.8)
            a.set_xticks(x)
            a.set_xticklabels(xt, fontsize=8)
        fig.tight_layout()
    return fig


# ============================================================================ figures of an audit


def _count(shown: int, total: int) -> str:
    unit = "episode" if total == 1 else "episodes"
    return f"{total} {unit}" if shown == total else f"{shown} of {total} {unit}"


def _levels_to_show(audit: Audit, max_levels: int) -> list[int]:
    counts = np.bincount([d.level for d in audit.demonstrations], minlength=len(audit.levels))
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    return [i for i in order if counts[i] > 0][:max_levels]


def _level_figure(audit: Audit, level: int) -> Figure:
    """All heatmaps of one level in one figure."""
    model = audit.levels[level]
    frame = level_frame(audit, level)
    layout = level_layout(model, _grid_shape(model))
    demos = [d for d in audit.demonstrations if d.level == level]
    recovered = np.asarray(audit.recovered.rewards[level], dtype=np.float64)
    base = np.asarray(audit.candidates[audit.base][level], dtype=np.float64)
    panels: list[tuple[str, Any]] = [("level", None), ("coverage", None), ("base", audit.base)]
    panels += [("proxy", p) for p in audit.proxies]
    panels += [("recovered", None), ("difference", None)]
    ncols = 3
    nrows = math.ceil(len(panels) / ncols)
    rows, cols = layout.shape
    cell_in = min(0.42, 4.2 / max(cols, 1))
    w = max(3.0, cols * cell_in + 1.3)
    h = max(2.0, rows * cell_in + 0.9)
    fig = Figure(figsize=(w * ncols, h * nrows), dpi=_DPI)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    arrival = not layout.synthetic
    state_action = any(
        np.ndim(r[level]) == 2 for r in (audit.recovered.rewards, *audit.candidates.values())
    )
    where = ""
    if state_action:
        where = "drawn where each step leads" if arrival else "best action in each state"
    many = bool(
        np.bincount(
            layout.cells[:, 0] * layout.shape[1] + layout.cells[:, 1], minlength=layout.n_cells
        ).max()
        > 2
    )
    agg = "mean over states in a cell" if many else ""
    note = "; ".join(x for x in (where, agg) if x)
    if layout.synthetic:
        note = "; ".join(x for x in ("states by index (no grid cells)", note) if x)
    for ax, (kind, name) in zip(axes.flat, panels):
        if kind == "level":
            paths = [layout.cells[d.states] for d in demos[:20]]
            plot_level(
                frame,
                paths,
                grid_shape=layout.shape,
                known_cells=layout.cells,
                title=f"level {level}: {_count(min(len(demos), 20), len(demos))}",
                ax=ax,
            )
        elif kind == "coverage":
            plot_heatmap(
                visitation(demos, layout),
                title="coverage: visits of the data",
                cmap="rocket_r",
                cbar_label="visits",
                ax=ax,
            )
        elif kind in ("base", "proxy"):
            plot_heatmap(
                cell_values(model, audit.candidates[name][level], layout, arrival=arrival),
                title=f"{kind} objective: {name}",
                cmap="viridis",
                note=note,
                ax=ax,
            )
        elif kind == "recovered":
            plot_heatmap(
                cell_values(model, recovered, layout, arrival=arrival),
                title=f"recovered reward ({audit.recovered.method})",
                cmap="viridis",
                note=note,
                ax=ax,
            )
        else:
            plot_heatmap(
                canonical_difference(model, recovered, base, layout, arrival=arrival),
                title=f"recovered - {audit.base} (canonicalised, standardised)",
                cmap="RdBu_r",
                center=0.0,
                cbar_label="Z difference",
                note="red: recovered rewards "
                + ("arriving here" if arrival else "steps from here")
                + " more",
                ax=ax,
            )
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def _episode_outcomes(episodes: pd.DataFrame | None) -> pd.DataFrame | None:
    """Per-episode means with normal 95% CIs of returns and numeric outcome columns."""
    if episodes is None or not len(episodes):
        return None
    cols = [
        c
        for c in episodes.columns
        if (c.startswith("return.") or c.startswith("outcome."))
        and pd.api.types.is_numeric_dtype(episodes[c])
        and not pd.api.types.is_bool_dtype(episodes[c])
    ]
    rows = []
    n = len(episodes)
    for c in cols:
        x = episodes[c].to_numpy(dtype=np.float64)
        x = x[np.isfinite(x)]
        if not x.size:
            continue
        m = float(x.mean())
        half = 1.96 * float(x.std(ddof=1)) / math.sqrt(x.size) if x.size > 1 else 0.0
        rows.append({"name": c, "mean": m, "low": m - half, "high": m + half, "n": n})
    for c in episodes.columns:  # categorical outcome: share of each value
        if c == "outcome" and not pd.api.types.is_numeric_dtype(episodes[c]):
            shares = episodes[c].astype(str).value_counts(normalize=True)
            for val, p in shares.items():
                half = 1.96 * math.sqrt(p * (1 - p) / n)
                rows.append(
                    {
                        "name": f"outcome = {val}",
                        "mean": float(p),
                        "low": p - half,
                        "high": p + half,
                        "n": n,
                    }
                )
    return pd.DataFrame(rows) if rows else None


def audit_figures(audit: Audit, *, max_levels: int = 3) -> tuple[dict[str, Figure], dict[str, str]]:
    """Every figure of an audit's report.

    Returns:
        (file name -> figure, file name -> caption). File names are fixed (``levelN.png``
        etc.), never derived from user-supplied names.
    """
    figs: dict[str, Figure] = {}
    captions: dict[str, str] = {}
    t = audit.table
    figs["candidates.png"] = plot_candidates(
        [str(i) for i in t.index],
        list(t["role"]),
        t["log_likelihood"].to_numpy(),
        t["ll_low"].to_numpy(),
        t["ll_high"].to_numpy(),
        t["delta_vs_base"].to_numpy(),
        t["delta_low"].to_numpy(),
        t["delta_high"].to_numpy(),
        t["epic_to_recovered"].to_numpy(),
        t["epic_low"].to_numpy(),
        t["epic_high"].to_numpy(),
        ll_random=_null_ll(t),
        ll_recovered=float(audit.recovered.log_likelihood),
    )
    conf = float(audit.evidence.confidence)
    captions["candidates.png"] = (
        f"Each candidate objective at its fitted inverse temperature: mean log-likelihood of "
        f"the demonstrated actions per episode, and EPIC distance to the recovered reward on "
        f"the data's coverage; {conf:.0%} bootstrap intervals over episodes."
    )
    ci = maxent_weight_intervals(
        audit.levels, audit.demonstrations, audit.recovered, confidence=conf
    )
    rec = audit.recovered
    if ci is not None:
        figs["weights.png"] = plot_weights(
            list(ci.index),
            ci["weight"].to_numpy(),
            ci["low"].to_numpy(),
            ci["high"].to_numpy(),
            note=f"weight ({conf:.0%} CI: Laplace approximation, Fisher information of the MaxEnt fit)",
        )
        captions["weights.png"] = (
            "The recovered reward's weight on each named feature. Intervals come from the "
            "Fisher information of the MaxEnt fit (its Hessian by finite differences of the "
            "exact gradient), not from refitting on resampled episodes; they include the "
            f"L2 penalty (l2 = {rec.l2:g})."
        )
    elif len(rec.feature_names) <= 64 and rec.feature_mode == "model":
        figs["weights.png"] = plot_weights(list(rec.feature_names), np.asarray(rec.weights))
        captions["weights.png"] = (
            "The recovered reward's weight on each named feature (no intervals)."
        )
    prof = None
    if rec.feature_mode == "model":
        rewards = {
            "recovered": list(rec.rewards),
            **{k: list(v) for k, v in audit.candidates.items()},
        }
        prof = feature_profiles(audit.levels, rewards)
    if prof is not None and prof.notna().any().any():
        figs["features.png"] = plot_feature_profiles(prof)
        captions["features.png"] = (
            "Each objective written as weights on the level's named features (least squares, "
            "unit norm): a per-feature view that does not need a grid map. An objective whose "
            "bars match the recovered reward's describes the behaviour."
        )
    out = _episode_outcomes(audit.episodes)
    if out is not None:
        figs["outcomes.png"] = plot_outcomes(
            list(out["name"]),
            out["mean"].to_numpy(),
            out["low"].to_numpy(),
            out["high"].to_numpy(),
        )
        captions["outcomes.png"] = (
            "What the episodes achieved: the return of every objective and the outcomes the "
            "env reports, mean per episode with normal 95% intervals."
        )
    for lvl in _levels_to_show(audit, max_levels):
        name = f"level{lvl}.png"
        figs[name] = _level_figure(audit, lvl)
        n = sum(1 for d in audit.demonstrations if d.level == lvl)
        captions[name] = (
            f"Level {lvl} ({n} episode{'s' if n != 1 else ''}): the level with trajectories, where the data goes, "
            "the base objective, each proxy and the recovered reward on the grid, and where "
            "the recovered reward parts from the base objective after EPIC canonicalisation."
        )
    return figs, captions


# ============================================================================ text


def _sentence(text: str) -> str:
    """``text`` with a capital first letter and a final full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _md(x: Any) -> str:
    """Escape inline text for Markdown (and for the HTML that renderers pass through).

    Only what can start markup inside a line is escaped -- emphasis, code, links and
    images (their brackets), table cells -- plus a block marker at the start, so the
    raw file stays readable: ``water_stuff`` becomes ``water\\_stuff``, not more.
    """
    s = html.escape(str(x), quote=False).replace("\n", " ")
    for ch in "\\`*_[]|":
        s = s.replace(ch, "\\" + ch)
    head = s.lstrip("0123456789")
    if s[:1] in ("#", "+", "-"):  # a heading or a list item
        s = "\\" + s
    elif head != s and head[:1] in (".", ")") and head[1:2] in ("", " "):  # "1. ": a list item
        k = len(s) - len(head)
        s = s[:k] + "\\" + s[k:]
    return s


def _code(x: Any) -> str:
    """A name as a Markdown code span when it is a plain identifier, else escaped text."""
    s = str(x)
    return f"`{s}`" if re.fullmatch(r"[\w.\-]+", s) else _md(s)


def _num(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return "n/a"
    if abs(v) < 1e-12:  # round-off of an exact zero
        return "0"
    return f"{v:.{digits}g}"


#: The nuisances fitted with each candidate: (table column, table header, note).
_NUISANCES = (
    (
        "living_reward",
        "living reward",
        "living reward: a per-step reward fitted with each candidate (urgency), so that an "
        "objective pursued hastily or leisurely is still recognised.",
    ),
    ("discount", "discount", "discount: the time preference that fitted best."),
    (
        "lapse",
        "lapse",
        "lapse: the fitted chance of a uniformly random action (fitted only when the data "
        "show lapses), so that a noisy or ε-greedy agent is not misread.",
    ),
)


def _table(audit: Audit) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of the candidate table (optional columns when present)."""
    t = audit.table
    extra = [(col, header) for col, header, _ in _NUISANCES if col in t.columns]
    head = ["objective", "role", "β", *(header for _, header in extra)]
    head += [
        "log-lik / episode [CI]",
        "Δ vs base [CI]",
        "EPIC to recovered [CI]",
        "EPIC to base",
        "explained",
    ]
    rows = []
    for name, r in t.iterrows():
        row = [str(name), str(r["role"]), _num(r["beta"])]
        row += [_num(r[col]) for col, _ in extra]
        row += [
            f"{_num(r['log_likelihood'])} [{_num(r['ll_low'])}, {_num(r['ll_high'])}]",
            f"{_num(r['delta_vs_base'])} [{_num(r['delta_low'])}, {_num(r['delta_high'])}]",
            f"{_num(r['epic_to_recovered'])} [{_num(r['epic_low'])}, {_num(r['epic_high'])}]",
            _num(r["epic_to_base"]),
            _num(r["explained"]),
        ]
        rows.append(row)
    return head, rows


def _table_note(audit: Audit) -> str:
    conf = float(audit.evidence.confidence)
    notes = "".join(" " + note for col, _, note in _NUISANCES if col in audit.table.columns)
    return (
        f"β: fitted inverse temperature.{notes} Intervals: {conf:.0%} bootstrap over "
        "episodes. Δ vs base: log-likelihood per episode minus the base objective's. "
        "explained: the fraction of the recovered reward's likelihood gain over the null "
        "model that the candidate reaches."
    )


def _null_ll(table: pd.DataFrame) -> float | None:
    for col in ("ll_null", "ll_random"):
        if col in table.columns:
            return float(table[col].iloc[0])
    return None


def _title(audit: Audit) -> str:
    m = audit.metadata
    policy = m.get("policy") or "demonstrations"
    where = m.get("env_id") or "tabular levels"
    split = f" (split {m['split']})" if m.get("split") else ""
    return f"Audit of {policy} on {where}{split}"


def _coverage_text(audit: Audit) -> str:
    c = audit.coverage.summary()
    return (
        f"EPIC compared rewards on the coverage “{c['name']}”: {c['n_transitions']} "
        f"transitions over {len(audit.demonstrations)} episodes on {len(audit.levels)} "
        f"level(s), covering {c['n_states_covered']} of {c['n_states']} states and "
        f"{c['n_state_actions_covered']} state-action pairs (worth "
        f"{c['effective_transitions']:.0f} equally likely transitions)."
    )


def _details(audit: Audit) -> list[tuple[str, str]]:
    rec, d, m = audit.recovered, audit.decision, audit.metadata
    out = [
        ("best candidate", str(d.best)),
        (
            "likelihood ratio, best candidate vs null model",
            f"{_num(d.lr_vs_null)} (p = {_num(d.p_vs_null)})",
        ),
        (
            "likelihood ratio, recovered reward vs best candidate",
            f"{_num(d.lr_vs_recovered)} (p = {_num(d.p_vs_recovered)}, "
            f"{d.dof_vs_recovered} degrees of freedom)",
        ),
        ("explained by the best candidate", _num(d.explained_fraction)),
        (
            "recovered reward",
            f"{rec.method}, features: {rec.feature_mode}, converged: {rec.converged}, "
            f"{rec.iterations} iterations, feature gap {_num(rec.feature_gap)}, "
            f"log-likelihood {_num(rec.log_likelihood)} per episode",
        ),
    ]
    for k in (
        "env_id",
        "env_kwargs",
        "split",
        "policy",
        "method",
        "seed",
        "behavioral_version",
        "n_episodes",
        "n_levels",
    ):
        if k in m and m[k] is not None:
            out.append(
                (k, json.dumps(m[k], default=str) if isinstance(m[k], (dict, list)) else str(m[k]))
            )
    return out


def _png_bytes(fig: Figure, dpi: int = _DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def save_png(fig: Figure, path: str | os.PathLike[str], *, dpi: int = _DPI) -> str:
    """Write ``fig`` as a PNG to ``path`` atomically; return the file name (for links)."""
    return write_atomic(path, _png_bytes(fig, dpi)).name


REPORT_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1f2328;line-height:1.45}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.6em}
.verdict{display:inline-block;color:#fff;font-weight:700;padding:.25em .7em;border-radius:.4em;
font-size:1.15em;letter-spacing:.03em}
.reason{font-size:1.08em;margin:.6em 0}.meaning{color:#57606a}
.caveat{background:#fff8c5;border:1px solid #d4a72c;padding:.6em .8em;border-radius:.4em}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}
th,td{border:1px solid #d0d7de;padding:.3em .55em;text-align:left;vertical-align:top}
th{background:#f6f8fa}figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:.88em}.cols{display:flex;gap:1.2em;flex-wrap:wrap}
.cols>div{flex:1 1 420px;min-width:0}code{background:#f6f8fa;padding:0 .25em}
"""


def _img(data: bytes, alt: str) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{b64}" alt="{_esc(alt)}">'


def _verdict_html(audit: Audit) -> str:
    color = VERDICT_COLORS.get(audit.verdict, "#57606a")
    proxy = f" — proxy <code>{_esc(audit.proxy)}</code>" if audit.proxy else ""
    return (
        f'<p><span class="verdict" style="background:{color}">{_esc(audit.verdict.upper())}</span>'
        f"{proxy}</p>\n"
        f'<p class="reason">{_esc(_sentence(audit.reason))}</p>\n'
        f'<p class="meaning">{_esc(VERDICT_MEANING.get(audit.verdict, ""))}</p>\n'
    )


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{_esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _body_html(
    audit: Audit, images: Mapping[str, bytes], captions: Mapping[str, str], *, heading: str = "h1"
) -> str:
    parts = [
        f"<{heading}>{_esc(_title(audit))}</{heading}>",
        _verdict_html(audit),
        f'<p class="caveat"><b>Scope.</b> {_esc(SCOPE_CAVEAT)}</p>',
        f"<p><b>Coverage used.</b> {_esc(_coverage_text(audit))}</p>",
        "<h2>Candidate objectives</h2>",
        _html_table(*_table(audit)),
        f'<p class="meaning">{_esc(_table_note(audit))}</p>',
        "<h2>Figures</h2>",
    ]
    for name, data in images.items():
        parts.append(
            f"<figure>{_img(data, name)}<figcaption>{_esc(captions.get(name, ''))}</figcaption></figure>"
        )
    parts.append("<h2>Details</h2>")
    parts.append(_html_table(["", ""], _details(audit)))
    return "\n".join(parts)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_esc(title)}</title>'
        f"<style>{REPORT_CSS}</style></head><body>\n{body}\n"
        f'<footer><p class="meaning">Written by behavioral on '
        f"{_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.</p></footer>"
        "</body></html>\n"
    )


def report_markdown(audit: Audit, figure_names: Sequence[str], captions: Mapping[str, str]) -> str:
    """The report as Markdown, referring to the PNGs next to it."""
    lines = [f"# {_md(_title(audit))}", ""]
    proxy = f" (proxy: {_code(audit.proxy)})" if audit.proxy else ""
    lines += [f"**Verdict: {audit.verdict.upper()}**{proxy}", ""]
    lines += [_md(_sentence(audit.reason)), ""]
    lines += [f"_{_md(VERDICT_MEANING.get(audit.verdict, ''))}_", ""]
    lines += [f"> **Scope.** {_md(SCOPE_CAVEAT)}", ""]
    lines += [f"**Coverage used.** {_md(_coverage_text(audit))}", ""]
    lines += ["## Candidate objectives", ""]
    head, rows = _table(audit)
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in rows:
        lines.append("| " + " | ".join(_md(c) for c in r) + " |")
    lines += ["", "## Figures", ""]
    for name in figure_names:
        lines += [f"![{name}]({name})", "", _md(captions.get(name, "")), ""]
    lines += ["## Details", ""]
    for k, v in _details(audit):
        lines.append(f"- **{_md(k)}**: {_md(v)}")
    return "\n".join(lines) + "\n"


def _render(audit: Audit, max_levels: int) -> tuple[dict[str, bytes], dict[str, str]]:
    figs, captions = audit_figures(audit, max_levels=max_levels)
    return {name: _png_bytes(fig) for name, fig in figs.items()}, captions


def write_report(audit: Audit, directory: str | os.PathLike[str], *, max_levels: int = 3) -> Path:
    """Write ``report.html``, ``report.md`` and the PNG figures of ``audit`` into
    ``directory`` (created if needed; files are replaced one by one, atomically).

    :meth:`behavioral.auditing.Audit.save` calls this inside the temporary directory it
    renames into place, so a saved report is never half-written.

    Args:
        audit: the audit.
        directory: where to write.
        max_levels: heatmaps are drawn for this many levels (those with most episodes).

    Returns:
        The path of ``report.html``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    images, captions = _render(audit, max_levels)
    for name, data in images.items():
        write_atomic(out / name, data)
    write_atomic(out / "report.md", report_markdown(audit, list(images), captions).encode("utf-8"))
    page = _page(_title(audit), _body_html(audit, images, captions))
    write_atomic(out / "report.html", page.encode("utf-8"))
    return out / "report.html"


def report_html(audit: Audit, *, max_levels: int = 2) -> str:
    """The report as an HTML fragment with embedded images (for ``Audit._repr_html_``)."""
    images, captions = _render(audit, max_levels)
    return f"<div><style>{REPORT_CSS.replace('body{', '.behavioral-report{')}</style>" + (
        f'<div class="behavioral-report">{_body_html(audit, images, captions, heading="h3")}</div></div>'
    )


# ============================================================================ comparison


def _label(audit: Audit, i: int) -> str:
    return str(audit.metadata.get("split") or f"audit {i + 1}")


def _comparison_tables(
    audits: Sequence[Audit], labels: Sequence[str]
) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    ret_rows, adv_rows = [], []
    for a, lab in zip(audits, labels):
        if a.episodes is not None:
            for obj in (a.base, *a.proxies):
                col = f"return.{obj}"
                if col in a.episodes.columns:
                    x = a.episodes[col].to_numpy(dtype=np.float64)
                    m = float(x.mean())
                    half = 1.96 * float(x.std(ddof=1)) / math.sqrt(x.size) if x.size > 1 else 0.0
                    ret_rows.append(
                        {
                            "label": lab,
                            "objective": obj,
                            "mean": m,
                            "low": m - half,
                            "high": m + half,
                        }
                    )
        for p in a.proxies:
            r = a.table.loc[p]
            adv_rows.append(
                {
                    "label": lab,
                    "proxy": p,
                    "delta": float(r["delta_vs_base"]),
                    "low": float(r["delta_low"]),
                    "high": float(r["delta_high"]),
                }
            )
    returns = pd.DataFrame(ret_rows) if ret_rows else None
    adv = pd.DataFrame(adv_rows, columns=["label", "proxy", "delta", "low", "high"])
    return returns, adv


def write_comparison_report(
    audits: Sequence[Audit],
    directory: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    overwrite: bool = False,
    links: Sequence[str | None] | None = None,
    title: str | None = None,
) -> Path:
    """One policy's audits on several splits (e.g. ``train`` and ``deploy``) side by side.

    Writes ``report.html`` (self-contained), ``report.md``, ``summary.json`` and the PNGs
    into ``directory``: a glance figure (each objective's return per split, each proxy's
    log-likelihood advantage over the base objective per split), every audit's verdict and
    reason, a table per split, and each audit's most visited level's heatmaps. A
    pseudo-aligned policy shows as "indistinguishable" on ``train`` (the proxy's advantage
    is 0: the objectives coincide) and "proxy" on ``deploy``.

    Args:
        audits: two or more audits of the same policy.
        directory: the report directory (written next to its place and renamed into it).
        labels: a label per audit; default each audit's split.
        overwrite: replace an existing directory.
        links: optional relative link per audit to its full report (shown in the page).
        title: the page title; default "<policy> on <env>: <label> vs <label>".

    Returns:
        The directory.

    Raises:
        FileExistsError: ``directory`` exists and ``overwrite`` is False.
        ValueError: fewer than two audits, or labels of the wrong length.
    """
    audits = list(audits)
    if len(audits) < 2:
        raise ValueError(f"a comparison needs at least two audits, got {len(audits)}")
    labels = list(labels) if labels is not None else [_label(a, i) for i, a in enumerate(audits)]
    if len(labels) != len(audits):
        raise ValueError(f"{len(labels)} labels for {len(audits)} audits")
    if links is not None and len(links) != len(audits):
        raise ValueError(f"{len(links)} links for {len(audits)} audits")
    target = Path(directory)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)
        returns, adv = _comparison_tables(audits, labels)
        images: dict[str, bytes] = {}
        captions: dict[str, str] = {}
        images["glance.png"] = _png_bytes(
            plot_split_comparison(labels, [a.verdict for a in audits], returns, adv)
        )
        captions["glance.png"] = (
            "At a glance: what the policy achieves on each objective per split (left), and how "
            "much better each proxy explains its behaviour than the base objective (right; "
            "log-likelihood per episode, bootstrap CI). Pseudo-alignment: the advantage is 0 "
            "where proxy and base coincide, and positive where they come apart."
        )
        level_imgs = []
        for i, a in enumerate(audits):
            shown = _levels_to_show(a, 1)
            if shown:
                name = f"split{i}_level{shown[0]}.png"
                images[name] = _png_bytes(_level_figure(a, shown[0]))
                level_imgs.append((i, name))
        if title is None:
            meta = audits[0].metadata
            title = (
                f"{meta.get('policy') or 'policy'} on {meta.get('env_id') or 'levels'}: "
                + " vs ".join(labels)
            )
        parts = [f"<h1>{_esc(title)}</h1>", '<div class="cols">']
        for i, (a, lab) in enumerate(zip(audits, labels)):
            link = ""
            if links is not None and links[i]:
                link = f'<p><a href="{_esc(links[i])}">full report</a></p>'
            parts.append(f"<div><h2>{_esc(lab)}</h2>{_verdict_html(a)}{link}</div>")
        parts.append("</div>")
        parts.append(f'<p class="caveat"><b>Scope.</b> {_esc(SCOPE_CAVEAT)}</p>')
        parts.append(
            f"<figure>{_img(images['glance.png'], 'glance.png')}"
            f"<figcaption>{_esc(captions['glance.png'])}</figcaption></figure>"
        )
        md = [f"# {_md(title)}", ""]
        for a, lab in zip(audits, labels):
            proxy = f" (proxy: {_code(a.proxy)})" if a.proxy else ""
            md += [
                f"## {_md(lab)}: **{a.verdict.upper()}**{proxy}",
                "",
                _md(_sentence(a.reason)),
                "",
            ]
        md += [
            f"> **Scope.** {_md(SCOPE_CAVEAT)}",
            "",
            "![glance.png](glance.png)",
            "",
            _md(captions["glance.png"]),
            "",
        ]
        for a, lab in zip(audits, labels):
            parts.append(f"<h2>Candidates on {_esc(lab)}</h2>")
            parts.append(f"<p>{_esc(_coverage_text(a))}</p>")
            head, rows = _table(a)
            parts.append(_html_table(head, rows))
            md += [f"## Candidates on {_md(lab)}", "", _md(_coverage_text(a)), ""]
            md.append("| " + " | ".join(head) + " |")
            md.append("|" + "---|" * len(head))
            md += ["| " + " | ".join(_md(c) for c in r) + " |" for r in rows]
            md.append("")
        parts.append("<h2>Heatmaps of each split's most visited level</h2>")
        for i, name in level_imgs:
            cap = (
                f"{labels[i]}: the level with trajectories, the data's coverage, the objectives, "
                "the recovered reward and where it parts from the base objective."
            )
            captions[name] = cap
            parts.append(
                f"<figure>{_img(images[name], name)}<figcaption>{_esc(cap)}</figcaption></figure>"
            )
            md += [f"![{name}]({name})", "", _md(cap), ""]
        for name, data in images.items():
            write_atomic(tmp / name, data)
        write_atomic(tmp / "report.html", _page(title, "\n".join(parts)).encode("utf-8"))
        write_atomic(tmp / "report.md", ("\n".join(md) + "\n").encode("utf-8"))
        summary = {
            "labels": labels,
            "audits": [
                {"label": lab, "verdict": a.verdict, "proxy": a.proxy, "reason": a.reason}
                for a, lab in zip(audits, labels)
            ],
        }
        write_atomic(tmp / "summary.json", json.dumps(summary, indent=2).encode("utf-8"))
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
