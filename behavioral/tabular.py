"""Tabular models and the soft (maximum-causal-entropy) Bellman core.

A :class:`TabularModel` is the one place where environments meet IRL and comparison
code (``../shared/DESIGN.md``, "Contract: environments"): sparse transitions, an initial
distribution, a finite horizon, interpretable features and named objectives.

The two core functions follow the conventions of ``imitation.algorithms.mce_irl``
(Ziebart 2010, recurrences 9.1-9.3) and agree with ``mce_partition_fh`` /
``mce_occupancy_measures`` for state-only rewards:

.. math::

    Q_{H-1}(s, a) = r(s, a), \\qquad
    Q_t(s, a) = r(s, a) + \\gamma \\sum_{s'} P(s' \\mid s, a) V_{t+1}(s'),

    V_t(s) = \\log \\sum_a \\exp Q_t(s, a), \\qquad \\pi_t(a \\mid s) = \\exp(Q_t(s, a) - V_t(s)),

    D_0 = p_0, \\qquad D_{t+1}(s') = \\sum_{s, a} D_t(s)\\, \\pi_t(a \\mid s)\\, P(s' \\mid s, a).

Rewards are collected at steps ``t = 0 .. H-1``: ``r(s_t, a_t)`` is the reward of taking
``a_t`` in ``s_t`` (a state-only reward ``r(s)`` is the same for every action). An
episode that ends before the horizon is modelled by an *absorbing* state (every action
leads back to it with probability 1), whose reward should be 0.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import scipy.sparse as sp

from behavioral import _kernels
from behavioral.errors import InvalidModelError, InvalidPolicyError, InvalidRewardError

__all__ = [
    "StateObservations",
    "TabularModel",
    "absorbing_states",
    "check_reward",
    "content_digest",
    "from_seals",
    "occupancy",
    "soft_bellman",
]

_ROW_SUM_TOL = 1e-6


def _as_csr(transitions: Any) -> sp.csr_array:
    if sp.issparse(transitions):
        mat = sp.csr_array(transitions, dtype=np.float64)
    else:
        arr = np.asarray(transitions, dtype=np.float64)
        if arr.ndim == 3:  # seals layout (S, A, S)
            arr = arr.reshape(arr.shape[0] * arr.shape[1], arr.shape[2])
        if arr.ndim != 2:
            raise InvalidModelError(
                f"transitions must be a 2-D (S*A, S) matrix or a 3-D (S, A, S) array, "
                f"got shape {arr.shape}"
            )
        mat = sp.csr_array(arr)
    mat.sum_duplicates()
    mat.sort_indices()
    # Explicit zeros would only cost time in the kernels.
    mat.eliminate_zeros()
    return mat


class StateObservations:
    """The observation an env emits in each state, computed on demand: (S, *obs_shape).

    A model of a large level would hold S full observations (a 151 x 151 RedDoors level:
    22,801 states x 9 x 151 x 151 floats, 19 GB); this holds a function instead.
    ``shape``, ``dtype``, ``ndim`` and ``len()`` cost nothing; indexing (``obs[s]``,
    ``obs[states]``, ``obs[s, channel]``, slices) computes only the rows asked for; and
    ``np.asarray(obs)`` computes all of them -- what AIRL asks for explicitly.

    Args:
        n_states: S.
        obs_shape: the shape of one observation.
        dtype: its dtype.
        observe: ``state index -> observation`` (an array of ``obs_shape``).
    """

    def __init__(
        self,
        n_states: int,
        obs_shape: tuple[int, ...],
        dtype: Any,
        observe: Any,
    ) -> None:
        if not callable(observe):
            raise InvalidModelError("observe must be a function state index -> observation")
        self._n = int(n_states)
        self._obs_shape = tuple(int(d) for d in obs_shape)
        self._dtype = np.dtype(dtype)
        self._observe = observe

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._n, *self._obs_shape)

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def ndim(self) -> int:
        return 1 + len(self._obs_shape)

    @property
    def nbytes(self) -> int:
        """Bytes the full array would take (``np.asarray``)."""
        return int(np.prod(self.shape, dtype=np.int64)) * self._dtype.itemsize

    def __len__(self) -> int:
        return self._n

    def _row(self, s: int) -> np.ndarray:
        if not -self._n <= s < self._n:
            raise IndexError(f"state {s} is out of range for {self._n} states")
        row = np.asarray(self._observe(s % self._n), dtype=self._dtype)
        if row.shape != self._obs_shape:
            raise InvalidModelError(
                f"the observation of state {s} has shape {row.shape}, expected {self._obs_shape}"
            )
        return row

    def __getitem__(self, index: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(index, tuple):
            index, rest = (index[0], index[1:]) if index else (slice(None), ())
        if isinstance(index, (int, np.integer)):
            return self._row(int(index))[rest] if rest else self._row(int(index))
        states = np.arange(self._n)[index]
        rows = np.empty((states.size, *self._obs_shape), dtype=self._dtype)
        for k, s in enumerate(states.ravel()):
            rows[k] = self._row(int(s))
        rows = rows.reshape(*states.shape, *self._obs_shape)
        return rows[(slice(None),) * states.ndim + rest] if rest else rows

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __repr__(self) -> str:
        return f"StateObservations(shape={self.shape}, dtype={self._dtype}, computed on demand)"


@dataclasses.dataclass(frozen=True, eq=False)
class TabularModel:
    """A finite-horizon tabular MDP of one level, with features and named objectives.

    Attributes:
        transitions: CSR array of shape (S*A, S); row ``s*A + a`` is P(. | s, a). A dense
            (S, A, S) or (S*A, S) array, or any scipy sparse matrix, is converted.
        initial_state_dist: (S,) distribution of the first state.
        horizon: number of actions in an episode (H >= 1), as in imitation's MCE IRL.
        discount: discount factor in (0, 1]; 1.0 for finite-horizon undiscounted.
        features: (S, K) state features or (S, A, K) state-action features.
        feature_names: K names, one per feature column.
        objectives: every named objective as a reward array of shape (S,) or (S, A).
        base: key of the base objective in ``objectives`` (None only when there are
            no objectives).
        cells: (S, 2) int grid (row, col) of each state, for heatmaps, or None.
        observations: (S, *obs_shape) observation the env emits in each state -- an array,
            or :class:`StateObservations` computing them on demand -- or None.
        n_actions: A (inferred from ``transitions`` and S when not given).
    """

    transitions: sp.csr_array
    initial_state_dist: np.ndarray
    horizon: int
    discount: float = 1.0
    features: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()
    objectives: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    base: str | None = None
    cells: np.ndarray | None = None
    observations: np.ndarray | None = None
    n_actions: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        init = np.asarray(self.initial_state_dist, dtype=np.float64)
        if init.ndim != 1 or init.shape[0] == 0:
            raise InvalidModelError(
                f"initial_state_dist must be a non-empty 1-D array, got shape {init.shape}"
            )
        n_states = init.shape[0]
        mat = _as_csr(self.transitions)
        if mat.shape[1] != n_states:
            raise InvalidModelError(
                f"transitions has {mat.shape[1]} columns but initial_state_dist has "
                f"{n_states} states"
            )
        if mat.shape[0] % n_states != 0:
            raise InvalidModelError(
                f"transitions has {mat.shape[0]} rows, not a multiple of S={n_states} "
                "(expected S*A rows)"
            )
        n_actions = mat.shape[0] // n_states
        if self.n_actions and self.n_actions != n_actions:
            raise InvalidModelError(f"n_actions={self.n_actions} but transitions imply {n_actions}")
        if n_actions < 1:
            raise InvalidModelError("a model needs at least one action")
        if not np.all(np.isfinite(mat.data)):
            raise InvalidModelError("transitions contain NaN or infinite entries")
        if np.any(mat.data < 0):
            raise InvalidModelError("transitions contain negative probabilities")
        row_sums = np.asarray(mat.sum(axis=1)).ravel()
        bad = np.flatnonzero(np.abs(row_sums - 1.0) > _ROW_SUM_TOL)
        if bad.size:
            r = int(bad[0])
            raise InvalidModelError(
                f"{bad.size} transition rows do not sum to 1; first: row {r} "
                f"(state {r // n_actions}, action {r % n_actions}) sums to {row_sums[r]!r}"
            )
        if not np.all(np.isfinite(init)) or np.any(init < 0):
            raise InvalidModelError("initial_state_dist has negative, NaN or inf entries")
        if abs(init.sum() - 1.0) > _ROW_SUM_TOL:
            raise InvalidModelError(f"initial_state_dist sums to {init.sum()!r}, not 1")
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, (int, np.integer)):
            raise InvalidModelError(f"horizon must be an int, got {self.horizon!r}")
        if self.horizon < 1:
            raise InvalidModelError(f"horizon must be >= 1, got {self.horizon}")
        discount = float(self.discount)
        if not (0.0 < discount <= 1.0):
            raise InvalidModelError(f"discount must be in (0, 1], got {self.discount!r}")

        features = self.features
        names = tuple(str(n) for n in self.feature_names)
        if features is not None:
            features = np.asarray(features, dtype=np.float64)
            if features.ndim == 2:
                if features.shape[0] != n_states:
                    raise InvalidModelError(
                        f"features has {features.shape[0]} rows but the model has "
                        f"S={n_states} states"
                    )
            elif features.ndim == 3:
                if features.shape[:2] != (n_states, n_actions):
                    raise InvalidModelError(
                        f"state-action features must be (S, A, K)=({n_states}, "
                        f"{n_actions}, K), got {features.shape}"
                    )
            else:
                raise InvalidModelError(
                    f"features must be (S, K) or (S, A, K), got shape {features.shape}"
                )
            if not np.all(np.isfinite(features)):
                raise InvalidModelError("features contain NaN or infinite entries")
            n_feats = features.shape[-1]
            if not names:
                names = tuple(f"f{k}" for k in range(n_feats))
            if len(names) != n_feats:
                raise InvalidModelError(f"{len(names)} feature_names for {n_feats} feature columns")
            if len(set(names)) != len(names):
                raise InvalidModelError(f"feature_names are not unique: {names}")
            features.setflags(write=False)
        elif names:
            raise InvalidModelError("feature_names given without features")

        objectives: dict[str, np.ndarray] = {}
        for name, arr in dict(self.objectives).items():
            try:
                arr = check_reward(arr, n_states, n_actions, what=f"objective {name!r}")
            except InvalidRewardError as err:
                raise InvalidModelError(str(err)) from None
            arr = arr.copy()
            arr.setflags(write=False)
            objectives[str(name)] = arr
        base = self.base
        if base is not None and base not in objectives:
            raise InvalidModelError(
                f"base objective {base!r} is not among the objectives {sorted(objectives)}"
            )
        if base is None and objectives:
            raise InvalidModelError(
                "objectives given without base=: name which one is the base objective"
            )

        cells = self.cells
        if cells is not None:
            cells = np.asarray(cells)
            if cells.shape != (n_states, 2) or not np.issubdtype(cells.dtype, np.integer):
                raise InvalidModelError(
                    f"cells must be an int array of shape (S, 2)=({n_states}, 2), "
                    f"got {cells.dtype} {cells.shape}"
                )
        observations = self.observations
        if observations is not None and not isinstance(observations, StateObservations):
            observations = np.asarray(observations)
        if observations is not None:
            if observations.ndim < 1 or observations.shape[0] != n_states:
                raise InvalidModelError(
                    f"observations must have S={n_states} rows, got shape {observations.shape}"
                )

        set_(self, "transitions", mat)
        set_(self, "initial_state_dist", init)
        set_(self, "horizon", int(self.horizon))
        set_(self, "discount", discount)
        set_(self, "features", features)
        set_(self, "feature_names", names)
        set_(self, "objectives", MappingProxyType(objectives))
        set_(self, "cells", cells)
        set_(self, "observations", observations)
        set_(self, "n_actions", n_actions)

    @property
    def n_states(self) -> int:
        """S, the number of states."""
        return int(self.initial_state_dist.shape[0])

    @property
    def n_features(self) -> int:
        """K, the number of feature columns (0 without features)."""
        return 0 if self.features is None else int(self.features.shape[-1])

    @property
    def state_action_features(self) -> bool:
        """Whether ``features`` are (S, A, K) rather than (S, K)."""
        return self.features is not None and self.features.ndim == 3

    def transition_tensor(self) -> np.ndarray:
        """Dense (S, A, S) transition array, seals' layout (only for small models)."""
        return self.transitions.toarray().reshape(self.n_states, self.n_actions, self.n_states)

    def replace(self, **changes: Any) -> TabularModel:
        """A copy with some fields replaced (validated again)."""
        return dataclasses.replace(self, **changes)

    def with_initial_state_dist(self, initial_state_dist: Any) -> TabularModel:
        """The same level with another initial distribution (e.g. another start cell).

        Only the new distribution is validated; every other array is shared with this
        model (they are read-only), so levels that differ only in where episodes start cost
        nothing to build and are recognised as one level at once (``merge_levels``).
        """
        init = np.asarray(initial_state_dist, dtype=np.float64)
        if init.shape != (self.n_states,) or not np.all(np.isfinite(init)) or np.any(init < 0):
            raise InvalidModelError(
                f"initial_state_dist must be a non-negative ({self.n_states},) array"
            )
        if abs(init.sum() - 1.0) > _ROW_SUM_TOL:
            raise InvalidModelError(f"initial_state_dist sums to {init.sum()!r}, not 1")
        new = copy.copy(self)
        object.__setattr__(new, "initial_state_dist", init)
        return new

    def __repr__(self) -> str:
        names = self.feature_names
        feats = names if len(names) <= 8 else f"<{len(names)} features>"
        return (
            f"TabularModel(S={self.n_states}, A={self.n_actions}, horizon={self.horizon}, "
            f"discount={self.discount}, nnz={self.transitions.nnz}, "
            f"features={feats}, objectives={tuple(self.objectives)}, "
            f"base={self.base!r})"
        )


def from_seals(
    env: Any,
    *,
    horizon: int | None = None,
    discount: float = 1.0,
    objectives: Mapping[str, np.ndarray] | None = None,
    base: str | None = None,
    base_name: str = "reward",
) -> TabularModel:
    """Build a :class:`TabularModel` from a seals ``TabularModelPOMDP`` (or ``ResettableMDP``).

    The env's ``transition_matrix`` (S, A, S) becomes the sparse transitions, its
    ``observation_matrix`` the features and observations (one-hot states when the env has
    none), and its ``reward_matrix`` (S,) or (S, A) the base objective named
    ``base_name``. ``objectives`` adds (or replaces) named objectives; ``base`` picks the
    base among them (default: the env's reward).

    Raises:
        InvalidModelError: the env is not tabular, has an infinite horizon, or a
            (S, A, S) reward (which this library does not model).
    """
    env = getattr(env, "unwrapped", env)
    for attr in ("transition_matrix", "reward_matrix", "initial_state_dist"):
        if not hasattr(env, attr):
            raise InvalidModelError(
                f"{type(env).__name__} is not a seals tabular env: it has no {attr!r}"
            )
    trans = np.asarray(env.transition_matrix, dtype=np.float64)
    if trans.ndim != 3:
        raise InvalidModelError(f"transition_matrix must be (S, A, S), got {trans.shape}")
    n_states = trans.shape[0]
    horizon = env.horizon if horizon is None else horizon
    if horizon is None:
        raise InvalidModelError("the env has an infinite horizon; pass horizon= to from_seals")
    reward = np.asarray(env.reward_matrix, dtype=np.float64)
    if reward.ndim == 3:
        raise InvalidModelError("(S, A, S) rewards are not supported; reduce them to (S, A) first")
    obs = getattr(env, "observation_matrix", None)
    if obs is None:
        obs = np.eye(n_states)
    obs = np.asarray(obs)
    feats = obs.reshape(n_states, -1).astype(np.float64)
    names = tuple(f"obs[{k}]" for k in range(feats.shape[1]))
    objs = {base_name: reward}
    if objectives:
        objs.update(objectives)
    return TabularModel(
        transitions=trans,
        initial_state_dist=np.asarray(env.initial_state_dist, dtype=np.float64),
        horizon=int(horizon),
        discount=discount,
        features=feats,
        feature_names=names,
        objectives=objs,
        base=base_name if base is None else base,
        observations=obs,
    )


def check_reward(reward: Any, n_states: int, n_actions: int, *, what: str = "reward") -> np.ndarray:
    """Validate a reward array of shape (S,) or (S, A) and return it as float64.

    Raises:
        InvalidRewardError: wrong shape or non-finite entries.
    """
    try:
        arr = np.asarray(reward, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidRewardError(f"{what} is not a numeric array: {err}") from None
    if arr.shape not in ((n_states,), (n_states, n_actions)):
        raise InvalidRewardError(
            f"{what} must have shape (S,)=({n_states},) or (S, A)=({n_states}, "
            f"{n_actions}), got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidRewardError(f"{what} contains NaN or infinite entries")
    return arr


def _kernel_reward(reward: np.ndarray) -> tuple[np.ndarray, bool]:
    if reward.ndim == 1:
        return np.ascontiguousarray(reward[:, None]), False
    return np.ascontiguousarray(reward), True


def soft_bellman(model: TabularModel, reward: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite-horizon soft Bellman backup (maximum causal entropy value iteration).

    Args:
        model: the MDP; ``model.discount`` is used.
        reward: (S,) state reward or (S, A) state-action reward, collected at steps
            0 .. H-1.

    Returns:
        ``(V, Q, pi)`` with ``V[t, s]`` of shape (H, S), ``Q[t, s, a]`` and
        ``pi[t, s, a]`` of shape (H, S, A). Equal to imitation's ``mce_partition_fh``
        for state-only rewards. Log-sum-exp is computed stably (max-shifted), so reward
        magnitudes in the thousands are fine. Cost O(H * (nnz + S*A)).

    Raises:
        InvalidRewardError: wrong shape or non-finite reward.
    """
    r = check_reward(reward, model.n_states, model.n_actions)
    rk, is_sa = _kernel_reward(r)
    H, S, A = model.horizon, model.n_states, model.n_actions
    V = _kernels.empty_output((H, S))
    Q = _kernels.empty_output((H, S, A))
    pi = _kernels.empty_output((H, S, A))
    T = model.transitions
    _kernels.soft_backup(T.indptr, T.indices, T.data, rk, is_sa, model.discount, V, Q, pi)
    return V, Q, pi


def _policy_array(model: TabularModel, pi: Any) -> tuple[np.ndarray, bool]:
    """``pi`` as a C-contiguous float64 (H, S, A) or (1, S, A) array, and ``stationary``."""
    H, S, A = model.horizon, model.n_states, model.n_actions
    try:
        arr = np.asarray(pi, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidPolicyError(f"policy is not a numeric array: {err}") from None
    if arr.shape == (S, A):
        arr, stationary = arr[None], True
    elif arr.shape == (H, S, A):
        stationary = False
    else:
        raise InvalidPolicyError(
            f"policy must have shape (H, S, A)=({H}, {S}, {A}) or (S, A)=({S}, {A}), "
            f"got {arr.shape}"
        )
    return np.ascontiguousarray(arr), stationary


def _raise_bad_policy(status: int, t: int, s: int, row_sum: float, stationary: bool) -> None:
    where = f"state {s}" if stationary else f"step {t}, state {s}"
    if status == 1:
        raise InvalidPolicyError(
            f"policy has negative, NaN or infinite probabilities (first at {where})"
        )
    raise InvalidPolicyError(
        f"policy rows must sum to 1 (within 1e-6); the row at {where} sums to {row_sum!r}"
    )


def check_policy(model: TabularModel, pi: Any) -> tuple[np.ndarray, bool]:
    """Validate a policy (H, S, A) or stationary (S, A); return it and ``stationary``.

    The returned array is C-contiguous float64 of shape (H, S, A), or (1, S, A) when
    stationary (no copy when ``pi`` already is one). The check is one compiled pass
    without temporaries.

    Raises:
        InvalidPolicyError: wrong shape, negative/NaN/inf entries, rows not summing to 1.
    """
    arr, stationary = _policy_array(model, pi)
    status, t, s, row_sum = _kernels.check_policy_rows(arr)
    if status:
        _raise_bad_policy(status, t, s, row_sum, stationary)
    return arr, stationary


def occupancy(
    model: TabularModel, pi: Any, initial_state_dist: np.ndarray | None = None
) -> np.ndarray:
    """Expected state visitation per step under policy ``pi``.

    Args:
        model: the MDP.
        pi: (H, S, A) time-dependent or (S, A) stationary policy.
        initial_state_dist: (S,) start distribution; default ``model.initial_state_dist``.

    Returns:
        ``D`` of shape (H+1, S): ``D[t, s]`` is the probability of being in ``s`` at step
        ``t`` (``D[0]`` is the initial distribution) -- the convention of imitation's
        ``mce_occupancy_measures``. Cost O(H * (nnz + S*A)).

    Raises:
        InvalidPolicyError: malformed ``pi``.
        InvalidModelError: malformed ``initial_state_dist``.
    """
    arr, stationary = _policy_array(model, pi)
    d0 = model.initial_state_dist if initial_state_dist is None else initial_state_dist
    d0 = np.asarray(d0, dtype=np.float64)
    if d0.shape != (model.n_states,) or not np.all(np.isfinite(d0)) or np.any(d0 < 0):
        raise InvalidModelError(
            f"initial_state_dist must be a non-negative (S,)=({model.n_states},) array"
        )
    D = _kernels.empty_output((model.horizon + 1, model.n_states))
    D[0] = d0
    T = model.transitions
    # The policy is validated inside the forward pass, slab by slab (no temporaries).
    status, t, s, row_sum = _kernels.forward_checked(
        T.indptr, T.indices, T.data, arr, stationary, D
    )
    if status:
        _raise_bad_policy(status, t, s, row_sum, stationary)
    return D


def absorbing_states(model: TabularModel) -> np.ndarray:
    """Boolean (S,) mask of states that every action maps back to themselves w.p. 1.

    Episodes that end before the horizon are modelled as staying in such a state.
    """
    S, A = model.n_states, model.n_actions
    T = model.transitions
    rows = np.arange(S * A)
    owner = rows // A
    diag = np.asarray(T[rows, owner]).ravel()
    return np.all((diag > 1.0 - 1e-12).reshape(S, A), axis=1)


def content_digest(*items: Any) -> bytes:
    """A 20-byte digest of arrays (dtype, shape and bytes) and other values (their repr).

    For caches keyed by a model's content: two models with the same arrays get the same
    digest whatever their Python identity.
    """
    h = hashlib.blake2b(digest_size=20)
    for item in items:
        if isinstance(item, np.ndarray):
            arr = np.ascontiguousarray(item)
            h.update(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(arr.tobytes())
        else:
            h.update(repr(item).encode())
        h.update(b"\x00")
    return h.digest()
