"""Tests of the AIRL adapter: imitation's AIRL on RedDoors, evaluated per state."""

from __future__ import annotations

import json

import behavioral_envs  # noqa: F401  (registers the envs)
import gymnasium as gym
import numpy as np
import pytest
import torch as th
from imitation.data.types import TrajectoryWithRew

from behavioral.auditing import Audit, audit, merge_levels
from behavioral.errors import InvalidArgumentError, InvalidDemonstrationError, InvalidModelError
from behavioral.irl.airl import AIRLRecoveredReward, FixedHorizon, airl_irl, pad_trajectory
from behavioral.policies import SoftOptimalPolicy
from behavioral.rollout import rollout
from behavioral.tabular import absorbing_states

ENV_ID = "behavioral/RedDoors-v0"
MAX_STEPS = 20
#: Two rounds of a tiny generator: enough to exercise every step, seconds to run.
TINY = {
    "total_timesteps": 256,
    "n_envs": 2,
    "demo_batch_size": 64,
    "n_disc_updates_per_round": 2,
    "ppo_kwargs": {"n_steps": 64, "batch_size": 64, "n_epochs": 1},
}


@pytest.fixture(scope="module")
def env() -> gym.Env:
    return gym.make(ENV_ID, split="deploy", max_steps=MAX_STEPS)


@pytest.fixture(scope="module")
def dataset(env: gym.Env):
    return rollout(SoftOptimalPolicy("exit", beta=5.0), env, episodes=12, seed=3)


@pytest.fixture(scope="module")
def levels(env: gym.Env, dataset):
    return merge_levels(dataset.level_models(env))


# ------------------------------------------------------------------------ padding


def _traj(n: int, terminal: bool) -> TrajectoryWithRew:
    obs = np.arange(n + 1, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)
    return TrajectoryWithRew(
        obs=obs, acts=np.zeros(n, dtype=np.int64), infos=None, terminal=terminal, rews=np.ones(n)
    )


def test_pad_trajectory_repeats_the_final_observation() -> None:
    out = pad_trajectory(_traj(3, True), 7, np.random.default_rng(0), 4)
    assert out.obs.shape == (8, 3) and out.acts.shape == (7,) and out.rews.shape == (7,)
    np.testing.assert_array_equal(out.obs[:4], _traj(3, True).obs)
    np.testing.assert_array_equal(out.obs[4:], np.full((4, 3), 3.0))
    np.testing.assert_array_equal(out.rews, [1, 1, 1, 0, 0, 0, 0])
    assert out.terminal and out.acts.min() >= 0 and out.acts.max() < 4


def test_pad_trajectory_rejects_unterminated_short_and_long_episodes() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidDemonstrationError, match="did not terminate"):
        pad_trajectory(_traj(3, False), 7, rng, 4)
    with pytest.raises(InvalidDemonstrationError, match="more than the horizon"):
        pad_trajectory(_traj(9, True), 7, rng, 4)
    full = pad_trajectory(_traj(7, False), 7, rng, 4)  # a truncated full-length episode
    assert full.terminal and full.obs.shape == (8, 3)


def test_fixed_horizon_holds_the_absorbing_observation(env: gym.Env) -> None:
    wrapped = FixedHorizon(gym.make(ENV_ID, split="deploy", max_steps=MAX_STEPS), MAX_STEPS)
    planner = SoftOptimalPolicy("exit", beta=50.0)
    obs, _ = wrapped.reset(seed=5)
    planner.reset(wrapped)
    rng = np.random.default_rng(0)
    ends, padded, t, final = [], [], 0, None
    while True:
        a = planner.act(obs, wrapped, rng) if final is None else 0
        obs, reward, terminated, truncated, info = wrapped.step(a)
        t += 1
        assert not truncated
        ends.append(terminated)
        if info.get("padding"):
            padded.append(t)
            assert reward == 0.0
            np.testing.assert_array_equal(obs, final)
        elif final is None and info.get("outcome") is not None:
            final = obs
        if terminated:
            break
    assert t == MAX_STEPS and ends == [False] * (MAX_STEPS - 1) + [True]
    assert final is not None and padded, "the exit planner should enter a door early"
    assert padded == list(range(padded[0], MAX_STEPS + 1))


# ------------------------------------------------------------------------ AIRL


def test_airl_returns_per_level_state_rewards(env: gym.Env, dataset, levels) -> None:
    models, lv = levels
    rec = airl_irl(dataset, env, models, lv, seed=0, **TINY)
    assert isinstance(rec, AIRLRecoveredReward) and rec.method == "airl"
    assert rec.feature_mode == "states" and rec.feature_names == ("airl_g",)
    assert len(rec.rewards) == len(models) == len(rec.potentials)
    for m, r, h in zip(models, rec.rewards, rec.potentials):
        assert r.shape == (m.n_states,) and h.shape == (m.n_states,)
        assert np.all(np.isfinite(r)) and np.all(np.isfinite(h))
        np.testing.assert_allclose(rec.reward_for(m), r)
    assert rec.iterations == 2 and rec.total_timesteps == 256
    assert rec.discount == models[0].discount
    # The log-likelihood is that of the soft-optimal policy of g: below 0, above the
    # impossible; and no better than the best an episode could get (0).
    assert np.isfinite(rec.log_likelihood) and rec.log_likelihood < 0
    assert np.isfinite(rec.feature_gap) and rec.feature_gap >= 0
    assert 0.0 <= rec.disc_stats["disc_acc"] <= 1.0


def test_airl_is_deterministic_under_a_seed(env: gym.Env, dataset, levels) -> None:
    models, lv = levels
    state = th.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002
    a = airl_irl(dataset, env, models, lv, seed=7, **TINY)
    b = airl_irl(dataset, env, models, lv, seed=7, **TINY)
    c = airl_irl(dataset, env, models, lv, seed=8, **TINY)
    for ra, rb in zip(a.rewards, b.rewards):
        np.testing.assert_array_equal(ra, rb)
    assert any(not np.array_equal(ra, rc) for ra, rc in zip(a.rewards, c.rewards))
    # The caller's global generators are left as they were.
    assert th.equal(th.random.get_rng_state(), state)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002


def test_airl_rejects_bad_input(env: gym.Env, dataset, levels) -> None:
    models, lv = levels
    with pytest.raises(InvalidArgumentError, match="one round"):
        airl_irl(dataset, env, models, lv, seed=0, **{**TINY, "total_timesteps": 100})
    with pytest.raises(InvalidArgumentError, match=">= 1"):
        airl_irl(dataset, env, models, lv, seed=0, **{**TINY, "n_disc_updates_per_round": 0})
    with pytest.raises(InvalidModelError, match="observations"):
        airl_irl(dataset, env, [m.replace(observations=None) for m in models], lv, seed=0)
    with pytest.raises(InvalidDemonstrationError, match="level tags"):
        airl_irl(dataset, env, models, lv[:-1], seed=0)


def test_audit_with_airl(env: gym.Env, tmp_path) -> None:
    policy = SoftOptimalPolicy("exit", beta=5.0)
    result = audit(
        policy, env, episodes=12, method="airl", seed=0, method_kwargs=TINY, n_bootstrap=50
    )
    assert isinstance(result, Audit)
    assert result.recovered.method == "airl" and result.metadata["method"] == "airl"
    assert set(result.table.index) == {"exit", "red_door"}
    assert np.all(np.isfinite(result.table["epic_to_recovered"]))
    assert result.verdict in ("aligned", "proxy", "indistinguishable", "unexplained")
    out = result.save(tmp_path / "report")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recovered"]["method"] == "airl"
    assert summary["recovered"]["weights"] == {"airl_g": 1.0}
    # The chi2 test against the recovered reward counts the network's parameters.
    n_params = sum(int(p.numel()) for p in result.recovered.reward_net.parameters())
    assert n_params > 100
    assert result.decision.dof_vs_recovered == result.recovered.parameter_count == n_params
    assert summary["decision"]["dof_vs_recovered"] == n_params


@pytest.mark.slow
def test_airl_rewards_the_door_the_expert_ends_in(env: gym.Env) -> None:
    """At its default budget, AIRL's g is higher on the absorbing door states (where the
    exit expert spends the rest of its episodes) than on the floor."""
    big_env = gym.make(ENV_ID, split="deploy")
    data = rollout(SoftOptimalPolicy("exit", beta=5.0), big_env, episodes=100, seed=0)
    models, lv = merge_levels(data.level_models(big_env))
    rec = airl_irl(data, big_env, models, lv, seed=0)
    gaps = []
    for m, g in zip(models, rec.rewards):
        doors = absorbing_states(m)
        gaps.append(g[doors].mean() - g[~doors].mean())
    assert np.mean(gaps) > 0
