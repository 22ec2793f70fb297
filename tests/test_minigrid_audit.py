"""Minigrid (and any env without a model of its own) through rollouts, datasets and audits:
each episode's level extracted after its reset, dict observations recorded and stored,
objectives as state functions, the levels' named features."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import gymnasium as gym
import minigrid  # noqa: F401 - registers the MiniGrid-* ids
import numpy as np
import pytest
from imitation.data.types import DictObs
from minigrid.wrappers import FullyObsWrapper, ImgObsWrapper

import behavioral
from behavioral.environments import make_env, observation_wrappers
from behavioral.errors import (
    CorruptDatasetError,
    DatasetError,
    DatasetMismatchError,
    EnvContractError,
    InvalidArgumentError,
    UnsafeDatasetError,
)
from behavioral.extract import (
    StateFunctionError,
    StochasticStepError,
    UnsupportedActionSpaceError,
    episode_level,
    extract_level,
    state_function,
)
from behavioral.minigrid import at, default_vocabulary, flat_observations, in_region
from behavioral.policies import (
    EpsilonGreedyPolicy,
    SoftOptimalPolicy,
    UniformPolicy,
    env_state_index,
    env_tabular_model,
)
from behavioral.rollout import load_dataset, rollout, save_dataset

EMPTY = "MiniGrid-Empty-5x5-v0"


# ----------------------------------------------------------------------------- rollouts


def test_rollout_records_dict_observations_and_extracted_states() -> None:
    env = gym.make("MiniGrid-FourRooms-v0")
    data = rollout(UniformPolicy(), env, episodes=3, seed=1)
    assert data.metadata["states"] == "extracted"
    assert data.metadata["observation_wrappers"] == []
    assert [k["key"] for k in data.metadata["obs_keys"]] == ["image", "direction", "mission"]
    for i, (tr, states) in enumerate(zip(data.trajectories, data.states, strict=True)):
        assert isinstance(tr.obs, DictObs)
        n = len(tr.acts) + 1
        assert tr.obs.get("image").shape == (n, 7, 7, 3)
        assert tr.obs.get("direction").shape == (n,)
        assert set(tr.obs.get("mission").tolist()) == {"reach the goal"}
        # the states are the extracted level's: replay the actions through its model
        env.reset(seed=data.reset_seeds()[i])
        level = extract_level(env)
        assert states[0] == 0  # the search starts at the reset state
        T = level.model.transitions
        A = level.model.n_actions
        for t, a in enumerate(tr.acts):
            row = T[[states[t] * A + int(a)]].toarray()[0]
            assert row[states[t + 1]] == 1.0


def test_round_trip_of_a_dict_dataset_is_exact_and_replays(tmp_path: Path) -> None:
    env = gym.make(EMPTY)
    data = rollout(UniformPolicy(), env, episodes=4, seed=0)
    path = save_dataset(data, tmp_path / "ds")
    # the mission is stored once per episode, in the episodes table, not per step
    doc = json.loads((path / "episodes.json").read_text())
    assert doc["data"]["obs.mission"] == ["get to the green goal square"] * 4
    with np.load(path / "arrays.npz") as npz:
        assert sorted(npz.files) == [
            "acts", "lengths", "obs.direction", "obs.image", "rews", "states", "terminal"
        ]  # fmt: skip
    back = load_dataset(path)
    assert list(back.episodes.columns) == list(data.episodes.columns)
    for a, b in zip(data.trajectories, back.trajectories, strict=True):
        assert a.obs.keys() == b.obs.keys()
        for key in a.obs.keys():
            np.testing.assert_array_equal(a.obs.get(key), b.obs.get(key))
        np.testing.assert_array_equal(a.acts, b.acts)
    back.verify(gym.make(EMPTY))
    models = back.level_models(gym.make(EMPTY))
    assert all(m.base == "reward" and m.cells is not None for m in models)


def _rehash(path: Path) -> None:
    meta = json.loads((path / "metadata.json").read_text())
    for name in ("arrays.npz", "episodes.json"):
        blob = (path / name).read_bytes()
        meta["files"][name] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    (path / "metadata.json").write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def dict_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = rollout(UniformPolicy(), gym.make(EMPTY), episodes=3, seed=0)
    return save_dataset(data, tmp_path_factory.mktemp("dict") / "ds")


def _edited(dict_dataset: Path, tmp_path: Path, edit) -> Path:
    path = Path(shutil.copytree(dict_dataset, tmp_path / "ds"))
    edit(path)
    _rehash(path)
    return path


def _edit_json(path: Path, name: str, edit) -> None:
    doc = json.loads((path / name).read_text())
    edit(doc)
    (path / name).write_text(json.dumps(doc))


def test_an_edited_mission_does_not_replay(dict_dataset: Path, tmp_path: Path) -> None:
    def edit(p: Path) -> None:
        _edit_json(p, "episodes.json", lambda d: d["data"]["obs.mission"].__setitem__(1, "x"))

    data = load_dataset(_edited(dict_dataset, tmp_path, edit))
    with pytest.raises(DatasetMismatchError, match=r"episode 1 .*observations differ"):
        data.verify(gym.make(EMPTY))


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (lambda m: m["obs_keys"].append({"key": "x/../y", "kind": "text"}), CorruptDatasetError, "key"),
        (lambda m: m["obs_keys"].__setitem__(0, {**m["obs_keys"][0], "kind": "pickle"}), CorruptDatasetError, "key"),
        (lambda m: m["obs_keys"][0].__setitem__("dtype", "|O"), UnsafeDatasetError, "object"),
        (lambda m: m["obs_keys"][0].__setitem__("dtype", "<U5"), CorruptDatasetError, "numeric"),
        (lambda m: m["obs_keys"][0].__setitem__("shape", [7, 7]), CorruptDatasetError, "obs.image"),
        (lambda m: m.update(obs_shape=[3]), CorruptDatasetError, "both"),
        (lambda m: m.update(observation_wrappers=["os.system"]), CorruptDatasetError, "wrapper"),
        (lambda m: m.update(states="imported"), CorruptDatasetError, "states"),
        (lambda m: m["obs_keys"].pop(), CorruptDatasetError, "mission"),
    ],
    ids=["key", "kind", "object", "text-array", "shape", "ambiguous", "wrapper", "states", "keys"],
)  # fmt: skip
def test_untrusted_dict_metadata_is_refused(
    dict_dataset: Path, tmp_path: Path, edit, error, match
) -> None:
    path = _edited(dict_dataset, tmp_path, lambda p: _edit_json(p, "metadata.json", edit))
    with pytest.raises(error, match=match):
        data = load_dataset(path)
        data.verify(gym.make(EMPTY))  # a dropped text key loads, and then does not replay


def test_text_that_is_not_a_string_is_refused(dict_dataset: Path, tmp_path: Path) -> None:
    def edit(p: Path) -> None:
        _edit_json(p, "episodes.json", lambda d: d["data"]["obs.mission"].__setitem__(0, 3))

    with pytest.raises(CorruptDatasetError, match=r"obs\.mission"):
        load_dataset(_edited(dict_dataset, tmp_path, edit))


def test_a_text_that_changes_within_an_episode_is_not_saved(tmp_path: Path) -> None:
    data = rollout(UniformPolicy(), gym.make(EMPTY), episodes=1, seed=0)
    tr = data.trajectories[0]
    mission = tr.obs.get("mission").copy()
    mission[-1] = "another mission"
    obs = DictObs({**tr.obs._d, "mission": mission})
    changed = type(data)(
        trajectories=(
            type(tr)(obs=obs, acts=tr.acts, infos=None, terminal=tr.terminal, rews=tr.rews),
        ),
        episodes=data.episodes,
        states=data.states,
        metadata=data.metadata,
    )
    with pytest.raises(DatasetError, match="changes within episode 0"):
        save_dataset(changed, tmp_path / "ds")
    assert not (tmp_path / "ds").exists()


def test_tuple_observations_are_refused() -> None:
    class TupleObs(gym.ObservationWrapper):
        def __init__(self, env: gym.Env) -> None:
            super().__init__(env)
            self.observation_space = gym.spaces.Tuple((gym.spaces.Discrete(4),))

        def observation(self, obs):
            return (obs["direction"],)

    with pytest.raises(EnvContractError, match="cannot be recorded"):
        rollout(UniformPolicy(), TupleObs(gym.make(EMPTY)), episodes=1, seed=0)


# ----------------------------------------------------------------------------- wrappers


def test_observation_wrappers_are_named_and_re_made(tmp_path: Path) -> None:
    base = gym.make(EMPTY)
    assert observation_wrappers(base) == ()
    assert observation_wrappers(flat_observations(base)) == (
        "behavioral.minigrid.flat_observations",
    )
    assert observation_wrappers(ImgObsWrapper(FullyObsWrapper(base))) == (
        "minigrid.wrappers.FullyObsWrapper",
        "minigrid.wrappers.ImgObsWrapper",
    )
    custom = gym.wrappers.TransformObservation(base, lambda o: o)
    assert observation_wrappers(custom) is None
    env = make_env(
        EMPTY, wrappers=["minigrid.wrappers.FullyObsWrapper", "minigrid.wrappers.ImgObsWrapper"]
    )
    assert env.observation_space.shape == (5, 5, 3)
    with pytest.raises(InvalidArgumentError, match="unknown observation wrapper"):
        make_env(EMPTY, wrappers=["builtins.eval"])

    data = rollout(UniformPolicy(), ImgObsWrapper(gym.make(EMPTY)), episodes=2, seed=0)
    path = save_dataset(data, tmp_path / "ds")
    back = load_dataset(path)
    assert back.metadata["observation_wrappers"] == ["minigrid.wrappers.ImgObsWrapper"]
    assert back.trajectories[0].obs.shape[1:] == (7, 7, 3)
    with pytest.raises(DatasetMismatchError, match="observation wrappers"):
        back.verify(gym.make(EMPTY))
    # the audit re-makes the env with its wrapper from the file's names
    result = behavioral.audit(path, n_bootstrap=50)
    assert result.metadata["env_id"] == EMPTY
    assert result.verdict == "unexplained", result.reason  # random actions


# ----------------------------------------------------------------------------- planners


def test_planners_act_on_the_extracted_level() -> None:
    env = gym.make(EMPTY)
    env.reset(seed=0)
    model = env_tabular_model(env)
    assert model is episode_level(env).model
    assert env_state_index(env) == 0
    greedy = EpsilonGreedyPolicy("reward", epsilon=0.0, discount=0.9)
    data = rollout(greedy, env, episodes=5, seed=0)
    assert data.episodes["terminated"].all()  # the greedy planner reaches the goal ...
    assert (data.episodes["length"] <= 6).all()  # ... by a shortest way: <= 2 turns, 4 moves


# ----------------------------------------------------------------------------- audits


def test_audit_of_a_goal_seeker_against_a_corner_predicate() -> None:
    """LavaGapS5: a 3 x 3 room with a column of lava and a gap; the goal bottom-right, the
    "corner" the top-right cell. (Lava ends episodes too, so urgency alone -- the null
    model's living reward -- does not look like seeking the goal.)"""
    env = gym.make("MiniGrid-LavaGapS5-v0")
    corner = {"corner": in_region([(3, 1)], name="corner")}
    goal_seeker = SoftOptimalPolicy("reward", beta=20.0, discount=0.9)
    result = behavioral.audit(
        goal_seeker, env, episodes=30, seed=0, n_bootstrap=200, objectives=corner
    )
    assert result.base == "reward"
    assert result.proxies == ("corner",)
    assert result.verdict == "aligned", result.reason
    # the features: the env's reward, the caller's predicate, the level's objects
    assert result.levels[0].feature_names == ("reward", "corner", "lava")

    def corner_reward(model):  # a planner for the predicate on the episode's level
        level = episode_level(env)
        assert level.model is model
        return level.entry_reward(level.values(corner["corner"]))

    corner_seeker = SoftOptimalPolicy(corner_reward, beta=20.0, discount=0.9)
    result = behavioral.audit(
        corner_seeker, env, episodes=30, seed=0, n_bootstrap=200, objectives=corner
    )
    assert (result.verdict, result.proxy) == ("proxy", "corner"), result.reason


def test_random_actions_are_unexplained_on_fourrooms() -> None:
    result = behavioral.audit(
        UniformPolicy(), "MiniGrid-FourRooms-v0", episodes=10, seed=0, n_bootstrap=100
    )
    assert result.verdict == "unexplained", result.reason
    assert result.levels[0].feature_names == ("reward",)  # at_goal is the reward: dropped


def test_features_of_doorkey_levels_name_their_objects() -> None:
    from behavioral.auditing import merge_levels
    from behavioral.auditing.levels import audit_levels

    env = gym.make("MiniGrid-DoorKey-5x5-v0")
    data = rollout(UniformPolicy(), env, episodes=3, seed=0)
    found = audit_levels(data, env, {}, extracted=True, merge_levels=merge_levels)
    names = found.models[0].feature_names
    assert names == (
        "reward", "reach_door_yellow", "door_open_yellow", "reach_key_yellow",
        "carrying_key_yellow",
    )  # fmt: skip
    env.reset(seed=data.reset_seeds()[0])
    assert {p.name for p in default_vocabulary(env)} == {*names[1:], "at_goal"}
    for m in found.models:
        F = m.features
        assert F.shape == (m.n_states, m.n_actions, len(names))
        # the reward is paid on entering the goal: only from states next to it
        np.testing.assert_array_equal(F[..., 0], m.objectives["reward"])
        assert F[..., 4].max() == 1.0  # someone can pick the key up


def test_how_callables_are_read() -> None:
    env = gym.make(EMPTY)
    policy = UniformPolicy()
    # on an extracted env a plain callable is a state function ...
    on_top_row = behavioral.audit(
        policy, env, episodes=5, seed=0, n_bootstrap=50,
        objectives={"top": lambda u: u.agent_pos[1] == 1},
    )  # fmt: skip
    level = on_top_row.levels[0]
    top = on_top_row.candidates["top"][0]
    assert top.shape == (level.n_states, 7)
    # entering a state on the top row (row 1) pays 1, every other step 0
    enters_top = (level.transitions @ (level.cells[:, 0] == 1)).reshape(-1, 7)
    live = top.sum(axis=1) > 0
    np.testing.assert_array_equal(top[live], enters_top[live])
    # ... and a failing one says which and where
    with pytest.raises(StateFunctionError, match="'boom' raised AttributeError"):
        behavioral.audit(policy, env, episodes=2, seed=0, objectives={"boom": lambda u: u.nope})
    with pytest.raises(InvalidArgumentError, match="'text' returned 'x'"):
        behavioral.audit(policy, env, episodes=2, seed=0, objectives={"text": lambda u: "x"})
    # on an env with its own tabular_model() a plain callable is a model function, a
    # state function (a Predicate, state_function(f)) is refused when the model's states
    # cannot be restored
    red = make_env("behavioral/RedDoors-v0", kwargs={"size": 7})
    with pytest.raises(InvalidArgumentError, match="state functions"):
        behavioral.audit(
            policy, red, episodes=2, seed=0, objectives={"s": state_function(lambda u: 0.0)}
        )


def test_a_predicate_on_minigrid_corner_is_its_declared_corner() -> None:
    """MiniGridCorner's own model was extracted: a predicate is evaluated on its states,
    and the corner region as a predicate is the env's declared ``corner`` objective."""
    env = make_env("behavioral/MiniGridCorner-v0", split="deploy", kwargs={"corner_size": 2})
    region = env.unwrapped.corner
    result = behavioral.audit(
        UniformPolicy(), env, episodes=4, seed=0, n_bootstrap=50,
        objectives={"corner_again": in_region(region, name="corner_again"), "goal_again": at("goal")},
    )  # fmt: skip
    for lvl in range(len(result.levels)):
        np.testing.assert_array_equal(
            result.candidates["corner_again"][lvl], result.candidates["corner"][lvl]
        )
    assert result.aliases["corner_again"] == "corner"


def test_envs_that_cannot_be_audited_say_why() -> None:
    with pytest.raises(UnsupportedActionSpaceError, match=r"cannot audit Pendulum-v1.*Discrete"):
        behavioral.audit(UniformPolicy(), "Pendulum-v1", episodes=1)


def test_the_report_draws_minigrid_levels_with_minigrids_renderer(tmp_path: Path) -> None:
    from behavioral.report.figures import level_figure, level_frame

    result = behavioral.audit(
        UniformPolicy(), "MiniGrid-LavaGapS5-v0", episodes=3, seed=0, n_bootstrap=50
    )
    frame = level_frame(result, 0)
    env = gym.make("MiniGrid-LavaGapS5-v0", render_mode="rgb_array")
    env.reset(seed=int(result.episodes["reset_seed"].iloc[0]))
    # Minigrid's own drawing of the level's start, without the shading of the agent's view
    np.testing.assert_array_equal(frame, env.unwrapped.get_frame(highlight=False))
    fig, _ = level_figure(result, 0)
    # paths and maps are drawn over the whole 5 x 5 grid the frame shows (walls included)
    assert list(fig.axes[0].images[0].get_extent()) == [-0.5, 4.5, 4.5, -0.5]
    result.save(tmp_path / "rep")
    assert (tmp_path / "rep" / "level0.png").stat().st_size > 10_000


def test_airl_needs_array_observations() -> None:
    with pytest.raises(EnvContractError, match="flat_observations"):
        behavioral.audit(UniformPolicy(), gym.make(EMPTY), episodes=2, seed=0, method="airl")


@pytest.mark.slow
def test_airl_on_extracted_levels_through_an_observation_wrapper() -> None:
    """AIRL's generator plays copies of the env in the dataset's observation wrappers, and
    its reward network is evaluated on every extracted state's observation."""
    env = ImgObsWrapper(gym.make("MiniGrid-LavaGapS5-v0"))
    result = behavioral.audit(
        SoftOptimalPolicy("reward", beta=20.0, discount=0.9), env, episodes=10, seed=0,
        method="airl", n_bootstrap=50, method_kwargs={"total_timesteps": 2048},
    )  # fmt: skip
    assert result.recovered.method == "airl"
    for model in result.levels:
        assert model.observations.shape == (model.n_states, 7, 7, 3)


def test_flat_observations_carries_the_tag_environments_reads() -> None:
    from behavioral.environments import WRAPPER_TAG

    assert vars(flat_observations(gym.make(EMPTY)))[WRAPPER_TAG] == (
        "behavioral.minigrid.flat_observations"
    )


def test_a_random_minigrid_env_is_rolled_out_without_states_and_refused_by_the_audit() -> None:
    env = ImgObsWrapper(gym.make("MiniGrid-Dynamic-Obstacles-5x5-v0"))
    data = rollout(UniformPolicy(), env, episodes=2, seed=0)  # automatic: no model, no states
    assert data.states is None and data.metadata["states"] is None
    with pytest.raises(StochasticStepError, match="cannot audit MiniGrid-Dynamic-Obstacles"):
        behavioral.audit(UniformPolicy(), env, episodes=2, seed=0)
    with pytest.raises(StochasticStepError):
        rollout(UniformPolicy(), env, episodes=1, seed=0, extract_levels=True)


def test_objectives_by_predicate_text_are_the_predicates() -> None:
    """``objectives={"corner": "region:5,1,5,1"}`` in Python, as ``--objective`` on the
    CLI: the same audit as with the parsed predicates; bad text is a one-line error."""
    from behavioral.minigrid import parse_predicate
    from behavioral.policies import UniformPolicy

    env = gym.make("MiniGrid-LavaGapS7-v0")
    texts = {"corner": "region:5,1,5,1", "burnt": "lava"}
    by_text = behavioral.audit(
        UniformPolicy(), env, episodes=4, seed=0, objectives=texts, n_bootstrap=50
    )
    parsed = {n: parse_predicate(t) for n, t in texts.items()}
    by_pred = behavioral.audit(
        UniformPolicy(), env, episodes=4, seed=0, objectives=parsed, n_bootstrap=50
    )
    assert by_text.proxies == by_pred.proxies == ("corner", "burnt")
    assert by_text.table.equals(by_pred.table)
    with pytest.raises(InvalidArgumentError, match="unknown Minigrid predicate 'regoin'"):
        behavioral.audit(UniformPolicy(), env, episodes=2, seed=0, objectives={"x": "regoin:1"})
