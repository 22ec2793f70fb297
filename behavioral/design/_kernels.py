"""Compiled kernel of level scoring: many levels, several behavioural hypotheses, one call.

For every level ``l`` of a stack (levels concatenated, each with its own local state
indices) and every hypothesis ``h`` (a reward, a discount and a lapse rate), the kernel

1. runs the finite-horizon soft Bellman backup of ``h``'s reward on ``l`` (the same
   backup step as :func:`behavioral.tabular.soft_bellman`, ``_kernels._backup_step``) and
   mixes in the lapse: ``p_h[t, s, a] = (1 - eps_h) pi_h[t, s, a] + eps_h / A``;
2. runs ``h``'s forward pass from ``l``'s initial distribution and accumulates, over the
   states where the episode is still running (not absorbing),

   .. math::

       KL_l(h \\| g) = \\sum_t \\sum_s D_h[t, s] \\sum_a p_h(a | s, t)
           \\big(\\log p_h(a | s, t) - \\log p_g(a | s, t)\\big),

       J_l(h, o) = \\sum_t \\gamma_l^t \\sum_s D_h[t, s] \\sum_a p_h(a | s, t)\\, r_o(s, a),

   the KL divergence between the trajectory distributions of agents ``h`` and ``g`` (the
   expected log-likelihood ratio per episode when the agent is ``h``; log-probabilities
   clamped at ``log 1e-300`` as the audit's likelihoods are) and the expected return of
   objective ``o`` under agent ``h``.

Levels are processed in *groups*: consecutive levels of one horizon stacked into one
block-diagonal model of about 512 states (``scoring.GROUP_STATES``), so that the backup's
per-step work runs at full vector width even for 40-state levels (backing up RedDoors
levels one at a time was twice as slow per level). A group's policies live in scratch
arrays reused from group to group; the cost is O(n_hyp * H * (nnz + S * A)) per level,
and no (H, S_total, A) array is ever built. :func:`score_reference` is the same
computation in plain numpy, level by level, used by the tests as an oracle.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.special

from behavioral import _kernels as _core

_OPTS = dict(cache=True, nogil=True, fastmath=False, boundscheck=False, error_model="numpy")
_MATH = dict(_OPTS, fastmath={"contract"})
#: Probabilities are clamped here before the log, as in the audit's episode likelihoods.
P_FLOOR = 1e-300
_LOG_FLOOR = float(np.log(P_FLOOR))


@numba.njit(**_MATH)
def _mix_and_log(p, logp, lapse, n_actions):
    """``p = (1 - lapse) p + lapse / A`` and ``logp = log(max(p, P_FLOOR))`` (1-D, in place)."""
    keep = 1.0 - lapse
    add = lapse / n_actions
    for i in range(p.shape[0]):
        x = keep * p[i] + add
        p[i] = x
        logp[i] = _core._log_pos(max(x, P_FLOOR))


@numba.njit(**_MATH)
def _log_from_q(q, v, n_actions):
    """``q[s, a] = max(q[s, a] - v[s], log P_FLOOR)`` in place: ``log pi`` without a log
    (``pi = exp(q - v)``), clamped as :func:`_mix_and_log` clamps."""
    n_states = v.shape[0]
    for s in range(n_states):
        vs = v[s]
        for a in range(n_actions):
            q[s, a] = max(q[s, a] - vs, _LOG_FLOOR)


@numba.njit(**_OPTS)
def _policies(ell, rewards, discount, lapse, pi, logp, V, qbuf, tbuf):
    """One hypothesis's backup on a group of levels: ``pi``, ``logp`` (H, S, A).

    ``ell = (width, idx, val)`` are the group's padded rows (indices local to the
    group), ``rewards`` its (S, A) rewards. The lapse is mixed in; without one, ``log pi
    = Q - V`` comes from the backup itself (Q is written into ``logp``), with no log.
    """
    width, idx, val = ell
    horizon, n_states, n_actions = pi.shape
    no_ptr = np.zeros(1, np.int64)
    no_ix = np.zeros(0, np.int64)
    no_data = np.zeros(0)
    no_q = np.zeros((0, n_actions))
    exact = lapse == 0.0
    for t in range(horizon - 1, -1, -1):
        last = t == horizon - 1
        v_next = V[t] if last else V[t + 1]
        _core._backup_step(
            width,
            idx,
            val,
            no_ptr,
            no_ix,
            no_data,
            rewards,
            True,
            discount,
            v_next,
            last,
            exact,
            logp[t] if exact else no_q,
            pi[t],
            V[t],
            qbuf,
            tbuf,
            n_states,
        )
        if exact:
            _log_from_q(logp[t], V[t], n_actions)
        else:
            _mix_and_log(
                pi[t].reshape(n_states * n_actions),
                logp[t].reshape(n_states * n_actions),
                lapse,
                n_actions,
            )


@numba.njit(**_OPTS)
def _dot(x, y):
    """``sum_i x[i] y[i]`` with four partial sums (instruction-level parallelism without
    reassociating floating point across the whole loop)."""
    n = x.shape[0]
    a0 = a1 = a2 = a3 = 0.0
    m = n - n % 4
    for i in range(0, m, 4):
        a0 += x[i] * y[i]
        a1 += x[i + 1] * y[i + 1]
        a2 += x[i + 2] * y[i + 2]
        a3 += x[i + 3] * y[i + 3]
    for i in range(m, n):
        a0 += x[i] * y[i]
    return (a0 + a1) + (a2 + a3)


@numba.njit(**_OPTS)
def _occupancy_in_place(ell, d0, stopped, pi, cur, nxt):
    """Overwrite ``pi[t, s, a]`` (H, S, A) with the state-action occupancy
    ``D[t, s] pi[t, s, a]`` of running states (0 where the episode has ended).

    ``d0`` (S,) is the start distribution, ``stopped`` (S,) 1.0 in absorbing states and
    0.0 elsewhere; mass in absorbing states stays there. ``cur``, ``nxt``: (S,) scratch.
    The scatter follows ``behavioral._kernels._forward_step``.
    """
    width, idx, val = ell
    horizon, n_states, n_actions = pi.shape
    for j in range(n_states):
        cur[j] = d0[j]
    for t in range(horizon):
        p = pi[t]
        for s in range(n_states):
            ds = cur[s] * (1.0 - stopped[s])
            for a in range(n_actions):
                p[s, a] *= ds
        if t + 1 == horizon:
            break
        for j in range(n_states):
            nxt[j] = cur[j] * stopped[j]
        for s in range(n_states):
            if cur[s] == 0.0:
                continue
            row0 = s * n_actions
            if width == 1 and n_actions == 4:
                nxt[np.uint64(idx[row0])] += p[s, 0] * val[row0]
                nxt[np.uint64(idx[row0 + 1])] += p[s, 1] * val[row0 + 1]
                nxt[np.uint64(idx[row0 + 2])] += p[s, 2] * val[row0 + 2]
                nxt[np.uint64(idx[row0 + 3])] += p[s, 3] * val[row0 + 3]
            else:
                for a in range(n_actions):
                    w = p[s, a]
                    j = (row0 + a) * width
                    for q in range(j, j + width):
                        nxt[np.uint64(idx[q])] += w * val[q]
        tmp = cur
        cur = nxt
        nxt = tmp


@numba.njit(**_OPTS)
def _view(buf, h, shape):
    """The C-contiguous ``shape`` (H, S, A) view of row ``h`` of a flat scratch buffer."""
    horizon, n_states, n_actions = shape
    return buf[h, : horizon * n_states * n_actions].reshape((horizon, n_states, n_actions))


@numba.njit(**_OPTS)
def _score_group(
    levels,
    state_off,
    ell,
    d0,
    stopped,
    obj_rewards,
    level_discounts,
    horizon,
    rewards,
    discounts,
    lapses,
    rows,
    pi_buf,
    logp_buf,
    V,
    qbuf,
    tbuf,
    cur,
    nxt,
    acc_buf,
    wdisc_buf,
    gpow_buf,
    gamma_buf,
    kl_out,
    ret_out,
):
    """Every hypothesis's policy on a group of levels (one block-diagonal model, levels
    ``levels[0] .. levels[1] - 1``), then, for the hypotheses with ``rows[h]``, their
    occupancy and each level's KL row and returns (the other rows are left as they are).

    ``acc_buf`` (n_hyp, S*A) accumulates ``sum_t w_t (log p_h - log p_k)`` per entry,
    ``wdisc_buf`` the discounted occupancy ``sum_t gamma^t w_t`` (``gpow_buf`` holds
    ``gamma^t``, ``gamma_buf`` each entry's level discount); the per-level sums follow."""
    l0, l1 = levels
    g0, g1 = state_off[l0], state_off[l1]
    n_states = g1 - g0
    n_hyp, _, n_actions = rewards.shape
    n_obj = obj_rewards.shape[0]
    shape = (horizon, n_states, n_actions)
    slab = n_states * n_actions
    for h in range(n_hyp):
        _policies(
            ell,
            rewards[h, g0:g1],
            discounts[h],
            lapses[h],
            _view(pi_buf, h, shape),
            _view(logp_buf, h, shape),
            V[:horizon, :n_states],
            qbuf,
            tbuf,
        )
    gam = gamma_buf[:slab]  # each entry's level discount
    for lvl in range(l0, l1):
        for i in range((state_off[lvl] - g0) * n_actions, (state_off[lvl + 1] - g0) * n_actions):
            gam[i] = level_discounts[lvl]
    wd = wdisc_buf[:slab]
    gp = gpow_buf[:slab]
    for h in range(n_hyp):
        if not rows[h]:
            continue
        _occupancy_in_place(
            ell, d0[g0:g1], stopped[g0:g1], _view(pi_buf, h, shape), cur[:n_states], nxt[:n_states]
        )
        # Whole-group passes per step (long vectorised loops), per-level sums at the end.
        for k in range(n_hyp):
            _fill(acc_buf[k, :slab], 0.0)
        _fill(wd, 0.0)
        _fill(gp, 1.0)
        for t in range(horizon):
            lo, hi = t * slab, (t + 1) * slab
            w = pi_buf[h, lo:hi]
            for k in range(n_hyp):
                if k != h:
                    _accumulate_diff(acc_buf[k, :slab], w, logp_buf[h, lo:hi], logp_buf[k, lo:hi])
            _accumulate_discounted(wd, gp, gam, w)
        for lvl in range(l0, l1):
            a0 = (state_off[lvl] - g0) * n_actions
            a1 = (state_off[lvl + 1] - g0) * n_actions
            for k in range(n_hyp):
                if k != h:
                    kl_out[lvl, h, k] = _sum(acc_buf[k, a0:a1])
            for k in range(n_obj):
                r = obj_rewards[k, state_off[lvl] : state_off[lvl + 1]].reshape(a1 - a0)
                ret_out[lvl, h, k] = _dot(wd[a0:a1], r)


@numba.njit(**_MATH)
def _fill(x, value):
    for i in range(x.shape[0]):
        x[i] = value


@numba.njit(**_MATH)
def _accumulate_diff(acc, w, x, y):
    """``acc += w * (x - y)`` elementwise."""
    for i in range(acc.shape[0]):
        acc[i] += w[i] * (x[i] - y[i])


@numba.njit(**_MATH)
def _accumulate_discounted(acc, gpow, gamma, w):
    """``acc += gpow * w``, then ``gpow *= gamma`` (elementwise: per-entry discounts)."""
    for i in range(acc.shape[0]):
        acc[i] += gpow[i] * w[i]
        gpow[i] *= gamma[i]


@numba.njit(**_OPTS)
def _sum(x):
    """``sum(x)`` with four partial sums."""
    n = x.shape[0]
    a0 = a1 = a2 = a3 = 0.0
    m = n - n % 4
    for i in range(0, m, 4):
        a0 += x[i]
        a1 += x[i + 1]
        a2 += x[i + 2]
        a3 += x[i + 3]
    for i in range(m, n):
        a0 += x[i]
    return (a0 + a1) + (a2 + a3)


@numba.njit(**_OPTS)
def score_levels(
    state_off,
    group_off,
    width,
    idx,
    val,
    d0,
    stopped,
    horizons,
    level_discounts,
    rewards,
    discounts,
    lapses,
    rows,
    obj_rewards,
    kl_out,
    ret_out,
):
    """KL divergences and expected returns of the hypotheses ``rows`` selects on every
    level.

    Args:
        state_off: (L+1,) int64 state offsets of the levels in the stack.
        group_off: (G+1,) int64: levels ``group_off[g] .. group_off[g+1] - 1`` form group
            ``g``, consecutive levels of one horizon processed as one block-diagonal model
            (the backup's per-step cost is then shared by several small levels).
        width, idx, val: the stacked transitions in padded-row (ELL) layout: row
            ``(state_off[l] + s) * A + a`` holds ``width`` (next state, probability) slots,
            the next state's index local to the level's group (padding: probability 0);
            ``idx`` int32.
        d0: (S_total,) initial distributions; stopped: (S_total,) 1.0 in absorbing states,
            else 0.0; horizons: (L,) int64, equal within a group; level_discounts: (L,)
            the levels' own discounts (for returns).
        rewards: (n_hyp, S_total, A) each hypothesis's reward; discounts, lapses: (n_hyp,).
        rows: (n_hyp,) bool: the hypotheses whose KL rows and returns are computed (every
            policy is computed: each row needs the others' log-probabilities).
        obj_rewards: (n_obj, S_total, A) the objectives whose returns are wanted.
        kl_out: (L, n_hyp, n_hyp) zeros, filled with ``KL_l(h || g)``.
        ret_out: (L, n_hyp, n_obj) zeros, filled with ``J_l(h, o)``.
    """
    n_groups = group_off.shape[0] - 1
    n_hyp, _, n_actions = rewards.shape
    s_max = 1
    h_max = 1
    cap = 1
    for g in range(n_groups):
        n_s = state_off[group_off[g + 1]] - state_off[group_off[g]]
        horizon = horizons[group_off[g]]
        s_max = max(s_max, n_s)
        h_max = max(h_max, horizon)
        cap = max(cap, horizon * n_s * n_actions)
    pi_buf = np.empty((n_hyp, cap))
    logp_buf = np.empty((n_hyp, cap))
    V = np.empty((h_max, s_max))
    cur = np.empty(s_max)
    nxt = np.empty(s_max)
    acc_buf = np.empty((n_hyp, s_max * n_actions))
    wdisc_buf = np.empty(s_max * n_actions)
    gpow_buf = np.empty(s_max * n_actions)
    gamma_buf = np.empty(s_max * n_actions)
    qbuf = np.empty(_core._BLOCK)
    tbuf = np.empty(_core._BLOCK)
    for g in range(n_groups):
        l0, l1 = group_off[g], group_off[g + 1]
        r0 = state_off[l0] * n_actions * width
        r1 = state_off[l1] * n_actions * width
        _score_group(
            (l0, l1),
            state_off,
            (width, idx[r0:r1], val[r0:r1]),
            d0,
            stopped,
            obj_rewards,
            level_discounts,
            horizons[l0],
            rewards,
            discounts,
            lapses,
            rows,
            pi_buf,
            logp_buf,
            V,
            qbuf,
            tbuf,
            cur,
            nxt,
            acc_buf,
            wdisc_buf,
            gpow_buf,
            gamma_buf,
            kl_out,
            ret_out,
        )


def score_reference(
    transitions: list[np.ndarray],
    d0: list[np.ndarray],
    running: list[np.ndarray],
    horizons: list[int],
    level_discounts: list[float],
    rewards: list[np.ndarray],
    discounts: np.ndarray,
    lapses: np.ndarray,
    obj_rewards: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy version of :func:`score_levels`, level by level (for tests).

    Per level ``l``: ``transitions[l]`` dense (S, A, S), ``d0[l]`` (S,), ``running[l]``
    (S,) bool, ``rewards[l]`` (n_hyp, S, A), ``obj_rewards[l]`` (n_obj, S, A). Returns
    ``kl`` (L, n_hyp, n_hyp) and ``ret`` (L, n_hyp, n_obj).
    """
    n_hyp = len(discounts)
    n_levels = len(transitions)
    n_obj = obj_rewards[0].shape[0]
    kl = np.zeros((n_levels, n_hyp, n_hyp))
    ret = np.zeros((n_levels, n_hyp, n_obj))
    for lvl in range(n_levels):
        P, H = transitions[lvl], horizons[lvl]
        S, A, _ = P.shape
        logp = np.empty((n_hyp, H, S, A))
        p = np.empty((n_hyp, H, S, A))
        for h in range(n_hyp):
            v_next = np.zeros(S)
            for t in range(H - 1, -1, -1):
                q = rewards[lvl][h] + (0.0 if t == H - 1 else discounts[h] * (P @ v_next))
                v_next = scipy.special.logsumexp(q, axis=1)
                pi = np.exp(q - v_next[:, None])
                p[h, t] = (1 - lapses[h]) * pi + lapses[h] / A
            logp[h] = np.log(np.maximum(p[h], P_FLOOR))
        for h in range(n_hyp):
            D = d0[lvl].copy()
            for t in range(H):
                w = D[:, None] * p[h, t] * running[lvl][:, None]  # (S, A) mass that acts
                kl[lvl, h] += np.einsum("sa,ksa->k", w, logp[h, t][None] - logp[:, t])
                ret[lvl, h] += level_discounts[lvl] ** t * np.einsum(
                    "sa,osa->o", w, obj_rewards[lvl]
                )
                D = np.einsum("sa,sap->p", w, P) + D * ~running[lvl]
    return kl, ret
