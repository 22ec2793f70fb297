"""Maximum-causal-entropy (MaxEnt) IRL with a linear reward, fitted over many levels at once.

The reward is linear in a model's named features, ``r_theta(s, a) = phi(s, a) . theta``,
shared by every level of a dataset. Following Ziebart (2010, ch. 9-10), we maximise the
dual of the maximum-causal-entropy problem,

.. math::

    g(\\theta) = \\frac1N \\sum_i \\Big[ \\theta \\cdot \\Phi_i - V^{\\ell_i}_{0,\\theta}(s^i_0) \\Big]
      - \\frac{\\lambda}{2} \\lVert \\theta \\rVert^2,
    \\qquad \\Phi_i = \\sum_{t<H} \\gamma^t \\phi(s^i_t, a^i_t),

where ``V`` is the finite-horizon soft value of level ``l_i`` (``behavioral.tabular``). It
is concave, and its gradient is the difference between the demonstrations' and the
soft-optimal policy's discounted feature expectations, the latter computed per level from
the demonstrations' own start states. For ``discount == 1`` and deterministic dynamics,
``g`` (without the L2 term) is exactly the mean log-likelihood of the demonstrated
actions. We minimise ``-g`` with L-BFGS (scipy).

Levels are stacked into block-diagonal models (in chunks bounded in memory), so one
compiled backup and one fused forward pass serve many levels per iteration; no
(H, S, A) feature array is ever built.

Early-ending episodes: a trajectory shorter than the horizon must end in an absorbing
state of its model (``behavioral.tabular.absorbing_states``); it is padded by staying
there (state features count that state; state-action features count a uniform action,
which is immaterial under the contract that absorbing states have zero features).
``imitation``'s MCE IRL instead assumes every trajectory lasts the full horizon.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from behavioral import _kernels
from behavioral.errors import InvalidDemonstrationError, InvalidModelError
from behavioral.tabular import TabularModel, absorbing_states

__all__ = [
    "Demonstration",
    "LevelStack",
    "MaxEntObjective",
    "RecoveredReward",
    "fit_lapse",
    "fit_objective",
    "maxent_irl",
    "select_l2",
]

FeatureMode = Literal["model", "states", "state_actions"]

#: Upper bound on the float64 entries of one stacked (H, S, A) policy array (≈ 400 MB).
_CHUNK_BUDGET = 50_000_000


@dataclasses.dataclass(frozen=True)
class Demonstration:
    """One demonstrated episode as state indices of its level's tabular model.

    Attributes:
        states: (n+1,) int state indices ``s_0 .. s_n`` (the last is the state reached
            after the last action).
        actions: (n,) int actions.
        terminal: whether the episode ended in an absorbing state (not by time limit).
        level: index into the list of models this demonstration was recorded on.
    """

    states: np.ndarray
    actions: np.ndarray
    terminal: bool = False
    level: int = 0


def _to_demo(item: Any, level: int) -> Demonstration:
    if isinstance(item, Demonstration):
        return dataclasses.replace(item, level=level)
    if hasattr(item, "obs") and hasattr(item, "acts"):  # imitation Trajectory
        states, actions, terminal = item.obs, item.acts, bool(getattr(item, "terminal", False))
    elif isinstance(item, tuple) and len(item) in (2, 3):
        states, actions = item[0], item[1]
        terminal = bool(item[2]) if len(item) == 3 else False
    else:
        raise InvalidDemonstrationError(
            "a demonstration must be an imitation Trajectory of state indices, a "
            f"Demonstration, or a (states, actions[, terminal]) tuple; got {type(item).__name__}"
        )
    states = np.asarray(states)
    actions = np.asarray(actions)
    if states.ndim != 1 or actions.ndim != 1:
        raise InvalidDemonstrationError(
            "demonstration states and actions must be 1-D arrays of indices (got shapes "
            f"{states.shape} and {actions.shape}); observations are not state indices -- "
            "use the dataset's recorded state sequences"
        )
    for name, arr in (("states", states), ("actions", actions)):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
                raise InvalidDemonstrationError(f"demonstration {name} are not integers")
    if states.shape[0] != actions.shape[0] + 1:
        raise InvalidDemonstrationError(
            f"a demonstration needs len(states) == len(actions) + 1, got {states.shape[0]} "
            f"states and {actions.shape[0]} actions"
        )
    return Demonstration(states.astype(np.int64), actions.astype(np.int64), terminal, level)


@dataclasses.dataclass(frozen=True, eq=False)
class RecoveredReward:
    """A linear reward recovered by MaxEnt IRL.

    Attributes:
        feature_names: K names (model feature names, or ``s<i>`` / ``s<i>,a<j>`` for
            one-hot features).
        weights: (K,) fitted weights ``theta``.
        rewards: per level, the recovered reward array, (S,) for state features or
            (S, A) for state-action features.
        feature_mode: ``"model"``, ``"states"`` or ``"state_actions"``.
        iterations: optimiser iterations.
        converged: whether the optimiser met its tolerance.
        feature_gap: max absolute difference between demonstrated and fitted feature
            expectations at the solution (per demonstration).
        log_likelihood: mean log-likelihood of the demonstrated actions per episode under
            the fitted soft-optimal policy (real steps only, not padding).
        objective: final value of the (regularised) dual ``g``.
        l2: the L2 coefficient used.
        n_demonstrations: N.
        wall_time: seconds spent fitting.
        message: the optimiser's message.
        method: ``"maxent"`` (or ``"airl"``, see ``behavioral.irl.airl``).
        n_parameters: the number of fitted parameters of the reward (0: one per feature,
            as for a linear reward; AIRL's reward network has many more).
    """

    feature_names: tuple[str, ...]
    weights: np.ndarray
    rewards: tuple[np.ndarray, ...]
    feature_mode: str
    iterations: int
    converged: bool
    feature_gap: float
    log_likelihood: float
    objective: float
    l2: float
    n_demonstrations: int
    wall_time: float
    message: str = ""
    method: str = "maxent"
    n_parameters: int = 0

    @property
    def parameter_count(self) -> int:
        """The number of fitted parameters of the reward."""
        return self.n_parameters or len(self.feature_names)

    @property
    def weights_by_name(self) -> dict[str, float]:
        """The weights as a ``{feature name: weight}`` dict."""
        return {n: float(w) for n, w in zip(self.feature_names, self.weights)}

    def reward_for(self, model: TabularModel) -> np.ndarray:
        """The recovered reward evaluated on another level's model (same features).

        Returns:
            (S,) or (S, A) reward array for ``model``.
        """
        feats = _feature_matrix(model, self.feature_mode, self.feature_names)
        r = feats @ self.weights
        if self.feature_mode == "state_actions" or (
            self.feature_mode == "model" and model.state_action_features
        ):
            return r.reshape(model.n_states, model.n_actions)
        return r


def _feature_matrix(model: TabularModel, mode: str, names: Sequence[str] | None = None) -> Any:
    """Dense (S, K) or (S*A, K) features, or a sparse one-hot matrix for one-hot modes."""
    S, A = model.n_states, model.n_actions
    if mode == "model":
        if model.features is None:
            raise InvalidModelError("the model has no features; use features='states'")
        if names is not None and tuple(names) != model.feature_names:
            raise InvalidModelError(
                f"feature names differ: {model.feature_names} vs {tuple(names)}"
            )
        f = model.features
        return f.reshape(S * A, -1) if f.ndim == 3 else f
    if mode == "states":
        return sp.identity(S, format="csr")
    return sp.identity(S * A, format="csr")


@dataclasses.dataclass
class _Chunk:
    """Several levels stacked into one block-diagonal model, with their demonstrated steps.

    Everything here depends only on the levels and the demonstrations, not on features,
    discount or weights: one stack serves every objective fitted to the same data.
    """

    levels: list[int]
    offsets: np.ndarray  # state offset of each level in the stack, (L+1,)
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    d0: np.ndarray  # (S_total,) empirical start distribution / N
    n_states: int
    # The demonstrated steps (real steps, not padding) sorted by time step t:
    step_t: np.ndarray  # (n,) t
    step_s: np.ndarray  # (n,) stacked state
    step_a: np.ndarray  # (n,) action
    step_episode: np.ndarray  # (n,) index of the demonstration
    bounds: np.ndarray  # (H+1,) steps of time t are bounds[t]:bounds[t+1]
    # Padding of early-ending demonstrations: each one's absorbing end state and first
    # padded step (demonstrations that last the full horizon are not listed).
    pad_s: np.ndarray
    pad_from: np.ndarray
    # (H+1,) the states an episode from the demonstrations' start states can be in at
    # time t are below active[t] (_kernels.reachable_prefix): the kernels compute no others
    active: np.ndarray


class LevelStack:
    """Levels and the demonstrations recorded on them, validated and stacked once.

    Levels with demonstrations are stacked into block-diagonal models (in chunks bounded
    in memory); each chunk keeps its demonstrated steps sorted by time step. A stack does
    not depend on features, discount or weights, so every objective fitted to the same
    data (the audit fits several candidates at several discounts) shares one.

    Args:
        models: the levels' tabular models (same number of actions and horizon).
        demonstrations: :class:`Demonstration` objects (``level`` indexes ``models``).

    Raises:
        InvalidModelError: no models, or levels that differ in actions or horizon.
        InvalidDemonstrationError: no demonstrations, or ones that do not fit their level
            (indices out of range, impossible transitions, too long, or ending early
            outside an absorbing state).
    """

    def __init__(
        self, models: Sequence[TabularModel], demonstrations: Sequence[Demonstration]
    ) -> None:
        if not models:
            raise InvalidModelError("maxent_irl needs at least one model")
        if not demonstrations:
            raise InvalidDemonstrationError("maxent_irl needs at least one demonstration")
        first = models[0]
        for i, m in enumerate(models):
            if not isinstance(m, TabularModel):
                raise InvalidModelError(f"models[{i}] is a {type(m).__name__}, not a TabularModel")
            if (m.n_actions, m.horizon) != (first.n_actions, first.horizon):
                raise InvalidModelError(
                    f"models[{i}] has (A, horizon) = ({m.n_actions}, {m.horizon}), models[0] "
                    f"has ({first.n_actions}, {first.horizon}): levels must share them"
                )
        self.models = list(models)
        self.horizon = first.horizon
        self.n_actions = first.n_actions
        self._local = threading.local()
        self._keys: dict[int, np.ndarray] = {}
        self._absorb: dict[int, np.ndarray] = {}
        self.demos = [self._checked(d) for d in demonstrations]
        self.n_demos = len(self.demos)
        starts: dict[int, np.ndarray] = {}
        for d in self.demos:
            m = self.models[d.level]
            starts.setdefault(d.level, np.zeros(m.n_states))[d.states[0]] += 1.0
        self.chunks: list[_Chunk] = []
        pending: list[int] = []
        size = 0
        A, H = self.n_actions, self.horizon
        for lvl in sorted(starts):
            cost = self.models[lvl].n_states * A * H
            if pending and size + cost > _CHUNK_BUDGET:
                self.chunks.append(self._make_chunk(pending, starts))
                pending, size = [], 0
            pending.append(lvl)
            size += cost
        if pending:
            self.chunks.append(self._make_chunk(pending, starts))

    def _checked(self, d: Demonstration) -> Demonstration:
        if not 0 <= d.level < len(self.models):
            raise InvalidDemonstrationError(
                f"demonstration level {d.level} is out of range for {len(self.models)} models"
            )
        m = self.models[d.level]
        n = d.actions.shape[0]
        if n == 0:
            raise InvalidDemonstrationError("a demonstration has no actions")
        if n > m.horizon:
            raise InvalidDemonstrationError(
                f"a demonstration has {n} actions, more than the model horizon {m.horizon}"
            )
        if d.states.min() < 0 or d.states.max() >= m.n_states:
            raise InvalidDemonstrationError(
                f"demonstration state indices must be in [0, {m.n_states}) for level "
                f"{d.level}, got range [{d.states.min()}, {d.states.max()}]"
            )
        if d.actions.min() < 0 or d.actions.max() >= m.n_actions:
            raise InvalidDemonstrationError(
                f"demonstration actions must be in [0, {m.n_actions}), got range "
                f"[{d.actions.min()}, {d.actions.max()}]"
            )
        rows = d.states[:-1] * m.n_actions + d.actions
        bad = np.flatnonzero(~self._feasible(d.level, rows, d.states[1:]))
        if bad.size:
            t = int(bad[0])
            raise InvalidDemonstrationError(
                f"demonstration on level {d.level} makes an impossible transition at step {t}: "
                f"state {d.states[t]} --action {d.actions[t]}--> state {d.states[t + 1]} has "
                "probability 0 in the model (wrong level or a dataset from another env?)"
            )
        if n < m.horizon and not self._absorbing(d.level)[int(d.states[n])]:
            raise InvalidDemonstrationError(
                f"a demonstration on level {d.level} has {n} < horizon={m.horizon} steps but "
                f"its last state {int(d.states[n])} is not absorbing in the model: "
                "early-ending episodes must end in an absorbing (terminal) state"
            )
        return d

    def _feasible(self, level: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Whether ``P(cols | rows) > 0`` in level ``level``'s transition matrix: a binary
        search in the sorted keys ``row * S + col`` of its non-zeros (built once)."""
        keys = self._keys.get(level)
        m = self.models[level]
        if keys is None:
            T = m.transitions
            owner = np.repeat(np.arange(T.shape[0], dtype=np.int64), np.diff(T.indptr))
            keys = owner * m.n_states + T.indices.astype(np.int64)
            keys = self._keys[level] = keys[T.data > 0]  # sorted: CSR rows, sorted indices
        q = rows.astype(np.int64) * m.n_states + cols.astype(np.int64)
        if keys.size == 0:
            return np.zeros(q.shape, dtype=bool)
        return keys[np.minimum(np.searchsorted(keys, q), keys.size - 1)] == q

    def _absorbing(self, level: int) -> np.ndarray:
        mask = self._absorb.get(level)
        if mask is None:
            mask = self._absorb[level] = absorbing_states(self.models[level])
        return mask

    def _make_chunk(self, levels: list[int], starts: Mapping[int, np.ndarray]) -> _Chunk:
        H = self.horizon
        models = [self.models[i] for i in levels]
        sizes = np.array([m.n_states for m in models])
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        S_tot = int(offsets[-1])
        if len(models) == 1:
            T = models[0].transitions
        else:
            T = sp.block_diag([m.transitions for m in models], format="csr")
            # block_diag stacks rows level by level: row (o_l + s)*A + a, as required.
        T = sp.csr_array(T)
        T.sort_indices()
        d0 = np.concatenate([starts[i] for i in levels]) / self.n_demos
        where = {lvl: j for j, lvl in enumerate(levels)}
        t, s, a, ep, pad_s, pad_from = [], [], [], [], [], []
        for i, d in enumerate(self.demos):
            j = where.get(d.level)
            if j is None:
                continue
            n = d.actions.shape[0]
            t.append(np.arange(n))
            s.append(offsets[j] + d.states[:n])
            a.append(d.actions)
            ep.append(np.full(n, i))
            if n < H:
                pad_s.append(offsets[j] + int(d.states[n]))
                pad_from.append(n)
        tt, ss, aa, ee = (np.concatenate(x).astype(np.int64) for x in (t, s, a, ep))
        order = np.argsort(tt, kind="stable")
        step_t = tt[order]
        indptr = T.indptr.astype(np.int64)
        indices = T.indices.astype(np.int64)
        data = np.ascontiguousarray(T.data, dtype=np.float64)
        active = _kernels.reachable_prefix(indptr, indices, data, self.n_actions, d0 > 0, H)
        return _Chunk(
            levels=levels,
            offsets=offsets,
            indptr=indptr,
            indices=indices,
            data=data,
            d0=d0,
            n_states=S_tot,
            step_t=step_t,
            step_s=ss[order],
            step_a=aa[order],
            step_episode=ee[order],
            bounds=np.searchsorted(step_t, np.arange(H + 1)).astype(np.int64),
            pad_s=np.asarray(pad_s, dtype=np.int64),
            pad_from=np.asarray(pad_from, dtype=np.int64),
            active=active,
        )

    def scratch(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """``(pi (H, S, A), V (H, S))`` work arrays of chunk ``j`` for the calling thread.

        Objectives built on one stack share these (they are overwritten by every backup),
        one set per thread, so that fits of different objectives can run in parallel.
        They start at 0: a backup leaves the states no episode can be in at a time as
        they are (finite, so that ``d0 @ V[0]`` sums exact zeros for them).
        """
        local = self._local.__dict__.setdefault("arrays", {})
        if j not in local:
            S, A, H = self.chunks[j].n_states, self.n_actions, self.horizon
            pi, V = _kernels.empty_output((H, S, A)), _kernels.empty_output((H, S))
            pi.fill(0.0)
            V.fill(0.0)
            local[j] = (pi, V)
        return local[j]

    def stacked(self, per_level: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per-level arrays (first axis = the level's states) concatenated chunk by chunk."""
        return [
            np.ascontiguousarray(np.concatenate([per_level[i] for i in c.levels], axis=0))
            for c in self.chunks
        ]


class MaxEntObjective:
    """The negative MaxEnt dual ``-g(theta)`` and its gradient over a set of levels.

    Build once from models and demonstrations; call :meth:`value_and_grad` per iteration.
    Exposed for benchmarks and for callers that want their own optimiser.

    Args:
        models: the levels' tabular models (same actions, horizon and discount; the same
            feature names for ``features="model"``; the same state count for one-hot).
            Or a :class:`LevelStack` already built from them (see :meth:`from_stack` for
            features that are not the models' own).
        demonstrations: :class:`Demonstration` objects (``level`` indexes ``models``);
            ignored when ``models`` is a stack.
        features: ``"model"`` (the models' named features), ``"states"`` (one-hot
            states: a per-state reward) or ``"state_actions"`` (one-hot pairs).
        l2: L2 coefficient ``lambda``.
    """

    def __init__(
        self,
        models: Sequence[TabularModel] | LevelStack,
        demonstrations: Sequence[Demonstration] = (),
        *,
        features: FeatureMode = "model",
        l2: float = 0.0,
    ) -> None:
        if features not in ("model", "states", "state_actions"):
            raise ValueError(
                f"features must be 'model', 'states' or 'state_actions', got {features!r}"
            )
        if not np.isfinite(l2) or l2 < 0:
            raise ValueError(f"l2 must be a non-negative number, got {l2!r}")
        stack = models if isinstance(models, LevelStack) else None
        _check_feature_modes(stack.models if stack else models, features)
        if stack is None:
            stack = LevelStack(models, demonstrations)
        first = stack.models[0]
        for i, m in enumerate(stack.models):
            if m.discount != first.discount:
                raise InvalidModelError(
                    f"models[{i}] has discount {m.discount}, models[0] has {first.discount}: "
                    "levels must share it"
                )
        A, S0 = stack.n_actions, first.n_states
        if features == "model":
            names = first.feature_names
            state_action = first.state_action_features
            per_level = [_feature_matrix(m, "model") for m in stack.models]
            if state_action:
                per_level = [f.reshape(m.n_states, A, -1) for f, m in zip(per_level, stack.models)]
        elif features == "states":
            names = tuple(f"s{s}" for s in range(S0))
            state_action, per_level = False, None
        else:
            names = tuple(f"s{s},a{a}" for s in range(S0) for a in range(A))
            state_action, per_level = True, None
        self._init(stack, features, names, state_action, per_level, first.discount, l2)

    @classmethod
    def from_stack(
        cls,
        stack: LevelStack,
        features: Sequence[np.ndarray],
        feature_names: Sequence[str],
        *,
        discount: float | None = None,
        l2: float = 0.0,
    ) -> MaxEntObjective:
        """An objective over a prebuilt stack with features given per level.

        Args:
            stack: the levels and demonstrations.
            features: per level, (S_i, K) state or (S_i, A, K) state-action features.
            feature_names: K names.
            discount: the discount (default the models').
            l2: L2 coefficient.

        No TabularModel is rebuilt: this is how the audit fits many candidate objectives
        (each with its own feature columns and discount) to one dataset.
        """
        feats = [np.asarray(f, dtype=np.float64) for f in features]
        if len(feats) != len(stack.models):
            raise InvalidModelError(f"{len(feats)} feature arrays for {len(stack.models)} levels")
        ndim = feats[0].ndim
        K = len(feature_names)
        for f, m in zip(feats, stack.models):
            want = (m.n_states, K) if ndim == 2 else (m.n_states, stack.n_actions, K)
            if f.shape != want or not np.all(np.isfinite(f)):
                raise InvalidModelError(f"features must be finite of shape {want}, got {f.shape}")
        self = cls.__new__(cls)
        gamma = stack.models[0].discount if discount is None else float(discount)
        if not 0.0 < gamma <= 1.0:
            raise InvalidModelError(f"discount must be in (0, 1], got {discount!r}")
        self._init(stack, "model", tuple(feature_names), ndim == 3, feats, gamma, float(l2))
        return self

    def _init(
        self,
        stack: LevelStack,
        features: str,
        names: tuple[str, ...],
        state_action: bool,
        per_level: Sequence[np.ndarray] | None,
        discount: float,
        l2: float,
    ) -> None:
        self.stack = stack
        self.models = stack.models
        self.demos = stack.demos
        self.n_demos = stack.n_demos
        self.horizon = stack.horizon
        self.n_actions = stack.n_actions
        self.features = features
        self.feature_names = names
        self.state_action = state_action
        self.n_features = len(names)
        self.discount = float(discount)
        self.l2 = float(l2)
        self._per_level = per_level
        A = self.n_actions
        if per_level is None:  # one-hot: the kernels' modes 2 (states) and 3 (pairs)
            self._feats = [np.zeros((0, 0)) for _ in stack.chunks]
            self._mode = 2 if features == "states" else 3
        else:
            stacked = stack.stacked(per_level)
            self._mode = 1 if state_action else 0
            K = self.n_features
            self._feats = [f.reshape(-1, K) for f in stacked]  # (S, K) or (S*A, K)
        # transposed, (K, S) or (K, S*A): the lapse model's backward pass reads by feature
        self._feats_t = [np.ascontiguousarray(f.T) for f in self._feats]
        cols = A if state_action else 1
        self._reward = [np.empty((c.n_states, cols)) for c in stack.chunks]
        # (theta's bytes, per chunk the demonstrated steps' pi_t(a_t | s_t)) of the last
        # backup: an optimiser's last evaluation is at its solution, whose likelihood the
        # callers ask for next (see _probabilities)
        self._last_steps: tuple[bytes, list[np.ndarray]] | None = None
        self.demo_mu = self._demo_features()

    @property
    def chunks(self) -> list[_Chunk]:
        """The stacked levels (see :class:`LevelStack`)."""
        return self.stack.chunks

    # -- construction helpers ---------------------------------------------------------

    def _demo_features(self) -> np.ndarray:
        """Mean discounted feature counts of the demonstrations, padded to the horizon
        (state features count the absorbing end state; state-action features a uniform
        action in it, immaterial when absorbing states have zero features)."""
        H, A, K = self.horizon, self.n_actions, self.n_features
        disc = self.discount ** np.arange(H + 1)
        tail = np.concatenate([np.cumsum(disc[:H][::-1])[::-1], [0.0]])  # sum_{t'>=t}
        mu = np.zeros(K)
        for c, f in zip(self.chunks, self._feats):
            w = disc[c.step_t]
            pw = tail[c.pad_from]
            if self._mode == 0:
                mu += w @ f[c.step_s] + pw @ f[c.pad_s]
            elif self._mode == 1:
                f3 = f.reshape(c.n_states, A, K)
                mu += w @ f3[c.step_s, c.step_a] + pw @ f3[c.pad_s].mean(axis=1)
            elif self._mode == 2:
                S0 = self.models[c.levels[0]].n_states
                np.add.at(mu, c.step_s % S0, w)
                np.add.at(mu, c.pad_s % S0, pw)
            else:
                S0 = self.models[c.levels[0]].n_states
                np.add.at(mu, (c.step_s % S0) * A + c.step_a, w)
                for a in range(A):
                    np.add.at(mu, (c.pad_s % S0) * A + a, pw / A)
        return mu / self.n_demos

    # -- evaluation -------------------------------------------------------------------

    def _set_reward(self, j: int, theta: np.ndarray) -> np.ndarray:
        c, r = self.chunks[j], self._reward[j]
        if self._mode in (0, 1):
            r[...] = (self._feats[j] @ theta).reshape(c.n_states, -1)
        elif self._mode == 2:
            S0 = self.models[c.levels[0]].n_states
            r[:, 0] = np.tile(theta, c.n_states // S0)
        else:
            S0 = self.models[c.levels[0]].n_states
            r[...] = np.tile(theta.reshape(S0, self.n_actions), (c.n_states // S0, 1))
        return r

    def _backup(self, j: int, theta: np.ndarray) -> tuple[_Chunk, np.ndarray, np.ndarray]:
        """Soft backup of chunk ``j`` at ``theta``: the chunk, ``pi`` and ``V``."""
        c = self.chunks[j]
        pi, V = self.stack.scratch(j)
        r = self._set_reward(j, theta)
        no_q = np.empty((self.horizon, 0, self.n_actions))
        _kernels.soft_backup_active(
            c.indptr, c.indices, c.data, r, r.shape[1] > 1, self.discount, V, no_q, pi, c.active
        )
        return c, pi, V

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``(-g(theta), -grad g(theta))``: one backup and one forward pass per chunk."""
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        value = float(theta @ self.demo_mu)
        model_mu = np.zeros(self.n_features)
        steps = []
        for j in range(len(self.chunks)):
            c, pi, V = self._backup(j, theta)
            steps.append(pi[c.step_t, c.step_s, c.step_a])
            value -= float(c.d0 @ V[0])
            scratch = np.empty((2, c.n_states))
            # Dense features are folded in after the pass: the kernel accumulates the
            # discounted state (mode 0) or state-action (mode 1) occupancy, one add per
            # visited pair, and one matrix-vector product gives the feature expectations.
            kernel_mode = {0: 2, 1: 3}.get(self._mode, self._mode)
            occ = np.zeros(c.n_states * (self.n_actions if kernel_mode == 3 else 1))
            _kernels.forward_features_active(
                c.indptr, c.indices, c.data, pi, c.d0, self.discount, self._feats[j],
                kernel_mode, occ, scratch, c.active,
            )  # fmt: skip
            if self._mode in (0, 1):
                model_mu += occ @ self._feats[j]
            else:
                model_mu += occ.reshape(-1, self.n_features).sum(axis=0)
        self._last_steps = (theta.tobytes(), steps)
        value -= 0.5 * self.l2 * float(theta @ theta)
        grad = self.demo_mu - model_mu - self.l2 * theta
        self.last_feature_gap = float(np.max(np.abs(self.demo_mu - model_mu)))
        return -value, -grad

    def _step_probabilities(
        self, j: int, theta: np.ndarray
    ) -> tuple[_Chunk, np.ndarray, np.ndarray]:
        """Backup at ``theta``: chunk ``j``, ``pi`` and its demonstrated steps'
        ``pi_t(a_t | s_t)``."""
        c, pi, _ = self._backup(j, theta)
        return c, pi, pi[c.step_t, c.step_s, c.step_a]

    def _probabilities(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per chunk, the demonstrated steps' ``pi_t(a_t | s_t)`` at ``theta`` (contiguous
        float64): those of the last backup when it was at these very weights (no new
        backup; the same numbers), else one backup per chunk."""
        last = self._last_steps
        if last is not None and last[0] == theta.tobytes():
            return last[1]
        steps = [self._step_probabilities(j, theta)[2] for j in range(len(self.chunks))]
        self._last_steps = (theta.tobytes(), steps)
        return steps

    def episode_log_likelihoods(self, theta: np.ndarray) -> np.ndarray:
        """``sum_t log pi_t(a_t | s_t)`` of each demonstration (real steps only), (N,)."""
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        out = np.zeros(self.n_demos)
        for c, p in zip(self.chunks, self._probabilities(theta)):
            logp = np.log(np.maximum(p, 1e-300))
            out += np.bincount(c.step_episode, weights=logp, minlength=self.n_demos)
        return out

    def log_likelihood(self, theta: np.ndarray) -> float:
        """Mean over demonstrations of ``sum_t log pi_t(a_t | s_t)`` (real steps only)."""
        return float(self.episode_log_likelihoods(theta).mean())

    # -- the soft-optimal policy with lapses ---------------------------------------------
    # A behavioural model for agents that mostly act soft-optimally but now and then act
    # at random (epsilon-greedy agents, sampling noise): with probability ``lapse`` an
    # action is drawn uniformly, ``p_t(a|s) = (1 - lapse) pi_t(a|s) + lapse / A``. Its
    # log-likelihood is not the MCE dual, so its gradient needs the derivative of every
    # visited ``log pi_t(a|s)``: with ``Q_t = r + gamma P V_{t+1}`` and ``V_t = logsumexp_a
    # Q_t``, ``d log pi_t(a|s) = dQ_t(s, a) - dV_t(s)``, where ``dV_t(s) = sum_a pi_t(a|s)
    # dQ_t(s, a)`` and ``dQ_t(s, a) = phi(s, a) + gamma sum_s' P(s'|s, a) dV_{t+1}(s')`` --
    # the soft-optimal policy's discounted feature expectations to go, one backward pass
    # (``_kernels.log_policy_gradient``).

    def _check_lapse_mode(self) -> None:
        if self._mode not in (0, 1):
            raise ValueError("the lapse model needs features='model'")

    def lapse_episode_log_likelihoods(self, theta: np.ndarray, lapse: float) -> np.ndarray:
        """``sum_t log((1 - lapse) pi_t(a_t|s_t) + lapse / A)`` per demonstration, (N,)."""
        self._check_lapse_mode()
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        out = np.zeros(self.n_demos)
        for c, p in zip(self.chunks, self._probabilities(theta)):
            mix = np.maximum((1.0 - lapse) * p + lapse / self.n_actions, 1e-300)
            out += np.bincount(c.step_episode, weights=np.log(mix), minlength=self.n_demos)
        return out

    def lapse_value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Minus the mean log-likelihood per demonstration under lapses, and its gradient.

        ``x`` is ``(theta..., lapse)``; returns the value and a (K + 1,) gradient.
        """
        self._check_lapse_mode()
        x = np.asarray(x, dtype=np.float64)
        theta, lapse = np.ascontiguousarray(x[:-1]), float(x[-1])
        A, K = self.n_actions, self.n_features
        ll = 0.0
        grad = np.zeros(K + 1)
        steps = []
        for j in range(len(self.chunks)):
            c, pi, p = self._step_probabilities(j, theta)
            steps.append(p)
            mix = np.maximum((1.0 - lapse) * p + lapse / A, 1e-300)
            ll += float(np.sum(np.log(mix)))
            grad[K] += float(np.sum((1.0 / A - p) / mix))
            w = (1.0 - lapse) * p / mix  # d log mix / d log pi at each step
            _kernels.log_policy_gradient_active(
                c.indptr, c.indices, c.data, pi, self._feats_t[j], self._mode == 1,
                self.discount, c.bounds, c.step_s, c.step_a, w, grad[:K], c.active,
            )  # fmt: skip
        self._last_steps = (theta.tobytes(), steps)
        n = self.n_demos
        return -ll / n, -grad / n

    def rewards(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """The reward array of every model (not only those with demonstrations)."""
        out = []
        A = self.n_actions
        for i, m in enumerate(self.models):
            if self._per_level is not None:
                f = self._per_level[i].reshape(-1, self.n_features)
            else:
                f = _feature_matrix(m, self.features)
            r = f @ theta
            out.append(r.reshape(m.n_states, A) if self.state_action else r)
        return tuple(out)


def _check_feature_modes(models: Sequence[TabularModel], features: str) -> None:
    """Levels must share feature names (model features) or state counts (one-hot)."""
    first = models[0] if models else None
    for i, m in enumerate(models):
        if not isinstance(m, TabularModel):
            raise InvalidModelError(f"models[{i}] is a {type(m).__name__}, not a TabularModel")
        assert first is not None
        if features == "model":
            if m.features is None:
                raise InvalidModelError(f"models[{i}] has no features; use features='states'")
            if m.feature_names != first.feature_names or m.features.ndim != first.features.ndim:
                raise InvalidModelError(
                    f"models[{i}] features {m.feature_names} differ from models[0] "
                    f"{first.feature_names}: levels must share feature names"
                )
        elif m.n_states != first.n_states:
            raise InvalidModelError(
                "one-hot features need levels with the same number of states "
                f"(models[{i}] has {m.n_states}, models[0] has {first.n_states})"
            )


def maxent_irl(
    models: TabularModel | Sequence[TabularModel],
    demonstrations: Sequence[Any],
    levels: Sequence[int] | None = None,
    *,
    features: FeatureMode = "model",
    l2: float | Literal["cv"] = 1e-3,
    init: np.ndarray | None = None,
    max_iter: int = 1000,
    gtol: float = 1e-8,
    ftol: float = 1e-15,
    cv_folds: int = 5,
    cv_grid: Sequence[float] = (1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0),
    seed: int = 0,
) -> RecoveredReward:
    """Fit a linear reward to demonstrations by maximum-causal-entropy IRL.

    Args:
        models: one :class:`TabularModel`, or the list of level models.
        demonstrations: imitation ``Trajectory`` objects whose ``obs`` are *state indices*
            of their level's model (length n+1) and ``acts`` the actions (n), or
            ``(states, actions[, terminal])`` tuples, or :class:`Demonstration` objects.
        levels: for each demonstration, the index of its model in ``models`` (default:
            a :class:`Demonstration`'s own ``level``, else 0).
        features: ``"model"`` (linear in ``model.features``), ``"states"`` (one-hot:
            a per-state reward) or ``"state_actions"`` (one-hot state-action reward).
        l2: L2 regularisation coefficient. The default 1e-3 keeps the problem well
            posed: without it the optimum may not exist (with stochastic dynamics a
            finite sample's feature counts can lie outside what any policy achieves in
            expectation, and the weights then diverge), and with one-hot features
            unvisited states drift to -inf. Use 0 for the exact maximum-likelihood fit,
            or ``"cv"`` to choose it from ``cv_grid`` by ``cv_folds``-fold
            cross-validation of the held-out demonstrations' log-likelihood (the
            largest coefficient within one standard error of the best is taken), then
            refit on all demonstrations.
        init: initial weights (K,), default zeros.
        max_iter: L-BFGS iteration limit.
        gtol: L-BFGS projected-gradient tolerance.
        ftol: L-BFGS tolerance on the relative change of the objective.
        cv_folds, cv_grid: cross-validation folds and candidate coefficients (``l2="cv"``).
        seed: seeds the assignment of demonstrations to folds (``l2="cv"``).

    Returns:
        A :class:`RecoveredReward` (with ``l2`` the coefficient used).

    Raises:
        InvalidModelError: models that cannot share a reward (actions, horizon, discount
            or feature names differ).
        InvalidDemonstrationError: demonstrations that do not fit their models (indices
            out of range, impossible transitions, too long, or ending early outside an
            absorbing state).
    """
    t0 = time.perf_counter()
    model_list = [models] if isinstance(models, TabularModel) else list(models)
    demos_in = list(demonstrations)
    if levels is None:  # Demonstration objects carry their level; others are on level 0
        levels = [d.level if isinstance(d, Demonstration) else 0 for d in demos_in]
    levels = list(levels)
    if len(levels) != len(demos_in):
        raise InvalidDemonstrationError(
            f"{len(levels)} level tags for {len(demos_in)} demonstrations"
        )
    demos = [_to_demo(d, int(lvl)) for d, lvl in zip(demos_in, levels)]
    if isinstance(l2, str):
        if l2 != "cv":
            raise ValueError(f"l2 must be a number or 'cv', got {l2!r}")
        l2 = select_l2(
            model_list,
            demos,
            features=features,
            grid=cv_grid,
            folds=cv_folds,
            seed=seed,
            max_iter=max_iter,
            gtol=gtol,
        ).attrs["selected"]
    problem = MaxEntObjective(model_list, demos, features=features, l2=float(l2))
    return fit_objective(problem, init=init, max_iter=max_iter, gtol=gtol, ftol=ftol, t0=t0)


def select_l2(
    models: Sequence[TabularModel],
    demonstrations: Sequence[Demonstration],
    *,
    features: FeatureMode = "model",
    grid: Sequence[float] = (1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0),
    folds: int = 5,
    seed: int = 0,
    max_iter: int = 1000,
    gtol: float = 1e-8,
) -> Any:
    """Cross-validate the L2 coefficient by held-out log-likelihood.

    Demonstrations are split at random (``seed``) into ``folds`` folds; for each
    coefficient, a fit on all folds but one scores the held-out episodes' log-likelihood.

    Returns:
        A pandas DataFrame, one row per coefficient (mean and standard error of the
        held-out log-likelihood per episode), with ``.attrs["selected"]``: the largest
        coefficient whose mean is within one standard error of the best (the usual
        one-standard-error rule, which prefers the simpler, more regularised reward).
    """
    import pandas as pd

    demos = list(demonstrations)
    n = len(demos)
    if not 2 <= folds <= n:
        raise ValueError(f"need 2 <= folds <= number of demonstrations ({n}), got {folds}")
    if not grid or any((not np.isfinite(g)) or g < 0 for g in grid):
        raise ValueError(f"cv_grid must be non-negative numbers, got {grid!r}")
    assign = np.random.default_rng(seed).permutation(n) % folds
    coefs = sorted({float(g) for g in grid}, reverse=True)
    per_episode = np.empty((len(coefs), n))
    for k in range(folds):
        train = [d for d, f in zip(demos, assign) if f != k]
        test_idx = np.flatnonzero(assign == k)
        test = MaxEntObjective(models, [demos[i] for i in test_idx], features=features)
        init = None
        for row, coef in enumerate(coefs):  # strongest first: warm starts move outwards
            problem = MaxEntObjective(models, train, features=features, l2=float(coef))
            res = fit_objective(problem, init=init, max_iter=max_iter, gtol=gtol)
            init = res.weights
            per_episode[row, test_idx] = test.episode_log_likelihoods(res.weights)
    mean = per_episode.mean(axis=1)
    sem = per_episode.std(axis=1, ddof=1) / np.sqrt(n)
    best = int(np.argmax(mean))
    ok = [i for i in range(len(coefs)) if mean[i] >= mean[best] - sem[best]]
    selected = max(coefs[i] for i in ok)
    table = pd.DataFrame({"l2": coefs, "heldout_ll": mean, "sem": sem}).set_index("l2")
    table.attrs["selected"] = float(selected)
    return table


@functools.cache
def _blas_controller() -> ThreadpoolController:
    """One controller of the loaded BLAS libraries (finding them reads /proc/self/maps,
    ~10 ms: too slow to repeat for every fit)."""
    return ThreadpoolController()


def _lbfgsb(
    fun: Any,
    x0: np.ndarray,
    bounds: Sequence[tuple[float | None, float | None]] | None,
    options: Mapping[str, Any],
) -> scipy.optimize.OptimizeResult:
    """scipy's L-BFGS-B on ``fun -> (value, gradient)``, with single-threaded BLAS.

    L-BFGS-B does many tiny BLAS calls: with a multi-threaded BLAS on a busy machine each
    costs milliseconds of thread hand-off (measured: 30x slower).
    """
    with _blas_controller().limit(limits=1, user_api="blas"):
        return scipy.optimize.minimize(
            fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=dict(options)
        )


def best_lapse(problem: MaxEntObjective, theta: np.ndarray, max_lapse: float = 0.99) -> float:
    """The lapse rate that maximises the likelihood at fixed weights ``theta``.

    One backup: the steps' probabilities ``p`` are fixed, and ``sum log((1 - l) p + l / A)``
    is concave in ``l``, so a bounded scalar search finds it.
    """
    p = np.concatenate(problem._probabilities(np.ascontiguousarray(theta, dtype=np.float64)))
    A = problem.n_actions

    def minus_ll(lapse: float) -> float:
        return -float(np.sum(np.log(np.maximum((1.0 - lapse) * p + lapse / A, 1e-300))))

    res = scipy.optimize.minimize_scalar(
        minus_ll, bounds=(0.0, max_lapse), method="bounded", options={"xatol": 1e-6}
    )
    return float(res.x) if minus_ll(float(res.x)) < minus_ll(0.0) else 0.0


def fit_lapse(
    problem: MaxEntObjective,
    theta: np.ndarray,
    *,
    bounds: Sequence[tuple[float | None, float | None]],
    start: float | None = None,
    max_lapse: float = 0.99,
    gtol: float = 1e-8,
    ftol: float = 1e-11,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Fit weights and a lapse rate (:meth:`MaxEntObjective.lapse_value_and_grad`).

    Starts from ``theta`` (e.g. a lapse-free fit) and lapse ``start`` (default: the best
    lapse at ``theta``, :func:`best_lapse`); ``bounds`` constrain the weights, the lapse
    stays in ``[0, max_lapse]`` (1 would be the uniform policy). ``gtol``/``ftol``: L-BFGS-B's
    tolerances (``ftol`` relative to the mean per-episode log-likelihood). Returns
    ``(theta, lapse, per-episode log-likelihoods)``. The likelihood with lapses is not
    concave: callers should compare with the lapse-free fit (lapse 0 is inside the model).
    """
    theta = np.asarray(theta, dtype=np.float64)
    if start is None:
        start = max(best_lapse(problem, theta, max_lapse), 1e-3)
    res = _lbfgsb(
        problem.lapse_value_and_grad,
        np.append(theta, start),
        [*bounds, (0.0, max_lapse)],
        {"maxiter": 300, "gtol": gtol, "ftol": ftol},
    )
    th, lapse = np.asarray(res.x[:-1], dtype=np.float64), float(res.x[-1])
    return th, lapse, problem.lapse_episode_log_likelihoods(th, lapse)


def fit_objective(
    problem: MaxEntObjective,
    *,
    init: np.ndarray | None = None,
    max_iter: int = 1000,
    gtol: float = 1e-8,
    t0: float | None = None,
    bounds: Sequence[tuple[float | None, float | None]] | None = None,
    ftol: float = 1e-15,
) -> RecoveredReward:
    """Minimise a :class:`MaxEntObjective` with L-BFGS(-B) and package the result.

    ``bounds`` optionally constrains each weight (scipy's ``(low, high)`` pairs); ``gtol``
    and ``ftol`` are L-BFGS-B's tolerances (``ftol`` relative to the objective's value).
    """
    t0 = time.perf_counter() if t0 is None else t0
    K = problem.n_features
    theta0 = np.zeros(K) if init is None else np.asarray(init, dtype=np.float64)
    if theta0.shape != (K,) or not np.all(np.isfinite(theta0)):
        raise ValueError(f"init must be a finite ({K},) array, got shape {theta0.shape}")
    res = _lbfgsb(
        problem.value_and_grad,
        theta0,
        bounds,
        {"maxiter": max_iter, "gtol": gtol, "ftol": ftol, "maxcor": 20},
    )
    theta = np.asarray(res.x, dtype=np.float64)
    # L-BFGS-B reports the value and gradient at its final iterate: no extra evaluation.
    # The gradient of -g is -(demonstrated - fitted feature expectations - l2 * theta).
    value = float(res.fun)
    gap = float(np.max(np.abs(-np.asarray(res.jac) + problem.l2 * theta)))
    ll = problem.log_likelihood(theta)
    return RecoveredReward(
        feature_names=problem.feature_names,
        weights=theta,
        rewards=problem.rewards(theta),
        feature_mode=problem.features,
        iterations=int(res.nit),
        converged=bool(res.success),
        feature_gap=gap,
        log_likelihood=ll,
        objective=-float(value),
        l2=problem.l2,
        n_demonstrations=problem.n_demos,
        wall_time=time.perf_counter() - t0,
        message=str(res.message),
    )
