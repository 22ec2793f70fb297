"""Tests of behavioral.rollout: rollouts, datasets, and safe save/load."""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import pickle
import shutil
import zipfile

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import seals  # noqa: F401  (registers seals/* ids)
from corridor_env import ENV_ID, HORIZON
from imitation.data.types import TrajectoryWithRew

import behavioral
from behavioral.errors import (
    CorruptDatasetError,
    DatasetError,
    DatasetExistsError,
    DatasetMismatchError,
    DatasetNotFoundError,
    DatasetVersionError,
    EnvContractError,
    InvalidArgumentError,
    UnsafeDatasetError,
)
from behavioral.policies import EpsilonGreedyPolicy, SoftOptimalPolicy, env_tabular_model
from behavioral.rollout import Dataset, episode_seeds, load_dataset, rollout, save_dataset


def _corridor(**kwargs) -> gym.Env:
    return gym.make(ENV_ID, **kwargs)


def _data(episodes: int = 6, seed: int = 0, **env_kwargs) -> Dataset:
    env = _corridor(split="deploy", slip=0.3, **env_kwargs)
    return rollout(SoftOptimalPolicy("exit", beta=1.0), env, episodes=episodes, seed=seed)


def _assert_same(a: Dataset, b: Dataset, *, same_meta: bool = True) -> None:
    assert len(a) == len(b)
    for ta, tb in zip(a.trajectories, b.trajectories, strict=True):
        for field in ("obs", "acts", "rews"):
            x, y = getattr(ta, field), getattr(tb, field)
            assert x.dtype == y.dtype, field
            np.testing.assert_array_equal(x, y)
        assert ta.terminal == tb.terminal
        assert tb.infos is None
    if a.states is None:
        assert b.states is None
    else:
        for sa, sb in zip(a.states, b.states, strict=True):
            assert sa.dtype == sb.dtype
            np.testing.assert_array_equal(sa, sb)
    pd.testing.assert_frame_equal(a.episodes, b.episodes, check_exact=True)
    if same_meta:
        strip = ("files", "created")
        ma = {k: v for k, v in a.metadata.items() if k not in strip}
        mb = {k: v for k, v in b.metadata.items() if k not in strip}
        assert ma == mb


# --------------------------------------------------------------------------- rollout


def test_rollout_is_deterministic_under_seed() -> None:
    a, b = _data(seed=3), _data(seed=3)
    _assert_same(a, b)
    c = _data(seed=4)
    assert not all(
        np.array_equal(x.acts, y.acts) for x, y in zip(a.trajectories, c.trajectories, strict=True)
    ) or list(a.episodes["reset_seed"]) != list(c.episodes["reset_seed"])
    assert list(a.episodes["reset_seed"]) != list(c.episodes["reset_seed"])


def test_rollout_prefix_property_and_episode_seeds() -> None:
    short, long = _data(episodes=3, seed=7), _data(episodes=7, seed=7)
    for i in range(3):
        np.testing.assert_array_equal(short.trajectories[i].acts, long.trajectories[i].acts)
        np.testing.assert_array_equal(short.states[i], long.states[i])
    assert list(short.episodes["reset_seed"]) == list(long.episodes["reset_seed"][:3])
    assert list(long.episodes["reset_seed"]) == [episode_seeds(7, i)[0] for i in range(7)]


def test_rollout_records_everything() -> None:
    data = _data(episodes=8, seed=1, length=6)
    env = _corridor(split="deploy", slip=0.3, length=6)
    assert data.objective_names == ("exit", "right_door")
    assert data.metadata["objectives"] == ["exit", "right_door"]
    assert data.metadata["base"] == "exit"
    assert data.metadata["env_id"] == ENV_ID
    assert data.metadata["split"] == "deploy"
    assert data.metadata["env_kwargs"] == {"split": "deploy", "slip": 0.3, "length": 6}
    assert data.metadata["behavioral_version"] == behavioral.__version__
    assert data.metadata["policy"] == "SoftOptimalPolicy(objective='exit', beta=1.0)"
    assert data.metadata["obs_dtype"] == "<f4" and data.metadata["n_actions"] == 3
    df = data.episodes
    assert list(df["episode"]) == list(range(8))
    for i, (tr, states) in enumerate(zip(data.trajectories, data.states, strict=True)):
        assert isinstance(tr, TrajectoryWithRew)
        assert tr.obs.dtype == np.float32 and tr.obs.shape == (len(tr.acts) + 1, 7)
        assert states.shape == (len(tr.acts) + 1,)
        # the state index is the one-hot cell of the observation
        np.testing.assert_array_equal(np.argmax(tr.obs[:, :6], axis=1), states)
        row = df.iloc[i]
        assert row["length"] == len(tr.acts)
        assert row["return"] == pytest.approx(tr.rews.sum())
        # training reward is "exit": its return equals the env return
        assert row["return.exit"] == row["return"]
        exit_right = bool(tr.obs[0, -1])
        ended_right = states[-1] == 5
        if row["terminated"]:
            assert tr.terminal
            # a door entered at the last step is both terminated and truncated
            assert row["truncated"] == (row["length"] == HORIZON)
            assert row["outcome"] == ("exit" if ended_right == exit_right else "other_door")
            assert row["return.right_door"] == float(ended_right)
            assert row["outcome.door_side"] == ("right" if ended_right else "left")
        else:
            assert row["truncated"] and not tr.terminal
            assert row["length"] == HORIZON
            assert row["outcome"] is None or pd.isna(row["outcome"])
        # the level seed reported by reset is recorded and re-creates the level
        env.reset(seed=int(row["reset_seed"]))
        assert env.unwrapped.level_seed == row["level_seed"]
        assert bool(env.unwrapped.exit_right) == exit_right
    assert df["truncated"].any() and df["terminated"].any()  # both kinds occurred


def test_level_models_recreate_each_level() -> None:
    data = _data(episodes=10, seed=2)
    env = _corridor(split="deploy", slip=0.3)
    models = data.level_models(env)
    assert len(models) == 10
    for tr, model in zip(data.trajectories, models, strict=True):
        exit_right = bool(tr.obs[0, -1])
        assert model.objectives["exit"][3, 1] == pytest.approx(0.7 * exit_right)
    # same level seed -> same object
    by_level = {}
    for lvl, m in zip(data.episodes["level_seed"], models, strict=True):
        assert by_level.setdefault(lvl, m) is m
    # spelling out a default is the same env
    same = data.level_models(_corridor(split="deploy", slip=0.3, length=5, obs_dtype="float32"))
    assert [m.objectives["exit"][3, 1] for m in same] == [
        m.objectives["exit"][3, 1] for m in models
    ]
    with pytest.raises(DatasetMismatchError):
        data.level_models(_corridor(split="train", slip=0.3))
    with pytest.raises(DatasetMismatchError, match="length"):
        data.level_models(_corridor(split="deploy", slip=0.3, length=6))
    with pytest.raises(DatasetMismatchError):
        data.level_models(gym.make("seals/CliffWorld7x4-v0"))


def test_demonstrations_for_irl() -> None:
    data = _data(episodes=3)
    demos = data.demonstrations()
    for (s, a, term), tr, st in zip(demos, data.trajectories, data.states, strict=True):
        np.testing.assert_array_equal(s, st)
        np.testing.assert_array_equal(a, tr.acts)
        assert term == tr.terminal


def test_rollout_on_seals_env() -> None:
    env = gym.make("seals/CliffWorld7x4-v0")
    data = rollout(EpsilonGreedyPolicy("reward", epsilon=0.1), env, episodes=4, seed=0)
    assert data.objective_names == ()  # seals reports no info["objectives"]
    assert data.metadata["base"] == "reward"
    model = env_tabular_model(env)
    for s, tr in zip(data.states, data.trajectories, strict=True):
        # seals rewards are r(s_t): the env return is the reward summed over s_0..s_{H-1}
        assert tr.rews.sum() == pytest.approx(model.objectives["reward"][s[:-1]].sum())
    models = data.level_models(env)
    assert len(models) == 4 and all(m is models[0] for m in models)


def test_rollout_argument_checks() -> None:
    env = _corridor()
    with pytest.raises(InvalidArgumentError):
        rollout(lambda o: 0, env, episodes=0, seed=0)
    with pytest.raises(InvalidArgumentError):
        rollout(lambda o: 0, env, episodes=1, seed=-1)
    with pytest.raises(InvalidArgumentError):
        rollout(lambda o: 0, env, episodes=1, seed=1.5)
    with pytest.raises(EnvContractError):
        rollout(lambda o: 0, gym.make("MountainCarContinuous-v0"), episodes=1, seed=0)


def test_dataset_validates_lengths() -> None:
    data = _data(episodes=2)
    t0, t1 = data.trajectories
    odd = TrajectoryWithRew(
        obs=t1.obs.astype(np.float64), acts=t1.acts, infos=None, terminal=t1.terminal, rews=t1.rews
    )
    with pytest.raises(DatasetError, match="observations"):
        Dataset((t0, odd), data.episodes, data.states, data.metadata)
    with pytest.raises(DatasetError):
        Dataset(data.trajectories, data.episodes.iloc[:1], data.states, data.metadata)
    with pytest.raises(DatasetError):
        Dataset(
            data.trajectories, data.episodes, (data.states[0], data.states[0][:-1]), data.metadata
        )


# --------------------------------------------------------------------------- save / load


@pytest.mark.parametrize("obs_dtype", ["float32", "uint8"])
def test_round_trip_exact(tmp_path: pathlib.Path, obs_dtype: str) -> None:
    data = _data(episodes=5, seed=11, obs_dtype=obs_dtype)
    assert data.trajectories[0].obs.dtype == np.dtype(obs_dtype)
    out = save_dataset(data, tmp_path / "ds")
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "episodes.json", "metadata.json"]
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temp dirs left
    back = load_dataset(out, env_id=ENV_ID, split="deploy")
    _assert_same(data, back)
    assert back.metadata["created"] == data.metadata["created"]
    # a re-saved loaded dataset is byte-identical in its arrays
    save_dataset(back, tmp_path / "ds2")
    assert (tmp_path / "ds" / "arrays.npz").read_bytes() == (
        tmp_path / "ds2" / "arrays.npz"
    ).read_bytes()


def test_round_trip_table_with_missing_values_and_odd_dtypes(tmp_path: pathlib.Path) -> None:
    data = _data(episodes=4)
    df = data.episodes.copy()
    df["score32"] = np.array([0.1, np.nan, 2.5, -1e-30], dtype=np.float32)
    df["note"] = ["a", None, "ü", "d"]
    df["small"] = np.array([1, 2, 3, 255], dtype=np.uint8)
    df["flag"] = [True, False, True, True]
    df["big"] = np.array([2**62, -(2**62), 0, 1], dtype=np.int64)
    custom = Dataset(data.trajectories, df, data.states, data.metadata)
    back = load_dataset(save_dataset(custom, tmp_path / "ds"))
    pd.testing.assert_frame_equal(back.episodes, df, check_exact=True)


def test_round_trip_non_tabular_env(tmp_path: pathlib.Path) -> None:
    data = rollout(lambda o: int(o[2] > 0), gym.make("CartPole-v1"), episodes=2, seed=0)
    assert data.states is None
    back = load_dataset(save_dataset(data, tmp_path / "cp"))
    _assert_same(data, back)


def test_refuses_to_overwrite_and_replaces_atomically(tmp_path: pathlib.Path) -> None:
    a, b = _data(episodes=2, seed=0), _data(episodes=3, seed=1)
    path = save_dataset(a, tmp_path / "ds")
    with pytest.raises(DatasetExistsError):
        save_dataset(b, path)
    assert len(load_dataset(path)) == 2  # untouched
    save_dataset(b, path, overwrite=True)
    _assert_same(b, load_dataset(path))
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_failed_save_leaves_nothing(tmp_path: pathlib.Path) -> None:
    data = _data(episodes=2)
    bad = Dataset(
        data.trajectories,
        data.episodes,
        data.states,
        {**data.metadata, "env_kwargs": {"x": object()}},
    )
    with pytest.raises(DatasetError):
        save_dataset(bad, tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []
    # overwrite=True with an unserialisable dataset keeps the old one
    save_dataset(data, tmp_path / "ds")
    with pytest.raises(DatasetError):
        save_dataset(bad, tmp_path / "ds", overwrite=True)
    _assert_same(data, load_dataset(tmp_path / "ds"))
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


# ---- corrupt and mismatched datasets


@pytest.fixture()
def saved(tmp_path: pathlib.Path) -> pathlib.Path:
    return save_dataset(_data(episodes=4, seed=5), tmp_path / "ds")


def _meta(path: pathlib.Path) -> dict:
    return json.loads((path / "metadata.json").read_text())


def _write_meta(path: pathlib.Path, meta: dict) -> None:
    (path / "metadata.json").write_text(json.dumps(meta))


def _rehash(path: pathlib.Path) -> None:
    """Update the checksums so that a tampered file passes the checksum check."""
    meta = _meta(path)
    for name in ("arrays.npz", "episodes.json"):
        blob = (path / name).read_bytes()
        meta["files"][name] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    _write_meta(path, meta)


def _rewrite_arrays(path: pathlib.Path, **changes) -> None:
    with np.load(path / "arrays.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path / "arrays.npz", **arrays)
    _rehash(path)


def test_truncated_npz(saved: pathlib.Path) -> None:
    blob = (saved / "arrays.npz").read_bytes()
    (saved / "arrays.npz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CorruptDatasetError):
        load_dataset(saved)
    _rehash(saved)  # even with a matching checksum it cannot be read
    with pytest.raises(CorruptDatasetError):
        load_dataset(saved)


def test_modified_bytes_fail_checksum(saved: pathlib.Path) -> None:
    blob = bytearray((saved / "arrays.npz").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (saved / "arrays.npz").write_bytes(bytes(blob))
    with pytest.raises(CorruptDatasetError):  # zip CRC or sha256, whichever sees it first
        load_dataset(saved)


def test_edited_json_fails_checksum(saved: pathlib.Path) -> None:
    doc = json.loads((saved / "episodes.json").read_text())
    doc["data"]["return"][0] += 1.0  # still a well-formed table, same size
    text = json.dumps(doc)
    size = (saved / "episodes.json").stat().st_size
    (saved / "episodes.json").write_text(text + " " * (size - len(text.encode())))
    assert (saved / "episodes.json").stat().st_size == size
    with pytest.raises(CorruptDatasetError, match="sha256"):
        load_dataset(saved)


def test_truncated_json(saved: pathlib.Path) -> None:
    text = (saved / "episodes.json").read_text()
    (saved / "episodes.json").write_text(text[:-10])
    with pytest.raises(CorruptDatasetError):
        load_dataset(saved)
    _rehash(saved)
    with pytest.raises(CorruptDatasetError, match="not valid JSON"):
        load_dataset(saved)
    (saved / "metadata.json").write_text("{")
    with pytest.raises(CorruptDatasetError):
        load_dataset(saved)
    (saved / "metadata.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CorruptDatasetError):
        load_dataset(saved)
    (saved / "metadata.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(CorruptDatasetError):
        load_dataset(saved)


@pytest.mark.parametrize(
    "changes",
    [
        {"lengths": None},  # missing array
        {"extra": np.zeros(3)},  # unexpected array
        {"lengths": np.array([1, 2, 3, 4])},  # inconsistent with obs
        {"acts": np.zeros(3, dtype=np.int64)},  # too few actions
        {"terminal": np.zeros(4, dtype=np.int64)},  # wrong dtype
        {"acts": "shift"},  # actions out of range
        {"obs": "float64"},  # observation dtype changed
        {"states": "negative"},
    ],
)
def test_inconsistent_arrays(saved: pathlib.Path, changes: dict) -> None:
    with np.load(saved / "arrays.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    sentinel = {k: v for k, v in changes.items() if isinstance(v, str)}
    if sentinel == {"acts": "shift"}:
        changes = {"acts": arrays["acts"] + 3}
    elif sentinel == {"obs": "float64"}:
        changes = {"obs": arrays["obs"].astype(np.float64)}
    elif sentinel == {"states": "negative"}:
        changes = {"states": arrays["states"] - 100}
    _rewrite_arrays(saved, **changes)
    with pytest.raises(CorruptDatasetError):
        load_dataset(saved)


@pytest.mark.parametrize(
    "edit",
    [
        lambda doc: doc.update(n_rows=3),
        lambda doc: doc["data"]["length"].pop(),
        lambda doc: doc["data"]["length"].__setitem__(0, 99),  # differs from arrays
        lambda doc: doc["data"]["terminated"].__setitem__(0, "yes"),
        lambda doc: doc["columns"][0].update(dtype="datetime64[ns]"),
        lambda doc: doc["data"].pop("episode"),
    ],
)
def test_inconsistent_episode_table(saved: pathlib.Path, edit) -> None:
    doc = json.loads((saved / "episodes.json").read_text())
    edit(doc)
    (saved / "episodes.json").write_text(json.dumps(doc))
    _rehash(saved)
    with pytest.raises(CorruptDatasetError):
        load_dataset(saved)


def test_version_and_format(saved: pathlib.Path) -> None:
    meta = _meta(saved)
    _write_meta(saved, {**meta, "format_version": 99})
    with pytest.raises(DatasetVersionError):
        load_dataset(saved)
    _write_meta(saved, {**meta, "format": "imitation"})
    with pytest.raises(DatasetVersionError):
        load_dataset(saved)
    _write_meta(saved, {k: v for k, v in meta.items() if k != "obs_dtype"})
    with pytest.raises(CorruptDatasetError, match="obs_dtype"):
        load_dataset(saved)
    _write_meta(saved, {**meta, "seed": "zero"})
    with pytest.raises(CorruptDatasetError, match="seed"):
        load_dataset(saved)


def test_mismatch_and_missing(saved: pathlib.Path, tmp_path: pathlib.Path) -> None:
    load_dataset(saved, env_id=ENV_ID, split="deploy")
    with pytest.raises(DatasetMismatchError):
        load_dataset(saved, env_id="behavioral/RedDoors-v0")
    with pytest.raises(DatasetMismatchError):
        load_dataset(saved, split="train")
    with pytest.raises(DatasetNotFoundError):
        load_dataset(tmp_path / "nope")
    (saved / "arrays.npz").unlink()
    with pytest.raises(CorruptDatasetError):
        load_dataset(saved)
    (saved / "metadata.json").unlink()
    with pytest.raises(DatasetNotFoundError):
        load_dataset(saved)


# ---- files crafted to execute code on load


class _Payload:
    """Unpickling this creates the marker file."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_pickled_object_array_is_not_executed(saved: pathlib.Path, tmp_path: pathlib.Path) -> None:
    marker = tmp_path / "pwned-npz"
    evil = np.empty(1, dtype=object)
    evil[0] = _Payload(marker)
    # The payload is real: loading it with pickle allowed runs it.
    control = tmp_path / "control.npz"
    np.savez(control, obs=evil)
    with np.load(control, allow_pickle=True) as npz:
        npz["obs"]
    assert marker.exists()
    marker.unlink()
    # In an extra member next to the genuine arrays, with valid checksums.
    extra = shutil.copytree(saved, tmp_path / "extra")
    with zipfile.ZipFile(control) as zf:
        evil_npy = zf.read("obs.npy")
    with zipfile.ZipFile(extra / "arrays.npz", "a") as zf:
        zf.writestr("evil.npy", evil_npy)
    _rehash(extra)
    with pytest.raises(CorruptDatasetError):
        load_dataset(extra)
    assert not marker.exists()
    # In place of the observations, with valid checksums.
    _rewrite_arrays(saved, obs=evil)
    with pytest.raises(UnsafeDatasetError):
        load_dataset(saved)
    assert not marker.exists()


def test_raw_pickle_disguised_as_npy_is_not_executed(
    saved: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "pwned-raw"
    with np.load(saved / "arrays.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in arrays.items():
            if k == "obs":
                zf.writestr("obs.npy", pickle.dumps(_Payload(marker)))  # no npy header
            else:
                b = io.BytesIO()
                np.save(b, v)
                zf.writestr(f"{k}.npy", b.getvalue())
    (saved / "arrays.npz").write_bytes(buf.getvalue())
    _rehash(saved)
    with pytest.raises(CorruptDatasetError):
        load_dataset(saved)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_jsonpickle_payload_is_not_executed(saved: pathlib.Path, tmp_path: pathlib.Path) -> None:
    import jsonpickle

    marker = tmp_path / "pwned-json"
    payload = {
        "py/reduce": [
            {"py/function": "pathlib.Path.touch"},
            {
                "py/tuple": [
                    {"py/reduce": [{"py/type": "pathlib.PosixPath"}, {"py/tuple": [str(marker)]}]}
                ]
            },
        ]
    }
    # The payload is real: jsonpickle (what imitation's loader uses) runs it.
    jsonpickle.decode(json.dumps(payload))
    assert marker.exists()
    marker.unlink()
    meta = _meta(saved)
    _write_meta(saved, {**meta, "env_kwargs": {"split": payload}})
    with pytest.raises(UnsafeDatasetError):
        load_dataset(saved)
    assert not marker.exists()
    _write_meta(saved, meta)
    doc = json.loads((saved / "episodes.json").read_text())
    doc["data"]["outcome"][0] = payload
    (saved / "episodes.json").write_text(json.dumps(doc))
    _rehash(saved)
    with pytest.raises(UnsafeDatasetError):
        load_dataset(saved)
    assert not marker.exists()


# --------------------------------------------------------------------------- the project's envs

try:
    import behavioral_envs  # noqa: F401  (registers behavioral/* ids)

    HAVE_ENVS = "behavioral/RedDoors-v0" in gym.registry
except ImportError:  # pragma: no cover - before the envs land
    HAVE_ENVS = False
needs_envs = pytest.mark.skipif(not HAVE_ENVS, reason="envs/ not available")

ENV_CASES = [
    ("behavioral/RedDoors-v0", "train", "exit"),
    ("behavioral/RedDoors-v0", "deploy", "red_door"),
    ("behavioral/WaterPlants-v0", "train", "plant_health"),
    ("behavioral/WaterPlants-v0", "deploy", "water_stuff"),
]


def _model_return(model, name: str, states: np.ndarray, acts: np.ndarray) -> float:
    r = np.asarray(model.objectives[name])
    s = states[:-1]
    return float((r[s, acts] if r.ndim == 2 else r[s]).sum())


@needs_envs
@pytest.mark.parametrize("env_id, split, objective", ENV_CASES)
def test_dataset_of_project_env_agrees_with_level_models(
    tmp_path: pathlib.Path, env_id: str, split: str, objective: str
) -> None:
    env = gym.make(env_id, split=split)
    policy = EpsilonGreedyPolicy(objective, epsilon=0.2)
    data = rollout(policy, env, episodes=3, seed=0)
    _assert_same(data, rollout(policy, env, episodes=3, seed=0))
    assert data.metadata["split"] == split and data.metadata["env_id"] == env_id
    assert "level_seed" in data.episodes.columns and data.outcome_columns
    models = data.level_models(env)
    for i, (tr, states, model) in enumerate(
        zip(data.trajectories, data.states, models, strict=True)
    ):
        # every recorded transition is possible in the re-created level's model
        T = model.transitions
        probs = np.asarray(T[states[:-1] * model.n_actions + tr.acts, states[1:]]).ravel()
        assert np.all(probs > 0)
        # the recorded returns are the model's objectives summed along the episode
        for name in data.objective_names:
            assert data.episodes[f"return.{name}"].iloc[i] == pytest.approx(
                _model_return(model, name, states, tr.acts), abs=1e-9
            )
        if model.observations is not None:
            np.testing.assert_array_equal(model.observations[states], tr.obs)
    back = load_dataset(save_dataset(data, tmp_path / "ds"), env_id=env_id, split=split)
    _assert_same(data, back)


@needs_envs
def test_reddoors_planners_separate_exit_and_red_door_on_deploy() -> None:
    env = gym.make("behavioral/RedDoors-v0", split="deploy")
    to_exit = rollout(EpsilonGreedyPolicy("exit"), env, episodes=10, seed=1)
    to_red = rollout(EpsilonGreedyPolicy("red_door"), env, episodes=10, seed=1)
    assert list(to_exit.episodes["reset_seed"]) == list(to_red.episodes["reset_seed"])
    assert (to_exit.episodes["outcome"] == "exit").all()
    assert (to_red.episodes["outcome"] == "other_door").all()
    assert (to_red.episodes["outcome.door_color"] == "red").all()
    assert (to_exit.episodes["outcome.door_color"] != "red").all()
    train = rollout(
        EpsilonGreedyPolicy("red_door"), gym.make("behavioral/RedDoors-v0"), episodes=10, seed=1
    )
    assert (train.episodes["outcome"] == "exit").all()  # on train the proxy exits


@needs_envs
@pytest.mark.usefixtures("one_torch_thread")
def test_ppo_on_reddoors_trains_saves_and_acts(tmp_path: pathlib.Path) -> None:
    from behavioral.policies import load_ppo, train_ppo

    train_ppo(
        "behavioral/RedDoors-v0",
        split="train",
        total_timesteps=1024,
        seed=0,
        n_envs=2,
        progress_bar=False,
        ppo_kwargs={"n_steps": 256, "batch_size": 128, "n_epochs": 1},
        save_path=tmp_path / "reddoors",
    )
    model = load_ppo(tmp_path / "reddoors.zip")
    assert model.behavioral_metadata["split"] == "train"
    data = rollout(model, gym.make("behavioral/RedDoors-v0"), episodes=2, seed=0)
    assert len(data) == 2 and data.states is not None
    assert data.metadata["policy"].startswith("PPO(")
