"""Shaping-invariant comparison of reward functions: EPIC, exact and sampled.

EPIC (Gleave, Dennis, Legg, Russell and Leike 2021, "Quantifying Differences in Reward
Functions", ICLR) compares two rewards after removing everything that does not change
which policies are optimal: potential shaping, positive scaling and shifts.

1. **Canonicalise** each reward under a state distribution :math:`D_S` and an action
   distribution :math:`D_A` (uniform by default), with :math:`S, S' \\sim D_S` and
   :math:`A \\sim D_A` independent:

   .. math::

       C(R)(s, a, s') = R(s, a, s') + \\gamma\\, \\mathbb{E}[R(s', A, S')]
                        - \\mathbb{E}[R(s, A, S')] - \\gamma\\, \\mathbb{E}[R(S, A, S')].

   Writing :math:`m(s) = \\mathbb{E}[R(s, A, S')]` and :math:`M = \\mathbb{E}[m(S)]`, this
   is ``R(s,a,s') + γ m(s') - m(s) - γ M``: the reward shaped by the potential ``m``. A
   shaped reward ``R + γΦ(s') - Φ(s)`` has the same canonical form as ``R``.

2. **Compare** the canonical rewards with the Pearson distance
   :math:`D_\\rho(X, Y) = \\sqrt{(1 - \\rho(X, Y)) / 2}`, where :math:`\\rho` is their
   correlation when transitions :math:`(s, a, s')` are drawn from a *coverage
   distribution* :math:`\\mathcal{D}` (e.g. the transitions a dataset visits, or every
   feasible transition of the dynamics). The result lies in [0, 1]: 0 for equivalent
   rewards, 1 for a reward and its negation. It is a pseudometric (symmetric, triangle
   inequality).

Shapes. A reward is an array of shape (S,) — ``r(s)``, collected on leaving ``s``, the
library's convention (``behavioral.tabular``) and that of the paper's gridworlds, which
tile a state reward over ``(a, s')`` — or (S, A) — ``r(s, a)`` — or (S, A, S) —
``R(s, a, s')``. Nothing is broadcast to (S, A, S) except in :func:`canonicalize`, which
returns the dense canonical reward and refuses large models: the distances evaluate the
canonical reward only on the coverage's support, so their cost grows with the number of
covered transitions (for a model: the non-zeros of its CSR transition matrix).

Exact reductions used:

* both rewards state-only: ``C(R)(s, a, s') = γ (r(s') - M)``, so EPIC is the weighted
  Pearson distance between the two reward *vectors* under the coverage's marginal over
  next states (0 for γ = 0, where every state-only reward is equivalent to 0);
* otherwise the canonical values are computed at the covered triples only, with ``m`` in
  O(S·A) for (S, A) rewards and O(S²·A) for dense (S, A, S) rewards.

Constant canonical rewards. Pearson's ρ is undefined when a canonical reward has zero
variance under the coverage (the reward is equivalent to 0 on that coverage, e.g. a
shaped zero reward, or any state-only reward when γ = 0). We use the identity
:math:`D_\\rho(X, Y) = \\tfrac12 \\lVert Z_X - Z_Y \\rVert_2` for standardised
:math:`Z = (X - \\mathbb{E}X) / \\sigma_X` and standardise a constant to :math:`Z = 0`.
Hence the distance is **0 when both are constant** (both are equivalent to the zero
reward) and **0.5 when exactly one is**; it stays in [0, 1] and remains a pseudometric
(it is half a Euclidean distance between points of :math:`L^2(\\mathcal{D})`). The
:class:`EpicResult` reports such cases in ``degenerate`` and gives ``correlation=nan``.

The sampled estimator (:func:`sampled_epic`) follows the paper's
``sample_canon_shaping`` (evaluating-rewards, ``src/evaluating_rewards/distances/
epic_sample.py``): ``n_transitions`` transitions drawn from the coverage, and
``n_mean_samples`` pairs ``(a_j, s'_j) ~ D_A × D_S`` that estimate ``m(s)`` by
``mean_j R(s, a_j, s'_j)`` and ``M`` by ``mean_j m(s'_j)``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from behavioral.errors import InvalidDistributionError, InvalidModelError, InvalidRewardError
from behavioral.tabular import TabularModel

__all__ = [
    "Coverage",
    "EpicResult",
    "canonical_values",
    "canonicalize",
    "empirical_coverage",
    "epic",
    "epic_distance",
    "feasible_coverage",
    "model_coverage",
    "model_epic",
    "occupancy_coverage",
    "pearson_distance",
    "pearson_distances",
    "potential_shaping",
    "sampled_epic",
    "uniform_coverage",
]

#: Largest number of (s, a, s') entries that is ever materialised densely.
DENSE_LIMIT = 20_000_000
_PROB_TOL = 1e-6
#: A canonical reward whose standard deviation is below this fraction of its scale is
#: treated as constant (roundoff of a shaped constant reward is ~1e-16 of its scale).
_CONSTANT_RTOL = 1e-9


# --------------------------------------------------------------------------- validation


def _check_reward3(reward: Any, what: str) -> np.ndarray:
    """Return ``reward`` as a float64 array of shape (S,), (S, A) or (S, A, S)."""
    try:
        arr = np.asarray(reward, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidRewardError(f"{what} is not a numeric array: {err}") from None
    if arr.ndim not in (1, 2, 3) or arr.size == 0:
        raise InvalidRewardError(
            f"{what} must have shape (S,), (S, A) or (S, A, S), got {arr.shape}"
        )
    if arr.ndim == 3 and arr.shape[2] != arr.shape[0]:
        raise InvalidRewardError(
            f"{what} of shape {arr.shape} is not (S, A, S): first and last axes differ"
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidRewardError(f"{what} contains NaN or infinite entries")
    return arr


def _check_discount(discount: Any) -> float:
    try:
        gamma = float(discount)
    except (TypeError, ValueError):
        raise InvalidModelError(f"discount must be a number, got {discount!r}") from None
    if not (0.0 <= gamma <= 1.0):
        raise InvalidModelError(f"discount must be in [0, 1], got {discount!r}")
    return gamma


def _check_dist(dist: Any, size: int, what: str) -> np.ndarray:
    """Validate a probability vector of length ``size``; None means uniform."""
    if dist is None:
        return np.full(size, 1.0 / size)
    try:
        arr = np.asarray(dist, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidDistributionError(f"{what} is not a numeric array: {err}") from None
    if arr.shape != (size,):
        raise InvalidDistributionError(f"{what} must have shape ({size},), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise InvalidDistributionError(f"{what} has negative, NaN or infinite entries")
    if abs(arr.sum() - 1.0) > _PROB_TOL:
        raise InvalidDistributionError(f"{what} sums to {arr.sum()!r}, not 1")
    return arr


def _reward_dims(rewards: tuple[np.ndarray, ...]) -> tuple[int, int | None]:
    """Common S of the rewards, and A if any reward has an action axis."""
    n_states = rewards[0].shape[0]
    n_actions: int | None = None
    for i, r in enumerate(rewards):
        if r.shape[0] != n_states:
            raise InvalidRewardError(
                f"rewards disagree on the number of states: {rewards[0].shape} vs "
                f"reward {i + 1} {r.shape}"
            )
        if r.ndim >= 2:
            if n_actions is not None and r.shape[1] != n_actions:
                raise InvalidRewardError(
                    f"rewards disagree on the number of actions: {n_actions} vs {r.shape[1]}"
                )
            n_actions = r.shape[1]
    return n_states, n_actions


# --------------------------------------------------------------------------- coverage


@dataclasses.dataclass(frozen=True, eq=False)
class Coverage:
    """A distribution over transitions (s, a, s'), stored sparsely as a list of triples.

    EPIC compares rewards on the transitions drawn from this distribution; the audit
    report states which coverage was used (:meth:`summary`).

    Attributes:
        states: (N,) int source states s.
        actions: (N,) int actions a.
        next_states: (N,) int successor states s'.
        weights: (N,) positive probabilities summing to 1 (normalised on construction;
            zero-weight entries are dropped, duplicates are allowed and add up).
        n_states: S.
        n_actions: A.
        name: short description, e.g. ``"feasible transitions"``.
    """

    states: np.ndarray
    actions: np.ndarray
    next_states: np.ndarray
    weights: np.ndarray
    n_states: int
    n_actions: int
    name: str = "custom"

    def __post_init__(self) -> None:
        n_states, n_actions = int(self.n_states), int(self.n_actions)
        if n_states < 1 or n_actions < 1:
            raise InvalidDistributionError(
                f"coverage needs n_states >= 1 and n_actions >= 1, got ({n_states}, {n_actions})"
            )
        idx = []
        for name, arr, bound in (
            ("states", self.states, n_states),
            ("actions", self.actions, n_actions),
            ("next_states", self.next_states, n_states),
        ):
            arr = np.asarray(arr)
            if arr.ndim != 1:
                raise InvalidDistributionError(f"coverage {name} must be 1-D, got {arr.shape}")
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                raise InvalidDistributionError(
                    f"coverage {name} must be integer indices, got {arr.dtype}"
                )
            arr = arr.astype(np.int64)
            if arr.size and (arr.min() < 0 or arr.max() >= bound):
                raise InvalidDistributionError(f"coverage {name} has indices outside [0, {bound})")
            idx.append(arr)
        try:
            weights = np.asarray(self.weights, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise InvalidDistributionError(f"coverage weights are not numeric: {err}") from None
        if weights.ndim != 1 or not (len(idx[0]) == len(idx[1]) == len(idx[2]) == len(weights)):
            raise InvalidDistributionError(
                "coverage states, actions, next_states and weights must be 1-D of one length, "
                f"got {[len(a) for a in idx]} and weights {weights.shape}"
            )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise InvalidDistributionError("coverage weights have negative, NaN or inf entries")
        total = weights.sum()
        if not total > 0:
            raise InvalidDistributionError("coverage has no mass (empty or all-zero weights)")
        keep = weights > 0
        set_ = object.__setattr__
        for name, arr in zip(("states", "actions", "next_states"), idx, strict=True):
            arr = arr[keep]
            arr.setflags(write=False)
            set_(self, name, arr)
        weights = weights[keep] / total
        weights.setflags(write=False)
        set_(self, "weights", weights)
        set_(self, "n_states", n_states)
        set_(self, "n_actions", n_actions)
        set_(self, "name", str(self.name))

    @classmethod
    def from_dense(cls, dist: Any, name: str = "custom") -> Coverage:
        """Coverage from a dense (S, A, S) array of non-negative weights (normalised)."""
        try:
            arr = np.asarray(dist, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise InvalidDistributionError(f"coverage is not a numeric array: {err}") from None
        if arr.ndim != 3 or arr.shape[0] != arr.shape[2]:
            raise InvalidDistributionError(f"a dense coverage must be (S, A, S), got {arr.shape}")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise InvalidDistributionError("coverage has negative, NaN or infinite entries")
        s, a, t = np.nonzero(arr)
        return cls(s, a, t, arr[s, a, t], arr.shape[0], arr.shape[1], name)

    def __repr__(self) -> str:
        return (
            f"Coverage({self.name!r}, n_transitions={len(self)}, "
            f"n_states={self.n_states}, n_actions={self.n_actions})"
        )

    def __len__(self) -> int:
        return int(self.weights.shape[0])

    def dense(self) -> np.ndarray:
        """The coverage as a dense (S, A, S) array (refused above ``DENSE_LIMIT`` entries)."""
        size = self.n_states * self.n_actions * self.n_states
        if size > DENSE_LIMIT:
            raise InvalidDistributionError(
                f"a dense (S, A, S) coverage would have {size} entries (> {DENSE_LIMIT})"
            )
        out = np.zeros((self.n_states, self.n_actions, self.n_states))
        np.add.at(out, (self.states, self.actions, self.next_states), self.weights)
        return out

    def next_state_marginal(self) -> np.ndarray:
        """(S,) probability of each successor state s'."""
        return np.bincount(self.next_states, weights=self.weights, minlength=self.n_states)

    def state_marginal(self) -> np.ndarray:
        """(S,) probability of each source state s."""
        return np.bincount(self.states, weights=self.weights, minlength=self.n_states)

    def state_action_marginal(self) -> np.ndarray:
        """(S, A) probability of each source state-action pair."""
        flat = np.bincount(
            self.states * self.n_actions + self.actions,
            weights=self.weights,
            minlength=self.n_states * self.n_actions,
        )
        return flat.reshape(self.n_states, self.n_actions)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw ``n`` i.i.d. transitions; returns (states, actions, next_states), each (n,)."""
        pick = rng.choice(len(self), size=int(n), p=self.weights)
        return self.states[pick], self.actions[pick], self.next_states[pick]

    def summary(self) -> dict[str, Any]:
        """JSON-ready description of the coverage, for reports."""
        w = self.weights
        entropy = float(-(w * np.log(w)).sum())
        covered = np.union1d(self.states, self.next_states)
        return {
            "name": self.name,
            "n_states": self.n_states,
            "n_actions": self.n_actions,
            "n_transitions": len(self),
            "n_states_covered": int(covered.size),
            "n_state_actions_covered": int(
                np.unique(self.states * self.n_actions + self.actions).size
            ),
            # exp(entropy): how many equally likely transitions it is worth
            "effective_transitions": float(np.exp(entropy)),
        }


def _as_transitions_csr(transitions: Any) -> sp.csr_array:
    """A (S*A, S) CSR matrix from CSR / dense (S*A, S) / dense (S, A, S) / a model."""
    if isinstance(transitions, TabularModel):
        return transitions.transitions
    if sp.issparse(transitions):
        mat = sp.csr_array(transitions, dtype=np.float64)
    else:
        arr = np.asarray(transitions, dtype=np.float64)
        if arr.ndim == 3:
            arr = arr.reshape(arr.shape[0] * arr.shape[1], arr.shape[2])
        if arr.ndim != 2:
            raise InvalidModelError(
                f"transitions must be (S*A, S) or (S, A, S), got shape {arr.shape}"
            )
        mat = sp.csr_array(arr)
    mat.sum_duplicates()
    mat.eliminate_zeros()
    if mat.shape[1] == 0 or mat.shape[0] % mat.shape[1] != 0:
        raise InvalidModelError(f"transitions of shape {mat.shape} are not (S*A, S)")
    if not np.all(np.isfinite(mat.data)) or np.any(mat.data < 0):
        raise InvalidModelError("transitions have negative, NaN or infinite entries")
    return mat


def _csr_triples(mat: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_states = mat.shape[1]
    n_actions = mat.shape[0] // n_states
    rows = np.repeat(np.arange(mat.shape[0], dtype=np.int64), np.diff(mat.indptr))
    return rows // n_actions, rows % n_actions, mat.indices.astype(np.int64), mat.data


def feasible_coverage(transitions: Any) -> Coverage:
    """Uniform coverage over the feasible transitions: every (s, a, s') with P(s'|s,a) > 0.

    Args:
        transitions: a :class:`~behavioral.tabular.TabularModel`, a (S*A, S) sparse or
            dense matrix with row ``s*A + a`` = P(. | s, a), or a dense (S, A, S) array.

    Returns:
        The coverage, with one entry per non-zero of the CSR transition matrix.
    """
    mat = _as_transitions_csr(transitions)
    s, a, t, _ = _csr_triples(mat)
    n_states = mat.shape[1]
    return Coverage(
        s,
        a,
        t,
        np.ones(len(s)),
        n_states,
        mat.shape[0] // n_states,
        "feasible transitions (uniform over P > 0)",
    )


def uniform_coverage(n_states: int, n_actions: int) -> Coverage:
    """Uniform coverage over all S·A·S triples (refused above ``DENSE_LIMIT`` triples)."""
    size = n_states * n_actions * n_states
    if size > DENSE_LIMIT:
        raise InvalidDistributionError(
            f"uniform coverage over all {size} (s, a, s') triples is too large "
            f"(> {DENSE_LIMIT}); pass a coverage (e.g. feasible_coverage(model))"
        )
    s, a, t = np.unravel_index(np.arange(size), (n_states, n_actions, n_states))
    return Coverage(s, a, t, np.ones(size), n_states, n_actions, "uniform over all (s, a, s')")


def occupancy_coverage(
    transitions: Any, state_action_occupancy: Any, name: str = "state-action occupancy"
) -> Coverage:
    """Coverage ``D(s, a) P(s' | s, a)``: state-action visitation pushed through the dynamics.

    Args:
        transitions: a model or transition matrix, as in :func:`feasible_coverage`.
        state_action_occupancy: (S, A) non-negative visitation weights (normalised here),
            e.g. ``einsum("ts,tsa->sa", D[:H], pi)`` from ``occupancy`` and a policy, or
            the counts of (state, action) pairs in a dataset.
        name: description for reports.
    """
    mat = _as_transitions_csr(transitions)
    n_states = mat.shape[1]
    n_actions = mat.shape[0] // n_states
    try:
        occ = np.asarray(state_action_occupancy, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InvalidDistributionError(f"occupancy is not a numeric array: {err}") from None
    if occ.shape != (n_states, n_actions):
        raise InvalidDistributionError(
            f"state-action occupancy must be (S, A)=({n_states}, {n_actions}), got {occ.shape}"
        )
    if not np.all(np.isfinite(occ)) or np.any(occ < 0):
        raise InvalidDistributionError("occupancy has negative, NaN or infinite entries")
    s, a, t, p = _csr_triples(mat)
    return Coverage(s, a, t, occ[s, a] * p, n_states, n_actions, name)


def empirical_coverage(
    states: Any,
    actions: Any,
    next_states: Any,
    n_states: int,
    n_actions: int,
    name: str = "observed transitions",
) -> Coverage:
    """Coverage from observed transitions, each weighted by its count.

    Args:
        states, actions, next_states: (N,) int arrays of the transitions seen in data.
        n_states, n_actions: S and A of the model they come from.
        name: description for reports.
    """
    s, a, t = (np.asarray(x) for x in (states, actions, next_states))
    if s.size == 0:
        raise InvalidDistributionError("no transitions given")
    return Coverage(s, a, t, np.ones(s.shape[0]), n_states, n_actions, name)


def _check_coverage_support(coverage: Coverage, mat: sp.csr_array) -> None:
    """Raise if the coverage puts mass on a transition with P(s' | s, a) = 0."""
    n_states = mat.shape[1]
    if (coverage.n_states, coverage.n_actions) != (n_states, mat.shape[0] // n_states):
        raise InvalidDistributionError(
            f"coverage is for (S, A)=({coverage.n_states}, {coverage.n_actions}) but the "
            f"transitions are for ({n_states}, {mat.shape[0] // n_states})"
        )
    rows = coverage.states * coverage.n_actions + coverage.actions
    prob = np.asarray(mat[rows, coverage.next_states]).ravel()
    bad = np.flatnonzero(prob <= 0)
    if bad.size:
        i = int(bad[0])
        raise InvalidDistributionError(
            f"coverage puts mass on {bad.size} infeasible transitions; first: "
            f"(s={coverage.states[i]}, a={coverage.actions[i]}, s'={coverage.next_states[i]})"
        )


# --------------------------------------------------------------------------- canonicalisation


def potential_shaping(
    reward: Any, potential: Any, discount: float, n_actions: int | None = None
) -> np.ndarray:
    """Dense shaped reward ``R(s, a, s') + γ Φ(s') - Φ(s)`` of shape (S, A, S).

    Args:
        reward: (S,), (S, A) or (S, A, S) reward.
        potential: (S,) potential Φ.
        discount: γ.
        n_actions: A, required when ``reward`` is (S,).
    """
    r = _broadcast3(_check_reward3(reward, "reward"), n_actions)
    phi = np.asarray(potential, dtype=np.float64)
    if phi.shape != (r.shape[0],) or not np.all(np.isfinite(phi)):
        raise InvalidRewardError(f"potential must be finite of shape ({r.shape[0]},)")
    gamma = _check_discount(discount)
    return r + gamma * phi[None, None, :] - phi[:, None, None]


def _broadcast3(r: np.ndarray, n_actions: int | None) -> np.ndarray:
    n_states = r.shape[0]
    if r.ndim == 1 and n_actions is None:
        raise InvalidRewardError("n_actions is needed to broadcast an (S,) reward to (S, A, S)")
    n_actions = r.shape[1] if r.ndim >= 2 else int(n_actions)  # type: ignore[arg-type]
    size = n_states * n_actions * n_states
    if size > DENSE_LIMIT:
        raise InvalidRewardError(
            f"an (S, A, S) array would have {size} entries (> {DENSE_LIMIT}); "
            "use canonical_values / epic at a coverage instead"
        )
    if r.ndim == 1:
        return np.broadcast_to(r[:, None, None], (n_states, n_actions, n_states)).copy()
    if r.ndim == 2:
        return np.broadcast_to(r[:, :, None], (n_states, n_actions, n_states)).copy()
    return r


def _mean_reward(r: np.ndarray, state_dist: np.ndarray, action_dist: np.ndarray) -> np.ndarray:
    """(S,) m(s) = E_{A ~ D_A, S' ~ D_S} R(s, A, S')."""
    if r.ndim == 1:
        return r
    if r.ndim == 2:
        return r @ action_dist
    return np.einsum("sat,a,t->s", r, action_dist, state_dist)


def _values_at(r: np.ndarray, s: np.ndarray, a: np.ndarray, t: np.ndarray) -> np.ndarray:
    if r.ndim == 1:
        return r[s]
    if r.ndim == 2:
        return r[s, a]
    return r[s, a, t]


def _resolve(
    rewards: tuple[np.ndarray, ...],
    n_actions_hint: int | None,
    state_dist: Any,
    action_dist: Any,
) -> tuple[int, int, np.ndarray, np.ndarray]:
    n_states, n_actions = _reward_dims(rewards)
    if n_actions is None:
        n_actions = n_actions_hint
    if n_actions is None and action_dist is not None:
        n_actions = int(np.asarray(action_dist).shape[0])
    if n_actions is None:
        n_actions = 1
    if n_actions_hint is not None and n_actions_hint != n_actions:
        raise InvalidDistributionError(
            f"the rewards have A={n_actions} actions but the coverage/transitions have "
            f"{n_actions_hint}"
        )
    d_s = _check_dist(state_dist, n_states, "state_dist")
    d_a = _check_dist(action_dist, n_actions, "action_dist")
    return n_states, n_actions, d_s, d_a


def canonical_values(
    reward: Any,
    states: Any,
    actions: Any,
    next_states: Any,
    *,
    discount: float,
    state_dist: Any = None,
    action_dist: Any = None,
    n_actions: int | None = None,
) -> np.ndarray:
    """EPIC-canonical reward ``C(R)(s, a, s')`` at the given transitions.

    Args:
        reward: (S,), (S, A) or (S, A, S) reward.
        states, actions, next_states: (N,) int transitions to evaluate at.
        discount: γ in [0, 1].
        state_dist: (S,) canonicalisation distribution D_S; uniform if None.
        action_dist: (A,) canonicalisation distribution D_A; uniform if None.
        n_actions: A, needed only to build a uniform D_A for an (S,) reward (any value
            gives the same result: a state reward does not depend on the action).

    Returns:
        (N,) values ``R(s,a,s') + γ m(s') - m(s) - γ M``.
    """
    r = _check_reward3(reward, "reward")
    gamma = _check_discount(discount)
    n_states, n_act, d_s, d_a = _resolve((r,), n_actions, state_dist, action_dist)
    s, a, t = (np.asarray(x, dtype=np.int64) for x in (states, actions, next_states))
    if not (s.shape == a.shape == t.shape) or s.ndim != 1:
        raise InvalidDistributionError("states, actions and next_states must be 1-D of one length")
    # An (S,) reward ignores the action, so its indices are only checked when A is known.
    a_bound = n_act if (r.ndim >= 2 or n_actions is not None or action_dist is not None) else None
    for name, arr, bound in (
        ("states", s, n_states),
        ("actions", a, a_bound),
        ("next_states", t, n_states),
    ):
        if bound is None:
            continue
        if arr.size and (arr.min() < 0 or arr.max() >= bound):
            raise InvalidDistributionError(f"{name} has indices outside [0, {bound})")
    m = _mean_reward(r, d_s, d_a)
    return _values_at(r, s, a, t) + gamma * m[t] - m[s] - gamma * float(d_s @ m)


def canonicalize(
    reward: Any,
    *,
    discount: float,
    state_dist: Any = None,
    action_dist: Any = None,
    n_actions: int | None = None,
) -> np.ndarray:
    """Dense EPIC-canonical reward of shape (S, A, S) (small models only).

    Args: as :func:`canonical_values`; ``n_actions`` is required for an (S,) reward
    unless ``action_dist`` is given.

    Returns:
        (S, A, S) array ``C(R)``; identical for every potential-shaped, shifted copy of
        ``reward`` (scaling scales it).
    """
    r = _check_reward3(reward, "reward")
    gamma = _check_discount(discount)
    if r.ndim == 1 and n_actions is None and action_dist is not None:
        n_actions = int(np.asarray(action_dist).shape[0])
    r3 = _broadcast3(r, n_actions)
    _, _, d_s, d_a = _resolve((r3,), None, state_dist, action_dist)
    m = _mean_reward(r3, d_s, d_a)
    return r3 + gamma * m[None, None, :] - m[:, None, None] - gamma * float(d_s @ m)


# --------------------------------------------------------------------------- Pearson distance


def _pearson(
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray | None,
    scale_x: float = 0.0,
    scale_y: float = 0.0,
) -> tuple[float, float, str | None]:
    """(distance, correlation, degenerate) with the constant-standardises-to-0 convention.

    ``scale_x`` / ``scale_y``: magnitude of the numbers ``x`` / ``y`` were computed from
    (e.g. the raw reward before canonicalisation), so that the roundoff left by a
    cancellation (a shaped zero reward) is recognised as a constant.
    """
    if w is None:
        w = np.full(x.shape[0], 1.0 / x.shape[0])
    xc = x - w @ x
    yc = y - w @ y
    var_x = float(w @ (xc * xc))
    var_y = float(w @ (yc * yc))
    scale_x = max(scale_x, float(np.max(np.abs(x))))
    scale_y = max(scale_y, float(np.max(np.abs(y))))
    const_x = math.sqrt(var_x) <= _CONSTANT_RTOL * scale_x or var_x == 0.0
    const_y = math.sqrt(var_y) <= _CONSTANT_RTOL * scale_y or var_y == 0.0
    if const_x and const_y:
        return 0.0, math.nan, "both constant"
    if const_x or const_y:
        return 0.5, math.nan, "first constant" if const_x else "second constant"
    rho = float(w @ (xc * yc)) / math.sqrt(var_x * var_y)
    rho = min(1.0, max(-1.0, rho))
    return math.sqrt(max(0.0, 1.0 - rho) / 2.0), rho, None


def pearson_distance(x: Any, y: Any, weights: Any = None) -> float:
    """Weighted Pearson distance ``sqrt((1 - ρ) / 2)`` between two arrays of one shape.

    Args:
        x, y: arrays of the same shape (flattened).
        weights: non-negative weights of that shape (normalised), or None for uniform.

    Returns:
        A float in [0, 1]. When an array is constant under the weights, its standardised
        version is taken to be 0: the distance is 0 if both are constant, 0.5 if one is.
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.size == 0:
        raise InvalidRewardError(
            f"x and y must be non-empty of one shape, got {xa.shape}, {ya.shape}"
        )
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise InvalidRewardError("x or y contains NaN or infinite entries")
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != xa.shape:
            raise InvalidDistributionError(f"weights must have shape {xa.shape}, got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
            raise InvalidDistributionError("weights must be finite, non-negative, not all 0")
        w = (w / w.sum()).ravel()
    return _pearson(xa.ravel(), ya.ravel(), w)[0]


def pearson_distances(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """:func:`pearson_distance` of ``x`` and ``y`` (N,) under each row of ``weights``
    (B, N) at once -- e.g. the bootstrap resamples of a dataset's transitions. The same
    constant convention (0 if both are constant, 0.5 if one is); no input checks.
    """
    w = weights / weights.sum(axis=1, keepdims=True)
    mx, my = w @ x, w @ y
    dx = x[None, :] - mx[:, None]
    dy = y[None, :] - my[:, None]
    vx = np.einsum("bn,bn->b", w, dx * dx)
    vy = np.einsum("bn,bn->b", w, dy * dy)
    cov = np.einsum("bn,bn->b", w, dx * dy)
    scale_x = np.maximum(np.abs(x).max(), 1e-300)
    scale_y = np.maximum(np.abs(y).max(), 1e-300)
    const_x = np.sqrt(np.maximum(vx, 0)) <= _CONSTANT_RTOL * scale_x
    const_y = np.sqrt(np.maximum(vy, 0)) <= _CONSTANT_RTOL * scale_y
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = cov / np.sqrt(vx * vy)
    rho = np.clip(np.nan_to_num(rho), -1.0, 1.0)
    dist = np.sqrt((1.0 - rho) / 2.0)
    dist = np.where(const_x & const_y, 0.0, dist)
    return np.where(const_x ^ const_y, 0.5, dist)


def bootstrap_pearson_distances(
    x: np.ndarray, y: np.ndarray, incidence: sp.csr_array, counts: np.ndarray
) -> np.ndarray:
    """:func:`pearson_distances` of ``x`` and ``y`` (U,) under the weights ``counts @
    incidence``, without forming that (B, U) matrix.

    Args:
        x, y: (U,) values at U items (e.g. canonical rewards at distinct transitions).
        incidence: (N, U) non-negative sparse counts of each item in each group (e.g. how
            often each transition occurs in each episode).
        counts: (B, N) non-negative weight of each group in each resample.

    Every weighted sum is linear in the weights, so it is ``counts @ (incidence @ f)`` for
    f in (1, x, y, x², y², x y): O(B N) instead of O(B U). Whether ``x`` (or ``y``) is
    constant on a resample's support is decided exactly, from each group's range of values,
    not from a variance computed with cancellation. The same constant convention as
    :func:`pearson_distance` (0 if both are constant, 0.5 if one is).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    inc = sp.csr_array(incidence)
    # centre first: the moments below are then of values of order their spread
    xc = x - x.mean()
    yc = y - y.mean()
    f = np.stack([np.ones_like(xc), xc, yc, xc * xc, yc * yc, xc * yc], axis=1)  # (U, 6)
    sums = counts @ (inc @ f)  # (B, 6)
    w0 = sums[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = sums[:, 1] / w0, sums[:, 2] / w0
        vx = sums[:, 3] / w0 - mx * mx
        vy = sums[:, 4] / w0 - my * my
        cov = sums[:, 5] / w0 - mx * my
        rho = cov / np.sqrt(vx * vy)
    present = counts > 0  # (B, N) groups in each resample

    def constant(v: np.ndarray) -> np.ndarray:
        """(B,) whether ``v`` takes one value (to roundoff) on each resample's support."""
        coo = inc.tocoo()
        row, col = coo.row[coo.data > 0], coo.col[coo.data > 0]
        lo = np.full(inc.shape[0], np.inf)
        hi = np.full(inc.shape[0], -np.inf)
        np.minimum.at(lo, row, v[col])
        np.maximum.at(hi, row, v[col])
        low = np.where(present, lo[None, :], np.inf).min(axis=1)
        high = np.where(present, hi[None, :], -np.inf).max(axis=1)
        scale = max(float(np.abs(v).max()), 1e-300)
        return (high - low) <= _CONSTANT_RTOL * scale

    const_x, const_y = constant(x), constant(y)
    rho = np.clip(np.nan_to_num(rho), -1.0, 1.0)
    dist = np.sqrt((1.0 - rho) / 2.0)
    dist = np.where(const_x & const_y, 0.0, dist)
    return np.where(const_x ^ const_y, 0.5, dist)


# --------------------------------------------------------------------------- EPIC


@dataclasses.dataclass(frozen=True)
class EpicResult:
    """Outcome of one EPIC comparison.

    Attributes:
        distance: EPIC distance in [0, 1].
        correlation: Pearson ρ of the canonical rewards under the coverage; NaN when a
            canonical reward is constant (see ``degenerate``).
        coverage: the coverage distribution the rewards were compared on.
        discount: γ used in the canonicalisation.
        method: ``"exact"``, ``"exact (state-only reduction)"`` or ``"sampled"``.
        degenerate: None, or ``"both constant"`` / ``"first constant"`` /
            ``"second constant"`` when Pearson's ρ is undefined.
        n_samples: (transitions, mean samples) for the sampled estimator, else None.
    """

    distance: float
    correlation: float
    coverage: Coverage
    discount: float
    method: str
    degenerate: str | None = None
    n_samples: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the coverage as :meth:`Coverage.summary`)."""
        return {
            "distance": self.distance,
            "correlation": None if math.isnan(self.correlation) else self.correlation,
            "discount": self.discount,
            "method": self.method,
            "degenerate": self.degenerate,
            "n_samples": list(self.n_samples) if self.n_samples else None,
            "coverage": self.coverage.summary(),
        }


def _resolve_coverage(
    coverage: Any, transitions: Any, n_states: int, n_actions: int | None
) -> Coverage:
    mat = None if transitions is None else _as_transitions_csr(transitions)
    if mat is not None and mat.shape[1] != n_states:
        raise InvalidModelError(
            f"transitions are for S={mat.shape[1]} states but the rewards have {n_states}"
        )
    if coverage is None:
        if mat is not None:
            cov = feasible_coverage(mat)
        else:
            cov = uniform_coverage(n_states, n_actions or 1)
    elif isinstance(coverage, Coverage):
        cov = coverage
    else:
        cov = Coverage.from_dense(coverage)
    if cov.n_states != n_states:
        raise InvalidDistributionError(
            f"coverage is for S={cov.n_states} states but the rewards have {n_states}"
        )
    if n_actions is not None and cov.n_actions != n_actions:
        raise InvalidDistributionError(
            f"coverage is for A={cov.n_actions} actions but the rewards have {n_actions}"
        )
    if mat is not None and coverage is not None:
        _check_coverage_support(cov, mat)
    return cov


def _prepare(
    reward_a: Any,
    reward_b: Any,
    discount: float,
    coverage: Any,
    transitions: Any,
    state_dist: Any,
    action_dist: Any,
) -> tuple[np.ndarray, np.ndarray, float, Coverage, np.ndarray, np.ndarray]:
    ra = _check_reward3(reward_a, "first reward")
    rb = _check_reward3(reward_b, "second reward")
    gamma = _check_discount(discount)
    n_states, n_actions = _reward_dims((ra, rb))
    if n_actions is None and coverage is None and transitions is None and action_dist is not None:
        # state-only rewards and nothing else fixes A: the uniform coverage uses len(D_A)
        n_actions = int(np.asarray(action_dist).shape[0])
    cov = _resolve_coverage(coverage, transitions, n_states, n_actions)
    _, _, d_s, d_a = _resolve((ra, rb), cov.n_actions, state_dist, action_dist)
    return ra, rb, gamma, cov, d_s, d_a


def epic(
    reward_a: Any,
    reward_b: Any,
    *,
    discount: float,
    coverage: Coverage | np.ndarray | None = None,
    transitions: Any = None,
    state_dist: Any = None,
    action_dist: Any = None,
) -> EpicResult:
    """Exact EPIC distance between two tabular rewards, with the coverage used.

    Args:
        reward_a, reward_b: rewards of shape (S,), (S, A) or (S, A, S) (shapes may differ
            as long as S, and A where present, agree).
        discount: γ in [0, 1] used to canonicalise (the discount of potential shaping).
        coverage: distribution over (s, a, s') the rewards are compared on: a
            :class:`Coverage` or a dense (S, A, S) array. Default: uniform over the
            feasible transitions of ``transitions`` if given, else uniform over all
            S·A·S triples (small models only).
        transitions: optional dynamics — a model, a (S*A, S) matrix or an (S, A, S)
            array. Used for the default coverage, and to check that a given coverage
            only covers feasible transitions.
        state_dist: (S,) canonicalisation distribution D_S; uniform if None.
        action_dist: (A,) canonicalisation distribution D_A; uniform if None.

    Returns:
        An :class:`EpicResult`; ``result.distance`` is the EPIC distance.

    Raises:
        InvalidRewardError: a reward has a bad shape or non-finite entries.
        InvalidDistributionError: coverage, D_S or D_A malformed or not matching.
        InvalidModelError: discount outside [0, 1] or malformed transitions.
    """
    ra, rb, gamma, cov, d_s, d_a = _prepare(
        reward_a, reward_b, discount, coverage, transitions, state_dist, action_dist
    )
    if ra.ndim == 1 and rb.ndim == 1:
        # C(R)(s, a, s') = γ (r(s') - M): a Pearson distance between the reward vectors
        # under the coverage's next-state marginal. For γ = 0 both are identically 0.
        method = "exact (state-only reduction)"
        if gamma == 0.0:
            return EpicResult(0.0, math.nan, cov, gamma, method, "both constant")
        w = cov.next_state_marginal()
        dist, rho, degenerate = _pearson(ra, rb, w)
        return EpicResult(dist, rho, cov, gamma, method, degenerate)
    s, a, t = cov.states, cov.actions, cov.next_states
    ca = _values_at(ra, s, a, t)
    cb = _values_at(rb, s, a, t)
    ma = _mean_reward(ra, d_s, d_a)
    mb = _mean_reward(rb, d_s, d_a)
    scale_a = max(float(np.abs(ca).max()), float(np.abs(ma).max()))
    scale_b = max(float(np.abs(cb).max()), float(np.abs(mb).max()))
    ca = ca + gamma * ma[t] - ma[s] - gamma * float(d_s @ ma)
    cb = cb + gamma * mb[t] - mb[s] - gamma * float(d_s @ mb)
    dist, rho, degenerate = _pearson(ca, cb, cov.weights, scale_a, scale_b)
    return EpicResult(dist, rho, cov, gamma, "exact", degenerate)


def epic_distance(
    reward_a: Any,
    reward_b: Any,
    *,
    discount: float,
    coverage: Coverage | np.ndarray | None = None,
    transitions: Any = None,
    state_dist: Any = None,
    action_dist: Any = None,
) -> float:
    """Exact EPIC distance in [0, 1]; see :func:`epic` for the arguments."""
    return epic(
        reward_a,
        reward_b,
        discount=discount,
        coverage=coverage,
        transitions=transitions,
        state_dist=state_dist,
        action_dist=action_dist,
    ).distance


def _as_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def sampled_epic(
    reward_a: Any,
    reward_b: Any,
    *,
    discount: float,
    seed: int | np.random.Generator | None,
    coverage: Coverage | np.ndarray | None = None,
    transitions: Any = None,
    state_dist: Any = None,
    action_dist: Any = None,
    n_transitions: int = 500,
    n_mean_samples: int = 500,
) -> EpicResult:
    """Monte-Carlo EPIC, the paper's sampling estimator, for models too large to enumerate.

    Draws ``n_transitions`` transitions from the coverage and ``n_mean_samples`` pairs
    ``(a_j, s'_j)`` from ``D_A × D_S``; canonicalises each sampled transition with
    ``m̂(s) = mean_j R(s, a_j, s'_j)`` and ``M̂ = mean_j m̂(s'_j)``, and returns the
    (unweighted) Pearson distance of the two rewards' canonical values. Its cost is
    O((n_transitions + n_mean_samples) · n_mean_samples), independent of S and A.

    Args:
        seed: an int seed or a ``np.random.Generator`` (required: the result is random).
        n_transitions, n_mean_samples: sample sizes (the paper's defaults are 500 each
            in the gridworld-sized checks here).
        Others: as :func:`epic`.

    Returns:
        An :class:`EpicResult` with ``method="sampled"``.
    """
    ra, rb, gamma, cov, d_s, d_a = _prepare(
        reward_a, reward_b, discount, coverage, transitions, state_dist, action_dist
    )
    if int(n_transitions) < 2 or int(n_mean_samples) < 1:
        raise InvalidDistributionError(
            f"need n_transitions >= 2 and n_mean_samples >= 1, got "
            f"({n_transitions}, {n_mean_samples})"
        )
    rng = _as_rng(seed)
    s, a, t = cov.sample(int(n_transitions), rng)
    act_j = rng.choice(d_a.shape[0], size=int(n_mean_samples), p=d_a)
    next_j = rng.choice(d_s.shape[0], size=int(n_mean_samples), p=d_s)
    needed, inverse = np.unique(np.concatenate([s, t, next_j]), return_inverse=True)
    n = s.shape[0]
    values, scales = [], []
    for r in (ra, rb):
        if r.ndim == 1:
            m_hat = r[needed]
        elif r.ndim == 2:
            m_hat = r[needed][:, act_j].mean(axis=1)
        else:
            m_hat = r[needed[:, None], act_j[None, :], next_j[None, :]].mean(axis=1)
        m_all = m_hat[inverse]
        m_s, m_t, m_j = m_all[:n], m_all[n : 2 * n], m_all[2 * n :]
        raw = _values_at(r, s, a, t)
        scales.append(max(float(np.abs(raw).max()), float(np.abs(m_hat).max())))
        values.append(raw + gamma * m_t - m_s - gamma * float(m_j.mean()))
    dist, rho, degenerate = _pearson(values[0], values[1], None, *scales)
    return EpicResult(
        dist, rho, cov, gamma, "sampled", degenerate, (int(n_transitions), int(n_mean_samples))
    )


# --------------------------------------------------------------------------- models


def model_coverage(model: TabularModel, coverage: Any = "feasible") -> Coverage:
    """The coverage to compare rewards on for ``model``.

    Args:
        model: the tabular model.
        coverage: ``"feasible"`` (uniform over transitions with P > 0), ``"uniform"``
            (all S·A·S triples; small models only), an (S, A) state-action occupancy
            (pushed through the dynamics), a dense (S, A, S) array or a :class:`Coverage`.
    """
    if isinstance(coverage, Coverage):
        _check_coverage_support(coverage, model.transitions)
        return coverage
    if isinstance(coverage, str):
        if coverage == "feasible":
            return feasible_coverage(model)
        if coverage == "uniform":
            return uniform_coverage(model.n_states, model.n_actions)
        raise InvalidDistributionError(
            f"unknown coverage {coverage!r}: use 'feasible', 'uniform' or an array"
        )
    arr = np.asarray(coverage)
    if arr.ndim == 2:
        return occupancy_coverage(model, arr)
    cov = Coverage.from_dense(arr)
    _check_coverage_support(cov, model.transitions)
    return cov


def _model_reward(model: TabularModel, reward: Any, what: str) -> np.ndarray:
    if isinstance(reward, str):
        if reward not in model.objectives:
            raise InvalidRewardError(
                f"{what} {reward!r} is not among the model's objectives {sorted(model.objectives)}"
            )
        return np.asarray(model.objectives[reward])
    r = _check_reward3(reward, what)
    ok = (model.n_states,), (model.n_states, model.n_actions)
    if r.shape not in ok and r.shape != (model.n_states, model.n_actions, model.n_states):
        raise InvalidRewardError(
            f"{what} must have shape (S,), (S, A) or (S, A, S) with S={model.n_states}, "
            f"A={model.n_actions}; got {r.shape}"
        )
    return r


def model_epic(
    model: TabularModel,
    reward_a: Any,
    reward_b: Any,
    *,
    coverage: Any = "feasible",
    discount: float | None = None,
    state_dist: Any = None,
    action_dist: Any = None,
    method: str = "exact",
    seed: int | np.random.Generator | None = None,
    n_transitions: int = 500,
    n_mean_samples: int = 500,
) -> EpicResult:
    """EPIC between two rewards on a :class:`~behavioral.tabular.TabularModel`.

    Args:
        model: the model whose dynamics define the feasible transitions.
        reward_a, reward_b: reward arrays ((S,), (S, A) or (S, A, S)) or names of the
            model's objectives.
        coverage: see :func:`model_coverage` (default: uniform over feasible transitions).
        discount: γ; defaults to ``model.discount``.
        state_dist, action_dist: canonicalisation distributions (uniform if None).
        method: ``"exact"`` or ``"sampled"`` (then ``seed`` and sample sizes apply).

    Returns:
        An :class:`EpicResult`.
    """
    ra = _model_reward(model, reward_a, "first reward")
    rb = _model_reward(model, reward_b, "second reward")
    cov = model_coverage(model, coverage)
    gamma = model.discount if discount is None else discount
    if action_dist is None:
        action_dist = np.full(model.n_actions, 1.0 / model.n_actions)
    kwargs: Mapping[str, Any] = dict(
        discount=gamma, coverage=cov, state_dist=state_dist, action_dist=action_dist
    )
    if method == "exact":
        return epic(ra, rb, **kwargs)
    if method == "sampled":
        return sampled_epic(
            ra,
            rb,
            seed=seed,
            n_transitions=n_transitions,
            n_mean_samples=n_mean_samples,
            **kwargs,
        )
    raise InvalidDistributionError(f"unknown method {method!r}: use 'exact' or 'sampled'")
