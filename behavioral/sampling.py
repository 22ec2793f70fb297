"""Sample episodes directly from a tabular model and a tabular policy (no gym env).

Useful for tests, detection suites and teaching: a soft-optimal policy's demonstrations
can be drawn in microseconds from its level's model, in exactly the state-index form the
IRL code consumes.
"""

from __future__ import annotations

import numpy as np

from behavioral.irl.maxent import Demonstration
from behavioral.tabular import TabularModel, absorbing_states, check_policy

__all__ = ["sample_demonstrations"]


def sample_demonstrations(
    model: TabularModel,
    pi: np.ndarray,
    n: int,
    rng: np.random.Generator,
    *,
    level: int = 0,
    stop_at_absorbing: bool = True,
    initial_state_dist: np.ndarray | None = None,
) -> list[Demonstration]:
    """Roll ``n`` episodes of policy ``pi`` out in ``model``.

    Args:
        model: the level's tabular model.
        pi: (H, S, A) or stationary (S, A) policy.
        n: number of episodes.
        rng: the random generator (all randomness comes from it).
        level: level tag stored in each :class:`Demonstration`.
        stop_at_absorbing: end an episode when it enters an absorbing state (as a gym
            env terminates), marking it ``terminal``; otherwise run all H steps.
        initial_state_dist: (S,) start distribution, default the model's.

    Returns:
        ``n`` demonstrations with states (len <= H+1) and actions.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    arr, stationary = check_policy(model, pi)
    H, S, A = model.horizon, model.n_states, model.n_actions
    d0 = model.initial_state_dist if initial_state_dist is None else np.asarray(initial_state_dist)
    T = model.transitions
    cum = np.cumsum(T.data)
    row_start = np.concatenate([[0.0], cum])[T.indptr[:-1]]
    absorbing = absorbing_states(model)

    states = np.empty((n, H + 1), dtype=np.int64)
    actions = np.empty((n, H), dtype=np.int64)
    states[:, 0] = rng.choice(S, size=n, p=d0 / d0.sum())
    ended = np.full(n, H)
    done = np.zeros(n, dtype=bool)
    for t in range(H):
        s = states[:, t]
        if stop_at_absorbing:
            newly = ~done & absorbing[s]
            ended[newly] = t
            done |= newly
        p = arr[0 if stationary else t, s]  # (n, A)
        u = rng.random(n)[:, None]
        a = np.minimum((u > np.cumsum(p, axis=1)).sum(axis=1), A - 1)
        rows = s * A + a
        lo, hi = T.indptr[rows], T.indptr[rows + 1]
        target = row_start[rows] + rng.random(n) * (cum[hi - 1] - row_start[rows])
        k = np.clip(np.searchsorted(cum, target, side="right"), lo, hi - 1)
        actions[:, t] = a
        states[:, t + 1] = T.indices[k]
    out = []
    for i in range(n):
        m = int(ended[i])
        terminal = bool(m < H)
        out.append(
            Demonstration(
                states=states[i, : m + 1].copy(),
                actions=actions[i, :m].copy(),
                terminal=terminal,
                level=level,
            )
        )
    return out
