"""Compiled kernels of the numerical core (numba, single-threaded).

These are the inner loops of soft value iteration and of the forward (occupancy) pass.
They work directly on the CSR arrays of the (S*A, S) transition matrix, so their cost is
O(nnz + S*A) per time step, never O(S^2). Everything is float64 and written in place
into arrays the caller allocated; nothing here validates input (``behavioral.tabular``
does that before calling in).

Index conventions (same as ``imitation.algorithms.mce_irl``):
``V[t, s]``, ``Q[t, s, a]``, ``pi[t, s, a]``, ``D[t, s]``; row ``s * A + a`` of the
transition matrix is P(. | s, a).
"""

from __future__ import annotations

import numba
import numpy as np

_OPTS = dict(cache=True, nogil=True, fastmath=False, boundscheck=False)


@numba.njit(**_OPTS)
def _backup_step(indptr, indices, data, reward, r_is_sa, discount, v_next, q_out, p_out, v_out):
    """One soft Bellman backup at one time step.

    ``q_out = r + discount * T @ v_next`` (or ``r`` when ``v_next`` has length 0, the
    last step), ``v_out = logsumexp_a(q_out)``, ``p_out = exp(q_out - v_out)``.
    ``reward`` is (S, A) when ``r_is_sa`` else (S, 1). ``q_out`` may be None-like: when
    it has zero rows, Q is not stored (``p_out`` holds it transiently).
    One ``exp`` per state-action and one ``log`` per state.
    """
    n_states, n_actions = p_out.shape
    last = v_next.shape[0] == 0
    keep_q = q_out.shape[0] > 0
    for s in range(n_states):
        qmax = -np.inf
        for a in range(n_actions):
            r = reward[s, a] if r_is_sa else reward[s, 0]
            if last:
                q = r
            else:
                row = s * n_actions + a
                acc = 0.0
                for k in range(indptr[row], indptr[row + 1]):
                    acc += data[k] * v_next[indices[k]]
                q = r + discount * acc
            if keep_q:
                q_out[s, a] = q
            p_out[s, a] = q
            if q > qmax:
                qmax = q
        if qmax == -np.inf:  # pragma: no cover - rewards are validated finite
            v_out[s] = -np.inf
            for a in range(n_actions):
                p_out[s, a] = 1.0 / n_actions
            continue
        total = 0.0
        for a in range(n_actions):
            e = np.exp(p_out[s, a] - qmax)
            p_out[s, a] = e
            total += e
        v_out[s] = qmax + np.log(total)
        inv = 1.0 / total
        for a in range(n_actions):
            p_out[s, a] *= inv


@numba.njit(**_OPTS)
def soft_backup(indptr, indices, data, reward, r_is_sa, discount, V, Q, pi):
    """Finite-horizon soft value iteration into preallocated ``V`` (H, S), ``pi`` (H, S, A).

    ``Q`` is (H, S, A) to keep the soft Q-values, or (H, 0, A) to skip storing them (IRL
    never needs Q).
    """
    horizon, n_states, n_actions = pi.shape
    empty = np.zeros(0)
    keep_q = Q.shape[1] > 0
    no_q = np.zeros((0, n_actions))
    for t in range(horizon - 1, -1, -1):
        v_next = empty if t == horizon - 1 else V[t + 1]
        q_t = Q[t] if keep_q else no_q
        _backup_step(indptr, indices, data, reward, r_is_sa, discount, v_next, q_t, pi[t], V[t])


@numba.njit(**_OPTS)
def forward(indptr, indices, data, pi, stationary, D):
    """Occupancy forward pass: ``D[t+1] = sum_{s,a} D[t,s] pi[t,s,a] T[(s,a), :]``.

    ``D`` is (H+1, S) with ``D[0]`` already set. ``pi`` is (H, S, A), or (1, S, A) with
    ``stationary`` true.
    """
    horizon = D.shape[0] - 1
    n_states = D.shape[1]
    n_actions = pi.shape[2]
    for t in range(horizon):
        p = pi[0] if stationary else pi[t]
        d_next = D[t + 1]
        for j in range(n_states):
            d_next[j] = 0.0
        d = D[t]
        for s in range(n_states):
            ds = d[s]
            if ds == 0.0:
                continue
            for a in range(n_actions):
                w = ds * p[s, a]
                if w == 0.0:
                    continue
                row = s * n_actions + a
                for k in range(indptr[row], indptr[row + 1]):
                    d_next[indices[k]] += w * data[k]


@numba.njit(**_OPTS)
def forward_features(indptr, indices, data, pi, d0, discount, feats, mode, out_mu, D):
    """Forward pass fused with discounted feature expectations.

    Accumulates ``out_mu += sum_{t<H} discount^t sum_{s,a} D[t,s] pi[t,s,a] phi(s,a)``
    without materialising any (H, S) or (H, S, A) array. ``D`` is a (2, S) scratch array
    and ``d0`` (S,) the initial state distribution. ``mode`` says what ``phi`` is:

    - 0: ``feats`` is (S, K): state features;
    - 1: ``feats`` is (S*A, K): state-action features (row ``s*A + a``);
    - 2: one-hot states (``feats`` unused, ``out_mu`` is (S,));
    - 3: one-hot state-actions (``feats`` unused, ``out_mu`` is (S*A,)).
    """
    horizon, n_states, n_actions = pi.shape
    n_feats = out_mu.shape[0]
    cur = D[0]
    nxt = D[1]
    for j in range(n_states):
        cur[j] = d0[j]
    g = 1.0
    for t in range(horizon):
        p = pi[t]
        more = t + 1 < horizon
        if more:
            for j in range(n_states):
                nxt[j] = 0.0
        for s in range(n_states):
            ds = cur[s]
            if ds == 0.0:
                continue
            gd = g * ds
            if mode == 0:
                for k in range(n_feats):
                    out_mu[k] += gd * feats[s, k]
            elif mode == 2:
                out_mu[s] += gd
            for a in range(n_actions):
                w = ds * p[s, a]
                if w == 0.0:
                    continue
                if mode == 1:
                    gw = g * w
                    for k in range(n_feats):
                        out_mu[k] += gw * feats[s * n_actions + a, k]
                elif mode == 3:
                    out_mu[s * n_actions + a] += g * w
                if more:
                    row = s * n_actions + a
                    for k in range(indptr[row], indptr[row + 1]):
                        nxt[indices[k]] += w * data[k]
        tmp = cur
        cur = nxt
        nxt = tmp
        g *= discount
