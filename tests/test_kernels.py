"""Tests of the compiled kernels: the vectorised exp/log, every transition layout the
kernels pick (deterministic, two-entry, wider padded rows, CSR), both action-count paths,
and the policy validation fused into the forward pass. References are plain numpy/scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.special

from behavioral import InvalidPolicyError, TabularModel, _kernels, occupancy, soft_bellman
from behavioral.tabular import check_policy


def test_exp_matches_libm() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            -rng.random(100_000) * 40,
            -rng.random(10_000) * 700,
            [0.0, -0.0, -1e-300, -0.34657359028, -0.34657359029, -707.9, -708.0],
        ]
    )
    out = np.empty_like(x)
    _kernels.exp_nonpos(x, out)
    ref = np.exp(x)
    np.testing.assert_allclose(out, ref, rtol=4.5e-16, atol=0)
    assert out[-7] == 1.0  # exp(0) exactly: the max action's weight
    # Below -708 the result is flushed to 0 (true values < 3.3e-308).
    tail = np.array([-708.5, -745.0, -1e6, -np.inf])
    out = np.empty_like(tail)
    _kernels.exp_nonpos(tail, out)
    assert np.all(out == 0.0)


def test_log_matches_libm() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [1 + rng.random(100_000) * 7, 10.0 ** rng.uniform(-300, 300, 10_000), [1.0, 2.0, 4.0]]
    )
    x = np.append(x, [np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2), 1 + 2**-52])
    out = np.empty_like(x)
    _kernels.log_pos(x, out)
    ref = np.log(x)
    np.testing.assert_allclose(out, ref, rtol=4.5e-16, atol=4.5e-16)
    assert out[np.flatnonzero(x == 1.0)[0]] == 0.0


def _random_model(S: int, A: int, H: int, width: int, seed: int, *, discount=1.0):
    """Every row has ``width`` non-zeros, except a few shorter ones (padding is used)."""
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    for r in range(S * A):
        w = width if r % 7 else max(1, width - 1)
        c = rng.choice(S, size=w, replace=False)
        v = rng.random(w) + 0.1
        rows += [r] * w
        cols += list(c)
        vals += list(v / v.sum())
    T = sp.csr_array((vals, (rows, cols)), shape=(S * A, S))
    d0 = rng.random(S)
    return TabularModel(
        transitions=T, initial_state_dist=d0 / d0.sum(), horizon=H, discount=discount
    )


def _reference(model: TabularModel, reward: np.ndarray):
    """Dense numpy soft value iteration and forward pass (imitation's recurrences)."""
    H, S, A = model.horizon, model.n_states, model.n_actions
    T = model.transitions.toarray().reshape(S, A, S)
    r = np.broadcast_to(reward[:, None] if reward.ndim == 1 else reward, (S, A))
    V, Q = np.empty((H, S)), np.empty((H, S, A))
    for t in range(H - 1, -1, -1):
        Q[t] = r if t == H - 1 else r + model.discount * (T @ V[t + 1])
        V[t] = scipy.special.logsumexp(Q[t], axis=1)
    pi = np.exp(Q - V[:, :, None])
    D = np.empty((H + 1, S))
    D[0] = model.initial_state_dist
    for t in range(H):
        D[t + 1] = np.einsum("s,sa,sak->k", D[t], pi[t], T)
    return V, Q, pi, D


def _assert_matches_reference(model: TabularModel, reward: np.ndarray) -> None:
    """soft_bellman and occupancy agree with the dense reference implementation."""
    V, Q, pi = soft_bellman(model, reward)
    V_ref, Q_ref, pi_ref, D_ref = _reference(model, reward)
    np.testing.assert_allclose(V, V_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(Q, Q_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pi, pi_ref, rtol=0, atol=1e-13)
    np.testing.assert_allclose(occupancy(model, pi), D_ref, rtol=0, atol=1e-13)


# width 1: deterministic; 2: the two-entry path; 5: generic padded rows; 12: CSR.
@pytest.mark.parametrize("width", [1, 2, 5, 12])
@pytest.mark.parametrize("n_actions", [3, 4, 5])
@pytest.mark.parametrize("state_action", [False, True])
def test_kernel_paths_match_dense_reference(width: int, n_actions: int, state_action: bool):
    S = 23  # not a multiple of anything, and several blocks only if _BLOCK were tiny
    model = _random_model(S, n_actions, 9, width, seed=width * 10 + n_actions, discount=0.9)
    rng = np.random.default_rng(2)
    reward = rng.normal(size=(S, n_actions) if state_action else S) * 5
    _assert_matches_reference(model, reward)


def test_many_blocks() -> None:
    # More states than one block of the backup, with a remainder.
    S = 2 * _kernels._BLOCK + 37
    model = _random_model(S, 4, 5, 2, seed=3)
    reward = np.random.default_rng(4).normal(size=S)
    _assert_matches_reference(model, reward)


@pytest.mark.parametrize("width", [1, 2, 12])
@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_forward_features_equals_occupancy_sums(width: int, mode: int) -> None:
    S, A, H, K, gamma = 19, 4, 7, 3, 0.8
    model = _random_model(S, A, H, width, seed=5, discount=gamma)
    rng = np.random.default_rng(6)
    _, _, pi = soft_bellman(model, rng.normal(size=S))
    D = occupancy(model, pi)
    disc = gamma ** np.arange(H)
    sa_visits = np.einsum("t,ts,tsa->sa", disc, D[:H], pi)  # discounted (S, A) visits
    if mode == 0:
        feats = rng.normal(size=(S, K))
        expected = sa_visits.sum(1) @ feats
    elif mode == 1:
        feats = rng.normal(size=(S * A, K))
        expected = sa_visits.reshape(-1) @ feats
    else:
        feats = np.zeros((0, 0))
        expected = sa_visits.sum(1) if mode == 2 else sa_visits.reshape(-1)
    out = np.zeros(expected.shape[0])
    T = model.transitions
    _kernels.forward_features(
        T.indptr,
        T.indices,
        T.data,
        pi,
        model.initial_state_dist,
        gamma,
        feats,
        mode,
        out,
        np.empty((2, S)),
    )
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-14)


def test_soft_backup_without_q_gives_same_policy() -> None:
    model = _random_model(30, 4, 6, 2, seed=7)
    reward = np.random.default_rng(8).normal(size=(30, 1))
    H, S, A = 6, 30, 4
    T = model.transitions
    V1, Q1, pi1 = np.empty((H, S)), np.empty((H, S, A)), np.empty((H, S, A))
    V2, pi2 = np.empty((H, S)), np.empty((H, S, A))
    _kernels.soft_backup(T.indptr, T.indices, T.data, reward, False, 1.0, V1, Q1, pi1)
    _kernels.soft_backup(
        T.indptr, T.indices, T.data, reward, False, 1.0, V2, np.empty((H, 0, A)), pi2
    )
    assert np.array_equal(V1, V2) and np.array_equal(pi1, pi2)


@pytest.mark.parametrize(
    ("where", "value", "match"),
    [
        ((0, 0, 0), -0.1, "negative, NaN or infinite.*step 0, state 0"),
        ((4, 17, 2), np.nan, "negative, NaN or infinite.*step 4, state 17"),
        ((5, 29, 3), np.inf, "negative, NaN or infinite.*step 5, state 29"),
        ((3, 11, 1), 0.9, "sum to 1.*step 3, state 11"),
    ],
)
def test_bad_policy_found_wherever_it_is(where, value, match) -> None:
    # The start distribution puts no mass on the bad state: it must be found anyway.
    S, A, H = 30, 4, 6
    model = _random_model(S, A, H, 1, seed=9)
    model = model.replace(initial_state_dist=np.eye(S)[0])
    _, _, pi = soft_bellman(model, np.zeros(S))
    pi = pi.copy()
    pi[where] = value
    with pytest.raises(InvalidPolicyError, match=match):
        occupancy(model, pi)
    with pytest.raises(InvalidPolicyError, match=match):
        check_policy(model, pi)


def test_bad_stationary_policy() -> None:
    S, A = 10, 3
    model = _random_model(S, A, 4, 2, seed=10)
    pi = np.full((S, A), 1 / A)
    assert occupancy(model, pi).shape == (5, S)
    pi[7] = [0.5, 0.5, 0.5]
    with pytest.raises(InvalidPolicyError, match=r"sum to 1.*state 7"):
        occupancy(model, pi)
    with pytest.raises(InvalidPolicyError, match="shape"):
        occupancy(model, np.full((S + 1, A), 1 / A))


def test_empty_output_large_arrays_are_plain_float64() -> None:
    small = _kernels.empty_output((3, 4))
    assert small.shape == (3, 4) and small.dtype == np.float64 and small.flags.owndata
    shape = (10, _kernels._NO_THP_BYTES // 80 + 1, 1)  # just above the threshold
    big = _kernels.empty_output(shape)
    assert big.shape == shape and big.dtype == np.float64
    assert big.flags.c_contiguous and big.flags.writeable and big.flags.aligned
    big[...] = 2.0
    big[3, 5, 0] = -1.0
    assert big.sum() == 2.0 * (big.size - 1) - 1.0


def _line_model(S: int, A: int, H: int, *, slip: bool) -> TabularModel:
    """States 0..S-1 on a line, numbered breadth-first from the start 0: action 0 moves
    left, 1 right, the others stay; with ``slip`` a move stays with probability 0.2."""
    rows, cols, vals = [], [], []
    for s in range(S):
        for a in range(A):
            to = max(s - 1, 0) if a == 0 else min(s + 1, S - 1) if a == 1 else s
            r = s * A + a
            if slip and to != s:
                rows += [r, r]
                cols += [to, s]
                vals += [0.8, 0.2]
            else:
                rows.append(r)
                cols.append(to)
                vals.append(1.0)
    T = sp.csr_array((vals, (rows, cols)), shape=(S * A, S))
    d0 = np.zeros(S)
    d0[0] = 1.0
    return TabularModel(transitions=T, initial_state_dist=d0, horizon=H, discount=0.95)


@pytest.mark.parametrize("n_actions", [4, 5])
@pytest.mark.parametrize("slip", [False, True])
def test_active_kernels_equal_full_ones_where_an_episode_can_be(n_actions, slip) -> None:
    """The reachable prefix grows by one state a step on a line; the ``*_active`` kernels
    give bit for bit what the full ones give on it."""
    S, H, A, K = 40, 12, n_actions, 2
    model = _line_model(S, A, H, slip=slip)
    T = model.transitions
    ip, ix, data = T.indptr.astype(np.int64), T.indices.astype(np.int64), T.data
    active = _kernels.reachable_prefix(ip, ix, data, A, model.initial_state_dist > 0, H)
    np.testing.assert_array_equal(active, np.arange(1, H + 2))
    rng = np.random.default_rng(0)
    reward = rng.normal(size=(S, A))
    V1, pi1 = np.zeros((H, S)), np.zeros((H, S, A))
    V2, pi2 = np.zeros((H, S)), np.zeros((H, S, A))
    no_q = np.empty((H, 0, A))
    _kernels.soft_backup(ip, ix, data, reward, True, 0.95, V1, no_q, pi1)
    _kernels.soft_backup_active(ip, ix, data, reward, True, 0.95, V2, no_q, pi2, active)
    for t in range(H):
        n = active[t]
        assert np.array_equal(V1[t, :n], V2[t, :n]) and np.array_equal(pi1[t, :n], pi2[t, :n])
        assert not pi2[t, n:].any()  # never computed
    feats = rng.normal(size=(S * A, K))
    mu1, mu2 = np.zeros(K), np.zeros(K)
    d0 = model.initial_state_dist
    _kernels.forward_features(ip, ix, data, pi1, d0, 0.95, feats, 1, mu1, np.empty((2, S)))
    scratch = np.full((2, S), np.nan)  # what lies beyond the prefix is never read
    _kernels.forward_features_active(ip, ix, data, pi2, d0, 0.95, feats, 1, mu2, scratch, active)
    assert np.array_equal(mu1, mu2)
    # the gradient of the log-likelihood of steps an episode can take
    steps = [(t, s, int(rng.integers(A))) for t in range(H) for s in range(min(t + 1, S))]
    step_t, step_s, step_a = (np.array(x, dtype=np.int64) for x in zip(*steps))
    bounds = np.searchsorted(step_t, np.arange(H + 1)).astype(np.int64)
    w = rng.random(len(steps))
    g1, g2 = np.zeros(K), np.zeros(K)
    feats_t = np.ascontiguousarray(feats.T)
    args = (feats_t, True, 0.95, bounds, step_s, step_a, w)
    _kernels.log_policy_gradient(ip, ix, data, pi1, *args, g1)
    _kernels.log_policy_gradient_active(ip, ix, data, pi2, *args, g2, active)
    assert np.array_equal(g1, g2)
