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
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from behavioral import _kernels
from behavioral.errors import InvalidDemonstrationError, InvalidModelError
from behavioral.tabular import TabularModel, absorbing_states

__all__ = [
    "Demonstration",
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
    """Several levels stacked into one block-diagonal model."""

    levels: list[int]
    offsets: np.ndarray  # state offset of each level in the stack, (L+1,)
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    feats: np.ndarray  # dense stacked features (mode 0/1) or (0, 0) dummy
    mode: int  # kernel mode
    d0: np.ndarray  # (S_total,) empirical start distribution / N
    n_states: int
    pi: np.ndarray  # (H, S_total, A) scratch
    V: np.ndarray  # (H, S_total)
    reward: np.ndarray  # (S_total, A) or (S_total, 1)
    steps: dict[str, Any] | None = None  # demonstrated steps, built for lapse fits


class MaxEntObjective:
    """The negative MaxEnt dual ``-g(theta)`` and its gradient over a set of levels.

    Build once from models and demonstrations; call :meth:`value_and_grad` per iteration.
    Exposed for benchmarks and for callers that want their own optimiser.

    Args:
        models: the levels' tabular models (same actions, horizon and discount; the same
            feature names for ``features="model"``; the same state count for one-hot).
        demonstrations: :class:`Demonstration` objects (``level`` indexes ``models``).
        features: ``"model"`` (the models' named features), ``"states"`` (one-hot
            states: a per-state reward) or ``"state_actions"`` (one-hot pairs).
        l2: L2 coefficient ``lambda``.
    """

    def __init__(
        self,
        models: Sequence[TabularModel],
        demonstrations: Sequence[Demonstration],
        *,
        features: FeatureMode = "model",
        l2: float = 0.0,
    ) -> None:
        if not models:
            raise InvalidModelError("maxent_irl needs at least one model")
        if not demonstrations:
            raise InvalidDemonstrationError("maxent_irl needs at least one demonstration")
        if features not in ("model", "states", "state_actions"):
            raise ValueError(
                f"features must be 'model', 'states' or 'state_actions', got {features!r}"
            )
        if not np.isfinite(l2) or l2 < 0:
            raise ValueError(f"l2 must be a non-negative number, got {l2!r}")
        first = models[0]
        for i, m in enumerate(models):
            if not isinstance(m, TabularModel):
                raise InvalidModelError(f"models[{i}] is a {type(m).__name__}, not a TabularModel")
            if (m.n_actions, m.horizon, m.discount) != (
                first.n_actions,
                first.horizon,
                first.discount,
            ):
                raise InvalidModelError(
                    f"models[{i}] has (A, horizon, discount) = ({m.n_actions}, {m.horizon}, "
                    f"{m.discount}), models[0] has ({first.n_actions}, {first.horizon}, "
                    f"{first.discount}): levels must share them"
                )
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
        self.models = list(models)
        self.features = features
        self.l2 = float(l2)
        self.horizon = first.horizon
        self.discount = first.discount
        self.n_actions = first.n_actions
        A, H, S0 = self.n_actions, self.horizon, first.n_states
        if features == "model":
            self.feature_names = first.feature_names
            self.state_action = first.state_action_features
        elif features == "states":
            self.feature_names = tuple(f"s{s}" for s in range(S0))
            self.state_action = False
        else:
            self.feature_names = tuple(f"s{s},a{a}" for s in range(S0) for a in range(A))
            self.state_action = True
        K = len(self.feature_names)
        self.n_features = K

        # Demonstrated feature expectations and start-state counts.
        self.demos = [self._checked(d) for d in demonstrations]
        N = len(self.demos)
        self.n_demos = N
        disc = self.discount ** np.arange(H)
        mu = np.zeros(K)
        starts: dict[int, np.ndarray] = {}
        absorbing_cache: dict[int, np.ndarray] = {}
        for d in self.demos:
            m = self.models[d.level]
            n = d.actions.shape[0]
            if n < H:
                if d.level not in absorbing_cache:
                    absorbing_cache[d.level] = absorbing_states(m)
                if not absorbing_cache[d.level][d.states[-1]]:
                    raise InvalidDemonstrationError(
                        f"a demonstration on level {d.level} has {n} < horizon={H} steps but "
                        f"its last state {int(d.states[-1])} is not absorbing in the model: "
                        "early-ending episodes must end in an absorbing (terminal) state"
                    )
            mu += self._demo_features(m, d, disc)
            starts.setdefault(d.level, np.zeros(m.n_states))[d.states[0]] += 1.0
        self.demo_mu = mu / N

        # Stack levels that have demonstrations into memory-bounded chunks.
        self.chunks: list[_Chunk] = []
        pending: list[int] = []
        size = 0
        for lvl in sorted(starts):
            cost = self.models[lvl].n_states * A * H
            if pending and size + cost > _CHUNK_BUDGET:
                self.chunks.append(self._make_chunk(pending, starts))
                pending, size = [], 0
            pending.append(lvl)
            size += cost
        if pending:
            self.chunks.append(self._make_chunk(pending, starts))

    # -- construction helpers ---------------------------------------------------------

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
        probs = np.asarray(m.transitions[rows, d.states[1:]]).ravel()
        bad = np.flatnonzero(probs <= 0)
        if bad.size:
            t = int(bad[0])
            raise InvalidDemonstrationError(
                f"demonstration on level {d.level} makes an impossible transition at step {t}: "
                f"state {d.states[t]} --action {d.actions[t]}--> state {d.states[t + 1]} has "
                "probability 0 in the model (wrong level or a dataset from another env?)"
            )
        return d

    def _demo_features(self, m: TabularModel, d: Demonstration, disc: np.ndarray) -> np.ndarray:
        """Discounted feature counts of one demonstration, padded to the horizon."""
        H, A = self.horizon, self.n_actions
        n = d.actions.shape[0]
        K = self.n_features
        out = np.zeros(K)
        s, a = d.states[:n], d.actions
        w = disc[:n]
        pad_w = disc[n:].sum()  # weight of the padded steps in the absorbing state
        s_end = int(d.states[n]) if n < H else -1
        if self.features == "states":
            np.add.at(out, s, w)
            if pad_w:
                out[s_end] += pad_w
        elif self.features == "state_actions":
            np.add.at(out, s * A + a, w)
            if pad_w:
                out[s_end * A : (s_end + 1) * A] += pad_w / A
        elif self.state_action:
            f = m.features
            out += w @ f[s, a]
            if pad_w:
                out += pad_w * f[s_end].mean(axis=0)
        else:
            f = m.features
            out += w @ f[s]
            if pad_w:
                out += pad_w * f[s_end]
        return out

    def _make_chunk(self, levels: list[int], starts: Mapping[int, np.ndarray]) -> _Chunk:
        A, H = self.n_actions, self.horizon
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
        if self.features == "model":
            feats = np.ascontiguousarray(
                np.concatenate([_feature_matrix(m, "model") for m in models], axis=0)
            )
            mode = 1 if self.state_action else 0
        else:
            feats = np.zeros((0, 0))
            mode = 2 if self.features == "states" else 3
        cols = A if self.state_action else 1
        return _Chunk(
            levels=levels,
            offsets=offsets,
            indptr=T.indptr.astype(np.int64),
            indices=T.indices.astype(np.int64),
            data=np.ascontiguousarray(T.data, dtype=np.float64),
            feats=feats,
            mode=mode,
            d0=d0,
            n_states=S_tot,
            pi=_kernels.empty_output((H, S_tot, A)),
            V=_kernels.empty_output((H, S_tot)),
            reward=np.empty((S_tot, cols)),
        )

    # -- evaluation -------------------------------------------------------------------

    def _set_reward(self, c: _Chunk, theta: np.ndarray) -> None:
        A = self.n_actions
        if c.mode in (0, 1):
            r = c.feats @ theta
            c.reward[...] = r.reshape(c.n_states, -1)
        elif c.mode == 2:
            S0 = self.models[c.levels[0]].n_states
            c.reward[:, 0] = np.tile(theta, c.n_states // S0)
        else:
            S0 = self.models[c.levels[0]].n_states
            c.reward[...] = np.tile(theta.reshape(S0, A), (c.n_states // S0, 1))

    def _backup(self, c: _Chunk, theta: np.ndarray) -> None:
        self._set_reward(c, theta)
        no_q = np.empty((self.horizon, 0, self.n_actions))
        _kernels.soft_backup(
            c.indptr,
            c.indices,
            c.data,
            c.reward,
            c.reward.shape[1] > 1,
            self.discount,
            c.V,
            no_q,
            c.pi,
        )

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """``(-g(theta), -grad g(theta))``: one backup and one forward pass per chunk."""
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        value = float(theta @ self.demo_mu)
        model_mu = np.zeros(self.n_features)
        scratch = None
        for c in self.chunks:
            self._backup(c, theta)
            value -= float(c.d0 @ c.V[0])
            if scratch is None or scratch.shape[1] < c.n_states:
                scratch = np.empty((2, c.n_states))
            # Dense features are folded in after the pass: the kernel accumulates the
            # discounted state (mode 0) or state-action (mode 1) occupancy, one add per
            # visited pair, and one matrix-vector product gives the feature expectations.
            kernel_mode = {0: 2, 1: 3}.get(c.mode, c.mode)
            occ = np.zeros(c.n_states * (self.n_actions if kernel_mode == 3 else 1))
            _kernels.forward_features(
                c.indptr,
                c.indices,
                c.data,
                c.pi,
                c.d0,
                self.discount,
                c.feats,
                kernel_mode,
                occ,
                scratch[:, : c.n_states],
            )
            if c.mode in (0, 1):
                model_mu += occ @ c.feats
            else:
                model_mu += occ.reshape(-1, self.n_features).sum(axis=0)
        value -= 0.5 * self.l2 * float(theta @ theta)
        grad = self.demo_mu - model_mu - self.l2 * theta
        self.last_feature_gap = float(np.max(np.abs(self.demo_mu - model_mu)))
        return -value, -grad

    def episode_log_likelihoods(self, theta: np.ndarray) -> np.ndarray:
        """``sum_t log pi_t(a_t | s_t)`` of each demonstration (real steps only), (N,)."""
        out = np.empty(self.n_demos)
        by_level: dict[int, list[int]] = {}
        for i, d in enumerate(self.demos):
            by_level.setdefault(d.level, []).append(i)
        theta = np.asarray(theta, dtype=np.float64)
        for c in self.chunks:
            self._backup(c, theta)
            for j, lvl in enumerate(c.levels):
                for i in by_level.get(lvl, ()):
                    d = self.demos[i]
                    n = d.actions.shape[0]
                    p = c.pi[np.arange(n), c.offsets[j] + d.states[:n], d.actions]
                    out[i] = float(np.sum(np.log(np.maximum(p, 1e-300))))
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
    # the soft-optimal policy's discounted feature expectations to go, one backward pass.

    def _steps(self, c: _Chunk) -> dict[str, Any]:
        """The chunk's demonstrated steps (t, stacked state, action, episode), sorted by t."""
        if c.steps is not None:
            return c.steps
        where = {lvl: j for j, lvl in enumerate(c.levels)}
        t, s, a, ep = [], [], [], []
        for i, d in enumerate(self.demos):
            j = where.get(d.level)
            if j is None:
                continue
            n = d.actions.shape[0]
            t.append(np.arange(n))
            s.append(c.offsets[j] + d.states[:n])
            a.append(d.actions)
            ep.append(np.full(n, i))
        tt, ss, aa, ee = (np.concatenate(x).astype(np.int64) for x in (t, s, a, ep))
        order = np.argsort(tt, kind="stable")
        steps = {
            "t": tt[order],
            "s": ss[order],
            "a": aa[order],
            "episode": ee[order],
            "bounds": np.searchsorted(tt[order], np.arange(self.horizon + 1)),
            "T": sp.csr_array(
                (c.data, c.indices, c.indptr), shape=(c.n_states * self.n_actions, c.n_states)
            ),
        }
        c.steps = steps
        return steps

    def _check_lapse_mode(self) -> None:
        if self.features != "model":
            raise ValueError("the lapse model needs features='model'")

    def _lapse_step_probs(
        self, c: _Chunk, theta: np.ndarray, lapse: float
    ) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
        """The chunk's steps, ``pi_t(a_t|s_t)`` and the lapse mixture's probabilities."""
        self._backup(c, theta)
        st = self._steps(c)
        p = c.pi[st["t"], st["s"], st["a"]]
        return st, p, np.maximum((1.0 - lapse) * p + lapse / self.n_actions, 1e-300)

    def lapse_episode_log_likelihoods(self, theta: np.ndarray, lapse: float) -> np.ndarray:
        """``sum_t log((1 - lapse) pi_t(a_t|s_t) + lapse / A)`` per demonstration, (N,)."""
        self._check_lapse_mode()
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        out = np.zeros(self.n_demos)
        for c in self.chunks:
            st, _, mix = self._lapse_step_probs(c, theta, lapse)
            out += np.bincount(st["episode"], weights=np.log(mix), minlength=self.n_demos)
        return out

    def lapse_value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Minus the mean log-likelihood per demonstration under lapses, and its gradient.

        ``x`` is ``(theta..., lapse)``; returns the value and a (K + 1,) gradient.
        """
        self._check_lapse_mode()
        x = np.asarray(x, dtype=np.float64)
        theta, lapse = np.ascontiguousarray(x[:-1]), float(x[-1])
        A, H, K = self.n_actions, self.horizon, self.n_features
        ll = 0.0
        grad = np.zeros(K + 1)
        for c in self.chunks:
            st, p, mix = self._lapse_step_probs(c, theta, lapse)
            S = c.n_states
            ll += float(np.sum(np.log(mix)))
            grad[K] += float(np.sum((1.0 / A - p) / mix))
            w = (1.0 - lapse) * p / mix  # d log mix / d log pi at each step
            phi = (
                c.feats.reshape(S, A, K)
                if c.mode == 1
                else np.broadcast_to(c.feats[:, None, :], (S, A, K))
            )
            F = np.zeros((S, K))  # dV_{t+1}
            b = st["bounds"]
            for t in range(H - 1, -1, -1):
                G = phi + self.discount * (st["T"] @ F).reshape(S, A, K)  # dQ_t
                F = np.einsum("sa,sak->sk", c.pi[t], G)  # dV_t
                lo, hi = b[t], b[t + 1]
                if hi > lo:
                    s_t, a_t = st["s"][lo:hi], st["a"][lo:hi]
                    grad[:K] += w[lo:hi] @ (G[s_t, a_t] - F[s_t])
        n = self.n_demos
        return -ll / n, -grad / n

    def rewards(self, theta: np.ndarray) -> tuple[np.ndarray, ...]:
        """The reward array of every model (not only those with demonstrations)."""
        out = []
        for m in self.models:
            f = _feature_matrix(m, self.features)
            r = f @ theta
            out.append(r.reshape(m.n_states, self.n_actions) if self.state_action else r)
        return tuple(out)


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
    return fit_objective(problem, init=init, max_iter=max_iter, gtol=gtol, t0=t0)


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
    with threadpool_limits(limits=1, user_api="blas"):
        return scipy.optimize.minimize(
            fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=dict(options)
        )


def fit_lapse(
    problem: MaxEntObjective,
    theta: np.ndarray,
    *,
    bounds: Sequence[tuple[float | None, float | None]],
    start: float = 0.05,
    max_lapse: float = 0.99,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Fit weights and a lapse rate (:meth:`MaxEntObjective.lapse_value_and_grad`).

    Starts from ``theta`` (a lapse-free fit) and lapse ``start``; ``bounds`` constrain the
    weights, the lapse stays in ``[0, max_lapse]`` (1 would be the uniform policy). Returns ``(theta, lapse,
    per-episode log-likelihoods)``. The likelihood with lapses is not concave: callers
    should compare with the lapse-free fit (lapse 0 is inside the model).
    """
    res = _lbfgsb(
        problem.lapse_value_and_grad,
        np.append(theta, start),
        [*bounds, (0.0, max_lapse)],
        {"maxiter": 300, "gtol": 1e-9, "ftol": 1e-12},
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
) -> RecoveredReward:
    """Minimise a :class:`MaxEntObjective` with L-BFGS(-B) and package the result.

    ``bounds`` optionally constrains each weight (scipy's ``(low, high)`` pairs).
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
        {"maxiter": max_iter, "gtol": gtol, "ftol": 1e-15, "maxcor": 20},
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
