"""Tests of MaxEnt / maximum-causal-entropy IRL."""

from __future__ import annotations

import numpy as np
import pytest
from imitation.data.types import Trajectory
from seals.diagnostics.cliff_world import CliffWorldEnv

from behavioral import (
    InvalidDemonstrationError,
    InvalidModelError,
    TabularModel,
    from_seals,
    maxent_irl,
    occupancy,
    soft_bellman,
)
from behavioral.irl import maxent as maxent_mod
from behavioral.irl.maxent import Demonstration, MaxEntObjective, fit_objective
from behavioral.sampling import sample_demonstrations


def cliff(discount: float = 1.0) -> TabularModel:
    env = CliffWorldEnv(width=7, height=4, horizon=9, use_xy_obs=False)
    return from_seals(env, discount=discount)


def corridor(n: int = 5, horizon: int = 8, discount: float = 1.0) -> TabularModel:
    """A corridor 0..n-1 (actions: left, right, exit). 'exit' from the last cell enters
    a terminal absorbing state n. State-action features: exit_taken, step_right, wall."""
    S, A = n + 1, 3
    P = np.zeros((S, A, S))
    feats = np.zeros((S, A, 3))
    for s in range(n):
        P[s, 0, max(s - 1, 0)] = 1
        P[s, 1, min(s + 1, n - 1)] = 1
        if s == n - 1:
            P[s, 2, n] = 1
            feats[s, 2, 0] = 1
        else:
            P[s, 2, s] = 1
            feats[s, 2, 2] = 1
        feats[s, 1, 1] = 1
    P[n, :, n] = 1
    init = np.zeros(S)
    init[0] = 1
    return TabularModel(
        transitions=P,
        initial_state_dist=init,
        horizon=horizon,
        discount=discount,
        features=feats,
        feature_names=("exit_taken", "step_right", "wall"),
        objectives={"exit": feats[..., 0]},
        base="exit",
    )


def finite_difference(problem: MaxEntObjective, theta: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    out = np.empty_like(theta)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = eps
        out[k] = (problem.value_and_grad(theta + e)[0] - problem.value_and_grad(theta - e)[0]) / (
            2 * eps
        )
    return out


def demos_of(model: TabularModel, reward: np.ndarray, n: int, seed: int, level: int = 0):
    _, _, pi = soft_bellman(model, reward)
    return sample_demonstrations(model, pi, n, np.random.default_rng(seed), level=level)


@pytest.mark.parametrize(
    ("make", "features", "discount"),
    [
        (cliff, "states", 1.0),
        (cliff, "states", 0.9),
        (cliff, "state_actions", 0.8),
        (cliff, "model", 1.0),
        (corridor, "model", 1.0),
        (corridor, "model", 0.7),
        (corridor, "state_actions", 1.0),
    ],
)
def test_gradient_matches_finite_differences(make, features: str, discount: float) -> None:
    model = make(discount=discount)
    rng = np.random.default_rng(0)
    reward = rng.normal(size=(model.n_states, model.n_actions))
    demos = demos_of(model, reward, 30, seed=1)
    problem = MaxEntObjective([model], demos, features=features, l2=0.05)
    theta = rng.normal(size=problem.n_features)
    _, grad = problem.value_and_grad(theta)
    np.testing.assert_allclose(grad, finite_difference(problem, theta), atol=1e-6)


def test_exact_occupancy_fit_reproduces_occupancy_and_policy() -> None:
    model = cliff()
    reward = np.asarray(model.objectives["reward"], dtype=float)
    _, _, pi = soft_bellman(model, reward)
    D = occupancy(model, pi)
    one = sample_demonstrations(model, pi, 1, np.random.default_rng(0), stop_at_absorbing=False)
    problem = MaxEntObjective([model], one, features="states")
    problem.demo_mu = D[:-1].sum(axis=0)  # the exact expected state visitation
    res = fit_objective(problem, gtol=1e-12, max_iter=5000)
    _, _, pi_fit = soft_bellman(model, res.rewards[0])
    D_fit = occupancy(model, pi_fit)
    assert np.abs(D_fit - D).max() <= 1e-6
    visited = D[:-1] > 1e-3  # (t, s) pairs the policy actually visits
    assert np.abs(pi_fit - pi)[visited].max() <= 1e-5


def test_fit_beats_true_reward_in_likelihood() -> None:
    model = corridor()
    true_theta = np.array([3.0, 0.5, -1.0])
    reward = model.features @ true_theta
    demos = demos_of(model, reward, 300, seed=2)
    res = maxent_irl(model, demos, l2=0.0)
    problem = MaxEntObjective([model], demos)
    assert res.converged and res.feature_gap < 1e-5
    assert res.log_likelihood >= problem.log_likelihood(true_theta) - 1e-9
    # With 300 demonstrations the weights are close to the truth.
    np.testing.assert_allclose(res.weights, true_theta, atol=0.6)
    assert res.weights_by_name["exit_taken"] > 1.5


def test_likelihood_equals_objective_for_deterministic_undiscounted() -> None:
    model = corridor()
    demos = demos_of(model, model.features @ np.array([1.0, 0.2, -0.5]), 20, seed=3)
    problem = MaxEntObjective([model], demos)
    theta = np.array([0.3, -0.2, 0.1])
    value, _ = problem.value_and_grad(theta)
    # Padded steps in the absorbing state (zero features) add log(1/A) each to the dual.
    pad = sum(model.horizon - d.actions.size for d in demos) / len(demos)
    assert pad > 0
    expected = problem.log_likelihood(theta) - pad * np.log(model.n_actions)
    assert -value == pytest.approx(expected, abs=1e-9)


def test_early_termination_equals_explicit_padding() -> None:
    model = corridor(horizon=10)
    demos = demos_of(model, model.features @ np.array([4.0, 1.0, -1.0]), 40, seed=4)
    assert any(d.terminal and d.actions.size < model.horizon for d in demos)
    padded = []
    for d in demos:
        extra = model.horizon - d.actions.size
        padded.append(
            Demonstration(
                np.concatenate([d.states, np.full(extra, d.states[-1])]),
                np.concatenate([d.actions, np.zeros(extra, dtype=np.int64)]),
            )
        )
    a = MaxEntObjective([model], demos, features="states")
    b = MaxEntObjective([model], padded, features="states")
    theta = np.random.default_rng(5).normal(size=a.n_features)
    va, ga = a.value_and_grad(theta)
    vb, gb = b.value_and_grad(theta)
    assert va == pytest.approx(vb, abs=1e-12)
    np.testing.assert_allclose(ga, gb, atol=1e-12)


def test_many_levels_stacked_and_chunked(monkeypatch: pytest.MonkeyPatch) -> None:
    models = [corridor(n=k, horizon=9) for k in (3, 4, 6)]
    theta_true = np.array([2.0, 0.3, -0.5])
    demos, levels = [], []
    for i, m in enumerate(models):
        ds = demos_of(m, m.features @ theta_true, 10, seed=10 + i, level=i)
        demos += ds
        levels += [i] * len(ds)
    theta = np.array([0.5, 0.1, -0.2])
    stacked = MaxEntObjective(models, demos)
    assert len(stacked.chunks) == 1
    monkeypatch.setattr(maxent_mod, "_CHUNK_BUDGET", 1)
    chunked = MaxEntObjective(models, demos)
    assert len(chunked.chunks) == 3
    v1, g1 = stacked.value_and_grad(theta)
    v2, g2 = chunked.value_and_grad(theta)
    # Separately, level by level, weighted by each level's share of demonstrations.
    v3, g3 = 0.0, np.zeros(3)
    for i, m in enumerate(models):
        mine = [d for d in demos if d.level == i]
        single = MaxEntObjective(
            [m], [Demonstration(d.states, d.actions, d.terminal) for d in mine]
        )
        v, g = single.value_and_grad(theta)
        v3 += v * len(mine) / len(demos)
        g3 += g * len(mine) / len(demos)
    assert v1 == pytest.approx(v2, abs=1e-10) and v1 == pytest.approx(v3, abs=1e-10)
    np.testing.assert_allclose(g1, g2, atol=1e-10)
    np.testing.assert_allclose(g1, g3, atol=1e-10)
    res = maxent_irl(models, demos, levels)
    assert len(res.rewards) == 3 and res.rewards[1].shape == (5, 3)
    np.testing.assert_allclose(res.reward_for(models[2]), res.rewards[2])


def test_accepts_imitation_trajectories_of_state_indices() -> None:
    model = corridor()
    demos = demos_of(model, model.features @ np.array([2.0, 0.5, 0.0]), 20, seed=6)
    trajs = [
        Trajectory(obs=d.states, acts=d.actions, infos=None, terminal=d.terminal) for d in demos
    ]
    a = maxent_irl(model, trajs)
    b = maxent_irl(model, demos)
    np.testing.assert_allclose(a.weights, b.weights)


def test_l2_shrinks_weights() -> None:
    model = corridor()
    demos = demos_of(model, model.features @ np.array([2.0, 0.5, -1.0]), 50, seed=7)
    free = maxent_irl(model, demos, l2=0.0)
    reg = maxent_irl(model, demos, l2=1.0)
    assert np.linalg.norm(reg.weights) < np.linalg.norm(free.weights)


# --- bad input ------------------------------------------------------------------------


def test_bad_demonstrations_raise() -> None:
    model = corridor()
    with pytest.raises(InvalidDemonstrationError, match="at least one"):
        maxent_irl(model, [])
    with pytest.raises(InvalidDemonstrationError, match="impossible transition"):
        maxent_irl(model, [(np.array([0, 3]), np.array([1]))])
    with pytest.raises(InvalidDemonstrationError, match=r"in \[0, 6\)"):
        maxent_irl(model, [(np.array([0, 9]), np.array([1]))])
    with pytest.raises(InvalidDemonstrationError, match="actions must be in"):
        maxent_irl(model, [(np.array([0, 1]), np.array([5]))])
    with pytest.raises(InvalidDemonstrationError, match="len\\(states\\)"):
        maxent_irl(model, [(np.array([0, 1, 2]), np.array([1]))])
    with pytest.raises(InvalidDemonstrationError, match="not absorbing"):
        maxent_irl(model, [(np.array([0, 1]), np.array([1]))])
    with pytest.raises(InvalidDemonstrationError, match="more than the model horizon"):
        maxent_irl(model, [(np.zeros(20, dtype=int), np.zeros(19, dtype=int))])
    with pytest.raises(InvalidDemonstrationError, match="level"):
        maxent_irl(model, [(np.array([0, 0]), np.array([0]))], levels=[3])
    with pytest.raises(InvalidDemonstrationError, match="1-D"):
        maxent_irl(model, [(np.zeros((2, 3)), np.array([0]))])
    with pytest.raises(InvalidDemonstrationError, match="Trajectory"):
        maxent_irl(model, ["not a demo"])


def test_incompatible_models_raise() -> None:
    demos = [(np.array([0, 0]), np.array([0]))]
    with pytest.raises(InvalidModelError, match="share"):
        maxent_irl([corridor(horizon=8), corridor(horizon=9)], demos)
    other = corridor().replace(feature_names=("a", "b", "c"))
    with pytest.raises(InvalidModelError, match="feature names"):
        maxent_irl([corridor(), other], demos)
    with pytest.raises(InvalidModelError, match="no features"):
        maxent_irl(corridor().replace(features=None, feature_names=()), demos)


def test_cross_validated_l2() -> None:
    from behavioral.irl.maxent import select_l2

    model = cliff()
    reward = np.asarray(model.objectives["reward"], dtype=float)
    demos = demos_of(model, reward, 60, seed=12)
    table = select_l2([model], demos, features="states", grid=(1e-3, 0.1, 10.0), folds=3)
    assert list(table.index) == [10.0, 0.1, 1e-3]
    assert table.attrs["selected"] in (1e-3, 0.1, 10.0)
    # A huge penalty flattens the reward: its held-out likelihood is not the best.
    assert table.loc[10.0, "heldout_ll"] < table["heldout_ll"].max()
    res = maxent_irl(
        model, demos, features="states", l2="cv", cv_grid=(1e-3, 0.1, 10.0), cv_folds=3
    )
    assert res.l2 == table.attrs["selected"]
    with pytest.raises(ValueError, match="folds"):
        select_l2([model], demos[:2], features="states", folds=5)
    with pytest.raises(ValueError, match="'cv'"):
        maxent_irl(model, demos, l2="auto")


@pytest.mark.parametrize("state_features", [False, True])
@pytest.mark.parametrize("discount", [1.0, 0.9])
def test_lapse_likelihood_and_gradient(discount: float, state_features: bool) -> None:
    """The soft-optimal policy with lapses: at lapse 0 it is the plain log-likelihood, and
    its gradient (a backward pass of feature expectations to go) matches finite
    differences -- over two stacked levels of different sizes, episodes ending early,
    with state-action or state features."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from doors_model import doors

    levels = [doors(), doors(n=5)]
    levels = [m.replace(discount=discount) for m in levels]
    if state_features:  # (S, K): the features of the state an action is taken in
        levels = [m.replace(features=m.features[:, 0, :]) for m in levels]
    rng = np.random.default_rng(0)
    demos = []
    for i, m in enumerate(levels):
        _, _, pi = soft_bellman(m, 2.0 * m.objectives["exit"])
        for d in sample_demonstrations(m, pi, 15, rng):
            demos.append(Demonstration(d.states, d.actions, d.terminal, level=i))
    problem = MaxEntObjective(levels, demos)
    theta = np.array([1.5, -0.5, 0.2])
    np.testing.assert_allclose(
        problem.lapse_episode_log_likelihoods(theta, 0.0),
        problem.episode_log_likelihoods(theta),
        rtol=1e-12,
    )
    x = np.array([*theta, 0.3])
    value, grad = problem.lapse_value_and_grad(x)
    assert value == pytest.approx(-problem.lapse_episode_log_likelihoods(theta, 0.3).mean())
    eps = 1e-6
    numeric = [
        (
            problem.lapse_value_and_grad(x + eps * e)[0]
            - problem.lapse_value_and_grad(x - eps * e)[0]
        )
        / (2 * eps)
        for e in np.eye(4)
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_reachable_prefix_leaves_every_number_unchanged() -> None:
    """Kernels skip the states no episode can be in yet (here: the corridor's far end
    early on); the dual, its gradient, the lapse model and the likelihoods are the same
    bits as with every state computed at every step."""
    model = corridor(n=12, horizon=10, discount=0.9)
    pi = soft_bellman(model, model.features[..., 1] - 0.3 * model.features[..., 2])[2]
    demos = sample_demonstrations(model, pi, 20, np.random.default_rng(0))
    fast = MaxEntObjective([model], demos, l2=1e-3)
    full = MaxEntObjective([model], demos, l2=1e-3)
    chunk = full.stack.chunks[0]
    assert fast.stack.chunks[0].active[0] < chunk.n_states  # something is skipped
    chunk.active = np.full_like(chunk.active, chunk.n_states)
    for theta in (np.array([0.5, 1.0, -0.2]), np.array([2.0, -1.0, 0.3])):
        (va, ga), (vb, gb) = fast.value_and_grad(theta), full.value_and_grad(theta)
        assert va == vb and np.array_equal(ga, gb)
        ell_a, ell_b = fast.episode_log_likelihoods(theta), full.episode_log_likelihoods(theta)
        assert np.array_equal(ell_a, ell_b)
        x = np.append(theta, 0.1)
        (va, ga), (vb, gb) = fast.lapse_value_and_grad(x), full.lapse_value_and_grad(x)
        assert va == vb and np.array_equal(ga, gb)
