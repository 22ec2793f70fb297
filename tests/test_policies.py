"""Tests of behavioral.policies: planners, the adapter, action checks and PPO training."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import seals  # noqa: F401  (registers seals/* ids)
from corridor_env import ENV_ID, HORIZON, CorridorEnv
from seals.diagnostics.random_trans import RandomTransitionEnv

from behavioral.errors import (
    EnvContractError,
    InvalidActionError,
    InvalidArgumentError,
    UnknownObjectiveError,
    UnsupportedPolicyError,
)
from behavioral.policies import (
    CallablePolicy,
    EpsilonGreedyPolicy,
    Policy,
    SB3Policy,
    SoftOptimalPolicy,
    as_policy,
    check_action,
    env_state_index,
    env_tabular_model,
    epsilon_greedy_policy,
    load_ppo,
    optimal_values,
    sample_action,
    soft_optimal_policy,
    train_ppo,
)
from behavioral.rollout import rollout
from behavioral.tabular import from_seals, soft_bellman

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --------------------------------------------------------------------------- check_action

SPACE = gym.spaces.Discrete(3)


@pytest.mark.parametrize(
    "action, expected",
    [(0, 0), (2, 2), (np.int64(1), 1), (np.uint8(2), 2), (np.array(1), 1), (np.array([2]), 2)],
)
def test_check_action_accepts_integers(action, expected) -> None:
    out = check_action(action, SPACE)
    assert out == expected and type(out) is int


def test_check_action_respects_space_start() -> None:
    space = gym.spaces.Discrete(3, start=5)
    assert check_action(7, space) == 7
    with pytest.raises(InvalidActionError):
        check_action(0, space)


@pytest.mark.parametrize(
    "action",
    [
        3,
        -1,
        2.0,
        np.float32(1.0),
        float("nan"),
        np.array([np.nan]),
        True,
        np.bool_(False),
        "1",
        None,
        [0, 1],
        np.array([0, 1]),
        object(),
    ],
)
def test_check_action_rejects(action) -> None:
    with pytest.raises(InvalidActionError) as info:
        check_action(action, SPACE)
    assert info.value.action is action
    assert isinstance(info.value, ValueError)


def test_check_action_needs_discrete_space() -> None:
    with pytest.raises(EnvContractError):
        check_action(0, gym.spaces.Box(0, 1, (2,)))


# --------------------------------------------------------------------------- planners (pure)


def _dense_optimal(P: np.ndarray, R: np.ndarray, H: int, discount: float):
    """Independent dense value iteration: P (S, A, S), R (S, A)."""
    S, A, _ = P.shape
    V = np.zeros((H + 1, S))
    Q = np.zeros((H, S, A))
    for t in range(H - 1, -1, -1):
        Q[t] = R + discount * np.einsum("sap,p->sa", P, V[t + 1])
        V[t] = Q[t].max(axis=1)
    return V[:H], Q


@pytest.mark.parametrize("discount", [1.0, 0.8])
@pytest.mark.parametrize("state_action", [False, True])
def test_optimal_values_match_dense_value_iteration(discount: float, state_action: bool) -> None:
    env = RandomTransitionEnv(
        n_states=25, n_actions=4, branch_factor=3, horizon=11, random_obs=False, generator_seed=3
    )
    model = from_seals(env, discount=discount)
    rng = np.random.default_rng(1)
    reward = rng.normal(size=(25, 4) if state_action else 25)
    V, Q = optimal_values(model, reward)
    R = reward if state_action else np.repeat(reward[:, None], 4, axis=1)
    V_ref, Q_ref = _dense_optimal(model.transition_tensor(), R, model.horizon, discount)
    np.testing.assert_allclose(Q, Q_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(V, V_ref, rtol=0, atol=1e-12)


def test_soft_policy_approaches_greedy_at_large_beta() -> None:
    env = RandomTransitionEnv(
        n_states=20, n_actions=3, branch_factor=2, horizon=6, random_obs=False, generator_seed=5
    )
    model = from_seals(env)
    reward = np.random.default_rng(0).normal(size=20)
    pi_soft = soft_optimal_policy(model, reward, beta=1e4)
    pi_greedy = epsilon_greedy_policy(model, reward, epsilon=0.0)
    np.testing.assert_allclose(pi_soft, pi_greedy, atol=1e-6)


def test_epsilon_greedy_policy_mixture() -> None:
    env = RandomTransitionEnv(
        n_states=15, n_actions=3, branch_factor=2, horizon=5, random_obs=False, generator_seed=9
    )
    model = from_seals(env)
    reward = np.random.default_rng(2).normal(size=15)
    V, Q = optimal_values(model, reward)
    greedy = epsilon_greedy_policy(model, reward, 0.0)
    assert greedy.shape == (5, 15, 3)
    np.testing.assert_allclose(greedy.sum(-1), 1.0)
    # All greedy mass sits on actions whose Q equals V.
    assert np.all((greedy > 0) <= np.isclose(Q, V[..., None], atol=1e-12))
    for eps in (0.25, 1.0):
        pi = epsilon_greedy_policy(model, reward, eps)
        np.testing.assert_allclose(pi, (1 - eps) * greedy + eps / 3, atol=1e-15)


def test_epsilon_greedy_splits_ties_evenly() -> None:
    model = from_seals(
        RandomTransitionEnv(
            n_states=6,
            n_actions=3,
            branch_factor=1,
            horizon=3,
            random_obs=False,
            generator_seed=0,
        )
    )
    pi = epsilon_greedy_policy(model, np.zeros(6), 0.0)  # every action optimal
    np.testing.assert_allclose(pi, 1.0 / 3)


@pytest.mark.parametrize("beta", [0.0, -1.0, float("inf"), float("nan"), "x"])
def test_bad_beta(beta) -> None:
    with pytest.raises(InvalidArgumentError):
        SoftOptimalPolicy("exit", beta=beta)


@pytest.mark.parametrize("eps", [-0.1, 1.5, float("nan")])
def test_bad_epsilon(eps) -> None:
    with pytest.raises(InvalidArgumentError):
        EpsilonGreedyPolicy("exit", epsilon=eps)


# --------------------------------------------------------------------------- planners in the env


def test_soft_planner_distribution_equals_soft_bellman_policy() -> None:
    env = gym.make(ENV_ID, split="deploy", length=6, slip=0.2)
    planner = SoftOptimalPolicy("exit", beta=2.5)
    rng = np.random.default_rng(0)
    for episode in range(4):
        env.reset(seed=episode)
        model = env_tabular_model(env)
        _, _, pi_ref = soft_bellman(model, 2.5 * np.asarray(model.objectives["exit"]))
        planner.reset(env, rng)
        t, done = 0, False
        while not done:
            s = env_state_index(env)
            np.testing.assert_array_equal(planner.action_probabilities(env), pi_ref[t, s])
            a = planner.act(None, env, rng)
            _, _, term, trunc, _ = env.step(a)
            done = term or trunc
            t += 1


def test_soft_planner_samples_from_its_distribution() -> None:
    env = gym.make(ENV_ID, length=6)
    env.reset(seed=3)
    planner = SoftOptimalPolicy("right_door", beta=0.7)
    planner.reset(env, None)
    p = planner.action_probabilities(env).copy()
    rng = np.random.default_rng(11)
    n = 6000
    counts = np.zeros(3)
    for _ in range(n):
        planner.reset(env, rng)  # back to t = 0, same state
        counts[planner.act(None, env, rng)] += 1
    sd = np.sqrt(n * p * (1 - p))
    assert np.all(np.abs(counts - n * p) < 4 * sd), (counts / n, p)


def test_planner_replans_for_each_level() -> None:
    """On deploy levels the exit side changes: an exact planner for "exit" always exits,
    one for the proxy "right_door" exits only where the exit is on the right."""
    env = gym.make(ENV_ID, split="deploy", length=5)
    exit_planner = EpsilonGreedyPolicy("exit", epsilon=0.0)
    proxy_planner = EpsilonGreedyPolicy("right_door", epsilon=0.0)
    rng = np.random.default_rng(0)
    sides = []
    for seed in range(12):
        for planner, name in ((exit_planner, "exit"), (proxy_planner, "proxy")):
            obs, _ = env.reset(seed=seed)
            planner.reset(env, rng)
            done, outcome = False, None
            while not done:
                obs, _, term, trunc, info = env.step(planner.act(obs, env, rng))
                done = term or trunc
                outcome = info.get("outcome")
            exit_right = bool(obs[-1])
            if name == "exit":
                assert outcome == "exit"
            else:
                assert outcome == ("exit" if exit_right else "other_door")
            sides.append(exit_right)
    assert len(set(sides)) == 2  # both kinds of level were seen
    # Two level kinds -> at most two plans cached per planner.
    assert len(exit_planner._cache) == 2


def test_greedy_planner_return_equals_optimal_value() -> None:
    env = gym.make(ENV_ID, length=7)
    rng = np.random.default_rng(0)
    planner = EpsilonGreedyPolicy("exit")
    for seed in range(5):
        env.reset(seed=seed)
        model = env_tabular_model(env)
        V, _ = optimal_values(model, model.objectives["exit"])
        start = env_state_index(env)
        planner.reset(env, rng)
        total, done = 0.0, False
        while not done:
            _, _, term, trunc, info = env.step(planner.act(None, env, rng, deterministic=True))
            total += info["objectives"]["exit"]
            done = term or trunc
        assert total == V[0, start]


def test_planner_on_seals_env_acts_validly() -> None:
    env = gym.make("seals/CliffWorld7x4-v0")
    planner = SoftOptimalPolicy("reward", beta=1.0)
    data = rollout(planner, env, episodes=3, seed=0)
    assert len(data) == 3
    model = env_tabular_model(env)
    for s, tr in zip(data.states, data.trajectories, strict=True):
        assert np.all((tr.acts >= 0) & (tr.acts < model.n_actions))
        # every transition has non-zero probability in the model
        T = model.transition_tensor()
        assert np.all(T[s[:-1], tr.acts, s[1:]] > 0)


def test_planner_with_reward_function_and_unknown_objective() -> None:
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    left = EpsilonGreedyPolicy(lambda m: m.features[:, 0])  # reward for being at the left door
    left.reset(env, None)
    p = left.action_probabilities(env)
    assert p[0] == 1.0  # go left
    with pytest.raises(UnknownObjectiveError) as info:
        SoftOptimalPolicy("nope").reset(env, None)
    assert isinstance(info.value, KeyError)


def test_planner_needs_a_tabular_env() -> None:
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    with pytest.raises(EnvContractError):
        SoftOptimalPolicy("exit").reset(env, None)


# --------------------------------------------------------------------------- adapter


def test_as_policy_dispatch() -> None:
    planner = SoftOptimalPolicy("exit")
    assert as_policy(planner) is planner
    assert isinstance(planner, Policy)
    cp = as_policy(lambda obs: 0)
    assert isinstance(cp, CallablePolicy) and isinstance(cp, Policy)
    with pytest.raises(UnsupportedPolicyError):
        as_policy(42)

    class Predictor:
        def predict(self, obs, state=None, episode_start=None, deterministic=False):
            return np.array(1), state

    sp = as_policy(Predictor())
    assert isinstance(sp, SB3Policy)
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=0)
    assert sp.act(obs, env, np.random.default_rng(0)) == 1


@pytest.mark.parametrize("bad", [3, 1.0, float("nan"), "left", None])
def test_invalid_actions_from_callables_raise(bad) -> None:
    env = gym.make(ENV_ID)
    with pytest.raises(InvalidActionError) as info:
        rollout(lambda obs: bad, env, episodes=1, seed=0)
    assert info.value.action is bad or (bad != bad and info.value.action != info.value.action)


def test_invalid_actions_from_predict_raise() -> None:
    class Bad:
        def predict(self, obs, state=None, episode_start=None, deterministic=False):
            return np.array(7), None

    env = gym.make(ENV_ID)
    with pytest.raises(InvalidActionError, match="outside"):
        rollout(Bad(), env, episodes=1, seed=0)


def test_invalid_actions_from_custom_policy_raise() -> None:
    class Custom:
        description = "custom"

        def reset(self, env, rng):
            pass

        def act(self, obs, env, rng, *, deterministic=False):
            return -1

    with pytest.raises(InvalidActionError):
        rollout(Custom(), gym.make(ENV_ID), episodes=1, seed=0)


# --------------------------------------------------------------------------- PPO


def _tiny_ppo(tmp_path, seed: int = 0):
    return train_ppo(
        "CartPole-v1",
        split=None,
        total_timesteps=512,
        seed=seed,
        n_envs=2,
        progress_bar=False,
        ppo_kwargs={"n_steps": 128, "batch_size": 64, "n_epochs": 2},
        save_path=tmp_path / "ppo",
    )


def test_train_ppo_saves_loadable_reproducible_zip(tmp_path) -> None:
    model = _tiny_ppo(tmp_path)
    path = tmp_path / "ppo.zip"
    assert path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["ppo.zip"]  # no temp files left
    loaded = load_ppo(path)
    assert loaded.behavioral_metadata["env_id"] == "CartPole-v1"
    assert loaded.behavioral_metadata["seed"] == 0
    assert loaded.num_timesteps == model.num_timesteps >= 512
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    a1, _ = model.predict(obs, deterministic=True)
    a2, _ = loaded.predict(obs, deterministic=True)
    np.testing.assert_array_equal(a1, a2)
    # Same seed, same parameters.
    again = _tiny_ppo(tmp_path / "again")
    for (k, v), (k2, v2) in zip(
        model.policy.state_dict().items(), again.policy.state_dict().items(), strict=True
    ):
        assert k == k2
        np.testing.assert_array_equal(v.numpy(), v2.numpy())

    # The loaded model acts through the adapter and rollouts are reproducible.
    env = gym.make("CartPole-v1")
    d1 = rollout(loaded, env, episodes=2, seed=5)
    d2 = rollout(loaded, env, episodes=2, seed=5)
    assert d1.states is None  # CartPole is not tabular
    for t1, t2 in zip(d1.trajectories, d2.trajectories, strict=True):
        np.testing.assert_array_equal(t1.acts, t2.acts)
        np.testing.assert_array_equal(t1.obs, t2.obs)
    assert "PPO" in d1.metadata["policy"]


def test_sb3_policy_samples_with_given_rng(tmp_path) -> None:
    model = _tiny_ppo(tmp_path)
    pol = SB3Policy(model)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    p = pol.action_probabilities(obs)
    assert p.shape == (2,) and abs(p.sum() - 1) < 1e-6
    seq = [
        [pol.act(obs, env, rng) for _ in range(50)]
        for rng in (np.random.default_rng(1), np.random.default_rng(1), np.random.default_rng(2))
    ]
    assert seq[0] == seq[1] != seq[2]
    assert pol.act(obs, env, np.random.default_rng(0), deterministic=True) == int(np.argmax(p))
    # the bare SB3 BasePolicy works the same way
    bare = as_policy(model.policy)
    assert isinstance(bare, SB3Policy)
    np.testing.assert_array_equal(bare.action_probabilities(obs), p)
    assert [bare.act(obs, env, np.random.default_rng(1)) for _ in range(1)] == seq[0][:1]


def test_sample_action_is_generator_choice() -> None:
    """The same index from the same draw as ``Generator.choice(n, p=p)``, and the same
    stream afterwards; distributions choice could refuse are left to choice."""
    gen = np.random.default_rng(0)
    ps = [gen.dirichlet(np.full(n, a)) for n in (1, 2, 4, 5, 9) for a in (0.1, 1.0, 10.0)]
    ps += [np.array([0.0, 1.0, 0.0]), np.array([0.5, 0.5, 0.0, 0.0]), np.full(7, 1 / 7)]
    for i, p in enumerate(ps):
        r1, r2 = np.random.default_rng(i), np.random.default_rng(i)
        got = [sample_action(r1, p) for _ in range(200)]
        assert got == [int(r2.choice(p.shape[0], p=p)) for _ in range(200)]
        assert r1.random() == r2.random()
    with pytest.raises(ValueError, match="sum to 1"):
        sample_action(np.random.default_rng(0), np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="non-negative"):
        sample_action(np.random.default_rng(0), np.array([1.5, -0.5]))


def test_sb3_policy_memo_forgets_changed_parameters(tmp_path) -> None:
    """Observations met before reuse their distribution until the parameters change."""
    import torch

    model = _tiny_ppo(tmp_path)
    pol = SB3Policy(model)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=0)
    pol.reset(env, np.random.default_rng(0))
    pol.act(obs, env, np.random.default_rng(0))
    before = pol._distribution(obs, env.action_space)[0]
    probs = pol.action_probabilities(obs)
    np.testing.assert_array_equal(before, probs / probs.sum())
    with torch.no_grad():
        model.policy.action_net.bias += 1.0  # in place, as an optimiser step
        model.policy.action_net.bias[0] -= 3.0
    pol.reset(env, np.random.default_rng(0))
    after = pol._distribution(obs, env.action_space)[0]
    assert not np.array_equal(after, before)
    np.testing.assert_allclose(after, pol.action_probabilities(obs), rtol=1e-6)


def test_train_ppo_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError):
        train_ppo("CartPole-v1", split=None, total_timesteps=0, seed=0)
    with pytest.raises(InvalidArgumentError):
        train_ppo(ENV_ID, split="train", env_kwargs={"split": "deploy"}, total_timesteps=8, seed=0)


def test_ppo_on_contract_env_rolls_out(tmp_path) -> None:
    model = train_ppo(
        ENV_ID,
        split="deploy",
        total_timesteps=256,
        seed=1,
        n_envs=2,
        progress_bar=False,
        ppo_kwargs={"n_steps": 64, "batch_size": 64, "n_epochs": 1},
    )
    env = gym.make(ENV_ID, split="deploy")
    data = rollout(model, env, episodes=3, seed=0)
    assert data.metadata["split"] == "deploy"
    assert all(
        len(s) == len(t.acts) + 1 for s, t in zip(data.states, data.trajectories, strict=True)
    )
    assert data.episodes["length"].max() <= HORIZON


def test_corridor_env_is_a_valid_gym_env() -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(CorridorEnv(slip=0.1), skip_render_check=True)


def test_planner_discount_prefers_the_shortest_way() -> None:
    env = gym.make(ENV_ID, length=7)  # exit on the right, 8 steps
    env.reset(seed=0)
    env.unwrapped.pos = 3  # three steps from either door
    exact = EpsilonGreedyPolicy("exit")
    exact.reset(env, None)
    # undiscounted: even a step left still reaches the exit in time (1 + 4 <= 8 steps),
    # so all three actions are optimal
    np.testing.assert_allclose(exact.action_probabilities(env), [1 / 3, 1 / 3, 1 / 3])
    short = EpsilonGreedyPolicy("exit", discount=0.9)
    short.reset(env, None)
    np.testing.assert_array_equal(short.action_probabilities(env), [0.0, 1.0, 0.0])
    assert "discount=0.9" in short.description
    soft = SoftOptimalPolicy("exit", beta=3.0, discount=0.9)
    soft.reset(env, None)
    model = env_tabular_model(env).replace(discount=0.9)
    _, _, pi = soft_bellman(model, 3.0 * np.asarray(model.objectives["exit"]))
    np.testing.assert_array_equal(soft.action_probabilities(env), pi[0, 3])
    for bad in (0.0, 1.5, float("nan")):
        with pytest.raises(InvalidArgumentError):
            EpsilonGreedyPolicy("exit", discount=bad)
