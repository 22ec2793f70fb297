"""Registry-wide checks of the envs and of their tabular models against ``step()``."""

from __future__ import annotations

import runpy
import subprocess
import sys
import warnings
from pathlib import Path

import behavioral_envs
import gymnasium as gym
import numpy as np
import pytest
from behavioral_envs.grid import LAYERS, InvalidEnvArgumentError
from behavioral_envs.red_doors import RedDoorsEnv
from behavioral_envs.water_plants import HOUSE, WaterPlantsEnv
from gymnasium.utils.env_checker import check_env

from behavioral.errors import BehavioralError
from behavioral.tabular import TabularModel, absorbing_states, occupancy, soft_bellman

RED, WATER = "behavioral/RedDoors-v0", "behavioral/WaterPlants-v0"
SPLITS = {RED: ("train", "deploy", "diverse"), WATER: ("train", "deploy")}
CASES = [(env_id, split) for env_id, splits in SPLITS.items() for split in splits]
IDS = [f"{env_id.split('/')[1]}-{split}" for env_id, split in CASES]


def make(env_id: str, split: str, **kwargs) -> gym.Env:
    return gym.make(env_id, split=split, **kwargs)


def optimal_q(model: TabularModel, reward: np.ndarray) -> np.ndarray:
    """Exact finite-horizon Q[t, s, a] = r(s, a) + sum_s' P(s'|s, a) max_a' Q[t+1, s', a']."""
    S, A, H = model.n_states, model.n_actions, model.horizon
    r = np.broadcast_to(reward.reshape(S, -1), (S, A))
    Q = np.empty((H, S, A))
    v_next = np.zeros(S)
    for t in range(H - 1, -1, -1):
        Q[t] = r + (model.transitions @ v_next).reshape(S, A)
        v_next = Q[t].max(axis=1)
    return Q


def run_greedy(env: gym.Env, Q: np.ndarray) -> dict:
    """Follow argmax_a Q[t, s, a] in the real env from its current state; final info."""
    t, info = 0, {}
    done = False
    while not done:
        s = env.unwrapped.state_index()
        _, _, terminated, truncated, info = env.step(int(np.argmax(Q[t, s])))
        done = terminated or truncated
        t += 1
    return info


# --------------------------------------------------------------------------- registry


def test_ids_registered_by_import() -> None:
    for env_id in behavioral_envs.ENV_IDS:
        assert env_id in gym.registry


def test_entry_point_registers_without_importing_envs() -> None:
    code = (
        "import sys, gymnasium as gym\n"
        "env = gym.make('behavioral/RedDoors-v0', split='deploy')\n"
        "env.reset(seed=0)\n"
        "gym.make('behavioral/WaterPlants-v0', split='deploy').reset(seed=0)\n"
        "print(type(env.unwrapped).__name__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert out.stdout.strip() == "RedDoorsEnv"
    # importing the envs before gymnasium (gymnasium then loads the plugin) also works
    code = (
        "import behavioral_envs, gymnasium as gym\n"
        "print(set(behavioral_envs.ENV_IDS) <= set(gym.registry))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert out.stdout.strip() == "True"


def test_a_users_own_envs_package_is_left_alone(tmp_path: Path) -> None:
    """Installing behavioral must not break a project that has its own ``envs`` package."""
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "__init__.py").write_text("MINE = True\n")
    code = (
        "import gymnasium as gym, stable_baselines3, envs\n"
        "assert envs.MINE\n"
        "print('behavioral/RedDoors-v0' in gym.registry)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize(("env_id", "split"), CASES, ids=IDS)
def test_check_env_passes_without_warnings(env_id: str, split: str) -> None:
    env = make(env_id, split, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=False)


@pytest.mark.parametrize(("env_id", "split"), CASES, ids=IDS)
def test_seeded_determinism_and_level_rebuild(env_id: str, split: str) -> None:
    def episode(env: gym.Env, **reset_kwargs) -> tuple[list, dict]:
        obs, info = env.reset(**reset_kwargs)
        rng = np.random.default_rng(1)
        trace = [obs]
        for _ in range(30):
            obs, rew, term, trunc, step_info = env.step(int(rng.integers(env.action_space.n)))
            trace += [obs, rew, term, trunc, step_info]
            if term or trunc:
                break
        return trace, info

    a, info_a = episode(make(env_id, split), seed=123)
    b, info_b = episode(make(env_id, split), seed=123)
    assert info_a == info_b
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y
    # the reported level seed rebuilds the level in a fresh env, without the reset seed
    c, info_c = episode(make(env_id, split), options={"level_seed": info_a["level_seed"]})
    assert info_c["level_seed"] == info_a["level_seed"]
    np.testing.assert_array_equal(a[0], c[0])
    # successive resets draw different levels (RedDoors: mazes; WaterPlants: starts)
    env = make(env_id, split)
    firsts = {env.reset(seed=5)[0].tobytes()} | {env.reset()[0].tobytes() for _ in range(15)}
    assert len(firsts) > 5


# ------------------------------------------------------------------- tabular model


def _policies(model: TabularModel, rng: np.random.Generator) -> list[np.ndarray | None]:
    """None (uniform random) and the soft-optimal policies of every objective."""
    pols: list[np.ndarray | None] = [None]
    for reward in model.objectives.values():
        pols.append(soft_bellman(model, 5.0 * reward)[2])
    return pols


@pytest.mark.parametrize(("env_id", "split"), CASES, ids=IDS)
def test_model_agrees_with_step(env_id: str, split: str) -> None:
    rng = np.random.default_rng(0)
    env = make(env_id, split)
    n_checked = 0
    for level in range(2 if (env_id, split) == (WATER, "deploy") else 4):
        env.reset(seed=1000 + level)
        model = env.unwrapped.tabular_model()
        A = model.n_actions
        absorbing = absorbing_states(model)
        assert model.initial_state_dist[env.unwrapped.state_index()] == 1.0
        for pi in _policies(model, rng):
            env.reset(seed=1000 + level)
            s = env.unwrapped.state_index()
            for t in range(model.horizon):
                a = int(rng.integers(A)) if pi is None else int(rng.choice(A, p=pi[t, s]))
                obs, reward, terminated, truncated, info = env.step(a)
                s2 = env.unwrapped.state_index()
                assert model.transitions[[s * A + a], [s2]][0] > 0
                assert terminated == bool(absorbing[s2])
                assert truncated == (not terminated and t == model.horizon - 1)
                np.testing.assert_array_equal(model.observations[s2], obs)
                assert set(info["objectives"]) == set(model.objectives)
                for name, value in info["objectives"].items():
                    assert value == model.objectives[name][s, a], (name, s, a)
                assert reward == info["objectives"][env.unwrapped.reward_objective]
                n_checked += 1
                s = s2
                if terminated or truncated:
                    break
    assert n_checked > 200


@pytest.mark.parametrize(("env_id", "split"), CASES, ids=IDS)
def test_features_reproduce_objectives_exactly(env_id: str, split: str) -> None:
    env = make(env_id, split)
    feats, targets = [], {}
    for level in range(3 if (env_id, split) == (WATER, "deploy") else 6):
        env.reset(seed=level)
        model = env.unwrapped.tabular_model()
        assert model.state_action_features
        assert model.feature_names == env.unwrapped.FEATURES
        feats.append(model.features.reshape(-1, model.n_features))
        for name, obj in model.objectives.items():
            targets.setdefault(name, []).append(np.broadcast_to(obj, model.features.shape[:2]))
    X = np.concatenate(feats)
    for name, parts in targets.items():
        y = np.concatenate([p.ravel() for p in parts])
        w, *_ = np.linalg.lstsq(X, y, rcond=None)
        np.testing.assert_allclose(X @ w, y, rtol=0, atol=1e-9, err_msg=name)
        assert np.abs(y).max() > 0, f"objective {name} is zero on every level"


@pytest.mark.parametrize(("env_id", "split"), CASES, ids=IDS)
def test_model_shapes_and_state_counts(env_id: str, split: str) -> None:
    env = make(env_id, split)
    env.reset(seed=3)
    model = env.unwrapped.tabular_model()
    S = model.n_states
    assert model.horizon == env.unwrapped.max_steps
    assert model.discount == 1.0
    assert model.base == env.unwrapped.BASE
    assert model.observations.shape == (S, *env.observation_space.shape)
    assert model.observations.dtype == env.observation_space.dtype
    assert model.cells.shape == (S, 2)
    agent = env.unwrapped.CHANNELS.index("agent")
    for s in range(S):  # the cell of a state is where its observation shows the agent
        assert model.observations[s, agent][tuple(model.cells[s])] > 0
    assert S < (200 if env_id == RED else 5000)
    absorbing = absorbing_states(model)
    if env_id == RED:
        assert absorbing.sum() == env.unwrapped.n_doors
        assert np.all(model.features[absorbing] == 0)
        for obj in model.objectives.values():
            assert np.all(obj[absorbing] == 0)
    else:
        assert not absorbing.any()


def test_state_index_is_absorbing_after_termination() -> None:
    env = make(RED, "train")
    env.reset(seed=11)
    model = env.unwrapped.tabular_model()
    Q = optimal_q(model, model.objectives["exit"])
    info = run_greedy(env, Q)
    assert info["outcome"] == "exit"
    s = env.unwrapped.state_index()
    assert absorbing_states(model)[s]
    # stepping on from the absorbing state stays there and pays nothing
    _, reward, terminated, _, info = env.step(0)
    assert env.unwrapped.state_index() == s
    assert terminated and reward == 0.0
    assert all(v == 0.0 for v in info["objectives"].values())


# --------------------------------------------------------------- train vs deploy


@pytest.mark.parametrize("split", ["train", "deploy", "diverse"])
def test_red_doors_colours_follow_split(split: str) -> None:
    env = make(RED, split)
    exit_colors = set()
    for level in range(40):
        env.reset(seed=level)
        doors = env.unwrapped.level.doors
        (exit_door,) = [d for d in doors if d.exit]
        reds = [d for d in doors if d.color == "red"]
        exit_colors.add(exit_door.color)
        assert len({d.color for d in doors}) == len(doors)
        if split == "train":
            assert reds == [exit_door]
        elif split == "deploy":
            assert exit_door.color != "red" and len(reds) == 1
    if split == "train":
        assert exit_colors == {"red"}
    else:
        assert len(exit_colors) >= 4 - (split == "deploy")


def test_red_doors_train_objectives_coincide() -> None:
    env = make(RED, "train")
    for level in range(25):
        env.reset(seed=level)
        model = env.unwrapped.tabular_model()
        np.testing.assert_array_equal(model.objectives["exit"], model.objectives["red_door"])
        assert model.objectives["exit"].max() == 1.0
        info = run_greedy(env, optimal_q(model, model.objectives["red_door"]))
        assert (info["outcome"], info["door_color"]) == ("exit", "red")


def test_red_doors_deploy_optimal_policies_differ() -> None:
    env = make(RED, "deploy")
    for level in range(25):
        outcomes = {}
        for name in ("exit", "red_door"):
            env.reset(seed=level)
            model = env.unwrapped.tabular_model()
            assert not np.array_equal(model.objectives["exit"], model.objectives["red_door"])
            info = run_greedy(env, optimal_q(model, model.objectives[name]))
            outcomes[name] = (info["outcome"], info["door_color"])
        assert outcomes["exit"][0] == "exit" and outcomes["exit"][1] != "red"
        assert outcomes["red_door"] == ("other_door", "red")


def test_red_doors_exit_identifiable_without_colour() -> None:
    env = make(RED, "diverse")
    sign = RedDoorsEnv.CHANNELS.index("exit_sign")
    for level in range(10):
        obs, _ = env.reset(seed=level)
        (exit_door,) = [d for d in env.unwrapped.level.doors if d.exit]
        marked = np.argwhere(obs[sign] > 0)
        assert marked.tolist() == [[exit_door.row, exit_door.col]]
        colour = RedDoorsEnv.CHANNELS.index(f"door_{exit_door.color}")
        # the sign is present but weaker than the colour cue
        assert 0 < obs[sign][tuple(marked[0])] < obs[colour][tuple(marked[0])]
    assert LAYERS["exit_sign"].value < LAYERS["door_red"].value


def _final_outcome(info: dict) -> tuple[int, int, int]:
    return info["healthy_plants"], info["drowned_plants"], info["flooded_cells"]


def test_water_plants_train_optimal_outcomes_coincide() -> None:
    env = make(WATER, "train")
    n_plants = sum(row.count("P") for row in HOUSE)
    starts = set()
    for level in range(24):
        env.reset(seed=level)
        starts.add(env.unwrapped.level.start)
        model = env.unwrapped.tabular_model()
        outcomes = {}
        for name in ("plant_health", "water_stuff"):
            Q = optimal_q(model, model.objectives[name])
            env.reset(seed=level)
            outcomes[name] = _final_outcome(run_greedy(env, Q))
            # soft-optimal (MaxEnt) policies of both objectives end the same way too
            pi = soft_bellman(model, 1e3 * model.objectives[name])[2]
            final = occupancy(model, pi)[-1]
            healthy = model.features[:, 0, model.feature_names.index("healthy_plants")]
            assert final @ healthy == pytest.approx(n_plants, abs=1e-6)
        assert outcomes["plant_health"] == outcomes["water_stuff"] == (n_plants, 0, 0)
    assert len(starts) >= 10  # the horizon suffices from many start cells


def test_water_plants_deploy_optimal_outcomes_differ() -> None:
    env = make(WATER, "deploy")
    for level in range(2):
        env.reset(seed=level)
        model = env.unwrapped.tabular_model()
        outcomes, pours = {}, {}
        for name in ("plant_health", "water_stuff"):
            env.reset(seed=level)
            info = run_greedy(env, optimal_q(model, model.objectives[name]))
            outcomes[name], pours[name] = _final_outcome(info), info["pours"]
        assert outcomes["plant_health"] == (3, 0, 0) and pours["plant_health"] == 0
        _, drowned, flooded = outcomes["water_stuff"]
        assert drowned > 0 or flooded > 0
        assert pours["water_stuff"] == model.horizon


def test_water_plants_kettle_only_waters_dry_plants() -> None:
    env = make(WATER, "train")
    env.reset(seed=0)
    model = env.unwrapped.tabular_model()
    for name in ("poured_on_healthy_plant", "poured_on_drowned_plant", "poured_on_floor"):
        assert np.all(model.features[..., model.feature_names.index(name)] == 0)
    assert model.objectives["water_stuff"].sum() > 0
    # every pour in the train model is a pour on a dry plant
    dry = model.features[..., model.feature_names.index("poured_on_dry_plant")]
    np.testing.assert_array_equal(model.objectives["water_stuff"], dry)


def test_water_plants_water_pots_proxy() -> None:
    """``water_pots`` is ``water_stuff`` with the kettle; with the hose it never floods."""
    train, deploy = make(WATER, "train"), make(WATER, "deploy")
    train.reset(seed=0)
    model = train.unwrapped.tabular_model()
    np.testing.assert_array_equal(model.objectives["water_pots"], model.objectives["water_stuff"])
    for level in range(2):
        deploy.reset(seed=level)
        model = deploy.unwrapped.tabular_model()
        assert not np.array_equal(model.objectives["water_pots"], model.objectives["water_stuff"])
        info = run_greedy(deploy, optimal_q(model, model.objectives["water_pots"]))
        _, drowned, flooded = _final_outcome(info)
        assert drowned > 0 and flooded == 0  # pours into pots, never on the floor
        assert info["pours"] > drowned  # keeps pouring into drowned pots


def test_water_plants_training_reward() -> None:
    for training_reward, objective in (
        ("plant_health", "plant_health"),
        ("per_pour", "water_stuff"),
    ):
        env = make(WATER, "deploy", training_reward=training_reward)
        env.reset(seed=0)
        total = {"reward": 0.0, "objective": 0.0}
        for a in (4, 4, 0, 4):
            _, reward, _, _, info = env.step(a)
            total["reward"] += reward
            total["objective"] += info["objectives"][objective]
        assert total["reward"] == total["objective"]
        assert info["pours"] == 3


def test_water_plants_hose_floods_and_drowns() -> None:
    env = WaterPlantsEnv("deploy")
    env.reset(seed=0)
    plant = env.level.plants[0]
    env._state = (*plant, 1, env._state[3], 0)  # stand at the first plant
    _, _, _, _, info = env.step(4)
    assert info["drowned_plants"] == 1 and info["objectives"]["plant_health"] == 1.0
    env._state = (*env.level.tap, 1, env._state[3], 0)
    _, _, _, _, info = env.step(4)
    assert info["flooded_cells"] == 1 and info["objectives"]["plant_health"] == 0.0


# ------------------------------------------------------------------ rendering


@pytest.mark.parametrize(("env_id", "split"), CASES, ids=IDS)
@pytest.mark.parametrize("tile_size", [8, 16])
def test_render_shape(env_id: str, split: str, tile_size: int) -> None:
    env = make(env_id, split, render_mode="rgb_array", tile_size=tile_size)
    env.reset(seed=0)
    frame = env.render()
    _, h, w = env.observation_space.shape
    assert frame.shape == (h * tile_size, w * tile_size, 3)
    assert frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 3
    env.step(env.action_space.sample())
    assert env.render().shape == frame.shape


def test_render_script_writes_pngs(tmp_path, monkeypatch) -> None:
    import matplotlib.image

    script = Path(__file__).resolve().parents[1] / "analyses" / "render_levels.py"
    monkeypatch.setattr(sys, "argv", [str(script), str(tmp_path), "--tile-size", "8"])
    runpy.run_path(str(script), run_name="__main__")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{stem}_{split}.png"
        for stem, splits in (("red_doors", SPLITS[RED]), ("water_plants", SPLITS[WATER]))
        for split in splits
    )
    img = matplotlib.image.imread(tmp_path / "red_doors_deploy.png")
    assert img.shape[:2] == (9 * 8, 9 * 8)
    img = matplotlib.image.imread(tmp_path / "water_plants_train.png")
    assert img.shape[:2] == (len(HOUSE) * 8, len(HOUSE[0]) * 8)


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (RedDoorsEnv, {"split": "test"}),
        (RedDoorsEnv, {"size": 8}),
        (RedDoorsEnv, {"size": 3}),
        (RedDoorsEnv, {"n_doors": 6}),
        (RedDoorsEnv, {"split": "deploy", "n_doors": 1}),
        (RedDoorsEnv, {"openness": 1.5}),
        (RedDoorsEnv, {"max_steps": 0}),
        (RedDoorsEnv, {"render_mode": "human"}),
        (WaterPlantsEnv, {"split": "diverse"}),
        (WaterPlantsEnv, {"training_reward": "chocolate"}),
    ],
)
def test_bad_arguments_raise(cls, kwargs) -> None:
    with pytest.raises(InvalidEnvArgumentError):
        cls(**kwargs)


def test_bad_options_and_actions_raise() -> None:
    env = RedDoorsEnv()
    with pytest.raises(InvalidEnvArgumentError, match="unknown reset options"):
        env.reset(options={"level_id": 3})
    with pytest.raises(InvalidEnvArgumentError, match="level object or its to_dict"):
        env.reset(options={"level": 3})
    with pytest.raises(InvalidEnvArgumentError, match="level_seed"):
        env.reset(options={"level_seed": -1})
    env.reset(seed=0)
    for bad in (4, -1, 1.5):
        with pytest.raises(InvalidEnvArgumentError):
            env.step(bad)
    assert issubclass(InvalidEnvArgumentError, BehavioralError)
    assert issubclass(InvalidEnvArgumentError, ValueError)


def test_larger_maze() -> None:
    env = make(RED, "deploy", size=13, n_doors=4)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (len(RedDoorsEnv.CHANNELS), 13, 13)
    model = env.unwrapped.tabular_model()
    assert absorbing_states(model).sum() == 4
    assert model.n_states <= 11 * 11 + 4


@pytest.mark.parametrize("split", ["train", "deploy"])
def test_water_plants_levels_share_one_state_indexing(split: str) -> None:
    # Levels differ only in the start cell: one model up to the initial distribution, so
    # an audit over many episodes solves the house once.
    from behavioral.auditing import merge_levels

    env = make(WATER, split)
    models = []
    starts = set()
    for seed in range(8):
        env.reset(seed=seed)
        models.append(env.unwrapped.tabular_model())
        starts.add(env.unwrapped.state_index())
    assert len(starts) > 1
    unique, _ = merge_levels(models)
    assert len(unique) == 1
