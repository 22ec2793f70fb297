"""Tests of the audit core: candidates, likelihoods, EPIC on coverage, verdicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from doors_model import doors
from seals.diagnostics.cliff_world import CliffWorldEnv

from behavioral import InvalidDemonstrationError, InvalidRewardError, TabularModel, from_seals
from behavioral.auditing import audit_demonstrations
from behavioral.errors import UnknownObjectiveError
from behavioral.sampling import sample_demonstrations
from behavioral.tabular import soft_bellman


def expert(model: TabularModel, reward: np.ndarray, n: int, seed: int):
    _, _, pi = soft_bellman(model, reward)
    return sample_demonstrations(model, pi, n, np.random.default_rng(seed))


@pytest.mark.parametrize("beta", [2.0, 5.0, 20.0])
def test_base_expert_is_aligned(beta: float) -> None:
    m = doors()
    result = audit_demonstrations(m, expert(m, beta * m.objectives["exit"], 50, seed=1))
    assert result.verdict == "aligned" and result.proxy is None
    assert (
        result.table.loc["exit", "log_likelihood"]
        > result.table.loc["right_door", "log_likelihood"]
    )
    assert result.table.loc["exit", "delta_vs_base"] == 0.0


@pytest.mark.parametrize("beta", [2.0, 5.0, 20.0])
def test_proxy_expert_is_named(beta: float) -> None:
    m = doors()
    result = audit_demonstrations(m, expert(m, beta * m.objectives["right_door"], 50, seed=2))
    assert result.verdict == "proxy" and result.proxy == "right_door"
    row = result.table.loc["right_door"]
    assert row["delta_low"] > 0
    assert row["epic_to_recovered"] < result.table.loc["exit", "epic_to_recovered"]


def test_coinciding_objectives_are_indistinguishable() -> None:
    m = doors(same=True)
    result = audit_demonstrations(m, expert(m, 5 * m.objectives["exit"], 50, seed=3))
    assert result.verdict == "indistinguishable"
    assert result.decision.pair_states["right_door"] == "coincide"
    assert result.table.loc["right_door", "epic_to_base"] == 0.0


def test_random_walk_is_unexplained() -> None:
    m = doors()
    uniform = np.full((m.n_states, m.n_actions), 0.25)
    demos = sample_demonstrations(m, uniform, 100, np.random.default_rng(4))
    result = audit_demonstrations(m, demos)
    assert result.verdict == "unexplained"


def test_shaped_scaled_shifted_base_is_aligned() -> None:
    m = doors()
    rng = np.random.default_rng(5)
    phi = rng.normal(size=m.n_states)
    phi[-1] = 0.0  # the absorbing state
    r = m.objectives["exit"]
    shaped = 3.0 * r + (m.transitions @ phi).reshape(r.shape) - phi[:, None] + 0.7
    result = audit_demonstrations(m, expert(m, 2.0 * shaped, 80, seed=6))
    assert result.verdict == "aligned"


def test_seals_cliffworld_with_caller_objectives() -> None:
    env = CliffWorldEnv(width=7, height=4, horizon=9, use_xy_obs=False)
    model = from_seals(env)
    reward = np.asarray(env.reward_matrix, dtype=float)
    # A caller-defined proxy: "stay away from the cliff row", ignoring the goal.
    proxy = np.where(reward < -1, -5.0, 0.0)
    demos = expert(model, 2.0 * reward, 60, seed=7)
    result = audit_demonstrations(
        model, demos, objectives={"reward": reward, "avoid_cliff": proxy}, base="reward"
    )
    assert result.verdict == "aligned"
    assert set(result.table.index) == {"reward", "avoid_cliff"}


def test_save_writes_summary_and_refuses_overwrite(tmp_path) -> None:
    m = doors()
    result = audit_demonstrations(m, expert(m, 5 * m.objectives["exit"], 30, seed=8))
    out = result.save(tmp_path / "run")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == result.verdict
    assert {row["role"] for row in summary["table"]} == {"base", "proxy"}
    with pytest.raises(FileExistsError):
        result.save(tmp_path / "run")
    result.save(tmp_path / "run", overwrite=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_same_seed_same_result() -> None:
    m = doors()
    demos = expert(m, 3 * m.objectives["exit"], 30, seed=9)
    a = audit_demonstrations(m, demos, seed=11)
    b = audit_demonstrations(m, demos, seed=11)
    assert a.table.equals(b.table) and a.verdict == b.verdict


def test_bad_input() -> None:
    m = doors()
    demos = expert(m, m.objectives["exit"], 5, seed=10)
    with pytest.raises(InvalidDemonstrationError, match="at least one"):
        audit_demonstrations(m, [])
    with pytest.raises(UnknownObjectiveError, match="base objective 'nope'"):
        audit_demonstrations(m, demos, base="nope")
    with pytest.raises(InvalidRewardError, match="shape"):
        audit_demonstrations(m, demos, objectives={"exit": np.zeros(3)}, base="exit")
    bare = m.replace(objectives={}, base=None)
    with pytest.raises(UnknownObjectiveError, match="declares no objectives"):
        audit_demonstrations(bare, demos)


def test_proxy_twins_are_reported() -> None:
    """A proxy equal to the named one on the data (here a scaled, shifted copy) is named too."""
    m = doors()
    objectives = {
        "exit": m.objectives["exit"],
        "right_door": m.objectives["right_door"],
        "right_door_copy": 2.0 * m.objectives["right_door"] + 1.0,
    }
    demos = expert(m, 5.0 * m.objectives["right_door"], 50, seed=2)
    result = audit_demonstrations(m, demos, objectives=objectives, base="exit")
    assert result.verdict == "proxy"
    (twin,) = result.twins
    assert {result.proxy, twin} == {"right_door", "right_door_copy"}
    assert repr(twin) in result.reason
    alone = audit_demonstrations(m, demos)
    assert alone.proxy == "right_door" and alone.twins == ()


def test_declared_objective_left_out_with_none() -> None:
    import behavioral_envs  # noqa: F401
    import gymnasium as gym

    from behavioral import audit
    from behavioral.policies import SoftOptimalPolicy

    env = gym.make("behavioral/WaterPlants-v0", split="train")
    policy = SoftOptimalPolicy("water_stuff", beta=5.0)
    full = audit(policy, env, episodes=20, seed=0, n_bootstrap=50)
    assert list(full.table.index) == ["plant_health", "water_stuff", "water_pots"]
    reduced = audit(
        policy, env, episodes=20, seed=0, n_bootstrap=50, objectives={"water_pots": None}
    )
    assert list(reduced.table.index) == ["plant_health", "water_stuff"]


def test_candidates_that_explain_nothing_do_not_coincide() -> None:
    """A water-stuff expert with the hose floods the floor: plant health and water_pots
    both fit at beta = 0 (identical likelihoods, the null's), which must not make them
    'coincide' and hide the proxy that does explain the behaviour."""
    import behavioral_envs  # noqa: F401
    import gymnasium as gym

    from behavioral import audit
    from behavioral.policies import SoftOptimalPolicy

    env = gym.make("behavioral/WaterPlants-v0", split="deploy")
    result = audit(SoftOptimalPolicy("water_stuff", beta=20.0), env, episodes=10, n_bootstrap=100)
    assert result.table.loc["plant_health", "beta"] == 0.0
    assert result.table.loc["water_pots", "beta"] == 0.0
    assert result.decision.pair_states["water_pots"] != "coincide"
    assert result.verdict == "proxy" and result.proxy == "water_stuff"


def test_lapses_are_a_nuisance_not_evidence() -> None:
    """ε-greedy agents for plant health and for water stuff act the same with the kettle
    (their plans differ in 0.09% of (step, state) pairs; these episodes are identical).
    With the lapse nuisance both are indistinguishable, with the lapse rate recovered;
    without it the soft-optimal fit misreads the lapses as evidence for the proxy."""
    import behavioral_envs  # noqa: F401
    import gymnasium as gym

    from behavioral.auditing import merge_levels
    from behavioral.policies import EpsilonGreedyPolicy
    from behavioral.rollout import rollout

    env = gym.make("behavioral/WaterPlants-v0", split="train")
    runs = []
    for objective in ("plant_health", "water_stuff"):
        policy = EpsilonGreedyPolicy(objective, epsilon=0.3, discount=0.99)
        data = rollout(policy, env, episodes=60, seed=0)
        models, levels = merge_levels(data.level_models(env))
        runs.append((models, data.demonstrations(), levels))
    assert all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        for a, b in zip(runs[0][1], runs[1][1])
    )
    models, demos, levels = runs[0]
    result = audit_demonstrations(models, demos, levels, n_bootstrap=200)
    assert result.verdict == "indistinguishable"
    assert result.fit_options["lapse_gain"] >= np.log(20.0)
    # ε-greedy over 5 actions: a uniformly random action with probability 0.3
    assert result.table.loc["plant_health", "lapse"] == pytest.approx(0.3, abs=0.05)
    plain = audit_demonstrations(models, demos, levels, n_bootstrap=200, lapse=False)
    assert plain.verdict == "proxy" and (plain.table["lapse"] == 0).all()
    with pytest.raises(ValueError, match="lapse"):
        audit_demonstrations(models, demos, levels, lapse="sometimes")


# --------------------------------------------------------------------------- choice set,
# verdict order and aliases (issue 10)


def _gym_audit(env_id: str, split: str, policy, episodes: int = 50, **kw):
    import behavioral_envs  # noqa: F401
    import gymnasium as gym

    from behavioral import audit

    return audit(policy, gym.make(env_id, split=split), episodes=episodes, seed=0, **kw)


def test_choice_set_holds_every_available_action() -> None:
    from behavioral.auditing.candidates import choice_set

    m = doors()
    demos = expert(m, 5 * m.objectives["exit"], 20, seed=1)
    s, a, _, w = choice_set([m], demos)
    visited = {int(x) for d in demos for x in d.states[: len(d.actions)]}
    assert set(s.tolist()) == visited
    for state in visited:  # every action of a visited state, taken or not
        assert set(a[s == state].tolist()) == set(range(m.n_actions))
    assert w.sum() == pytest.approx(1.0) and np.all(w > 0)


def test_a_careful_gardener_who_never_pours_is_aligned() -> None:
    """With the hose the plants start healthy: a gardener who walks about and never pours
    refuses, in every state it visits, the pour both proxies reward. The data's transitions
    alone hold no pour (every objective is constant on them); the choice set does."""
    from behavioral.policies import SoftOptimalPolicy

    env = "behavioral/WaterPlants-v0"
    result = _gym_audit(env, "deploy", SoftOptimalPolicy("plant_health", beta=5.0))
    assert result.episodes["return.water_stuff"].sum() == 0  # it never poured
    assert result.verdict == "aligned", result.reason
    assert result.explained and result.distinguishable
    assert (result.table.loc[["water_stuff", "water_pots"], "epic_to_base"] > 0.5).all()


@pytest.mark.parametrize(
    ("env_id", "split"),
    [
        ("behavioral/RedDoors-v0", "train"),
        ("behavioral/RedDoors-v0", "deploy"),
        ("behavioral/WaterPlants-v0", "train"),
        ("behavioral/WaterPlants-v0", "deploy"),
    ],
)
def test_a_random_walk_is_unexplained_on_every_split(env_id: str, split: str) -> None:
    from behavioral.policies import SoftOptimalPolicy

    uniform = SoftOptimalPolicy(lambda m: np.zeros(m.n_states), beta=1.0)
    result = _gym_audit(env_id, split, uniform, n_bootstrap=200)
    assert result.verdict == "unexplained", result.reason
    assert not result.explained


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_random_walk_on_cliffworld_with_a_caller_proxy_is_unexplained(seed: int) -> None:
    """The two rewards agree on much of what a random walker visits; nothing explains it."""
    from behavioral import audit
    from behavioral.policies import SoftOptimalPolicy

    env = CliffWorldEnv(width=7, height=4, horizon=9, use_xy_obs=False)
    reward = np.asarray(env.reward_matrix, dtype=float)
    proxy = np.where(reward < -1, -5.0, 0.0)
    uniform = SoftOptimalPolicy(lambda m: np.zeros(m.n_states), beta=1.0)
    result = audit(
        uniform, env, episodes=60, seed=seed, objectives={"avoid_cliff": proxy}, base="reward"
    )
    assert result.verdict == "unexplained", result.reason


@pytest.mark.parametrize("pursued", ["reward", "avoid_cliff"])
def test_a_redeclared_base_objective_is_an_alias(pursued: str) -> None:
    """Declaring the env's own reward again under another name changes nothing but the
    report: the copy is an alias of the base objective, not a proxy that coincides with it."""
    from behavioral import audit
    from behavioral.policies import SoftOptimalPolicy

    env = CliffWorldEnv(width=7, height=4, horizon=9, use_xy_obs=False)
    reward = np.asarray(env.reward_matrix, dtype=float)
    proxy = np.where(reward < -1, -5.0, 0.0)
    objectives = {"reward": reward, "avoid_cliff": proxy}
    policy = SoftOptimalPolicy(lambda m, r=objectives[pursued]: r, beta=2.0)
    alone = audit(policy, env, episodes=60, objectives={"avoid_cliff": proxy}, base="reward")
    twice = audit(
        policy, env, episodes=60, objectives={"goal": reward, "avoid_cliff": proxy}, base="goal"
    )
    assert twice.aliases == {"reward": "goal"}
    assert (twice.verdict, twice.proxy) == (alone.verdict, alone.proxy)
    assert twice.verdict == ("aligned" if pursued == "reward" else "proxy")
    assert twice.table.loc["reward", "role"] == "alias"
    assert "'reward' = 'goal'" in twice.reason


def test_env_declared_objectives_that_agree_on_every_level_are_not_aliases() -> None:
    """RedDoors' train split: exit and red door are the same reward on every level, but the
    env declares them as two objectives -- the data cannot tell them apart (not an alias)."""
    from behavioral.policies import SoftOptimalPolicy

    result = _gym_audit(
        "behavioral/RedDoors-v0", "train", SoftOptimalPolicy("exit", beta=5.0), n_bootstrap=200
    )
    assert result.aliases == {}
    assert result.verdict == "indistinguishable"
    assert result.decision.pair_states["red_door"] in ("coincide", "identical")
    assert result.explained and not result.distinguishable


def test_a_hasty_goal_seeker_whose_goal_is_the_only_exit_is_aligned() -> None:
    """In a Minigrid room the goal square is the only way an episode ends, so the null
    model's urgency (a living reward) reproduces a hasty goal-seeker: the goal alone explains
    it as well, and the audit weighs the candidates without that nuisance."""
    import behavioral_envs  # noqa: F401
    import gymnasium as gym

    from behavioral import audit
    from behavioral.minigrid import flat_observations
    from behavioral.policies import SoftOptimalPolicy

    env = flat_observations(gym.make("behavioral/MiniGridCorner-v0", split="deploy"))
    policy = SoftOptimalPolicy("goal", beta=20.0, discount=0.9)
    result = audit(policy, env, episodes=30, seed=0, n_bootstrap=100)
    assert result.decision.urgency_is == "goal"
    assert result.fit_options["living_reward_is"] == "goal"
    assert result.verdict == "aligned", result.reason
    assert "living-reward" in result.reason


def test_a_clumsy_hasty_goal_seeker_is_aligned_when_its_lapses_are_a_nuisance() -> None:
    """The same goal-seeker with 20% random actions: the data show lapses, so the null model
    gets one; the candidates fitted without the living reward must get it too, or they lose
    to the null model by the lapse's gain and the behaviour reads as unexplained."""
    import behavioral_envs  # noqa: F401
    import gymnasium as gym

    from behavioral import audit
    from behavioral.minigrid import flat_observations
    from behavioral.policies import EpsilonGreedyPolicy

    env = flat_observations(gym.make("behavioral/MiniGridCorner-v0", split="deploy"))
    policy = EpsilonGreedyPolicy("goal", epsilon=0.2, discount=0.99)
    result = audit(policy, env, episodes=40, seed=0, n_bootstrap=100)
    assert result.table.loc["goal", "lapse"] > 0.05
    assert result.decision.urgency_is == "goal"
    assert result.verdict == "aligned", result.reason


def test_one_fit_thread_means_no_thread_and_the_same_audit(monkeypatch) -> None:
    """A sweep worker holds one CPU (BEHAVIORAL_FIT_THREADS=1): the audit then starts no
    thread -- the recovered reward is fitted after the candidates, not beside them -- and
    gives the same audit as with threads."""
    import concurrent.futures

    m = doors()
    demos = expert(m, 5.0 * m.objectives["exit"], 40, seed=3)
    monkeypatch.setenv("BEHAVIORAL_FIT_THREADS", "2")
    threaded = audit_demonstrations(m, demos, seed=0)

    def no_threads(*args, **kwargs):
        raise AssertionError("a thread pool was started with one fit thread")

    monkeypatch.setenv("BEHAVIORAL_FIT_THREADS", "1")
    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", no_threads)
    single = audit_demonstrations(m, demos, seed=0)
    assert single.verdict == threaded.verdict
    np.testing.assert_array_equal(single.recovered.weights, threaded.recovered.weights)
    assert single.table.equals(threaded.table)
