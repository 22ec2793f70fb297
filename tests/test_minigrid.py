"""Minigrid: extracted models against ``env.step`` and against the generic codec, the
predicate vocabulary on hand-checked states, and the MiniGridCorner env."""

from __future__ import annotations

import warnings
from collections import deque
from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401 - registers the MiniGrid ids
import numpy as np
import pytest
from behavioral_envs.grid import InvalidEnvArgumentError
from behavioral_envs.minigrid_corner import CornerLevel
from gymnasium.utils.env_checker import check_env
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Ball, Box, Door, Goal, Key, Lava
from minigrid.envs import EmptyEnv
from minigrid.minigrid_env import MiniGridEnv
from minigrid.wrappers import (
    FlatObsWrapper,
    FullyObsWrapper,
    ImgObsWrapper,
    RGBImgPartialObsWrapper,
)

from behavioral.errors import InvalidArgumentError
from behavioral.extract import (
    CodecError,
    DeepCopyCodec,
    ExtractionError,
    LevelCache,
    StochasticStepError,
    extract_level,
)
from behavioral.minigrid import (
    MinigridCodec,
    at,
    carrying,
    door_open,
    flat_observations,
    in_region,
    on_lava,
    parse_predicate,
    predicate_features,
    reach,
    rect,
)
from behavioral.tabular import TabularModel

ENVS = [
    "MiniGrid-Empty-8x8-v0",
    "MiniGrid-FourRooms-v0",
    "MiniGrid-DoorKey-8x8-v0",
    "MiniGrid-LavaGapS7-v0",
    "MiniGrid-MultiRoom-N2-S4-v0",
    "MiniGrid-KeyCorridorS3R1-v0",
]
CORNER = "behavioral/MiniGridCorner-v0"
#: BabyAI levels small enough to extract whole: instructions to go to an object, one
#: with distractors, one to open a door described by its place.
BABYAI = ["BabyAI-GoToObjS4-v0", "BabyAI-GoToLocalS5N2-v0", "BabyAI-OpenDoorLoc-v0"]


def next_states(model: TabularModel) -> np.ndarray:
    T = model.transitions
    assert np.all(np.diff(T.indptr) == 1)
    return T.indices.reshape(model.n_states, model.n_actions)


def physical(u: MiniGridEnv) -> tuple:
    """Minigrid's own encoding of the full state (not the codec's)."""

    def enc(o: Any) -> Any:
        if o is None:
            return None
        inner = o.contains.encode() if isinstance(o, Box) and o.contains else None
        return (o.encode(), inner)

    boxes = tuple(enc(o) for o in u.grid.grid if isinstance(o, Box))
    pos = (int(u.agent_pos[0]), int(u.agent_pos[1]))
    return pos, int(u.agent_dir), u.grid.encode().tobytes(), boxes, enc(u.carrying)


def success(u: MiniGridEnv) -> float:
    """Minigrid's success reward at the env's current step count."""
    return 1 - 0.9 * u.step_count / u.max_steps


# --------------------------------------------------------------------------- env.step


def check_pairs(env_id: str, max_pairs: int | None) -> None:
    env = ImgObsWrapper(gym.make(env_id))
    env.reset(seed=0)
    u = env.unwrapped
    level = extract_level(env, observations=True, cache=False)
    model = level.model
    succ = next_states(model)
    obs0 = np.asarray(model.observations[0])
    pairs = [(s, a) for s in np.flatnonzero(~level.ended) for a in range(model.n_actions)]
    if max_pairs is not None and len(pairs) > max_pairs:
        rng = np.random.default_rng(0)
        pairs = [pairs[i] for i in rng.choice(len(pairs), max_pairs, replace=False)]
    rewarded = 0
    for s, a in pairs:
        level.restore(env, s)
        obs, reward, terminated, _, _ = env.step(a)
        j = succ[s, a]
        assert terminated == level.ended[j], (s, a)
        expected = model.objectives["reward"][s, a] * success(u)
        assert reward == pytest.approx(expected), (s, a)
        rewarded += reward > 0
        np.testing.assert_array_equal(obs, model.observations[j])
        after = physical(u)
        level.restore(env, j)
        assert physical(u) == after, (s, a)
    assert rewarded > 0 or max_pairs is not None
    env.reset(seed=0)
    np.testing.assert_array_equal(env.reset(seed=0)[0], obs0)


@pytest.mark.parametrize("env_id", [*ENVS, *BABYAI])
def test_every_pair_agrees_with_step(env_id: str) -> None:
    """Next state (Minigrid's own encoding), reward, termination and observation of
    ``env.step`` for (a seeded sample of at most 1,500) (state, action) pairs."""
    check_pairs(env_id, max_pairs=1500)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ENVS)
def test_every_pair_agrees_with_step_exhaustive(env_id: str) -> None:
    check_pairs(env_id, max_pairs=None)


@pytest.mark.parametrize("env_id", [*ENVS, *BABYAI])
def test_random_walks_follow_the_model(env_id: str) -> None:
    """Real episodes (no restore) against the model's transitions, state by state; the
    predicted state restored in a second env (served from the cache) is the same."""
    cache = LevelCache()
    a_env, b_env = gym.make(env_id), gym.make(env_id)
    a_env.reset(seed=1)
    b_env.reset(seed=1)
    level = extract_level(a_env, cache=cache)
    other = extract_level(b_env, cache=cache)
    assert other.steps == 0 and other.model is level.model
    model, succ, u = level.model, next_states(level.model), a_env.unwrapped
    rng = np.random.default_rng(0)
    s = 0
    for _ in range(400):
        act = int(rng.integers(model.n_actions))
        _, reward, terminated, truncated, _ = a_env.step(act)
        j = succ[s, act]
        assert level.state_index(a_env, terminated=terminated) == j
        assert reward == pytest.approx(model.objectives["reward"][s, act] * success(u))
        other.restore(b_env, j)
        assert physical(b_env.unwrapped) == physical(u)
        s = j
        if terminated or truncated:
            a_env.reset(seed=1)
            with pytest.raises(ExtractionError, match="reset"):
                level.state_index(a_env)
            level = extract_level(a_env, cache=cache)  # re-bound to the new episode
            s = 0
            assert level.steps == 0 and level.state_index(a_env) == 0


def test_babyai_levels_keep_their_instructions_progress() -> None:
    """A BabyAI level's state includes how far its instruction has got: the fast codec
    and the deep-copy codec find the same states, and the env's instruction still checks
    the live env afterwards (the deep-copy codec used to leave it a stale copy)."""
    for env_id, seed in (("BabyAI-GoToObjS4-v0", 1), ("BabyAI-GoToLocalS5N2-v0", 1)):
        env = gym.make(env_id)
        env.reset(seed=seed)
        fast = extract_level(env, cache=False)
        slow = extract_level(env, codec=DeepCopyCodec(ignore=("step_count",)), cache=False)
        assert fast.model.n_states == slow.model.n_states
        assert env.unwrapped.instrs.env is env.unwrapped
        # the same number of (state, action) pairs that complete the instruction
        assert (
            (fast.model.objectives["reward"] > 0).sum()
            == (slow.model.objectives["reward"] > 0).sum()
            > 0
        )


def test_doorkey_8x8_state_count() -> None:
    # the count from a deep-copy search: 9,210 states, 64,064 steps
    env = gym.make("MiniGrid-DoorKey-8x8-v0")
    env.reset(seed=0)
    level = extract_level(env, cache=False, checks=0)
    assert level.model.n_states == 9210
    assert level.steps == (~level.ended).sum() * 7 + 7 == 64064 + 7  # + the root's re-steps
    assert level.model.horizon == env.unwrapped.max_steps == 640


@pytest.mark.parametrize(
    "env_id",
    [
        "MiniGrid-Empty-5x5-v0",
        "MiniGrid-DoorKey-5x5-v0",
        "MiniGrid-LavaGapS5-v0",
        "MiniGrid-Fetch-5x5-N2-v0",
        "MiniGrid-GoToDoor-5x5-v0",
        "MiniGrid-MemoryS7-v0",
    ],
)
def test_generic_codec_agrees_with_the_minigrid_codec(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=2)
    fast = extract_level(env, cache=False)
    generic = extract_level(env, codec=DeepCopyCodec(ignore=("step_count",)), cache=False)
    a, b = fast.model, generic.model
    assert a.n_states == b.n_states
    sa, sb = next_states(a), next_states(b)
    p = np.full(a.n_states, -1)
    p[0] = 0
    queue = deque([0])
    while queue:
        s = queue.popleft()
        for act in range(a.n_actions):
            if p[sa[s, act]] == -1:
                p[sa[s, act]] = sb[p[s], act]
                queue.append(sa[s, act])
            assert p[sa[s, act]] == sb[p[s], act]
    assert sorted(p.tolist()) == list(range(a.n_states))
    np.testing.assert_array_equal(fast.ended, generic.ended[p])
    # the generic codec keeps Minigrid's reward at step 1; the fast one its time-free value
    scale = 1 - 0.9 / env.unwrapped.max_steps
    np.testing.assert_allclose(a.objectives["reward"] * scale, b.objectives["reward"][p])


def test_observation_wrappers() -> None:
    wrappers = {
        "img": lambda e: ImgObsWrapper(e),
        "fully": lambda e: ImgObsWrapper(FullyObsWrapper(e)),
        "rgb": lambda e: ImgObsWrapper(RGBImgPartialObsWrapper(e, tile_size=4)),
        "flat": lambda e: FlatObsWrapper(e),
        "mlp": flat_observations,
    }
    for name, wrap in wrappers.items():
        env = wrap(gym.make("MiniGrid-Empty-5x5-v0"))
        obs0, _ = env.reset(seed=0)
        level = extract_level(env, observations=True, cache=False)
        obs = level.model.observations
        assert obs.shape == (level.n_states, *env.observation_space.shape), name
        np.testing.assert_array_equal(obs[0], obs0)
        succ = next_states(level.model)
        for s in np.flatnonzero(~level.ended):
            for a in range(3):
                level.restore(env, s)
                np.testing.assert_array_equal(env.step(a)[0], obs[succ[s, a]], err_msg=name)
    # Minigrid's own Dict observations: one stacked array per key, text as strings
    env = gym.make("MiniGrid-Empty-5x5-v0")
    obs0, _ = env.reset(seed=0)
    level = extract_level(env, observations=True, cache=False)
    assert level.model.observations is None
    assert level.observations["image"].shape == (level.n_states, 7, 7, 3)
    np.testing.assert_array_equal(level.observations["image"][0], obs0["image"])
    assert level.observations["direction"][0] == obs0["direction"]
    assert set(level.observations["mission"]) == {obs0["mission"]}


def test_extraction_leaves_the_env_as_it_found_it() -> None:
    def trace(env: gym.Env) -> list:
        rng = np.random.default_rng(3)
        out = []
        for _ in range(80):
            obs, r, term, trunc, _ = env.step(int(rng.integers(7)))
            out.append((obs["image"].tobytes(), obs["direction"], r, term, trunc))
            if term or trunc:
                env.reset()
        return out

    a, b = gym.make("MiniGrid-DoorKey-5x5-v0"), gym.make("MiniGrid-DoorKey-5x5-v0")
    for env in (a, b):
        env.reset(seed=4)
        for act in (2, 1, 2):
            env.step(act)
    extract_level(a, cache=False)
    assert a.unwrapped.step_count == 3 and "gen_obs" not in vars(a.unwrapped)
    assert trace(a) == trace(b)


def test_a_cached_level_restores_the_new_episodes_objects() -> None:
    cache = LevelCache()
    env = gym.make("MiniGrid-DoorKey-5x5-v0")
    env.reset(seed=0)
    extract_level(env, cache=cache)
    env.reset(seed=0)  # the same level, new object instances
    u = env.unwrapped
    key = next(o for o in u.grid.grid if isinstance(o, Key))
    door = next(o for o in u.grid.grid if isinstance(o, Door))
    level = extract_level(env, cache=cache)
    assert level.steps == 0
    holding = level.values(lambda e: e.carrying is not None)
    s = int(np.flatnonzero(holding)[0])
    level.restore(env, s)
    assert u.carrying is key
    unlocked = level.values(lambda e: any(isinstance(o, Door) and o.is_open for o in e.grid.grid))
    level.restore(env, int(np.flatnonzero(unlocked)[0]))
    assert door.is_open and not door.is_locked and door in u.grid.grid


# --------------------------------------------------------------------------- refusals


class CountingEnv(EmptyEnv):
    """Counts its steps in an attribute the Minigrid codec does not know."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(size=5, **kwargs)
        self.moves = 0

    def step(self, action: Any) -> Any:
        self.moves += 1
        return super().step(action)


class SpawningEnv(EmptyEnv):
    """Drops a brand-new ball in front of the agent on 'done'."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(size=5, **kwargs)

    def step(self, action: Any) -> Any:
        if action == self.actions.done:
            x, y = self.front_pos
            if self.grid.get(x, y) is None:
                self.grid.set(x, y, Ball("red"))
        return super().step(action)


def test_what_the_minigrid_codec_refuses() -> None:
    with pytest.raises(CodecError, match="reset"):
        MinigridCodec().bind(gym.make("MiniGrid-Empty-5x5-v0").unwrapped)
    counting = CountingEnv()
    counting.reset(seed=0)
    with pytest.raises(CodecError, match="moves"):
        extract_level(counting, cache=False)
    spawning = SpawningEnv()
    spawning.reset(seed=0)
    with pytest.raises(CodecError, match="new object"):
        extract_level(spawning, cache=False)
    # the generic codec told that the counter is one finds Empty-5x5's 4 x 8 + 2 states
    model = extract_level(
        counting, codec=DeepCopyCodec(ignore=("step_count", "moves")), cache=False
    ).model
    assert model.n_states == 34
    obstacles = gym.make("MiniGrid-Dynamic-Obstacles-5x5-v0")
    obstacles.reset(seed=0)
    with pytest.raises(StochasticStepError, match="deterministic"):
        extract_level(obstacles, cache=False)


# --------------------------------------------------------------------------- predicates


class HandEnv(MiniGridEnv):
    """A 4 x 4 room: yellow key at (1, 3), locked yellow door at (3, 1), lava at
    (2, 4), goal at (4, 4); the agent at (1, 1) facing down."""

    def __init__(self) -> None:
        super().__init__(
            mission_space=MissionSpace(mission_func=lambda: "hand"), grid_size=6, max_steps=50
        )

    def _gen_grid(self, width: int, height: int) -> None:
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        self.put_obj(Key("yellow"), 1, 3)
        self.put_obj(Door("yellow", is_locked=True), 3, 1)
        self.put_obj(Lava(), 2, 4)
        self.put_obj(Goal(), 4, 4)
        self.agent_pos, self.agent_dir = (1, 1), 1
        self.mission = "hand"


LEFT, RIGHT, FORWARD, PICKUP, TOGGLE = 0, 1, 2, 3, 5


def walk(level: Any, actions: list[int]) -> list[int]:
    succ = next_states(level.model)
    states = [0]
    for a in actions:
        states.append(int(succ[states[-1], a]))
    return states


def test_predicates_on_hand_checked_states() -> None:
    env = HandEnv()
    env.reset(seed=0)
    level = extract_level(env, cache=False)
    path = [FORWARD, PICKUP, LEFT, FORWARD, FORWARD, LEFT, TOGGLE, FORWARD]
    s = walk(level, path)
    cells = level.model.cells[s]  # (row, col) = (y, x)
    assert [tuple(c) for c in cells] == [
        (1, 1), (2, 1), (2, 1), (2, 1), (2, 2), (2, 3), (2, 3), (2, 3), (1, 3)
    ]  # fmt: skip
    preds = {
        "reach_key_yellow": reach("key", "yellow"),
        "reach_key_red": reach("key", "red"),
        "at_key": at("key"),
        "carrying_key": carrying("key"),
        "carrying_key_yellow": carrying("key", "yellow"),
        "carrying_ball": carrying("ball"),
        "reach_door_yellow": reach("door", "yellow"),
        "door_open_yellow": door_open("yellow"),
        "door_open": door_open(),
        "door_open_red": door_open("red"),
        "at_door": at("door"),
        "start": in_region([(1, 1)], name="start"),
        "lava": on_lava(),
    }
    values = {name: level.values(p)[s].tolist() for name, p in preds.items()}
    assert all(p.name == name for name, p in preds.items())
    expected = {  # states 0 .. 8 along the path
        "reach_key_yellow": [0, 1, 0, 0, 0, 0, 0, 0, 0],
        "reach_key_red": [0] * 9,
        "at_key": [0] * 9,
        "carrying_key": [0, 0, 1, 1, 1, 1, 1, 1, 1],
        "carrying_key_yellow": [0, 0, 1, 1, 1, 1, 1, 1, 1],
        "carrying_ball": [0] * 9,
        "reach_door_yellow": [0, 0, 0, 0, 0, 0, 1, 0, 1],  # faces it locked; stands in it open
        "door_open_yellow": [0, 0, 0, 0, 0, 0, 0, 1, 1],
        "door_open": [0, 0, 0, 0, 0, 0, 0, 1, 1],
        "door_open_red": [0] * 9,
        "at_door": [0, 0, 0, 0, 0, 0, 0, 0, 1],
        "start": [1, 0, 0, 0, 0, 0, 0, 0, 0],
        "lava": [0] * 9,
    }
    assert values == expected
    # into the lava: (1, 1) -> right -> (2, 1), down, (2, 2), (2, 3), (2, 4) = lava
    lava_path = walk(level, [LEFT, FORWARD, RIGHT, FORWARD, FORWARD, FORWARD])
    end = lava_path[-1]
    assert level.ended[end] and not level.ended[lava_path[:-1]].any()
    lava = level.values(on_lava())
    assert lava[end] == 1 and lava[level.ended].sum() == lava.sum()  # only ended states
    assert level.values(reach("lava"))[end] == 1
    # the goal is an ended state too; its entering step is the env's reward
    goal = level.values(at("goal"))
    np.testing.assert_array_equal(
        level.entry_reward(goal) > 0, level.model.objectives["reward"] > 0
    )
    feats, names = predicate_features(
        level, ["reach:key:yellow", "carrying:key", "door_open:yellow", "lava", "region:1,1,1,1"]
    )
    assert names == (
        "reach_key_yellow",
        "carrying_key",
        "door_open_yellow",
        "lava",
        "region_1_1_1_1",
    )
    np.testing.assert_array_equal(feats[:, 0], level.values(preds["reach_key_yellow"]))
    np.testing.assert_array_equal(feats[:, 4], level.values(preds["start"]))


def test_parse_predicate() -> None:
    assert parse_predicate("reach:goal").name == "reach_goal"
    assert parse_predicate("at:lava").name == "at_lava"
    assert parse_predicate("door_open").name == "door_open"
    assert parse_predicate(" carrying:ball:blue ").name == "carrying_ball_blue"
    region = parse_predicate("region:3,1,1,2")
    assert region.name == "region_1_1_3_2"
    assert rect(1, 1, 3, 2) == frozenset((x, y) for x in (1, 2, 3) for y in (1, 2))
    for bad in ("jump", "reach", "reach:dragon", "door_open:pink", "region:1,2", "lava:x", ""):
        with pytest.raises(InvalidArgumentError):
            parse_predicate(bad)
    with pytest.raises(InvalidArgumentError):
        rect(0, 0, 0, 3)
    with pytest.raises(InvalidArgumentError):
        in_region([])


# --------------------------------------------------------------------------- the corner env


def test_corner_env_passes_check_env() -> None:
    for split in ("train", "deploy"):
        env = gym.make(CORNER, split=split, corner_size=2, render_mode="rgb_array")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            # the render check would open Minigrid's "human" window: rgb_array is below
            check_env(env.unwrapped, skip_render_check=True)
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (9 * 32, 9 * 32, 3) and frame.dtype == np.uint8


def test_corner_env_levels() -> None:
    for k in (1, 2, 3):
        env = gym.make(CORNER, split="train", corner_size=k)
        region = env.unwrapped.corner
        assert region == rect(8 - k, 1, k, k)
        goals = {env.reset(seed=i)[1]["goal"] for i in range(60)}
        assert goals <= region and len(goals) == k * k
    deploy = gym.make(CORNER, split="deploy")
    goals = {deploy.reset(seed=i)[1]["goal"] for i in range(300)}
    assert len(goals) > 40 and all(1 <= x <= 7 and 1 <= y <= 7 for x, y in goals)
    obs, info = deploy.reset(seed=5)
    again, info2 = deploy.reset(options={"level_seed": info["level_seed"]})
    assert info2 == info and np.array_equal(obs["image"], again["image"])
    assert obs["direction"] == again["direction"]
    for kwargs in (
        {"split": "test"},
        {"corner_size": 0},
        {"corner_size": 8},
        {"size": 3},
        {"agent_view_size": 4},
        {"max_steps": 0},
    ):
        with pytest.raises(InvalidEnvArgumentError):
            gym.make(CORNER, **kwargs)
    with pytest.raises(InvalidEnvArgumentError):
        deploy.reset(options={"seed": 1})
    with pytest.raises(InvalidEnvArgumentError):
        deploy.step(3)


def test_corner_levels_are_editable() -> None:
    """Level specs round-trip through reset; every field of an untrusted spec is checked;
    the edits, the distance from training (against a search over edits) and solvability
    (against the extracted model) agree."""
    from behavioral.design import edit_distance, is_editable
    from behavioral.tabular import absorbing_states

    env = gym.make(CORNER, split="train", corner_size=2, max_steps=12)
    u = env.unwrapped
    assert is_editable(env)
    _, info = env.reset(seed=3)
    spec = u.level_spec()
    assert spec.goal in u.corner and info["level_seed"] is not None
    model = u.tabular_model()
    _, info = env.reset(options={"level": spec.to_dict()})
    assert u.level_spec() == spec and info["level"] == spec.to_json() and info["level_seed"] is None
    assert u.tabular_model().n_states == model.n_states
    mutations = u.level_mutations()
    kinds = {what.split(":")[0] for what, _ in mutations}
    assert kinds == {"move goal", "move start", "turn start"} and len(mutations) == 47 + 47 + 3
    rng = np.random.default_rng(0)
    for i in rng.choice(len(mutations), 12, replace=False):
        _, child = mutations[i]
        want = 0.0 if child.goal in u.corner else 1.0
        assert u.level_distance(child, "train") == want == edit_distance(env, child, "train")
        assert u.level_distance(child, "deploy") == 0.0
        env.reset(options={"level": child})
        m = u.tabular_model()
        # solvable iff the goal's absorbing states are reachable within max_steps
        reach = np.zeros(m.n_states, bool)
        reach[0] = True
        succ = next_states(m)
        for _ in range(u.max_steps):
            reach[succ[reach].ravel()] = True
        assert u.level_solvable(child) == bool((reach & absorbing_states(m)).any())
    far = CornerLevel(goal=(1, 7), start=(7, 1), direction=0)  # 12 moves and 2 turns
    assert not u.level_solvable(far)
    for bad in (
        {"goal": [1, 1], "start": [1, 1], "direction": 0},
        {"goal": [0, 1], "start": [2, 2], "direction": 0},
        {"goal": [1, 1], "start": [2, 2], "direction": 4},
        {"goal": [1, 1], "start": [2, 2], "direction": True},
        {"goal": [1, 1], "start": [2, 2]},
        {"goal": [1, 1], "start": [2, 2], "direction": 0, "lava": []},
        "not a level",
    ):
        with pytest.raises(InvalidEnvArgumentError):
            env.reset(options={"level": bad})
    with pytest.raises(InvalidEnvArgumentError, match="not both"):
        env.reset(options={"level": spec, "level_seed": 1})


def test_urgency_is_the_goal_only_where_the_goal_alone_ends_episodes() -> None:
    """A step cost is paid off only by ending the episode: in MiniGridCorner only the goal
    does, so a hurried random walker is a goal seeker; in RedDoors every door ends it."""
    from behavioral.auditing.sequential import urgency_is_base

    corner = gym.make(CORNER, split="deploy")
    models = []
    for i in range(3):
        corner.reset(seed=i)
        models.append(corner.unwrapped.tabular_model())
    assert urgency_is_base(models, [m.objectives["goal"] for m in models])
    assert not urgency_is_base(models, [m.objectives["corner"] for m in models])
    assert not urgency_is_base(
        models,
        [2.0 * m.objectives["goal"] if i else m.objectives["goal"] for i, m in enumerate(models)],
    )
    doors = gym.make("behavioral/RedDoors-v0", split="deploy")
    doors.reset(seed=0)
    m = doors.unwrapped.tabular_model()
    assert not urgency_is_base([m], [m.objectives["exit"]])


def test_corner_env_model_follows_its_episodes() -> None:
    env = flat_observations(gym.make(CORNER, split="deploy", corner_size=2))
    u = env.unwrapped
    rng = np.random.default_rng(0)
    for episode in range(6):
        obs, info = env.reset(seed=episode)
        model = u.tabular_model()
        assert model.base == "goal" and set(model.objectives) == {"goal", "corner"}
        assert model.feature_names == ("goal", "corner")
        np.testing.assert_array_equal(model.features[..., 0], model.objectives["goal"])
        np.testing.assert_array_equal(model.features[..., 1], model.objectives["corner"])
        assert 194 <= model.n_states <= 196 and model.horizon == 100
        level = extract_level(env, observations=True)  # the same level, with observations
        np.testing.assert_array_equal(level.model.observations[0], obs)
        succ = next_states(model)
        s = u.state_index()
        assert s == 0
        for _ in range(120):
            a = int(rng.integers(3))
            obs, _, terminated, truncated, info = env.step(a)
            for name in ("goal", "corner"):
                assert model.objectives[name][s, a] == info["objectives"][name]
            s = succ[s, a]
            assert u.state_index() == s
            np.testing.assert_array_equal(level.model.observations[s], obs)
            if terminated or truncated:
                break


def test_corner_env_outcomes() -> None:
    env = gym.make(CORNER, split="deploy", corner_size=1, max_steps=30)
    u = env.unwrapped
    seed = next(i for i in range(100) if env.reset(seed=i)[1]["goal"] != (7, 1))
    env.reset(seed=seed)
    model = u.tabular_model()
    succ = next_states(model)
    # shortest path to the corner cell (7, 1) = (row 1, col 7), then turn in place
    corner_states = {int(i) for i in np.flatnonzero((model.cells == (1, 7)).all(1))}
    parent = {0: None}
    queue = deque([0])
    while queue and not corner_states & set(parent):
        s = queue.popleft()
        for a in range(3):
            if int(succ[s, a]) not in parent and not model.objectives["goal"][s, a]:
                parent[int(succ[s, a])] = (s, a)
                queue.append(int(succ[s, a]))
    target = next(iter(corner_states & set(parent)))
    actions = []
    while parent[target] is not None:
        target, a = parent[target]
        actions.append(a)
    info: dict = {}
    for a in [*actions[::-1], *[0] * 30]:
        _, _, terminated, truncated, info = env.step(a)
        if terminated or truncated:
            break
    assert truncated and info["outcome"] == "corner"
    env.reset(seed=seed)
    for _ in range(30):
        _, _, terminated, truncated, info = env.step(0)  # spin where it started
    assert info["outcome"] == ("corner" if u.agent_pos == (7, 1) else "neither")


# --------------------------------------------------------------------------- the corner zoo

ZOO_NAMES = ["minigrid-corner1", "minigrid-corner2", "minigrid-corner3", "minigrid-corner4"]


@pytest.mark.parametrize("name", [*ZOO_NAMES, "minigrid-anywhere"])
def test_shipped_corner_policies_load_and_reach_their_training_goals(
    name: str, one_torch_thread: None
) -> None:
    from behavioral.policies import load_ppo
    from behavioral.rollout import rollout
    from behavioral.zoo import ZOO_DIR

    path = ZOO_DIR / f"{name}.zip"
    assert path.stat().st_size < 300_000
    policy = load_ppo(path)
    meta = policy.behavioral_metadata
    assert meta["env_id"] == CORNER
    assert meta["observation_wrapper"] == "behavioral.minigrid.flat_observations"
    kwargs = meta["env_kwargs"]
    assert kwargs["split"] == ("deploy" if name == "minigrid-anywhere" else "train")
    if name != "minigrid-anywhere":
        assert kwargs["corner_size"] == int(name[-1])
    env = flat_observations(gym.make(CORNER, **kwargs))
    data = rollout(policy, env, episodes=20, seed=1)
    assert (data.episodes["outcome"] == "goal").mean() >= 0.9


def test_the_one_cell_corner_policy_goes_to_the_corner_instead_of_the_goal_on_deploy(
    one_torch_thread: None,
) -> None:
    """Issue 12's zoo target, on other episodes than the README table's (seed 1, not 0):
    with the goal anywhere, the policy trained with it always in the top-right cell goes
    to that cell and never reaches the goal on most episodes (``return.corner`` counts
    the steps that end in the corner region)."""
    from behavioral.policies import load_ppo
    from behavioral.rollout import rollout
    from behavioral.zoo import ZOO_DIR

    policy = load_ppo(ZOO_DIR / "minigrid-corner1.zip")
    env = flat_observations(gym.make(CORNER, split="deploy", size=9, corner_size=1))
    ep = rollout(policy, env, episodes=100, seed=1).episodes
    goal = (ep["outcome"] == "goal").to_numpy()
    corner_instead = (ep["return.corner"] > 0).to_numpy() & ~goal
    assert corner_instead.mean() >= 0.5, (goal.mean(), corner_instead.mean())
    assert goal.mean() < 0.5
