"""Level scoring: how much evidence a level yields between two behavioural hypotheses.

A *hypothesis* is what the audit fits for each candidate objective: an agent that acts
soft-optimally for ``beta * r + w * alive`` (``r`` the objective, ``alive`` 1 in every
state where the episode is still running, ``w`` the fitted "living reward") with time
preference ``gamma``, and with probability ``lapse`` takes a uniformly random action
instead. The null model is the living reward alone (``objective=None``).

On a level, agent ``A``'s episodes carry on average

.. math::

    KL(P_A \\| P_B) = E_{\\tau \\sim A}\\big[\\log P_A(\\tau) - \\log P_B(\\tau)\\big]
      = \\sum_t \\sum_s D_A[t, s] \\sum_a p_A(a|s,t) \\log \\frac{p_A(a|s,t)}{p_B(a|s,t)}

nats of evidence for ``A`` over ``B`` (the dynamics cancel in the ratio): the expected
log-likelihood ratio per episode that the audit's likelihood test accumulates there. The
*regret gap* ``C = V_A(A) - V_A(B)`` is how much worse, by ``A``'s own objective, agent ``B``
does on the level -- the stakes of confusing them (Sadek et al. 2025's C-distinguishing
levels). Both are computed exactly from the levels' tabular models, for many levels in one
compiled call (:func:`score_levels` on a :class:`LevelStack`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from behavioral.design import _kernels
from behavioral.errors import (
    InvalidArgumentError,
    InvalidDemonstrationError,
    InvalidModelError,
    UnknownObjectiveError,
)
from behavioral.tabular import TabularModel, check_reward, soft_bellman

__all__ = [
    "Hypothesis",
    "LevelScores",
    "LevelStack",
    "hypothesis_log_likelihoods",
    "hypothesis_policy",
    "score_levels",
    "stack_levels",
]

ObjectiveSpec = np.ndarray | Callable[[TabularModel], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    """A behavioural hypothesis: a soft-optimal agent for an objective, with nuisances.

    Attributes:
        objective: the objective's name, or None for the null model (the living reward
            alone: a random walk with urgency).
        beta: inverse temperature (>= 0) on the objective's own scale.
        living_reward: reward per step while the episode runs (any sign).
        discount: time preference in (0, 1] used for planning.
        lapse: probability in [0, 1] of a uniformly random action.
        name: label (default: the objective's name, or ``"null"``).
    """

    objective: str | None
    beta: float = 1.0
    living_reward: float = 0.0
    discount: float = 1.0
    lapse: float = 0.0
    name: str | None = None

    def __post_init__(self) -> None:
        for field in ("beta", "living_reward", "discount", "lapse"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise InvalidArgumentError(f"Hypothesis {field} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise InvalidArgumentError(f"Hypothesis {field} must be finite, got {value!r}")
            object.__setattr__(self, field, float(value))
        if self.beta < 0:
            raise InvalidArgumentError(f"Hypothesis beta must be >= 0, got {self.beta}")
        if not 0.0 < self.discount <= 1.0:
            raise InvalidArgumentError(
                f"Hypothesis discount must be in (0, 1], got {self.discount}"
            )
        if not 0.0 <= self.lapse <= 1.0:
            raise InvalidArgumentError(f"Hypothesis lapse must be in [0, 1], got {self.lapse}")
        if self.objective is not None and not isinstance(self.objective, str):
            raise InvalidArgumentError(
                f"Hypothesis objective must be a name or None, got {self.objective!r}"
            )

    @property
    def label(self) -> str:
        """``name``, else the objective's name, else ``"null"``."""
        return self.name or self.objective or "null"


@dataclasses.dataclass(frozen=True, eq=False)
class LevelStack:
    """Levels concatenated for the scoring kernel (build once, score many hypotheses).

    Attributes:
        n_levels, n_actions: L and A (every level has the same actions).
        state_offsets: (L+1,) int64: level ``l``'s states are ``state_offsets[l] ..
            state_offsets[l+1] - 1`` of the stack.
        group_offsets: (G+1,) int64: consecutive levels of one horizon grouped into
            block-diagonal models of about :data:`GROUP_STATES` states, which the kernel
            backs up together (small levels alone leave the vectorised backup idle).
        width: non-zeros per padded transition row; ell_index: (S_total*A*width,) int32
            next states, indexed within their group; ell_prob: matching probabilities
            (0 for padding).
        initial: (S_total,) each level's initial distribution.
        running: (S_total,) bool, False in absorbing states (the episode has ended).
        horizons: (L,) int64; discounts: (L,) the levels' own discounts.
        objective_names: names of the objectives stacked in ``objectives``.
        objectives: (n_obj, S_total, A) every objective as a state-action reward.
    """

    n_levels: int
    n_actions: int
    state_offsets: np.ndarray
    group_offsets: np.ndarray
    width: int
    ell_index: np.ndarray
    ell_prob: np.ndarray
    initial: np.ndarray
    running: np.ndarray
    horizons: np.ndarray
    discounts: np.ndarray
    objective_names: tuple[str, ...]
    objectives: np.ndarray

    @property
    def n_states(self) -> np.ndarray:
        """(L,) the number of states of each level."""
        return np.diff(self.state_offsets)


def _objective_arrays(
    models: Sequence[TabularModel], objectives: Mapping[str, ObjectiveSpec] | None
) -> dict[str, list[np.ndarray]]:
    """Each objective as one (S, A) array per level."""
    if objectives is None:
        names = tuple(models[0].objectives)
        for i, m in enumerate(models):
            if tuple(m.objectives) != names:
                raise UnknownObjectiveError(
                    f"level {i} declares objectives {tuple(m.objectives)}, level 0 {names}: "
                    "pass objectives="
                )
        objectives = {n: (lambda m, n=n: m.objectives[n]) for n in names}
    out: dict[str, list[np.ndarray]] = {}
    for name, spec in objectives.items():
        arrays = []
        for i, m in enumerate(models):
            value = spec(m) if callable(spec) else spec
            r = check_reward(value, m.n_states, m.n_actions, what=f"objective {name!r} (level {i})")
            arrays.append(
                np.broadcast_to(r[:, None] if r.ndim == 1 else r, (m.n_states, m.n_actions))
            )
        out[str(name)] = arrays
    return out


#: States per group of levels backed up together (the core backup's block size).
GROUP_STATES = 512


def _groups(sizes: np.ndarray, horizons: np.ndarray) -> np.ndarray:
    """(G+1,) level offsets of groups: consecutive levels of one horizon, about
    :data:`GROUP_STATES` states each (a larger level is a group of its own)."""
    bounds = [0]
    total = 0
    for i, (n, h) in enumerate(zip(sizes.tolist(), horizons.tolist())):
        if i > bounds[-1] and (total + n > GROUP_STATES or h != horizons[bounds[-1]]):
            bounds.append(i)
            total = 0
        total += n
    bounds.append(len(sizes))
    return np.asarray(bounds, dtype=np.int64)


def _ell(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray
) -> tuple[int, np.ndarray, np.ndarray]:
    """CSR rows as padded rows of one width (padding: probability 0, index 0)."""
    n_rows = indptr.shape[0] - 1
    nnz = np.diff(indptr)
    width = max(1, int(nnz.max(initial=0)))
    row = np.repeat(np.arange(n_rows), nnz)
    pos = np.arange(indices.shape[0]) - np.repeat(indptr[:-1], nnz)
    idx = np.zeros(n_rows * width, dtype=np.int32)
    val = np.zeros(n_rows * width)
    idx[row * width + pos] = indices
    val[row * width + pos] = data
    return width, idx, val


def stack_levels(
    models: Sequence[TabularModel], objectives: Mapping[str, ObjectiveSpec] | None = None
) -> LevelStack:
    """Stack levels for :func:`score_levels`.

    Args:
        models: the levels' tabular models (same number of actions).
        objectives: name -> an (S,) / (S, A) array (for levels of one size) or a function
            ``model -> array``; default the objectives the models declare.

    Raises:
        InvalidModelError: no models, or models with different numbers of actions.
        UnknownObjectiveError: the levels declare different objectives.
        InvalidRewardError: an objective array of the wrong shape.
    """
    models = list(models)
    if not models:
        raise InvalidModelError("stack_levels needs at least one level")
    A = models[0].n_actions
    for i, m in enumerate(models):
        if not isinstance(m, TabularModel):
            raise InvalidModelError(f"models[{i}] is a {type(m).__name__}, not a TabularModel")
        if m.n_actions != A:
            raise InvalidModelError(f"models[{i}] has {m.n_actions} actions, models[0] {A}")
    sizes = np.array([m.n_states for m in models], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    horizons = np.array([m.horizon for m in models], dtype=np.int64)
    groups = _groups(sizes, horizons)
    nnz = np.array([m.transitions.nnz for m in models], dtype=np.int64)
    nnz_off = np.concatenate([[0], np.cumsum(nnz)])
    indptr = np.concatenate(
        [m.transitions.indptr[:-1] + o for m, o in zip(models, nnz_off[:-1])] + [nnz_off[-1:]]
    ).astype(np.int64)
    indices = np.concatenate([m.transitions.indices for m in models]).astype(np.int64)
    data = np.concatenate([m.transitions.data for m in models])
    # Next states indexed within their group: add the level's offset in its group.
    group_of = np.repeat(np.arange(groups.shape[0] - 1), np.diff(groups))
    shift = offsets[:-1] - offsets[groups[group_of]]
    width, idx, val = _ell(indptr, indices + np.repeat(shift, nnz), data)
    # Absorbing: every action's row is one self-loop of probability 1.
    rows = np.arange(indptr.shape[0] - 1)
    local_state = np.repeat(np.arange(offsets[-1]) - np.repeat(offsets[:-1], sizes), A)
    row_nnz = np.diff(indptr)
    first = np.minimum(indptr[:-1], max(indices.shape[0] - 1, 0))
    self_loop = (row_nnz == 1) & (indices[first] == local_state) & (data[first] > 1.0 - 1e-12)
    running = ~self_loop[rows].reshape(-1, A).all(axis=1)
    objs = _objective_arrays(models, objectives)
    names = tuple(objs)
    stacked = np.empty((len(names), int(offsets[-1]), A))
    for k, name in enumerate(names):
        np.concatenate(objs[name], axis=0, out=stacked[k])
    return LevelStack(
        n_levels=len(models),
        n_actions=A,
        state_offsets=offsets,
        group_offsets=groups,
        width=width,
        ell_index=idx,
        ell_prob=val,
        initial=np.concatenate([m.initial_state_dist for m in models]),
        running=running,
        horizons=horizons,
        discounts=np.array([m.discount for m in models], dtype=np.float64),
        objective_names=names,
        objectives=stacked,
    )


def _hypothesis_rewards(stack: LevelStack, hypotheses: Sequence[Hypothesis]) -> np.ndarray:
    """(n_hyp, S_total, A): ``beta * r + living_reward * running`` of each hypothesis."""
    alive = stack.running.astype(np.float64)[:, None]
    out = np.empty((len(hypotheses), stack.running.shape[0], stack.n_actions))
    for h, hyp in enumerate(hypotheses):
        out[h] = hyp.living_reward * alive
        if hyp.objective is not None and hyp.beta != 0.0:
            out[h] += hyp.beta * stack.objectives[_objective_index(stack, hyp.objective)]
    return out


def _objective_index(stack: LevelStack, name: str) -> int:
    if name not in stack.objective_names:
        raise UnknownObjectiveError(
            f"objective {name!r} is not among the stacked objectives {stack.objective_names}"
        )
    return stack.objective_names.index(name)


@dataclasses.dataclass(frozen=True, eq=False)
class LevelScores:
    """What every level tells apart, for a set of hypotheses.

    Attributes:
        labels: the hypotheses' labels (n_hyp,).
        hypotheses: the hypotheses scored.
        objective_names: the objectives whose returns are in ``returns``.
        kl: (L, n_hyp, n_hyp): ``kl[l, i, j] = KL(P_i || P_j)`` on level ``l``, the expected
            log-likelihood ratio of one episode for hypothesis ``i`` over ``j`` when the
            agent is ``i`` (nats).
        returns: (L, n_hyp, n_obj): ``returns[l, i, o]``, the expected return of objective
            ``o`` (the level's own discount) of agent ``i`` on level ``l``.
    """

    labels: tuple[str, ...]
    hypotheses: tuple[Hypothesis, ...]
    objective_names: tuple[str, ...]
    kl: np.ndarray
    returns: np.ndarray

    def index(self, label: str) -> int:
        """Position of the hypothesis labelled ``label``."""
        if label not in self.labels:
            raise UnknownObjectiveError(f"no hypothesis {label!r} among {self.labels}")
        return self.labels.index(label)

    def divergence(self, a: str, b: str) -> np.ndarray:
        """(L,) ``KL(P_a || P_b)`` per level."""
        return self.kl[:, self.index(a), self.index(b)]

    def regret(self, a: str, b: str) -> np.ndarray:
        """(L,) ``C = V_a(agent a) - V_a(agent b)``: how much agent ``b`` loses by ``a``'s
        objective (NaN when ``a`` is the null model)."""
        hyp = self.hypotheses[self.index(a)]
        if hyp.objective is None:
            return np.full(self.kl.shape[0], np.nan)
        o = self.objective_names.index(hyp.objective)
        return self.returns[:, self.index(a), o] - self.returns[:, self.index(b), o]

    def table(self, pairs: Sequence[tuple[str, str]] | None = None) -> pd.DataFrame:
        """One row per level: ``kl[a||b]``, ``kl[b||a]``, ``regret[a,b]``, ``regret[b,a]``
        for each pair (default: every pair of hypotheses)."""
        if pairs is None:
            pairs = [(a, b) for i, a in enumerate(self.labels) for b in self.labels[i + 1 :]]
        cols: dict[str, np.ndarray] = {}
        for a, b in pairs:
            cols[f"kl[{a}||{b}]"] = self.divergence(a, b)
            cols[f"kl[{b}||{a}]"] = self.divergence(b, a)
            cols[f"regret[{a},{b}]"] = self.regret(a, b)
            cols[f"regret[{b},{a}]"] = self.regret(b, a)
        return pd.DataFrame(cols).rename_axis("level")


#: Most memory the scoring kernel's scratch arrays may take (policies of one group).
MAX_SCRATCH_BYTES = 4 << 30


def _check_scratch(stack: LevelStack, n_hyp: int) -> None:
    """Refuse before allocating when one group's policies would not fit in memory."""
    g = stack.group_offsets
    states = stack.state_offsets[g[1:]] - stack.state_offsets[g[:-1]]
    entries = int(np.max(states * stack.horizons[g[:-1]])) * stack.n_actions
    need = 2 * n_hyp * entries * 8
    if need > MAX_SCRATCH_BYTES:
        raise InvalidArgumentError(
            f"scoring these levels needs {need / 2**30:.1f} GiB of policy scratch for "
            f"{n_hyp} hypotheses (largest level: {int(states.max())} states x horizon "
            f"{int(stack.horizons.max())}); the limit is {MAX_SCRATCH_BYTES / 2**30:.0f} GiB: "
            "score fewer hypotheses at a time or smaller levels"
        )


def score_levels(
    levels: LevelStack | Sequence[TabularModel],
    hypotheses: Sequence[Hypothesis],
    *,
    objectives: Mapping[str, ObjectiveSpec] | None = None,
    rows: Sequence[int] | None = None,
) -> LevelScores:
    """Exact KL divergences and expected returns of every hypothesis on every level.

    Args:
        levels: a :class:`LevelStack` (reuse it to rescore a pool after a refit) or the
            levels' models (stacked here, with ``objectives``).
        hypotheses: at least one; their labels must be distinct.
        objectives: passed to :func:`stack_levels` when ``levels`` are models.
        rows: positions of the hypotheses whose KL rows (``KL(P_i || .)``) and returns are
            wanted (default: all); the others' rows are NaN. Each row costs an occupancy
            pass and a divergence against every hypothesis; every policy is computed.

    Returns:
        :class:`LevelScores`. Cost O(n_hyp * H * (nnz + S A)) per level, one compiled
        call for all levels.

    Raises:
        InvalidArgumentError: no hypotheses, or two with the same label.
        UnknownObjectiveError: a hypothesis names an objective the levels do not have.
    """
    stack = levels if isinstance(levels, LevelStack) else stack_levels(levels, objectives)
    hyps = tuple(hypotheses)
    if not hyps or not all(isinstance(h, Hypothesis) for h in hyps):
        raise InvalidArgumentError("score_levels needs one or more Hypothesis objects")
    labels = tuple(h.label for h in hyps)
    if len(set(labels)) < len(labels):
        raise InvalidArgumentError(f"hypothesis labels must be distinct, got {labels}")
    _check_scratch(stack, len(hyps))
    rewards = _hypothesis_rewards(stack, hyps)
    n = len(hyps)
    wanted = np.ones(n, dtype=np.bool_)
    if rows is not None:
        wanted[:] = False
        for i in rows:
            if not 0 <= int(i) < n:
                raise InvalidArgumentError(f"rows must be positions of the {n} hypotheses")
            wanted[int(i)] = True
    kl = np.zeros((stack.n_levels, n, n))
    ret = np.zeros((stack.n_levels, n, len(stack.objective_names)))
    _kernels.score_levels(
        stack.state_offsets,
        stack.group_offsets,
        stack.width,
        stack.ell_index,
        stack.ell_prob,
        stack.initial,
        (~stack.running).astype(np.float64),
        stack.horizons,
        stack.discounts,
        rewards,
        np.array([h.discount for h in hyps]),
        np.array([h.lapse for h in hyps]),
        wanted,
        np.ascontiguousarray(stack.objectives),
        kl,
        ret,
    )
    # Roundoff can leave -1e-17 where the true value is 0.
    np.maximum(kl, 0.0, out=kl)
    kl[:, ~wanted, :] = np.nan
    ret[:, ~wanted, :] = np.nan
    return LevelScores(labels, hyps, stack.objective_names, kl, ret)


# ------------------------------------------------------------ one level, one hypothesis


def _model_reward(
    model: TabularModel, hyp: Hypothesis, objectives: Mapping[str, ObjectiveSpec] | None
) -> np.ndarray:
    """(S, A) reward ``beta * r + w * alive`` of ``hyp`` on ``model``."""
    stack_objs = (
        {} if hyp.objective is None else {hyp.objective: _objective_spec(hyp.objective, objectives)}
    )
    arrays = _objective_arrays([model], stack_objs) if stack_objs else {}
    alive = np.ones(model.n_states)
    T = model.transitions
    A = model.n_actions
    loops = np.diff(T.indptr) == 1
    first = np.minimum(T.indptr[:-1], max(T.nnz - 1, 0))
    own = np.repeat(np.arange(model.n_states), A)
    alive[
        (loops & (T.indices[first] == own) & (T.data[first] > 1 - 1e-12)).reshape(-1, A).all(1)
    ] = 0.0
    r = np.repeat((hyp.living_reward * alive)[:, None], A, axis=1)
    if arrays:
        r = r + hyp.beta * arrays[hyp.objective][0]
    return r


def _objective_spec(name: str, objectives: Mapping[str, ObjectiveSpec] | None) -> ObjectiveSpec:
    if objectives is not None:
        if name not in objectives:
            raise UnknownObjectiveError(f"objective {name!r} is not among {sorted(objectives)}")
        return objectives[name]

    def declared(m: TabularModel) -> np.ndarray:
        if name not in m.objectives:
            raise UnknownObjectiveError(
                f"the level declares no objective {name!r} ({tuple(m.objectives)})"
            )
        return m.objectives[name]

    return declared


def hypothesis_policy(
    model: TabularModel,
    hypothesis: Hypothesis,
    *,
    objectives: Mapping[str, ObjectiveSpec] | None = None,
) -> np.ndarray:
    """(H, S, A) action probabilities of ``hypothesis``'s agent on ``model`` (lapse mixed in)."""
    m = (
        model
        if model.discount == hypothesis.discount
        else model.replace(discount=hypothesis.discount)
    )
    _, _, pi = soft_bellman(m, _model_reward(model, hypothesis, objectives))
    return (1.0 - hypothesis.lapse) * pi + hypothesis.lapse / model.n_actions


def hypothesis_log_likelihoods(
    models: Sequence[TabularModel],
    demonstrations: Sequence[Any],
    hypothesis: Hypothesis,
    *,
    objectives: Mapping[str, ObjectiveSpec] | None = None,
) -> np.ndarray:
    """(N,) ``sum_t log p(a_t | s_t, t)`` of each demonstration under ``hypothesis``.

    ``demonstrations`` are :class:`behavioral.irl.Demonstration` objects (``level``
    indexes ``models``); probabilities are clamped at 1e-300 as in the audit. This is the
    log-likelihood a fixed (e.g. previously fitted) hypothesis gives new episodes -- the
    numerator of a plug-in e-process.

    Raises:
        InvalidDemonstrationError: a demonstration's level, states or actions are out of range.
    """
    cache: dict[int, np.ndarray] = {}
    out = np.empty(len(demonstrations))
    for i, d in enumerate(demonstrations):
        lvl = int(d.level)
        if not 0 <= lvl < len(models):
            raise InvalidDemonstrationError(f"demonstration {i} is on level {lvl} of {len(models)}")
        m = models[lvl]
        n = d.actions.shape[0]
        if n > m.horizon or np.any(d.states[:n] >= m.n_states) or np.any(d.actions >= m.n_actions):
            raise InvalidDemonstrationError(f"demonstration {i} does not fit level {lvl}'s model")
        if lvl not in cache:
            cache[lvl] = hypothesis_policy(m, hypothesis, objectives=objectives)
        p = cache[lvl][np.arange(n), d.states[:n], d.actions]
        out[i] = float(np.sum(np.log(np.maximum(p, _kernels.P_FLOOR))))
    return out
