"""Compiled kernels of the numerical core (numba, single-threaded).

These are the inner loops of soft value iteration and of the forward (occupancy) pass.
They work directly on the CSR arrays of the (S*A, S) transition matrix, so their cost is
O(nnz + S*A) per time step, never O(S^2). Everything is float64 and written in place
into arrays the caller allocated. Apart from :func:`forward_checked` and
:func:`check_policy_rows`, which check the policy they read, nothing here validates
input (``behavioral.tabular`` does that before calling in).

Index conventions (same as ``imitation.algorithms.mce_irl``):
``V[t, s]``, ``Q[t, s, a]``, ``pi[t, s, a]``, ``D[t, s]``; row ``s * A + a`` of the
transition matrix is P(. | s, a).

Where the time goes, and what is done about it (measured on a 300x300 grid, H=600,
and CliffWorld 100x20; ``analyses/benchmarks/maxent_core.py``):

- In a fresh process much of the time is not arithmetic but the kernel's page faults on
  the 4.3 GB of output arrays (V, Q, pi, D), reported as *system* time. With numpy's
  default allocation (huge pages requested with ``madvise``) that was ~10.6 s on the
  benchmark's VM, with ordinary pages ~2 s: large outputs are allocated by
  :func:`empty_output`. Callers that iterate (MaxEnt IRL) preallocate and reuse.
- ``exp`` of every (t, s, a) dominated the arithmetic of the backup. libm's scalar
  ``exp`` does not vectorise under numba (no SVML), so :func:`_exp_nonpos` is a branch-free
  Cody-Waite + degree-13 polynomial ``exp`` (<= 1 ulp on [-708, 0]) that LLVM turns
  into SIMD code; the backup works on blocks of ``_BLOCK`` states so that the pass
  computing ``Q`` and the vectorised ``exp``/``log`` passes stay in L1/L2 cache.
- The transition rows are read in a padded fixed-width layout (see ``_padded_rows``)
  rather than through CSR row pointers; deterministic dynamics (one non-zero per row,
  e.g. grids) and "move or slip" dynamics (two) get straight-line code.
- Validating a policy is fused into the forward pass (:func:`forward_checked`): one
  vectorised read of each ``pi[t]`` slab just before it is used, instead of numpy passes
  over the whole (H, S, A) array that each allocate an (H, S, A) temporary (those
  temporaries' page faults cost more than the forward pass itself).
"""

from __future__ import annotations

import math
import mmap
import sys

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

# error_model="numpy": a float division never raises, so loops with divisions vectorise.
_OPTS = dict(cache=True, nogil=True, fastmath=False, boundscheck=False, error_model="numpy")
# Elementwise maths: allow fused multiply-add (more accurate, and SIMD-friendly).
_MATH = dict(_OPTS, fastmath={"contract"})

# Outputs at least this large are allocated by `empty_output` without transparent huge pages.
_NO_THP_BYTES = 64 << 20


def empty_output(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised C-contiguous float64 array for a kernel's (large) output.

    Same as ``np.empty(shape)``, except that arrays of 64 MB or more come from a private
    anonymous ``mmap`` instead of numpy's allocator, which ``madvise``s large blocks for
    transparent huge pages. Where the kernel defragments memory on a huge-page fault
    (``/sys/kernel/mm/transparent_hugepage/defrag`` = ``madvise``, common in VMs), first
    touching such memory was 4-5x slower than with ordinary pages on the benchmark
    machine: 10.6 s instead of 2.3 s of system time for the 4.3 GB that
    ``soft_bellman`` + ``occupancy`` return on a 300x300 grid with H=600. The kernels
    stream through these arrays, so small pages cost them nothing measurable. The
    memory is unmapped when the array is garbage-collected, as with ``np.empty``.
    """
    n_bytes = math.prod(shape) * 8
    if n_bytes < _NO_THP_BYTES or sys.platform == "win32":
        return np.empty(shape)
    buf = mmap.mmap(-1, n_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(buf, dtype=np.float64).reshape(shape)


# States per block in the backup: 512 states x A actions x 8 bytes stays in L1/L2.
_BLOCK = 512
_ROW_SUM_TOL = 1e-6


# --- bit casts and vectorisable exp / log ---------------------------------------------


@intrinsic
def _bits_to_float(typingctx, bits):
    """Reinterpret an int64 as a float64 (LLVM ``bitcast``)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _float_to_bits(typingctx, x):
    """Reinterpret a float64 as an int64 (LLVM ``bitcast``)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


_LOG2E = 1.4426950408889634
# ln 2 split so that k * _LN2_HI is exact for |k| < 2**21 (fdlibm's constants).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951
_EXP_MIN = -708.0  # exp(-708) ~ 3e-308: below this we return 0 (absolute error < 3e-308)


@numba.njit(**_MATH)
def _exp_nonpos(x):
    """``exp(x)`` for ``x <= 0`` (also -inf), branch-free so that loops vectorise.

    ``x = k ln2 + r`` with ``|r| <= ln2 / 2``; ``exp(r)`` by its Taylor polynomial of
    degree 13 (truncation error < 1e-17 relative); ``2**k`` built from its bits. Within
    1 ulp of libm on [-708, 0]; 0 below -708.
    """
    xc = max(x, _EXP_MIN)
    k = np.floor(xc * _LOG2E + 0.5)
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    y = p * _bits_to_float((np.int64(k) + 1023) << 52)
    return y if x >= _EXP_MIN else 0.0


@numba.njit(**_MATH)
def _log_pos(x):
    """``log(x)`` for a positive normal float, branch-free so that loops vectorise.

    ``x = 2**e m`` with ``m`` in [sqrt(1/2), sqrt(2)); ``log m = 2 atanh(s)`` with
    ``s = (m-1)/(m+1)``, ``|s| <= 0.172``, by its odd series to ``s**21`` (truncation
    error < 1e-18). Within 2 ulp of libm.
    """
    b = _float_to_bits(x)
    e = float((b >> 52) - 1023)
    m = _bits_to_float((b & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1.0 if big else e
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    p = 1.0 / 21.0
    p = p * z + 1.0 / 19.0
    p = p * z + 1.0 / 17.0
    p = p * z + 1.0 / 15.0
    p = p * z + 1.0 / 13.0
    p = p * z + 1.0 / 11.0
    p = p * z + 1.0 / 9.0
    p = p * z + 1.0 / 7.0
    p = p * z + 1.0 / 5.0
    p = p * z + 1.0 / 3.0
    log_m = 2.0 * s + 2.0 * s * z * p
    return e * _LN2_HI + (log_m + e * _LN2_LO)


@numba.njit(**_MATH)
def _exp_inplace(x):
    """``x = exp(x)`` in place for a 1-D ``x`` of non-positive values.

    (A loop over ``range(x.shape[0])`` vectorises; one over ``range(lo, hi)`` does not,
    because numba's negative-index wraparound check stays in the loop.)
    """
    for i in range(x.shape[0]):
        x[i] = _exp_nonpos(x[i])


@numba.njit(**_MATH)
def exp_nonpos(x, out):
    """``out[i] = exp(x[i])`` for 1-D arrays of values <= 0 (for tests)."""
    for i in range(x.shape[0]):
        out[i] = _exp_nonpos(x[i])


@numba.njit(**_MATH)
def log_pos(x, out):
    """``out[i] = log(x[i])`` for 1-D arrays of positive normal values (for tests)."""
    for i in range(x.shape[0]):
        out[i] = _log_pos(x[i])


# --- structure of the transition matrix -----------------------------------------------
#
# The kernels see T as "padded rows" (ELL): every row has exactly ``W`` (index, value)
# slots, ``idx[row * W + j]``, ``val[row * W + j]``; a row with fewer non-zeros is padded
# with value 0 (and a valid index). Rows then have a fixed trip count, which the CSR
# row-pointer loop lacks; for the usual tiny ``W`` (1 for deterministic dynamics, 2 for
# "intended move or slip") this is several times faster. Padding adds exact zeros, so
# results are bit-identical to the CSR sums. Long rows (``W > _MAX_ELL``) keep CSR.

_MAX_ELL = 8


@numba.njit(**_OPTS)
def _max_row_nnz(indptr, n_rows):
    width = 0
    for r in range(n_rows):
        width = max(width, indptr[r + 1] - indptr[r])
    return width


@numba.njit(**_OPTS)
def _padded_rows(indptr, indices, data, n_rows):
    """``(W, idx, val)``: T in ELL layout, or ``W = 0`` (and empty arrays) to keep CSR.

    When every row has exactly one entry (deterministic dynamics) the CSR arrays already
    are the ELL layout with ``W = 1`` (the indices are copied as int32).
    """
    width = _max_row_nnz(indptr, n_rows)
    if width == 1 and indptr[n_rows] == n_rows:
        return 1, indices[:n_rows].astype(np.int32), data[:n_rows]
    if width > _MAX_ELL or width == 0:
        return 0, np.zeros(0, np.int32), np.zeros(0)
    idx = np.empty(n_rows * width, np.int32)
    val = np.zeros(n_rows * width)
    for r in range(n_rows):
        j = r * width
        for k in range(indptr[r], indptr[r + 1]):
            idx[j] = indices[k]
            val[j] = data[k]
            j += 1
        pad = indices[indptr[r]] if indptr[r + 1] > indptr[r] else 0
        while j < (r + 1) * width:
            idx[j] = pad
            j += 1
    return width, idx, val


@numba.njit(**_OPTS)
def _expected_next(width, idx, val, indptr, indices, data, v, lo, hi, discount, out):
    """``out[i] = discount * sum_j T[lo + i, j] v[j]`` for rows ``lo .. hi-1``."""
    if width == 1:
        for i in range(hi - lo):
            r = lo + i
            out[i] = discount * (val[r] * v[np.uint64(idx[r])])
    elif width == 2:
        for i in range(hi - lo):
            j = 2 * (lo + i)
            acc = val[j] * v[np.uint64(idx[j])] + val[j + 1] * v[np.uint64(idx[j + 1])]
            out[i] = discount * acc
    elif width > 0:
        for i in range(hi - lo):
            j = width * (lo + i)
            acc = 0.0
            for k in range(j, j + width):
                acc += val[k] * v[np.uint64(idx[k])]
            out[i] = discount * acc
    else:
        for i in range(hi - lo):
            r = lo + i
            acc = 0.0
            for k in range(indptr[r], indptr[r + 1]):
                acc += data[k] * v[np.uint64(indices[k])]
            out[i] = discount * acc


# --- soft value iteration ---------------------------------------------------------------


@numba.njit(**_OPTS)
def _backup_step(
    width,
    idx,
    val,
    indptr,
    indices,
    data,
    reward,
    r_is_sa,
    discount,
    v_next,
    last,
    keep_q,
    q_out,
    p_out,
    v_out,
    qmax_buf,
    tot_buf,
    n_active,
):
    """One soft Bellman backup at one time step, block by block, of the first
    ``n_active`` states (the others are left as they are).

    ``q_out = r + discount * T @ v_next`` (just ``r`` at the ``last`` step),
    ``v_out = logsumexp_a(q_out)``, ``p_out = exp(q_out - v_out)``. ``reward`` is (S, A)
    when ``r_is_sa`` else (S, 1). ``q_out`` (C-contiguous) is only written when
    ``keep_q``.

    Per block of states: (1) ``p = discount * T v``; (2) ``q = r + p``, stored in Q,
    per-state max, ``p = q - max``; (3) ``p = exp(p)``, vectorised; (4) per-state totals
    and normalisation; (5) ``V = max + log(total)``, vectorised. Four actions (grids)
    get straight-line code for (2) and (4), which LLVM vectorises; the arithmetic, and
    so the result, is the same bit for bit.
    """
    n_states, n_actions = p_out.shape
    p_flat = p_out.reshape(n_states * n_actions)
    q_flat = q_out.reshape(q_out.shape[0] * n_actions)
    r_col = 1 if r_is_sa else 0
    for s0 in range(0, n_active, _BLOCK):
        s1 = min(s0 + _BLOCK, n_active)
        n = s1 - s0
        lo = s0 * n_actions
        hi = s1 * n_actions
        p_block = p_flat[lo:hi]
        q_block = q_flat[lo:hi] if keep_q else q_flat[0:0]
        r_block = reward[s0:s1]
        if last:
            for i in range(p_block.shape[0]):
                p_block[i] = 0.0
        else:
            _expected_next(
                width, idx, val, indptr, indices, data, v_next, lo, hi, discount, p_block
            )
        if n_actions == 4:
            for i in range(n):
                b = 4 * i
                q0 = r_block[i, 0] + p_block[b]
                q1 = r_block[i, r_col] + p_block[b + 1]
                q2 = r_block[i, 2 * r_col] + p_block[b + 2]
                q3 = r_block[i, 3 * r_col] + p_block[b + 3]
                qmax = max(max(q0, q1), max(q2, q3))
                qmax_buf[i] = qmax
                if keep_q:
                    q_block[b] = q0
                    q_block[b + 1] = q1
                    q_block[b + 2] = q2
                    q_block[b + 3] = q3
                p_block[b] = q0 - qmax
                p_block[b + 1] = q1 - qmax
                p_block[b + 2] = q2 - qmax
                p_block[b + 3] = q3 - qmax
        else:
            # Any other number of actions: action by action over the block's states (loops
            # over a run-time A per state do not vectorise; these do), then back into pi.
            _other_actions(
                p_block, q_block, r_block, r_col, keep_q, qmax_buf, tot_buf, n, n_actions
            )
            _finish_values(v_out, qmax_buf, tot_buf, s0, s1)
            continue
        _exp_inplace(p_block)
        if n_actions == 4:
            for i in range(n):
                b = 4 * i
                total = ((p_block[b] + p_block[b + 1]) + p_block[b + 2]) + p_block[b + 3]
                inv = 1.0 / total
                p_block[b] *= inv
                p_block[b + 1] *= inv
                p_block[b + 2] *= inv
                p_block[b + 3] *= inv
                tot_buf[i] = total
        _finish_values(v_out, qmax_buf, tot_buf, s0, s1)


@numba.njit(**_MATH)
def _other_actions(p_block, q_block, r_block, r_col, keep_q, qmax_buf, tot_buf, n, n_actions):
    """Steps (2)-(4) of :func:`_backup_step` for a block of ``n`` states when ``n_actions``
    is not 4: ``p_block`` holds ``discount * T v`` in, the policy out; ``qmax_buf`` and
    ``tot_buf`` get each state's max and total. Works action by action on contiguous
    (A, n) rows, so that every pass vectorises whatever A is (1.3-1.5x faster than a loop
    over actions inside a loop over states)."""
    qa = np.empty((n_actions, n))
    for a in range(n_actions):
        row = qa[a]
        for i in range(n):
            row[i] = r_block[i, a * r_col] + p_block[i * n_actions + a]
    if keep_q:
        for a in range(n_actions):
            row = qa[a]
            for i in range(n):
                q_block[i * n_actions + a] = row[i]
    for i in range(n):
        qmax_buf[i] = qa[0, i]
    for a in range(1, n_actions):
        row = qa[a]
        for i in range(n):
            qmax_buf[i] = max(qmax_buf[i], row[i])
    for a in range(n_actions):
        row = qa[a]
        for i in range(n):
            row[i] -= qmax_buf[i]
        _exp_inplace(row)
    for i in range(n):
        tot_buf[i] = qa[0, i]
    for a in range(1, n_actions):
        row = qa[a]
        for i in range(n):
            tot_buf[i] += row[i]
    inv = np.empty(n)
    for i in range(n):
        inv[i] = 1.0 / tot_buf[i]
    for a in range(n_actions):
        row = qa[a]
        for i in range(n):
            p_block[i * n_actions + a] = row[i] * inv[i]


@numba.njit(**_MATH)
def _finish_values(v_out, qmax_buf, tot_buf, s0, s1):
    """``v_out[s] = qmax[s] + log(total[s])`` for ``s`` in [s0, s1) (vectorised)."""
    v_block = v_out[s0:s1]
    for i in range(v_block.shape[0]):
        v_block[i] = qmax_buf[i] + _log_pos(tot_buf[i])


@numba.njit(**_OPTS)
def soft_backup(indptr, indices, data, reward, r_is_sa, discount, V, Q, pi):
    """Finite-horizon soft value iteration into preallocated ``V`` (H, S), ``pi`` (H, S, A).

    ``Q`` is (H, S, A) to keep the soft Q-values, or (H, 0, A) to skip storing them (IRL
    never needs Q). ``reward`` is (S, A) when ``r_is_sa`` else (S, 1); it must be
    finite. ``pi`` and ``Q`` must be C-contiguous.
    """
    active = np.full(pi.shape[0], pi.shape[1], np.int64)
    soft_backup_active(indptr, indices, data, reward, r_is_sa, discount, V, Q, pi, active)


@numba.njit(**_OPTS)
def soft_backup_active(indptr, indices, data, reward, r_is_sa, discount, V, Q, pi, active):
    """:func:`soft_backup` of the first ``active[t]`` states at each time ``t`` only.

    Exact for the states it computes when the successors of every state below
    ``active[t]`` are below ``active[t + 1]`` (:func:`reachable_prefix`): ``V_t`` and
    ``pi_t`` of the states an episode from the start states can be in at time ``t``.
    The others keep what they held.
    """
    horizon, n_states, n_actions = pi.shape
    keep_q = Q.shape[1] > 0
    no_q = np.zeros((0, n_actions))
    width, idx, val = _padded_rows(indptr, indices, data, n_states * n_actions)
    qmax_buf = np.empty(_BLOCK)
    tot_buf = np.empty(_BLOCK)
    for t in range(horizon - 1, -1, -1):
        last = t == horizon - 1
        v_next = V[t] if last else V[t + 1]  # unused at the last step
        q_t = Q[t] if keep_q else no_q
        _backup_step(
            width,
            idx,
            val,
            indptr,
            indices,
            data,
            reward,
            r_is_sa,
            discount,
            v_next,
            last,
            keep_q,
            q_t,
            pi[t],
            V[t],
            qmax_buf,
            tot_buf,
            active[t],
        )


@numba.njit(**_OPTS)
def reachable_prefix(indptr, indices, data, n_actions, start, horizon):
    """(H+1,) ``active``: ``active[t]`` is one past the largest index of a state that an
    episode from the ``start`` states (a boolean (S,) mask) can be in at a time ``<= t``
    (breadth-first search through the transitions with non-zero probability; O(nnz)).

    The successors of every state below ``active[t]`` are below ``active[t + 1]``, so
    the ``*_active`` kernels computing only those states at time ``t`` are exact there.
    Models enumerated breadth-first from their start states (the library's envs,
    extracted levels) number their states in this order: early times touch few states.
    """
    n_states = start.shape[0]
    dist = np.full(n_states, horizon + 1, np.int64)
    queue = np.empty(n_states, np.int64)
    head = 0
    tail = 0
    for s in range(n_states):
        if start[s]:
            dist[s] = 0
            queue[tail] = s
            tail += 1
    while head < tail:
        s = queue[head]
        head += 1
        if dist[s] >= horizon:
            continue
        for r in range(s * n_actions, (s + 1) * n_actions):
            for k in range(indptr[r], indptr[r + 1]):
                nxt = indices[k]
                if data[k] > 0.0 and dist[nxt] > dist[s] + 1:
                    dist[nxt] = dist[s] + 1
                    queue[tail] = nxt
                    tail += 1
    active = np.zeros(horizon + 1, np.int64)
    for s in range(n_states):
        if dist[s] <= horizon:
            active[dist[s]] = max(active[dist[s]], s + 1)
    for t in range(1, horizon + 1):
        active[t] = max(active[t], active[t - 1])
    return active


# --- policy validation and forward passes -----------------------------------------------


@numba.njit(**_MATH)
def _count_bad_rows(p_flat, n_actions):
    """Number of rows of a flat (S*A,) slab that are not distributions (vectorised).

    A row is bad when an entry is not ``>= 0`` (negative or NaN) or its sum is not
    within ``_ROW_SUM_TOL`` of 1 (this also catches +inf).
    """
    bad = 0
    if n_actions == 4:  # the common grid case, written out so that it vectorises
        for s in range(p_flat.shape[0] // 4):
            x0 = p_flat[4 * s]
            x1 = p_flat[4 * s + 1]
            x2 = p_flat[4 * s + 2]
            x3 = p_flat[4 * s + 3]
            total = ((x0 + x1) + x2) + x3
            ok = (x0 >= 0.0) & (x1 >= 0.0) & (x2 >= 0.0) & (x3 >= 0.0)
            bad += not (ok & (abs(total - 1.0) <= _ROW_SUM_TOL))
        return bad
    for s in range(p_flat.shape[0] // n_actions):
        total = 0.0
        neg = 0
        for a in range(n_actions):
            x = p_flat[s * n_actions + a]
            neg += not (x >= 0.0)
            total += x
        bad += (neg > 0) | (not (abs(total - 1.0) <= _ROW_SUM_TOL))
    return bad


@numba.njit(**_OPTS)
def _first_bad_row(p, t):
    """``(status, t, s, row_sum)`` of the first bad row of the (S, A) slab ``p``."""
    n_states, n_actions = p.shape
    for s in range(n_states):
        total = 0.0
        neg = False
        for a in range(n_actions):
            x = p[s, a]
            neg = neg or not (x >= 0.0)
            total += x
        if neg or not np.isfinite(total):
            return 1, t, s, total
        if not abs(total - 1.0) <= _ROW_SUM_TOL:
            return 2, t, s, total
    return 0, 0, 0, 0.0


@numba.njit(**_OPTS)
def check_policy_rows(pi):
    """Check that every row ``pi[t, s, :]`` of a C-contiguous (T, S, A) array is a
    distribution.

    Returns ``(status, t, s, row_sum)`` of the first bad row: ``status`` 0 when all are
    fine, 1 for a negative/NaN/inf entry, 2 for a row not summing to 1 (within 1e-6).
    """
    horizon, n_states, n_actions = pi.shape
    for t in range(horizon):
        if _count_bad_rows(pi[t].reshape(n_states * n_actions), n_actions):
            return _first_bad_row(pi[t], t)
    return 0, 0, 0, 0.0


@numba.njit(**_OPTS)
def _forward_step(width, idx, val, indptr, indices, data, p, d, d_next):
    """``d_next = sum_{s,a} d[s] p[s,a] T[(s,a), :]``.

    Padded rows are scattered without testing ``w == 0`` (adding an exact zero to a
    non-negative sum changes nothing); CSR rows skip zero weights. (The scatter is
    written out here and in :func:`forward_features`: as a function, even with numba's
    ``inline="always"``, it made the pass three times slower.)
    """
    n_actions = p.shape[1]
    for j in range(d_next.shape[0]):  # (a loop: numba's slice assignment is slower)
        d_next[j] = 0.0
    for s in range(d.shape[0]):
        ds = d[s]
        if ds == 0.0:
            continue
        row0 = s * n_actions
        if width == 1 and n_actions == 4:
            d_next[idx[row0]] += (ds * p[s, 0]) * val[row0]
            d_next[idx[row0 + 1]] += (ds * p[s, 1]) * val[row0 + 1]
            d_next[idx[row0 + 2]] += (ds * p[s, 2]) * val[row0 + 2]
            d_next[idx[row0 + 3]] += (ds * p[s, 3]) * val[row0 + 3]
        elif width > 0:
            for a in range(n_actions):
                w = ds * p[s, a]
                j = (row0 + a) * width
                for k in range(j, j + width):
                    d_next[idx[k]] += w * val[k]
        else:
            for a in range(n_actions):
                w = ds * p[s, a]
                if w == 0.0:
                    continue
                row = row0 + a
                for k in range(indptr[row], indptr[row + 1]):
                    d_next[indices[k]] += w * data[k]


@numba.njit(**_OPTS)
def forward_checked(indptr, indices, data, pi, stationary, D):
    """Occupancy forward pass that also validates every row of ``pi``.

    ``D[t+1] = sum_{s,a} D[t,s] pi[t,s,a] T[(s,a), :]``; ``D`` is (H+1, S) with ``D[0]``
    already set. ``pi`` is C-contiguous (H, S, A), or (1, S, A) with ``stationary``
    true. Each time step's slab is validated just before it is used (while it is in
    cache). Returns ``(status, t, s, row_sum)`` as :func:`check_policy_rows`; when
    ``status`` is not 0, ``D`` is incomplete and must be discarded.
    """
    horizon = D.shape[0] - 1
    n_states = D.shape[1]
    n_actions = pi.shape[2]
    width, idx, val = _padded_rows(indptr, indices, data, n_states * n_actions)
    for t in range(pi.shape[0] if stationary else 0):
        if _count_bad_rows(pi[t].reshape(n_states * n_actions), n_actions):
            return _first_bad_row(pi[t], t)
    for t in range(horizon):
        p = pi[0] if stationary else pi[t]
        if not stationary and _count_bad_rows(p.reshape(n_states * n_actions), n_actions):
            return _first_bad_row(p, t)
        _forward_step(width, idx, val, indptr, indices, data, p, D[t], D[t + 1])
    return 0, 0, 0, 0.0


@numba.njit(**_OPTS)
def forward(indptr, indices, data, pi, stationary, D):
    """Occupancy forward pass: ``D[t+1] = sum_{s,a} D[t,s] pi[t,s,a] T[(s,a), :]``.

    ``D`` is (H+1, S) with ``D[0]`` already set. ``pi`` is (H, S, A), or (1, S, A) with
    ``stationary`` true. No validation (see :func:`forward_checked`).
    """
    horizon = D.shape[0] - 1
    n_states = D.shape[1]
    n_actions = pi.shape[2]
    width, idx, val = _padded_rows(indptr, indices, data, n_states * n_actions)
    for t in range(horizon):
        p = pi[0] if stationary else pi[t]
        _forward_step(width, idx, val, indptr, indices, data, p, D[t], D[t + 1])


@numba.njit(**_OPTS)
def forward_features(indptr, indices, data, pi, d0, discount, feats, mode, out_mu, D):
    """:func:`forward_features_active` over every state at every time."""
    active = np.full(pi.shape[0] + 1, pi.shape[1], np.int64)
    forward_features_active(indptr, indices, data, pi, d0, discount, feats, mode, out_mu, D, active)


@numba.njit(**_OPTS)
def forward_features_active(
    indptr, indices, data, pi, d0, discount, feats, mode, out_mu, D, active
):
    """Forward pass fused with discounted feature expectations.

    Accumulates ``out_mu += sum_{t<H} discount^t sum_{s,a} D[t,s] pi[t,s,a] phi(s,a)``
    without materialising any (H, S) or (H, S, A) array. ``D`` is a (2, S) scratch array
    and ``d0`` (S,) the initial state distribution. ``mode`` says what ``phi`` is:

    - 0: ``feats`` is (S, K): state features;
    - 1: ``feats`` is (S*A, K): state-action features (row ``s*A + a``);
    - 2: one-hot states (``feats`` unused, ``out_mu`` is (S,));
    - 3: one-hot state-actions (``feats`` unused, ``out_mu`` is (S*A,)).

    Only the first ``active[t]`` states are visited at time ``t`` (``active`` is (H+1,),
    non-decreasing, and ``d0`` is 0 from ``active[0]`` on; see
    :func:`soft_backup_active`): the occupancy is 0 beyond.
    """
    horizon, n_states, n_actions = pi.shape
    n_feats = out_mu.shape[0]
    width, idx, val = _padded_rows(indptr, indices, data, n_states * n_actions)
    cur = D[0]
    nxt = D[1]
    for j in range(n_states):
        cur[j] = d0[j]
    g = 1.0
    for t in range(horizon):
        p = pi[t]
        more = t + 1 < horizon
        if more:
            for j in range(active[t + 1]):
                nxt[j] = 0.0
        for s in range(active[t]):
            ds = cur[s]
            if ds == 0.0:
                continue
            gd = g * ds
            if mode == 0:
                for k in range(n_feats):
                    out_mu[k] += gd * feats[s, k]
            elif mode == 2:
                out_mu[s] += gd
            elif mode == 1:
                for a in range(n_actions):
                    gw = g * (ds * p[s, a])
                    if gw != 0.0:
                        row = s * n_actions + a
                        for k in range(n_feats):
                            out_mu[k] += gw * feats[row, k]
            else:
                for a in range(n_actions):
                    out_mu[s * n_actions + a] += g * (ds * p[s, a])
            if not more:
                continue
            # nxt += sum_a ds p[s,a] T[(s,a), :], as in _forward_step
            row0 = s * n_actions
            if width == 1 and n_actions == 4:
                nxt[idx[row0]] += (ds * p[s, 0]) * val[row0]
                nxt[idx[row0 + 1]] += (ds * p[s, 1]) * val[row0 + 1]
                nxt[idx[row0 + 2]] += (ds * p[s, 2]) * val[row0 + 2]
                nxt[idx[row0 + 3]] += (ds * p[s, 3]) * val[row0 + 3]
            elif width == 1:  # deterministic dynamics, any number of actions
                for a in range(n_actions):
                    nxt[idx[row0 + a]] += (ds * p[s, a]) * val[row0 + a]
            elif width > 0:
                for a in range(n_actions):
                    w = ds * p[s, a]
                    j = (row0 + a) * width
                    for k in range(j, j + width):
                        nxt[idx[k]] += w * val[k]
            else:
                for a in range(n_actions):
                    w = ds * p[s, a]
                    if w == 0.0:
                        continue
                    row = row0 + a
                    for k in range(indptr[row], indptr[row + 1]):
                        nxt[indices[k]] += w * data[k]
        tmp = cur
        cur = nxt
        nxt = tmp
        g *= discount


@numba.njit(**_OPTS)
def log_policy_gradient(
    indptr, indices, data, pi, feats_t, state_action, discount, bounds, step_s, step_a, w, out
):
    """:func:`log_policy_gradient_active` over every state at every time."""
    active = np.full(pi.shape[0], pi.shape[1], np.int64)
    log_policy_gradient_active(
        indptr, indices, data, pi, feats_t, state_action, discount, bounds, step_s, step_a,
        w, out, active,
    )  # fmt: skip


@numba.njit(**_OPTS)
def log_policy_gradient_active(
    indptr, indices, data, pi, feats_t, state_action, discount, bounds, step_s, step_a, w, out,
    active,
):  # fmt: skip
    """Gradient of ``sum_i w_i log pi_{t_i}(a_i | s_i)`` with respect to the weights of a
    linear reward ``r = phi . theta``, by one backward pass.

    With ``Q_t = r + discount P V_{t+1}`` and ``V_t = logsumexp_a Q_t``:
    ``d log pi_t(a|s) = dQ_t(s, a) - dV_t(s)``, ``dV_t(s) = sum_a pi_t(a|s) dQ_t(s, a)``,
    ``dQ_t(s, a) = phi(s, a) + discount sum_s' P(s'|s, a) dV_{t+1}(s')`` (the soft-optimal
    policy's discounted feature expectations to go). ``pi`` is (H, S, A); ``feats_t`` is the
    transposed features, (K, S*A) when ``state_action`` else (K, S); the steps ``(s_i,
    a_i)`` are sorted by time, those of time ``t`` being ``bounds[t]:bounds[t+1]``, with
    weights ``w_i``. Accumulates into ``out`` (K,). Cost O(H K (nnz + S A)); each feature
    is one vectorised pass (the same padded-row products as the backup). Only the first
    ``active[t]`` states are computed at time ``t`` (see :func:`soft_backup_active`).
    """
    horizon, n_states, n_actions = pi.shape
    n_rows = n_states * n_actions
    n_feats = out.shape[0]
    width, idx, val = _padded_rows(indptr, indices, data, n_rows)
    f_next = np.zeros((n_feats, n_states))  # dV_{t+1}, one row per feature
    f_cur = np.zeros((n_feats, n_states))  # dV_t
    dq = np.empty((n_feats, n_rows))  # dQ_t
    for t in range(horizon - 1, -1, -1):
        p = pi[t].reshape(n_rows)
        n_s = active[t]
        n_r = n_s * n_actions
        for k in range(n_feats):
            dqk = dq[k]
            if t + 1 < horizon:
                _expected_next(
                    width, idx, val, indptr, indices, data, f_next[k], 0, n_r, discount, dqk
                )
            else:
                for r in range(n_r):
                    dqk[r] = 0.0
            fk = feats_t[k]
            if state_action:
                for r in range(n_r):
                    dqk[r] += fk[r]
            else:
                for s in range(n_s):
                    for a in range(n_actions):
                        dqk[s * n_actions + a] += fk[s]
            fc = f_cur[k]
            for s in range(n_s):
                acc = 0.0
                for a in range(n_actions):
                    acc += p[s * n_actions + a] * dqk[s * n_actions + a]
                fc[s] = acc
            # the demonstrated steps of time t: w_i (dQ_t(s_i, a_i) - dV_t(s_i))
            acc = 0.0
            for i in range(bounds[t], bounds[t + 1]):
                s = step_s[i]
                acc += w[i] * (dqk[s * n_actions + step_a[i]] - fc[s])
            out[k] += acc
        tmp = f_next
        f_next = f_cur
        f_cur = tmp
