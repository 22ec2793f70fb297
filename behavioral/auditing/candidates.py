"""The candidate objectives of an audit, the data's choice set, and which candidates are
really one objective under two names.

- :func:`candidate_rewards`: every candidate as one reward array per level.
- :func:`choice_set`: every transition *available* from the states the data visit -- all
  actions, not only the ones taken. Two candidates coincide on the data only if they are
  equivalent (EPIC distance 0: equal up to potential shaping, positive scaling and a
  shift) on it: a refusal is evidence too.
- :func:`find_aliases`: a candidate equivalent to another on the whole model of every level
  (not only where the data went) is that candidate under another name, unless both are
  objectives the env itself declares. An env's declared objectives are different
  objectives by declaration that may happen to agree on every level of a split (RedDoors'
  ``exit`` and ``red_door`` on ``train``: exactly what the audit must report as
  indistinguishable there); a caller who declares the env's own reward again under another
  name has declared the same objective twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from behavioral import compare
from behavioral.errors import InvalidRewardError, UnknownObjectiveError
from behavioral.irl.maxent import Demonstration
from behavioral.tabular import TabularModel, check_reward

__all__ = [
    "ObjectiveSpec",
    "Transitions",
    "candidate_rewards",
    "choice_set",
    "declared_by_env",
    "distance",
    "find_aliases",
    "stack_reward",
    "whole_model",
]

ObjectiveSpec = np.ndarray | Callable[[TabularModel], np.ndarray]

#: (states, actions, next states, weights) of transitions in the levels stacked one after
#: another (level ``l``'s state ``s`` is ``offsets[l] + s``).
Transitions = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def candidate_rewards(
    models: Sequence[TabularModel],
    objectives: Mapping[str, ObjectiveSpec] | None,
) -> dict[str, list[np.ndarray]]:
    """Each candidate objective as one reward array per level.

    Args:
        models: the levels.
        objectives: name -> an (S,) / (S, A) array used on every level, or a function
            ``model -> array``. None: the objectives the models declare (every level
            must declare the same names).

    Raises:
        UnknownObjectiveError: no objectives given and the models declare none, or the
            levels declare different names.
        InvalidRewardError: an array of the wrong shape or with non-finite entries.
    """
    if objectives is None:
        names = tuple(models[0].objectives)
        if not names:
            raise UnknownObjectiveError(
                "the env declares no objectives: pass objectives={name: reward array} and base="
            )
        for i, m in enumerate(models):
            if tuple(m.objectives) != names:
                raise UnknownObjectiveError(
                    f"level {i} declares objectives {tuple(m.objectives)}, level 0 {names}"
                )
        return {n: [np.asarray(m.objectives[n], dtype=np.float64) for m in models] for n in names}
    out: dict[str, list[np.ndarray]] = {}
    for name, spec in objectives.items():
        arrays = []
        for i, m in enumerate(models):
            value = spec(m) if callable(spec) else spec
            try:
                arrays.append(
                    check_reward(value, m.n_states, m.n_actions, what=f"objective {name!r}")
                )
            except InvalidRewardError as err:
                raise InvalidRewardError(f"{err} (level {i})") from None
        out[str(name)] = arrays
    return out


def declared_by_env(
    models: Sequence[TabularModel], candidates: Mapping[str, Sequence[np.ndarray]]
) -> frozenset[str]:
    """The candidates that are objectives the levels declare themselves, unchanged."""
    out = set()
    for name, arrays in candidates.items():
        if all(
            name in m.objectives and np.array_equal(np.asarray(m.objectives[name]), r)
            for m, r in zip(models, arrays)
        ):
            out.add(name)
    return frozenset(out)


def stack_reward(rewards: Sequence[np.ndarray], n_actions: int) -> np.ndarray:
    """Per-level (S_l,) or (S_l, A) rewards as one stacked (sum S_l, A) array."""
    return np.concatenate(
        [r if r.ndim == 2 else np.repeat(r[:, None], n_actions, axis=1) for r in rewards]
    )


def _offsets(models: Sequence[TabularModel]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([m.n_states for m in models])]).astype(np.int64)


def _available(models: Sequence[TabularModel], state_weights: Sequence[np.ndarray]) -> Transitions:
    """Every transition out of the states with positive weight, each state's weight spread
    uniformly over its actions and then by the dynamics."""
    offsets = _offsets(models)
    parts = []
    for level, (m, w) in enumerate(zip(models, state_weights)):
        states = np.flatnonzero(w > 0)
        if states.size == 0:
            continue
        A = m.n_actions
        rows = (states[:, None] * A + np.arange(A)).ravel()
        src, col, prob = _row_entries(m.transitions, rows)
        s, a = src // A, src % A
        weight = w[s] / A * prob
        o = offsets[level]
        parts.append((s + o, a, col + o, weight))
    s, a, t, w = (np.concatenate(x) for x in zip(*parts))
    return s.astype(np.int64), a.astype(np.int64), t, w / w.sum()


def _row_entries(T: sp.csr_array, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-zeros of the CSR rows ``rows``: (their row, column, value), read straight
    from the CSR arrays (scipy's row slicing costs more than the reading)."""
    start, stop = T.indptr[rows], T.indptr[rows + 1]
    sizes = (stop - start).astype(np.int64)
    src = np.repeat(rows.astype(np.int64), sizes)
    # positions start[k], start[k] + 1, ..., stop[k] - 1 of every row k, concatenated
    first = np.repeat(start.astype(np.int64) - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
    pos = first + np.arange(int(sizes.sum()), dtype=np.int64)
    keep = T.data[pos] > 0
    return src[keep], T.indices[pos][keep].astype(np.int64), T.data[pos][keep]


def choice_set(
    models: Sequence[TabularModel], demonstrations: Sequence[Demonstration]
) -> Transitions:
    """Every transition available from the states the demonstrations visit (each visited
    state weighted by its visits, uniformly over its actions, then by the dynamics).

    The last state of an episode counts as visited only when the episode is still running
    there (it ended by the time limit): an absorbing end offers no choice.
    """
    counts = [np.zeros(m.n_states) for m in models]
    for d in demonstrations:
        n = d.actions.shape[0]
        np.add.at(counts[d.level], d.states[:n], 1.0)
    return _available(models, counts)


def whole_model(models: Sequence[TabularModel]) -> Transitions:
    """Every feasible transition of every level (states weighted equally)."""
    return _available(models, [np.ones(m.n_states) for m in models])


def distance(
    reward_a: np.ndarray, reward_b: np.ndarray, where: Transitions, discount: float
) -> float:
    """EPIC distance between two stacked (S, A) rewards on the transitions ``where``.

    Canonicalisation removes potential shaping (uniform state and action distributions);
    the Pearson distance of the canonical rewards is then taken with ``where``'s weights.
    0 means equivalent there up to shaping, positive scaling and a shift; two rewards that
    are both constant (up to shaping) there are at distance 0 as well.
    """
    s, a, t, w = where
    n_actions = reward_a.shape[1]
    ca = compare.canonical_values(reward_a, s, a, t, discount=discount, n_actions=n_actions)
    cb = compare.canonical_values(reward_b, s, a, t, discount=discount, n_actions=n_actions)
    scale = max(float(np.abs(reward_a).max()), float(np.abs(reward_b).max()), 1e-300)
    return compare.pearson_distance(ca / scale, cb / scale, w)


def find_aliases(
    candidates: Mapping[str, Sequence[np.ndarray]],
    base: str,
    models: Sequence[TabularModel],
    declared: frozenset[str],
    tol: float,
) -> dict[str, str]:
    """Candidates that are another candidate under another name: name -> that candidate.

    A candidate is an alias of the base objective (or of an earlier proxy) when the two are
    equivalent (EPIC distance at most ``tol``) on every feasible transition of every level,
    unless both are objectives the env declares (see the module docstring).
    """
    A = models[0].n_actions
    where = whole_model(models)
    gamma = models[0].discount
    stacked = {n: stack_reward(r, A) for n, r in candidates.items()}
    order = [base, *(n for n in candidates if n != base)]
    aliases: dict[str, str] = {}
    for i, name in enumerate(order[1:], start=1):
        for other in order[:i]:
            if other in aliases or (name in declared and other in declared):
                continue
            if distance(stacked[name], stacked[other], where, gamma) <= tol:
                aliases[name] = other
                break
    return aliases
