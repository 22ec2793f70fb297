"""Tests of the tabular model and the soft Bellman core, with imitation as the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from imitation.algorithms import mce_irl
from seals.diagnostics.cliff_world import CliffWorldEnv
from seals.diagnostics.random_trans import RandomTransitionEnv

from behavioral import (
    InvalidModelError,
    InvalidPolicyError,
    InvalidRewardError,
    TabularModel,
    from_seals,
    occupancy,
    soft_bellman,
)
from behavioral.tabular import absorbing_states

ORACLE_ENVS = {
    "cliff": lambda: CliffWorldEnv(width=7, height=4, horizon=9, use_xy_obs=False),
    "cliff-xy": lambda: CliffWorldEnv(width=12, height=5, horizon=20, use_xy_obs=True),
    "random": lambda: RandomTransitionEnv(
        n_states=30,
        n_actions=3,
        branch_factor=4,
        horizon=17,
        random_obs=True,
        obs_dim=5,
        generator_seed=7,
    ),
}


@pytest.mark.parametrize("name", sorted(ORACLE_ENVS))
@pytest.mark.parametrize("discount", [1.0, 0.9, 0.5])
def test_matches_imitation(name: str, discount: float) -> None:
    env = ORACLE_ENVS[name]()
    model = from_seals(env, discount=discount)
    rng = np.random.default_rng(0)
    for reward in (np.asarray(env.reward_matrix, dtype=float), rng.normal(size=model.n_states) * 3):
        V, Q, pi = soft_bellman(model, reward)
        V_ref, Q_ref, pi_ref = mce_irl.mce_partition_fh(env, reward=reward, discount=discount)
        np.testing.assert_allclose(V, V_ref, rtol=0, atol=1e-9)
        np.testing.assert_allclose(Q, Q_ref, rtol=0, atol=1e-9)
        np.testing.assert_allclose(pi, pi_ref, rtol=0, atol=1e-9)
        D = occupancy(model, pi)
        D_ref, _ = mce_irl.mce_occupancy_measures(env, pi=pi_ref, discount=discount)
        assert D.shape == D_ref.shape == (model.horizon + 1, model.n_states)
        np.testing.assert_allclose(D, D_ref, rtol=0, atol=1e-9)


def _two_state_model(discount: float = 1.0, horizon: int = 2) -> TabularModel:
    # State 0: action 0 stays, action 1 moves to 1. State 1 is absorbing.
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = 1.0
    P[0, 1, 1] = 1.0
    P[1, :, 1] = 1.0
    return TabularModel(
        transitions=P, initial_state_dist=np.array([1.0, 0.0]), horizon=horizon, discount=discount
    )


def test_hand_solved_two_state() -> None:
    m = _two_state_model(discount=0.5, horizon=2)
    r = np.array([0.0, 1.0])
    V, Q, pi = soft_bellman(m, r)
    # Last step: Q = r, so V_1(s) = r(s) + log 2.
    np.testing.assert_allclose(V[1], r + np.log(2))
    # First step: Q_0(0, stay) = 0 + 0.5 * V_1(0), Q_0(0, go) = 0 + 0.5 * V_1(1).
    q00, q01 = 0.5 * V[1, 0], 0.5 * V[1, 1]
    np.testing.assert_allclose(Q[0, 0], [q00, q01])
    np.testing.assert_allclose(V[0, 0], np.logaddexp(q00, q01))
    np.testing.assert_allclose(pi[0, 0, 1], 1 / (1 + np.exp(q00 - q01)))
    D = occupancy(m, pi)
    np.testing.assert_allclose(D[0], [1, 0])
    np.testing.assert_allclose(D[1], [pi[0, 0, 0], pi[0, 0, 1]])
    np.testing.assert_allclose(D.sum(axis=1), 1.0)


def test_state_action_reward_equals_broadcast_state_reward() -> None:
    model = from_seals(ORACLE_ENVS["random"](), discount=0.9)
    r = np.random.default_rng(1).normal(size=model.n_states)
    out_s = soft_bellman(model, r)
    out_sa = soft_bellman(model, np.repeat(r[:, None], model.n_actions, axis=1))
    for a, b in zip(out_s, out_sa):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_state_action_reward_hand_solved() -> None:
    m = _two_state_model(horizon=1)
    r = np.array([[0.0, 2.0], [0.0, 0.0]])
    _, Q, pi = soft_bellman(m, r)
    np.testing.assert_allclose(Q[0, 0], [0.0, 2.0])
    np.testing.assert_allclose(pi[0, 0, 1], np.exp(2) / (1 + np.exp(2)))


@pytest.mark.parametrize("scale", [1e2, 1e3])
def test_stable_for_large_rewards(scale: float) -> None:
    model = from_seals(ORACLE_ENVS["cliff"]())
    r = np.random.default_rng(2).normal(size=model.n_states) * scale
    V, Q, pi = soft_bellman(model, r)
    assert np.all(np.isfinite(V)) and np.all(np.isfinite(Q)) and np.all(np.isfinite(pi))
    np.testing.assert_allclose(pi.sum(axis=-1), 1.0, atol=1e-12)
    D = occupancy(model, pi)
    np.testing.assert_allclose(D.sum(axis=1), 1.0, atol=1e-9)


def test_stationary_policy_occupancy() -> None:
    model = from_seals(ORACLE_ENVS["random"]())
    pi = np.full((model.n_states, model.n_actions), 1.0 / model.n_actions)
    D1 = occupancy(model, pi)
    D2 = occupancy(model, np.broadcast_to(pi, (model.horizon, *pi.shape)))
    np.testing.assert_allclose(D1, D2)


def test_sparse_cost_handles_large_model() -> None:
    # 40,000 states: a dense S x S matrix would need 12.8 GB; the sparse core does not.
    side = 200
    S, A = side * side, 4
    rows = np.arange(S * A)
    s, a = rows // A, rows % A
    r_, c_ = s // side, s % side
    dr = np.array([-1, 1, 0, 0])[a]
    dc = np.array([0, 0, -1, 1])[a]
    nxt = np.clip(r_ + dr, 0, side - 1) * side + np.clip(c_ + dc, 0, side - 1)
    T = sp.csr_array((np.ones(S * A), (rows, nxt)), shape=(S * A, S))
    init = np.zeros(S)
    init[0] = 1
    model = TabularModel(transitions=T, initial_state_dist=init, horizon=30)
    reward = np.zeros(S)
    reward[-1] = 1.0
    _, _, pi = soft_bellman(model, reward)
    D = occupancy(model, pi)
    np.testing.assert_allclose(D.sum(axis=1), 1.0, atol=1e-9)


def test_absorbing_states() -> None:
    np.testing.assert_array_equal(absorbing_states(_two_state_model()), [False, True])


# --- validation -----------------------------------------------------------------------


def _valid_kwargs() -> dict:
    P = np.zeros((2, 2, 2))
    P[:, :, 0] = 1.0
    return dict(transitions=P, initial_state_dist=np.array([1.0, 0.0]), horizon=3)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (dict(transitions=np.full((2, 2, 2), 0.7)), "do not sum to 1"),
        (dict(transitions=np.broadcast_to([-0.5, 1.5], (2, 2, 2))), "negative"),
        (dict(transitions=np.full((2, 2, 2), np.nan)), "NaN"),
        (dict(transitions=np.ones((3, 2))), "not a multiple|columns"),
        (dict(initial_state_dist=np.array([0.5, 0.4])), "sums to"),
        (dict(initial_state_dist=np.array([1.0, 0.0, 0.0])), "columns"),
        (dict(horizon=0), "horizon"),
        (dict(horizon=2.5), "horizon"),
        (dict(discount=1.5), "discount"),
        (dict(discount=0.0), "discount"),
        (dict(features=np.ones((3, 2))), "rows"),
        (dict(features=np.ones((2, 2)), feature_names=("a",)), "feature_names"),
        (dict(features=np.ones((2, 2)), feature_names=("a", "a")), "unique"),
        (dict(features=np.full((2, 1), np.nan)), "NaN"),
        (dict(objectives={"x": np.ones(3)}, base="x"), "objective 'x'"),
        (dict(objectives={"x": np.ones(2)}, base="y"), "base objective 'y'"),
        (dict(objectives={"x": np.ones(2)}), "base="),
        (dict(objectives={"x": np.array([1.0, np.inf])}, base="x"), "NaN or infinite"),
        (dict(cells=np.zeros((2, 3), dtype=int)), "cells"),
        (dict(observations=np.zeros((3, 4))), "observations"),
    ],
)
def test_invalid_models_raise_specific_errors(change: dict, match: str) -> None:
    kwargs = _valid_kwargs() | change
    with pytest.raises(InvalidModelError, match=match):
        TabularModel(**kwargs)


def test_model_is_frozen_and_normalised() -> None:
    m = TabularModel(**_valid_kwargs(), objectives={"r": [0, 1]}, base="r")
    assert sp.issparse(m.transitions) and m.transitions.format == "csr"
    assert m.transitions.shape == (4, 2) and m.n_actions == 2 and m.n_states == 2
    with pytest.raises(AttributeError):
        m.horizon = 4  # type: ignore[misc]
    with pytest.raises(ValueError):
        m.objectives["r"][0] = 3.0
    with pytest.raises(TypeError):
        m.objectives["new"] = np.zeros(2)  # type: ignore[index]


def test_bad_reward_and_policy() -> None:
    m = TabularModel(**_valid_kwargs())
    with pytest.raises(InvalidRewardError, match="shape"):
        soft_bellman(m, np.zeros(3))
    with pytest.raises(InvalidRewardError, match="NaN"):
        soft_bellman(m, np.array([0.0, np.nan]))
    with pytest.raises(InvalidPolicyError, match="shape"):
        occupancy(m, np.ones((2, 2, 2)))
    with pytest.raises(InvalidPolicyError, match="sum to 1"):
        occupancy(m, np.ones((2, 2)))


def test_from_seals_rejects_non_tabular() -> None:
    import gymnasium as gym

    with pytest.raises(InvalidModelError, match="not a seals tabular env"):
        from_seals(gym.make("CartPole-v1"))


def test_with_initial_state_dist_shares_the_level() -> None:
    from behavioral.errors import InvalidModelError

    m = TabularModel(
        transitions=np.array([[[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]]),
        initial_state_dist=np.array([1.0, 0.0]),
        horizon=3,
        features=np.eye(2),
        objectives={"r": np.array([0.0, 1.0])},
        base="r",
    )
    other = m.with_initial_state_dist([0.0, 1.0])
    assert other.initial_state_dist.tolist() == [0.0, 1.0] and m.initial_state_dist[0] == 1.0
    assert other.transitions is m.transitions and other.features is m.features
    assert other.objectives is m.objectives
    for bad in ([0.5, 0.2], [1.0], [np.nan, 1.0], [-1.0, 2.0]):
        with pytest.raises(InvalidModelError):
            m.with_initial_state_dist(bad)
