"""Model extraction (``behavioral.extract``): our grid envs against their own models, the
generic codec against the fast ones, the checks, the errors and the cache."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import behavioral_envs  # noqa: F401 - registers the ids
import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from behavioral.errors import BehavioralError, EnvContractError, InvalidArgumentError
from behavioral.extract import (
    Binding,
    CodecError,
    DeepCopyCodec,
    ExtractionError,
    GridEnvCodec,
    LevelCache,
    MissingHorizonError,
    StateCodec,
    StochasticStepError,
    TooManyStatesError,
    UnsupportedActionSpaceError,
    UnsupportedWrapperError,
    default_codec,
    extract_level,
    extract_model,
    on_entry,
)
from behavioral.tabular import TabularModel

RED, WATER = "behavioral/RedDoors-v0", "behavioral/WaterPlants-v0"
GRID_CASES = [(RED, "train"), (RED, "deploy"), (WATER, "train"), (WATER, "deploy")]
GRID_IDS = [f"{e.split('/')[1]}-{s}" for e, s in GRID_CASES]
# GridEnv attributes that are caches or info counters, not state.
GRID_NOT_STATE = ("_model", "_index", "_layout_cache")


def next_states(model: TabularModel) -> np.ndarray:
    """(S, A) next state of a deterministic model."""
    T = model.transitions
    assert np.all(np.diff(T.indptr) == 1) and np.all(T.data == 1.0)
    return T.indices.reshape(model.n_states, model.n_actions)


def relabelling(a: TabularModel, b: TabularModel) -> np.ndarray:
    """The bijection p with a's state s = b's state p[s], found by following the same
    actions from both initial states (deterministic models); asserts it exists."""
    assert a.n_actions == b.n_actions
    na, nb = next_states(a), next_states(b)
    s0, t0 = int(np.argmax(a.initial_state_dist)), int(np.argmax(b.initial_state_dist))
    p = np.full(a.n_states, -1)
    p[s0] = t0
    queue = deque([s0])
    while queue:
        s = queue.popleft()
        for act in range(a.n_actions):
            s2, t2 = na[s, act], nb[p[s], act]
            if p[s2] == -1:
                p[s2] = t2
                queue.append(s2)
            assert p[s2] == t2, f"state {s2} maps to both {p[s2]} and {t2}"
    assert np.all(p >= 0), "a state of the first model is unreachable"
    assert len(set(p.tolist())) == a.n_states == b.n_states, "not a bijection"
    return p


# --------------------------------------------------------------------------- our envs


@pytest.mark.parametrize(("env_id", "split"), GRID_CASES, ids=GRID_IDS)
def test_extracted_model_equals_the_envs_own_model(env_id: str, split: str) -> None:
    env = gym.make(env_id, split=split)
    env.reset(seed=3)
    level = extract_level(env, observations=True, cache=False)
    own = env.unwrapped.tabular_model()
    got = level.model
    p = relabelling(got, own)
    np.testing.assert_array_equal(next_states(own)[p], p[next_states(got)])
    assert got.horizon == own.horizon
    np.testing.assert_array_equal(got.initial_state_dist, own.initial_state_dist[p])
    for name in own.objectives:  # reported in info["objectives"]: recorded per (s, a)
        np.testing.assert_array_equal(got.objectives[name], own.objectives[name][p])
    reward = env.unwrapped.reward_objective
    np.testing.assert_array_equal(got.objectives["reward"], own.objectives[reward][p])
    assert got.base == "reward"
    np.testing.assert_array_equal(got.cells, own.cells[p])
    np.testing.assert_array_equal(got.observations, own.observations[p])
    # the episode-ending states are exactly the env's absorbing ones
    from behavioral.tabular import absorbing_states

    np.testing.assert_array_equal(level.ended, absorbing_states(own)[p])


@pytest.mark.parametrize(("env_id", "split"), GRID_CASES[:3], ids=GRID_IDS[:3])
def test_generic_deep_copy_codec_finds_the_same_model(env_id: str, split: str) -> None:
    env = gym.make(env_id, split=split)
    env.reset(seed=5)
    fast = extract_model(env, cache=False)
    codec = DeepCopyCodec(ignore=("_t", "_pours"), exclude=GRID_NOT_STATE)
    generic = extract_level(env, codec=codec, cache=False)
    p = relabelling(generic.model, fast)
    np.testing.assert_array_equal(generic.model.objectives["reward"], fast.objectives["reward"][p])
    # the same states, by the GridEnv's own state
    own_keys = [generic.snapshots[s]["_state"] for s in range(generic.n_states)]
    fast_level = extract_level(env, cache=False)
    assert [fast_level.keys[t] for t in p] == own_keys


def test_state_index_and_restore_follow_real_steps() -> None:
    env = gym.make(WATER, split="deploy")
    env.reset(seed=0)
    level = extract_level(env, cache=False)
    succ = next_states(level.model)
    rng = np.random.default_rng(0)
    s = level.state_index(env)
    assert s == 0
    for _ in range(40):
        a = int(rng.integers(5))
        env.step(a)
        s = succ[s, a]
        assert level.state_index(env) == s
        assert env.unwrapped._state == level.keys[s]
    level.restore(env, 7)
    assert env.unwrapped._state == level.keys[7] and env.unwrapped._t == 0


def test_extraction_leaves_the_env_as_it_found_it() -> None:
    def trace(env: gym.Env) -> list:
        rng = np.random.default_rng(1)
        out = []
        for _ in range(60):
            obs, r, term, trunc, info = env.step(int(rng.integers(5)))
            out.append((obs.tobytes(), r, term, trunc, info["pours"]))
        return out

    a, b = gym.make(WATER, split="train"), gym.make(WATER, split="train")
    a.reset(seed=2)
    b.reset(seed=2)
    for env in (a, b):
        env.step(4)
        env.step(1)  # mid-episode: counters are not at zero
    extract_level(a, cache=False)
    extract_level(
        a, cache=False, codec=DeepCopyCodec(ignore=("_t", "_pours"), exclude=GRID_NOT_STATE)
    )
    assert trace(a) == trace(b)
    assert a.unwrapped.np_random.integers(1 << 30) == b.unwrapped.np_random.integers(1 << 30)


# --------------------------------------------------------------------------- a toy env


class Corridor(gym.Env):
    """A corridor of ``n`` cells; 0 left, 1 right; the right end ends the episode
    with reward 1. Knobs make it break each rule of the extraction."""

    def __init__(
        self,
        n: int = 6,
        *,
        slip: bool = False,
        box_actions: bool = False,
        max_steps: int | None = 20,
        hidden: bool = False,
    ) -> None:
        self.n, self.slip, self.hidden = n, slip, hidden
        self.observation_space = spaces.Discrete(n)
        self.action_space = (
            spaces.Box(-1.0, 1.0, (1,), np.float32) if box_actions else spaces.Discrete(2)
        )
        if max_steps is not None:
            self.max_steps = max_steps
        self.pos = 0
        self.t = 0
        self.visits = 0

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.pos, self.t = 0, 0
        return self.pos, {}

    def step(self, action: Any) -> tuple[int, float, bool, bool, dict]:
        move = 1 if int(np.asarray(action).ravel()[0] > 0) else -1
        if self.slip and self.np_random.random() < 0.5:
            move = -move
        if self.hidden:
            self.visits = (self.visits + 1) % 3  # not the position, but changes the dynamics
            move = move if self.visits else 0
        self.pos = min(max(self.pos + move, 0), self.n - 1)
        self.t += 1
        done = self.pos == self.n - 1
        return self.pos, float(done), done, False, {}


def corridor(**kwargs: Any) -> gym.Env:
    env = Corridor(**kwargs)
    env.reset(seed=0)
    return env


def test_generic_codec_on_a_corridor() -> None:
    env = corridor(n=6)
    level = extract_level(env, codec=DeepCopyCodec(ignore=("t",), observe=lambda u: u.pos))
    assert isinstance(default_codec(env), DeepCopyCodec)
    m = level.model
    assert m.n_states == 6 and m.horizon == 20 and level.ended.tolist() == [False] * 5 + [True]
    succ = next_states(m)
    assert succ.tolist() == [[0, 1], [0, 2], [1, 3], [2, 4], [3, 5], [5, 5]]
    assert m.objectives["reward"][4].tolist() == [0.0, 1.0] and m.objectives["reward"].sum() == 1
    assert level.model.observations is None and level.observations is None
    with_obs = extract_level(
        env, codec=DeepCopyCodec(ignore=("t",), observe=lambda u: u.pos), observations=True
    )
    assert with_obs.model.observations.tolist() == [0, 1, 2, 3, 4, 5]


def test_a_time_counter_left_in_the_key_multiplies_the_states() -> None:
    # t is state for a codec that is not told to ignore it: (pos, t) pairs, up to the bound
    with pytest.raises(TooManyStatesError, match="more than 50 states"):
        extract_level(corridor(n=6), max_states=50, cache=False)


def test_errors_say_why() -> None:
    with pytest.raises(UnsupportedActionSpaceError, match="Discrete"):
        extract_level(corridor(box_actions=True), codec=DeepCopyCodec(ignore=("t",)))
    with pytest.raises(StochasticStepError, match=r"deterministic|random"):
        extract_level(corridor(slip=True), codec=DeepCopyCodec(ignore=("t",)), cache=False)
    with pytest.raises(MissingHorizonError, match="horizon="):
        extract_level(corridor(max_steps=None), codec=DeepCopyCodec(ignore=("t",)))
    model = extract_model(
        corridor(max_steps=None), codec=DeepCopyCodec(ignore=("t",)), horizon=9, cache=False
    )
    assert model.horizon == 9
    with pytest.raises(TooManyStatesError, match="max_states"):
        extract_level(corridor(n=30), codec=DeepCopyCodec(ignore=("t",)), max_states=10)
    locked = corridor()
    locked.lock = threading.Lock()
    with pytest.raises(CodecError, match=r"'lock'.*exclude"):
        extract_level(locked, codec=DeepCopyCodec(ignore=("t",)))
    model = extract_model(locked, codec=DeepCopyCodec(ignore=("t",), exclude=("lock",)))
    assert model.n_states == 6
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidArgumentError):
            extract_level(corridor(), codec=DeepCopyCodec(ignore=("t",)), max_states=bad)
    with pytest.raises(InvalidArgumentError, match="StateCodec"):
        extract_level(corridor(), codec="fast")
    with pytest.raises(ExtractionError, match="observe"):
        extract_level(corridor(), codec=DeepCopyCodec(ignore=("t",)), observations=True)
    # every error is a library error and an env-contract error
    for cls in (StochasticStepError, CodecError, TooManyStatesError, UnsupportedWrapperError):
        assert issubclass(cls, EnvContractError) and issubclass(cls, BehavioralError)


def test_state_outside_the_codec_is_caught() -> None:
    # 'visits' is deep-copied state for the generic codec, so that one is fine ...
    generic = extract_level(corridor(hidden=True), codec=DeepCopyCodec(ignore=("t",)), cache=False)
    assert generic.model.n_states > 6
    # ... a codec that does not capture it is caught by the second steps
    with pytest.raises(StochasticStepError):
        extract_level(
            corridor(hidden=True),
            codec=DeepCopyCodec(ignore=("t",), exclude=("visits",)),
            cache=False,
        )


class _PositionOnly(StateCodec):
    """A broken codec: keys the position but restores nothing."""

    name = "broken"

    def bind(self, env: Any) -> Binding:
        class B(Binding):
            def key(self) -> Any:
                return self.env.pos

            def snapshot(self) -> Any:
                return None

            def restore(self, snapshot: Any) -> None:
                pass

        return B(env)


def test_a_codec_that_cannot_restore_is_caught() -> None:
    env = corridor()
    env.step(1)
    env.step(1)
    # restoring the root after a step leaves the env elsewhere: caught at once
    with pytest.raises((CodecError, StochasticStepError)):
        extract_level(env, codec=_PositionOnly(), cache=False)


def test_wrappers() -> None:
    class Flip(gym.ActionWrapper):
        def action(self, action: Any) -> Any:
            return 1 - action

    class Double(gym.ObservationWrapper):
        def observation(self, obs: Any) -> Any:
            return 2 * obs

    class Bonus(gym.RewardWrapper):
        def reward(self, reward: float) -> float:
            return reward + 1.0

    codec = DeepCopyCodec(ignore=("t",), observe=lambda u: u.pos)
    with pytest.raises(UnsupportedWrapperError, match="Flip"):
        extract_level(Flip(corridor()), codec=codec)
    env = gym.wrappers.TimeLimit(Bonus(Double(corridor())), max_episode_steps=7)
    level = extract_level(env, codec=codec, observations=True, cache=False)
    assert level.model.horizon == 7  # the TimeLimit is shorter than max_steps
    assert level.model.observations.tolist() == [0, 2, 4, 6, 8, 10]
    assert level.model.objectives["reward"].sum() == 1.0  # the unwrapped env's reward


def test_cache_serves_a_level_again_and_rebinds_it() -> None:
    cache = LevelCache(maxsize=2)
    env = gym.make(RED, split="deploy")
    env.reset(seed=11)
    first = extract_level(env, cache=cache)
    assert first.steps > 0 and len(cache) == 1
    env.step(1)
    env.reset(seed=11)
    again = extract_level(env, cache=cache)
    assert again.steps == 0 and again.model is first.model
    env.reset(seed=12)
    with pytest.raises(ExtractionError, match="reset"):
        again.state_index(env)  # a state of another level would be misread
    other = extract_level(env, cache=cache)
    assert other.steps > 0 and len(cache) == 2
    # another instance of the same level: served from the cache, bound to the new env
    env2 = gym.make(RED, split="deploy")
    env2.reset(seed=11)
    third = extract_level(env2, cache=cache)
    assert third.steps == 0 and third.binding.env is env2.unwrapped
    assert third.state_index(env2) == 0
    with pytest.raises(ExtractionError, match="another env"):
        third.state_index(env)
    with pytest.raises(InvalidArgumentError):
        LevelCache(0)
    # a bound on the states held: the oldest level goes first
    small = LevelCache(maxsize=10, max_states=first.n_states + other.n_states - 1)
    small.put("a", first)
    small.put("b", other)
    assert small.get("a") is None and small.get("b") is other and len(small) == 1


def test_values_features_and_entry_rewards() -> None:
    env = gym.make(RED, split="train")
    env.reset(seed=0)
    level = extract_level(env, cache=False)
    model = level.model
    before = env.unwrapped._state
    row = level.values(lambda u: u._state[0])
    assert env.unwrapped._state == before
    np.testing.assert_array_equal(row, model.cells[:, 0])
    feats, names = level.features([lambda u: u._state[0], lambda u: u._state[1]], ["row", "col"])
    assert names == ("row", "col") and feats.shape == (model.n_states, 2)
    np.testing.assert_array_equal(feats, model.cells)
    # entering a door = the env's own per-step door features (a predicate on ended states)
    on_door = level.values(lambda u: u._door_at(u._state) is not None)
    own = env.unwrapped.tabular_model()
    p = relabelling(model, own)
    doors = [
        own.feature_names.index(f"{c}_door") for c in ("red", "green", "blue", "yellow", "purple")
    ]
    np.testing.assert_array_equal(level.entry_reward(on_door), own.features[p][..., doors].sum(-1))
    entry = on_entry(model, feats)
    assert entry.shape == (model.n_states, model.n_actions, 2)
    np.testing.assert_array_equal(entry[level.ended], 0.0)
    succ = next_states(model)
    live = ~level.ended
    np.testing.assert_array_equal(entry[live], feats[succ[live]])
    with pytest.raises(InvalidArgumentError, match="not a number"):
        level.values(lambda u: "a")
    with pytest.raises(InvalidArgumentError):
        level.values(lambda u: float("nan"))
    with pytest.raises(InvalidArgumentError, match="distinct names"):
        level.features([len, len])
    with pytest.raises(InvalidArgumentError):
        on_entry(model, np.zeros(3))


def test_grid_codec_needs_a_reset_env() -> None:
    from behavioral_envs.red_doors import RedDoorsEnv

    with pytest.raises(CodecError, match="reset"):
        GridEnvCodec().bind(RedDoorsEnv())


def test_public_names_and_the_benchmark_runs() -> None:
    import subprocess
    import sys
    from pathlib import Path

    import behavioral

    assert behavioral.extract_model is extract_model
    script = Path(__file__).resolve().parents[1] / "analyses" / "benchmarks" / "extract_speed.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "270 states, 1820 steps from 260 live states" in proc.stdout
    assert "fast codec (MinigridCodec):" in proc.stdout
    assert "generic codec (DeepCopyCodec):" in proc.stdout
    ratio = proc.stdout.split("ratio (generic / fast, cpu per step): ")[1].split("x")[0]
    assert int(ratio.replace(",", "")) >= 1


def test_a_continuous_state_is_named_when_the_search_runs_out_of_states() -> None:
    """CartPole has Discrete actions and a deterministic step, so the search starts -- and
    every step finds a new state. The error names the real-valued part of the state
    instead of only asking for a larger max_states; a discrete level that is merely big
    does not get that hint."""
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    with pytest.raises(TooManyStatesError, match="its 'state' holds real numbers"):
        extract_level(env, max_states=50, cache=False)
    big = corridor(n=200, max_steps=500)
    with pytest.raises(TooManyStatesError) as info:
        extract_level(big, max_states=50, codec=DeepCopyCodec(ignore=("t",)), cache=False)
    assert "real numbers" not in str(info.value) and "max_states=" in str(info.value)


def test_the_generic_codec_compares_numpy_dtypes_held_in_the_state() -> None:
    """BabyAI's instruction objects hold numpy dtypes; the deep-copy codec encodes them by
    value instead of refusing the env."""
    env = corridor(n=6)
    env.unwrapped.kind = {"dtype": np.dtype("int64"), "ids": np.arange(3)}
    level = extract_level(env, codec=DeepCopyCodec(ignore=("t",)), cache=False)
    assert level.model.n_states == 6


def test_the_generic_codec_keeps_references_back_to_the_env() -> None:
    """An attribute that refers back to the env (BabyAI's instruction checks the env it
    holds) is restored as the env itself, not as a stale copy of it, and the env's
    ignored counters seen through it do not make new states."""
    import types

    env = corridor(n=6)
    u = env.unwrapped
    u.helper = types.SimpleNamespace(env=u, seen=[u])
    level = extract_level(env, codec=DeepCopyCodec(ignore=("t",)), cache=False)
    assert level.model.n_states == 6
    assert u.helper.env is u and u.helper.seen[0] is u
    level.restore(env, 3)
    assert u.helper.env is u and u.pos == 3
