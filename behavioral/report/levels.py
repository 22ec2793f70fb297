"""What the report computes from level models: layouts, rewards on the grid, colour ranges.

Pure functions over tabular models and arrays (no audits, no files).

How rewards are drawn on a grid. A reward array is (S,) -- ``r(s)``, collected on
leaving ``s`` -- or (S, A) -- ``r(s, a)``. A level's states map to grid cells through
``model.cells`` (several states share a cell when the state holds more than the agent's
position, as in WaterPlants, where it also holds the plants' and the floor's status). A
state reward is drawn at the state's cell; a state-action reward at the cell the step
*leads to* (where the door is entered, where the water lands), weighted by the transition
probability. Each cell shows the mean over the states or steps drawn there; steps taken
from absorbing states (after the episode ended) are left out. Cells no state occupies
are walls. Models without cells are laid out by state index.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from behavioral import compare
from behavioral.irl.maxent import Demonstration
from behavioral.report.text import fmt_num
from behavioral.tabular import TabularModel, absorbing_states

__all__ = [
    "ColorScale",
    "Landmark",
    "LevelLayout",
    "Residual",
    "canonical_residual",
    "cell_values",
    "color_scale",
    "diverging_scale",
    "feature_profiles",
    "grid_shape",
    "landmarks",
    "level_layout",
    "reward_spread",
    "visitation",
]


# ----------------------------------------------------------------------------- layout


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

    @property
    def flat(self) -> np.ndarray:
        """(S,) index of each state's cell in the flattened grid."""
        return self.cells[:, 0] * self.shape[1] + self.cells[:, 1]

    def cell_matrix(self) -> sp.csr_array:
        """(S, rows*cols) one-hot map of each state to its cell."""
        S = self.cells.shape[0]
        return sp.csr_array((np.ones(S), (np.arange(S), self.flat)), shape=(S, self.n_cells))

    def walls(self) -> np.ndarray:
        """(rows, cols) bool: cells no state occupies (walls of a grid level; the
        padding after the last state of a synthetic layout)."""
        occupied = np.zeros(self.n_cells, dtype=bool)
        occupied[self.flat] = True
        return ~occupied.reshape(self.shape)


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


def grid_shape(model: TabularModel) -> tuple[int, int] | None:
    """(rows, cols) of the observation's grid when observations are (S, C, H, W)."""
    obs = model.observations
    if obs is not None and np.ndim(obs) == 4:
        return int(obs.shape[2]), int(obs.shape[3])
    return None


# ----------------------------------------------------------------------------- rewards on the grid


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


def reward_spread(model: TabularModel, reward: np.ndarray) -> float:
    """Standard deviation of a reward over a level's live states (S,) or state-action
    pairs (S, A): how much it varies at all, whatever the cell."""
    r = np.asarray(reward, dtype=np.float64)
    live = ~absorbing_states(model)
    values = r[live].reshape(-1)
    return float(values.std()) if values.size else 0.0


def visitation(demonstrations: Sequence[Demonstration], layout: LevelLayout) -> np.ndarray:
    """(rows, cols) number of visits of the demonstrations (of one level) to each cell.

    Every time step counts once, including each episode's last state.
    """
    counts = np.zeros(layout.n_cells)
    for d in demonstrations:
        np.add.at(counts, layout.flat[d.states], 1.0)
    return counts.reshape(layout.shape)


def _feasible_triples(model: TabularModel) -> tuple[np.ndarray, ...]:
    """(s, a, s', p) of every transition out of a non-absorbing state."""
    T = sp.csr_array(model.transitions)
    A = model.n_actions
    rows = np.repeat(np.arange(T.shape[0]), np.diff(T.indptr))
    s, a = rows // A, rows % A
    keep = ~absorbing_states(model)[s] & (T.data > 0)
    return s[keep], a[keep], T.indices[keep], T.data[keep]


@dataclasses.dataclass(frozen=True)
class Residual:
    """What the recovered reward does beyond the base objective on one level.

    Attributes:
        grid: (rows, cols) mean residual per cell (Z units; NaN where nothing is drawn).
        correlation: Pearson correlation ``rho`` of the two canonicalised rewards on the
            level's transitions (EPIC distance ``sqrt((1 - rho) / 2)`` there).
    """

    grid: np.ndarray
    correlation: float


def canonical_residual(
    model: TabularModel,
    recovered: np.ndarray,
    base: np.ndarray,
    layout: LevelLayout,
    *,
    arrival: bool = True,
) -> Residual:
    """Where the recovered reward does what the base objective does not explain.

    Both rewards are EPIC-canonicalised (``behavioral.compare.canonical_values``, uniform
    state and action distributions on this level), so potential shaping, shifts and
    positive scaling do not show, then standardised to mean 0 and variance 1 over the
    level's transitions (every action of every non-absorbing state, weighted by its
    probability) -- the Z-scores of EPIC. The map is the residual of the recovered
    reward after the best non-negative multiple of the base objective's,
    ``Z_rec - max(rho, 0) * Z_base`` with ``rho = E[Z_rec Z_base]`` their correlation,
    drawn at the cell each transition leads to (mean weighted by probability).

    Why not ``Z_rec - Z_base``: a sparse objective (a reward for one door) puts all its
    variance on a few transitions, so its Z-score there is about ``sqrt(n_transitions)``,
    more than that of a recovered reward which also varies elsewhere (a cost per bump,
    per step) -- and the plain difference painted the very cell where the recovered
    reward peaks as its most negative one. The residual subtracts only as much of the
    base objective as the recovered reward contains: 0 everywhere for a positively scaled
    or shaped copy, the recovered reward itself (standardised) when the two are
    uncorrelated or opposed. A reward constant on the level has Z = 0.

    Args:
        model: the level.
        recovered, base: (S,) or (S, A) rewards on the level.
        layout: from :func:`level_layout`.
        arrival: draw each transition at the cell it leads to (else where it starts).
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

    z_rec = z(np.asarray(recovered, dtype=np.float64))
    z_base = z(np.asarray(base, dtype=np.float64))
    rho = float(w @ (z_rec * z_base))
    resid = z_rec - max(rho, 0.0) * z_base
    flat = layout.flat[t if arrival else s]
    total = np.bincount(flat, weights=p * resid, minlength=layout.n_cells)
    count = np.bincount(flat, weights=p, minlength=layout.n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
    return Residual(out.reshape(layout.shape), rho)


# ----------------------------------------------------------------------------- colour ranges


@dataclasses.dataclass(frozen=True)
class ColorScale:
    """The colour range of a map, and what to say instead when its colours mean nothing.

    Attributes:
        vmin, vmax: colour range.
        flat: None, or a short statement drawn on the map instead of a false contrast
            ("constant on this level", "the same in every cell", ...).
        note: one line under the map saying why (empty when ``flat`` is None).
    """

    vmin: float
    vmax: float
    flat: str | None = None
    note: str = ""


def color_scale(values: np.ndarray, spread: float, *, flat_fraction: float = 0.02) -> ColorScale:
    """An honest colour range for a map of cell means.

    A map is drawn with its own range (min to max of the cells) unless that range is
    negligible against how much the reward varies at all on the level (``spread``, its
    standard deviation over the level's states or steps, from :func:`reward_spread`).
    Then stretching the cells' differences to full contrast would show noise of the
    averaging as structure. Instead:

    * ``spread`` 0 -- the reward is **constant on this level**;
    * the cells equal -- the reward is **the same in every cell**: it varies only with
      what else the state holds (plants, water), not with where the agent is;
    * the cells' range below ``flat_fraction * spread`` -- **nearly the same in every
      cell**; the colour range is then the cells' mean ± ``spread``, on which the cells
      look as alike as they are.

    Args:
        values: (rows, cols) cell means, NaN where nothing is drawn.
        spread: the reward's standard deviation over the level (>= 0).
        flat_fraction: the smallest range between cells, as a fraction of ``spread``,
            that is drawn at full contrast (a colour map shows about 50 distinct steps).
    """
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return ColorScale(0.0, 1.0, "nothing drawn on this level", "")
    lo, hi = float(finite.min()), float(finite.max())
    mid = 0.5 * (lo + hi)
    tiny = 1e-9 * max(1.0, abs(lo), abs(hi))
    if spread <= tiny:
        return ColorScale(mid - 1.0, mid + 1.0, f"constant on this level: {fmt_num(mid)}")
    if hi - lo <= tiny:
        return ColorScale(
            mid - spread,
            mid + spread,
            f"the same in every cell: {fmt_num(mid)}",
            f"it varies (sd {fmt_num(spread)}) only with what else the state holds, "
            "not with the cell",
        )
    if hi - lo < flat_fraction * spread:
        return ColorScale(
            mid - spread,
            mid + spread,
            f"nearly the same in every cell: {lo:.{_decimals(hi - lo)}f} … {hi:.{_decimals(hi - lo)}f}",
            f"cells differ by {fmt_num(hi - lo)}, under {flat_fraction:.0%} of how much it "
            f"varies (sd {fmt_num(spread)}): not with the cell",
        )
    return ColorScale(lo, hi)


def _decimals(width: float) -> int:
    """Decimals that resolve a difference of ``width`` (two significant digits)."""
    return max(0, 1 - math.floor(math.log10(width))) if width > 0 else 3


def diverging_scale(values: np.ndarray, *, floor: float = 1.0) -> ColorScale:
    """A symmetric range around 0 for a signed map: ``±max(max|value|, floor)``, so that
    differences below ``floor`` (one standard deviation, for Z-scores) stay pale."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    lim = max(float(np.max(np.abs(finite))) if finite.size else 0.0, floor)
    return ColorScale(-lim, lim)


# ----------------------------------------------------------------------------- landmarks


@dataclasses.dataclass(frozen=True)
class Landmark:
    """A labelled cell: where a named feature fires (a door, a pot)."""

    row: int
    col: int
    label: str


def landmarks(
    model: TabularModel,
    layout: LevelLayout,
    names: Mapping[str, str] | None = None,
    *,
    max_cells: int = 4,
) -> tuple[Landmark, ...]:
    """Cells to label on every map of a level: where a named feature fires.

    A feature is a landmark when it is non-zero only in a few cells (at most
    ``max_cells``, and at most a quarter of the occupied ones): for a state-action
    feature, the cells the steps it fires on lead to (the door entered, the pot poured
    into); for a state feature, the cells of the states it is non-zero in. The label is
    ``names[feature]`` (the env's words) or the feature's name. One label per cell, the
    first feature's.

    Returns:
        Landmarks in feature order; none for a synthetic layout or a model without
        features.
    """
    if layout.synthetic or model.features is None or not model.feature_names:
        return ()
    names = names or {}
    occupied = int((~layout.walls()).sum())
    limit = min(max_cells, max(1, occupied // 4))
    f = np.asarray(model.features)
    if f.ndim == 3:
        s, a, t, _ = _feasible_triples(model)
        fired = f[s, a] != 0  # (n_transitions, K)
        where = layout.flat[t]
    else:
        live = np.flatnonzero(~absorbing_states(model))
        fired = f[live] != 0
        where = layout.flat[live]
    out: list[Landmark] = []
    taken: set[int] = set()
    for k, feature in enumerate(model.feature_names):
        cells = np.unique(where[fired[:, k]])
        if not 0 < cells.size <= limit:
            continue
        label = names.get(feature) or feature.replace("_", " ")
        for c in cells.tolist():
            if c not in taken:
                taken.add(c)
                out.append(Landmark(c // layout.shape[1], c % layout.shape[1], label))
    return tuple(out)


# ----------------------------------------------------------------------------- features


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
