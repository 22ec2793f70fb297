"""Roll policies out into trajectory datasets, and save/load datasets safely.

:func:`rollout` runs a policy (anything :func:`behavioral.policies.as_policy` accepts)
for N episodes of a gymnasium env and returns a :class:`Dataset`: imitation
``TrajectoryWithRew`` objects plus, per episode, the reset seed and the level's seed
(from the env's reset info), the state-index sequence in the level's tabular model,
every objective's return (summed ``info["objectives"]``) and the outcome the env reports
at the end of the episode.

Seeds. Episode ``i`` uses ``SeedSequence(seed, spawn_key=(i,))``: the env is reset with
its first 64-bit word shifted right by one bit (a non-negative 63-bit int, stored as
``reset_seed``), and the policy samples with ``default_rng`` of that sequence's first
child (spawn key ``(i, 0)``). So the same ``seed`` gives the same dataset, a dataset of
N episodes is a prefix of one of M > N episodes, and any episode can be replayed alone.

On disk a dataset is one directory (:func:`save_dataset` / :func:`load_dataset`)::

    metadata.json   format, format_version, library version, env id/kwargs, split, seed,
                    policy, spaces, objectives, and sha256 + size of the two files below
    episodes.json   the per-episode table: column names, dtypes and values
    arrays.npz      obs (sum(L_i + 1), *obs_shape), acts (sum L_i,), rews (sum L_i,),
                    lengths (N,), terminal (N,), states (sum(L_i + 1),) if tabular

Nothing is ever unpickled: arrays are read with ``allow_pickle=False`` after checking
every member's header (object dtypes are refused unread), JSON is parsed with the
standard decoder and must follow a fixed schema (jsonpickle tags such as ``py/reduce``
are refused). imitation's own loader decodes ``infos`` with jsonpickle, which runs code
from the file (imitation issue #874); this format stores no ``infos``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import inspect
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from imitation.data.types import TrajectoryWithRew

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
from behavioral.policies import (
    as_policy,
    check_action,
    env_state_index,
    env_tabular_model,
)
from behavioral.tabular import TabularModel

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LEVEL_INFO_KEYS",
    "Dataset",
    "check_env_matches",
    "episode_seeds",
    "load_dataset",
    "rollout",
    "save_dataset",
]

FORMAT = "behavioral.dataset"
FORMAT_VERSION = 1
LEVEL_INFO_KEYS = ("level_seed", "level_id", "level")
"""Keys of the env's reset ``info`` read (first one present) as the level's seed/id."""

_META = "metadata.json"
_EPISODES = "episodes.json"
_ARRAYS = "arrays.npz"
_RETURN_PREFIX = "return."
_OUTCOME = "outcome"
_REQUIRED_ARRAYS = ("obs", "acts", "rews", "lengths", "terminal")
_INT_KINDS = "iu"
_COLUMN_DTYPES = {
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "object",
    "str",  # pandas >= 3 default string dtype (missing values are NaN)
}


# --------------------------------------------------------------------------- dataset


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Trajectories of one policy in one env, with per-episode records.

    Attributes:
        trajectories: N imitation ``TrajectoryWithRew``: ``obs`` (L_i + 1, *obs_shape)
            in the env's dtype (including the final observation), ``acts`` (L_i,) int64,
            ``rews`` (L_i,) float64 -- the env's (training) reward -- ``infos=None``, and
            ``terminal`` (True when the env terminated, False when truncated).
        episodes: one row per episode: ``episode``, ``reset_seed``, ``level_seed``
            (when the env reports one in its reset info, see :data:`LEVEL_INFO_KEYS`),
            ``length``, ``terminated``, ``truncated``, ``return`` (env reward),
            ``return.<name>`` for every objective in ``info["objectives"]``, and
            the outcome the env reports in the last step's ``info``: ``outcome`` for
            ``info["outcome"]`` and ``outcome.<key>`` for every other scalar entry.
        states: N int64 arrays (L_i + 1,) of state indices in each episode's level model
            (``env.unwrapped.state_index()``), or None for envs without a tabular model.
        metadata: format, library version, env id and kwargs, split, seed, policy
            description, creation time, observation shape/dtype, number of actions,
            objective names, base objective.
    """

    trajectories: tuple[TrajectoryWithRew, ...]
    episodes: pd.DataFrame
    states: tuple[np.ndarray, ...] | None
    metadata: Mapping[str, Any]

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        trajs = tuple(self.trajectories)
        n = len(trajs)
        for i, tr in enumerate(trajs):
            if not isinstance(tr, TrajectoryWithRew):
                raise DatasetError(
                    f"trajectory {i} is a {type(tr).__name__}, not TrajectoryWithRew"
                )
        if not isinstance(self.episodes, pd.DataFrame):
            raise DatasetError("episodes must be a pandas DataFrame")
        if len(self.episodes) != n:
            raise DatasetError(
                f"{n} trajectories but {len(self.episodes)} rows in the episodes table"
            )
        for col in ("length", "terminated"):
            if col not in self.episodes.columns:
                raise DatasetError(f"the episodes table has no {col!r} column")
        if n:
            shape, dtype = trajs[0].obs.shape[1:], trajs[0].obs.dtype
            for i, tr in enumerate(trajs):
                if tr.obs.shape[1:] != shape or tr.obs.dtype != dtype:
                    raise DatasetError(
                        f"trajectory {i} has observations {tr.obs.dtype} {tr.obs.shape[1:]}, "
                        f"trajectory 0 has {dtype} {shape}"
                    )
                acts, rews = np.asarray(tr.acts), np.asarray(tr.rews)
                if acts.ndim != 1 or acts.dtype.kind not in _INT_KINDS:
                    raise DatasetError(f"trajectory {i}: acts must be a 1-D int array")
                if rews.dtype.kind != "f":
                    raise DatasetError(f"trajectory {i}: rews must be floats")
        lengths = np.array([len(tr.acts) for tr in trajs], dtype=np.int64)
        if not np.array_equal(self.episodes["length"].to_numpy(), lengths):
            raise DatasetError("the episodes table's 'length' column differs from the trajectories")
        terminal = np.array([bool(tr.terminal) for tr in trajs], dtype=bool)
        if not np.array_equal(self.episodes["terminated"].to_numpy(dtype=bool), terminal):
            raise DatasetError(
                "the episodes table's 'terminated' column differs from the trajectories' terminal flags"
            )
        states = self.states
        if states is not None:
            states = tuple(np.asarray(s) for s in states)
            if len(states) != n:
                raise DatasetError(f"{n} trajectories but {len(states)} state sequences")
            for i, (s, tr) in enumerate(zip(states, trajs, strict=True)):
                if s.ndim != 1 or s.shape[0] != len(tr.acts) + 1:
                    raise DatasetError(
                        f"episode {i}: state sequence of shape {s.shape} for "
                        f"{len(tr.acts)} actions (expected ({len(tr.acts) + 1},))"
                    )
                if s.dtype.kind not in _INT_KINDS or (s.size and s.min() < 0):
                    raise DatasetError(f"episode {i}: state indices must be non-negative ints")
        set_(self, "trajectories", trajs)
        set_(self, "states", states)
        set_(self, "metadata", dict(self.metadata))

    def __len__(self) -> int:
        return len(self.trajectories)

    @property
    def objective_names(self) -> tuple[str, ...]:
        """Names of the objectives whose returns the episodes table holds."""
        p = _RETURN_PREFIX
        return tuple(c[len(p) :] for c in self.episodes.columns if c.startswith(p))

    def objective_returns(self) -> pd.DataFrame:
        """(N, n_objectives) returns, one column per objective name."""
        names = self.objective_names
        out = self.episodes[[_RETURN_PREFIX + n for n in names]].copy()
        out.columns = list(names)
        return out

    @property
    def outcome_columns(self) -> tuple[str, ...]:
        """Columns of the episodes table that hold the env's reported outcome."""
        return tuple(
            c for c in self.episodes.columns if c == _OUTCOME or c.startswith(_OUTCOME + ".")
        )

    def demonstrations(self) -> list[tuple[np.ndarray, np.ndarray, bool]]:
        """``(states (L+1,), actions (L,), terminal)`` per episode, for tabular IRL.

        Raises:
            DatasetError: the dataset has no state sequences (non-tabular env).
        """
        if self.states is None:
            raise DatasetError("this dataset has no state indices (the env is not tabular)")
        return [
            (s, np.asarray(tr.acts, dtype=np.int64), bool(tr.terminal))
            for s, tr in zip(self.states, self.trajectories, strict=True)
        ]

    def level_models(self, env: gym.Env) -> tuple[TabularModel, ...]:
        """The tabular model of each episode's level, re-created in ``env``.

        For envs with ``tabular_model()`` the env is reset with each episode's recorded
        ``reset_seed`` (this changes the env's state); episodes of the same level (same
        ``level_seed``) share one model object. For seals tabular envs, whose dynamics do
        not change between episodes, one model is returned N times.

        Raises:
            DatasetMismatchError: ``env`` has another id or kwargs than the dataset's,
                or re-creating a level gives another level seed or initial state than
                recorded.
            EnvContractError: the env has no tabular model.
        """
        check_env_matches(self, env)
        u = env.unwrapped
        n = len(self)
        if not callable(getattr(u, "tabular_model", None)):
            model = env_tabular_model(env)
            return (model,) * n
        has_level = "level_seed" in self.episodes.columns
        cache: dict[Any, TabularModel] = {}
        models = []
        # Whole columns, not rows: a row of mixed int/float columns would upcast the
        # 63-bit reset seeds to float.
        reset_seeds = self.episodes["reset_seed"].tolist()
        levels = self.episodes["level_seed"].tolist() if has_level else reset_seeds
        for i in range(n):
            key, reset_seed = _py(levels[i]), int(reset_seeds[i])
            if key in cache:
                models.append(cache[key])
                continue
            _, info = env.reset(seed=reset_seed)
            if has_level:
                got = _level_of(info)
                if got != key:
                    raise DatasetMismatchError(
                        f"episode {i}: resetting with seed {reset_seed} gives "
                        f"level {got!r}, the dataset recorded {key!r}"
                    )
            if self.states is not None:
                s0 = env_state_index(env)
                if s0 != int(self.states[i][0]):
                    raise DatasetMismatchError(
                        f"episode {i}: the re-created level starts in state {s0}, the "
                        f"dataset recorded {int(self.states[i][0])}"
                    )
            cache[key] = env_tabular_model(env)
            models.append(cache[key])
        return tuple(models)

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"Dataset(episodes={len(self)}, env_id={m.get('env_id')!r}, "
            f"split={m.get('split')!r}, policy={m.get('policy')!r}, "
            f"objectives={self.objective_names})"
        )


def check_env_matches(dataset: Dataset, env: gym.Env) -> None:
    """Raise :class:`DatasetMismatchError` unless ``env`` is the dataset's env.

    The ids must be equal, and so must the keyword arguments once the env class's
    defaults are filled in (``gym.make(id)`` and ``gym.make(id, split="train")`` are the
    same env when ``"train"`` is the default). ``render_mode`` is ignored.
    """
    meta = dataset.metadata
    spec = env.spec
    env_id = spec.id if spec is not None else None
    if meta.get("env_id") is not None and env_id is not None and env_id != meta["env_id"]:
        raise DatasetMismatchError(
            f"the dataset was recorded in {meta['env_id']!r}, not {env_id!r}"
        )
    recorded = meta.get("env_kwargs")
    if spec is None or recorded is None:
        return
    defaults = _init_defaults(env.unwrapped)
    want = {**defaults, **recorded}
    have = {**defaults, **_jsonable(dict(spec.kwargs), strict=False)}
    for kw in (want, have):
        kw.pop("render_mode", None)
    if want != have:
        diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        raise DatasetMismatchError(
            f"the dataset was recorded with env kwargs {recorded!r}, the env has "
            f"{dict(spec.kwargs)!r} (they differ in {diff})"
        )


def _init_defaults(env: Any) -> dict[str, Any]:
    """JSON form of the keyword defaults of ``type(env).__init__``."""
    try:
        params = inspect.signature(type(env).__init__).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without signatures
        return {}
    return {
        p.name: _jsonable(p.default, strict=False)
        for p in params
        if p.default is not inspect.Parameter.empty
    }


# --------------------------------------------------------------------------- rollout


def episode_seeds(seed: int, episode: int) -> tuple[int, np.random.Generator]:
    """``(reset_seed, policy_rng)`` of episode ``episode`` of a rollout seeded ``seed``."""
    ss = np.random.SeedSequence(seed, spawn_key=(episode,))
    reset_seed = int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
    return reset_seed, np.random.default_rng(ss.spawn(1)[0])


def _level_of(info: Mapping[str, Any]) -> Any:
    for key in LEVEL_INFO_KEYS:
        if key in info:
            return _py(info[key])
    return None


def _py(value: Any) -> Any:
    """NumPy scalars to Python scalars (for JSON and comparisons)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed)


def rollout(
    policy: Any,
    env: gym.Env,
    *,
    episodes: int,
    seed: int,
    deterministic: bool = False,
    progress_bar: bool = False,
) -> Dataset:
    """Run ``policy`` for ``episodes`` episodes of ``env`` and record a :class:`Dataset`.

    Args:
        policy: anything :func:`behavioral.policies.as_policy` accepts (SB3 model or
            policy, callable ``obs -> action``, tabular planner).
        env: a single (not vectorised) gymnasium env, e.g. from ``gym.make`` (time limits
            are respected: a truncated episode has ``terminal=False``). State indices
            and models are read from ``env.unwrapped``.
        episodes: number of episodes N >= 1.
        seed: non-negative int; see the module docstring for how episode seeds derive
            from it. The same seed gives the same dataset.
        deterministic: ask the policy for its most probable action.
        progress_bar: show a tqdm bar over episodes.

    Returns:
        The :class:`Dataset`.

    Raises:
        InvalidActionError: the policy returned an invalid action.
        EnvContractError: non-Discrete action space, dict observations, or objective
            names changing within a rollout.
        InvalidArgumentError: ``episodes < 1`` or a bad seed.
    """
    import behavioral

    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise InvalidArgumentError(f"episodes must be an int >= 1, got {episodes!r}")
    seed = _check_seed(seed)
    pol = as_policy(policy)
    space = env.action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise EnvContractError(f"only Discrete action spaces are supported, got {space!r}")
    if isinstance(env.observation_space, (gym.spaces.Dict, gym.spaces.Tuple)):
        raise EnvContractError(
            f"only array observations are supported, got {env.observation_space!r}"
        )
    u = env.unwrapped
    tabular = callable(getattr(u, "state_index", None)) or (
        hasattr(u, "transition_matrix") and hasattr(u, "state_space")
    )

    trajectories: list[TrajectoryWithRew] = []
    state_seqs: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    objective_names: tuple[str, ...] | None = None
    base: str | None = None
    iterator: Any = range(int(episodes))
    if progress_bar:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="rollout", unit="ep")
    for i in iterator:
        reset_seed, rng = episode_seeds(seed, i)
        obs, info = env.reset(seed=reset_seed)
        level = _level_of(info)
        if i == 0 and tabular:
            base = env_tabular_model(env).base
        pol.reset(env, rng)
        obs_list = [obs]
        acts: list[int] = []
        rews: list[float] = []
        states = [env_state_index(env)] if tabular else None
        sums: dict[str, float] | None = None
        terminated = truncated = False
        while not (terminated or truncated):
            a = check_action(pol.act(obs, env, rng, deterministic=deterministic), space)
            obs, reward, terminated, truncated, info = env.step(a)
            obs_list.append(obs)
            acts.append(a)
            rews.append(float(reward))
            if states is not None:
                states.append(env_state_index(env))
            step_obj = info.get("objectives")
            if step_obj is not None:
                names = tuple(step_obj)
                if objective_names is None:
                    objective_names = names
                if names != objective_names:
                    raise EnvContractError(
                        f"info['objectives'] names changed from {objective_names} to {names} "
                        f"(episode {i}, step {len(acts) - 1})"
                    )
                if sums is None:
                    sums = dict.fromkeys(names, 0.0)
                for k, v in step_obj.items():
                    sums[k] += float(v)
            elif objective_names is not None:
                raise EnvContractError(
                    f"info['objectives'] missing at episode {i}, step {len(acts) - 1}"
                )
        obs_arr = np.stack([np.asarray(o) for o in obs_list])
        traj = TrajectoryWithRew(
            obs=obs_arr,
            acts=np.asarray(acts, dtype=np.int64),
            infos=None,
            terminal=bool(terminated),
            rews=np.asarray(rews, dtype=np.float64),
        )
        trajectories.append(traj)
        if states is not None:
            state_seqs.append(np.asarray(states, dtype=np.int64))
        row: dict[str, Any] = {"episode": i, "reset_seed": reset_seed}
        if level is not None:
            row["level_seed"] = level
        row.update(
            length=len(acts),
            terminated=bool(terminated),
            truncated=bool(truncated),
            **{"return": float(np.sum(traj.rews))},
        )
        for k, v in (sums or {}).items():
            row[_RETURN_PREFIX + k] = v
        row.update(_outcome_columns(info))
        rows.append(row)

    episodes_df = pd.DataFrame(rows)
    if "level_seed" in episodes_df.columns and episodes_df["level_seed"].isna().any():
        raise EnvContractError("the env reported a level seed in some reset infos but not all")
    spec = env.spec
    env_kwargs = _jsonable(dict(spec.kwargs), strict=False) if spec is not None else {}
    split = env_kwargs.get("split", getattr(u, "split", None))
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "behavioral_version": behavioral.__version__,
        "env_id": spec.id if spec is not None else None,
        "env_kwargs": env_kwargs,
        "split": split if isinstance(split, str) or split is None else str(split),
        "seed": seed,
        "episodes": int(episodes),
        "deterministic": bool(deterministic),
        "policy": pol.description,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "obs_shape": list(trajectories[0].obs.shape[1:]),
        "obs_dtype": trajectories[0].obs.dtype.str,
        "n_actions": int(space.n),
        "objectives": list(objective_names or ()),
        "base": base,
    }
    return Dataset(
        trajectories=tuple(trajectories),
        episodes=episodes_df,
        states=tuple(state_seqs) if tabular else None,
        metadata=metadata,
    )


def _outcome_columns(info: Mapping[str, Any]) -> dict[str, Any]:
    """Outcome columns from the last step's ``info``.

    ``info["outcome"]`` becomes the column ``outcome`` (a mapping is flattened into
    ``outcome.<key>``); every other scalar entry (bool, int, float, str, None), except
    ``objectives`` and gymnasium's ``TimeLimit.*`` bookkeeping, becomes ``outcome.<key>``
    (e.g. RedDoors' ``door_color``, WaterPlants' plant counts). Non-scalar entries are
    not recorded.
    """
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key == "objectives" or str(key).startswith("TimeLimit."):
            continue
        value = _py(value)
        if key == _OUTCOME and isinstance(value, Mapping):
            for k, v in value.items():
                v = _py(v)
                if _is_scalar(v):
                    out[f"{_OUTCOME}.{k}"] = v
        elif _is_scalar(value):
            out[_OUTCOME if key == _OUTCOME else f"{_OUTCOME}.{key}"] = value
    return out


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


# --------------------------------------------------------------------------- JSON helpers


def _jsonable(value: Any, *, strict: bool) -> Any:
    """Plain-JSON copy of ``value``; non-JSON leaves become ``repr`` unless ``strict``."""
    value = _py(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            if strict:
                raise DatasetError(f"non-finite float {value!r} cannot be stored in JSON")
            return repr(value)
        return value
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), strict=strict)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, strict=strict) for v in value]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                if strict:
                    raise DatasetError(f"JSON object keys must be strings, got {k!r}")
                k = str(k)
            out[k] = _jsonable(v, strict=strict)
        return out
    if strict:
        raise DatasetError(f"{type(value).__name__} value {value!r} cannot be stored in JSON")
    return repr(value)


def _episodes_to_json(df: pd.DataFrame) -> dict[str, Any]:
    columns = []
    data = {}
    for name in df.columns:
        if not isinstance(name, str):
            raise DatasetError(f"episode table column names must be strings, got {name!r}")
        col = df[name]
        dtype = str(col.dtype)
        if dtype not in _COLUMN_DTYPES:
            raise DatasetError(
                f"episode table column {name!r} has dtype {dtype}, which datasets do not "
                f"store (supported: {sorted(_COLUMN_DTYPES)})"
            )
        values = []
        for v in col.tolist():
            v = _py(v)
            if isinstance(v, float) and math.isnan(v):
                v = None
            elif v is not None and not isinstance(v, (bool, int, float, str)):
                raise DatasetError(
                    f"episode table column {name!r} holds a {type(v).__name__}; only "
                    "scalars (bool, int, float, str, None) are stored"
                )
            if isinstance(v, float) and not math.isfinite(v):
                raise DatasetError(f"episode table column {name!r} holds {v!r}")
            values.append(v)
        columns.append({"name": name, "dtype": dtype})
        data[name] = values
    return {"columns": columns, "n_rows": len(df), "data": data}


def _episodes_from_json(doc: Any, n: int) -> pd.DataFrame:
    if not isinstance(doc, dict) or set(doc) != {"columns", "n_rows", "data"}:
        raise CorruptDatasetError(f"{_EPISODES} must be an object with columns, n_rows, data")
    columns, n_rows, data = doc["columns"], doc["n_rows"], doc["data"]
    if type(n_rows) is not int or n_rows != n:
        raise CorruptDatasetError(
            f"{_EPISODES} has n_rows={n_rows!r}, the arrays hold {n} episodes"
        )
    if not isinstance(columns, list) or not isinstance(data, dict):
        raise CorruptDatasetError(f"{_EPISODES}: columns must be a list and data an object")
    names = []
    series = {}
    for c in columns:
        if not (isinstance(c, dict) and set(c) == {"name", "dtype"}):
            raise CorruptDatasetError(f"{_EPISODES}: bad column entry {c!r}")
        name, dtype = c["name"], c["dtype"]
        if not isinstance(name, str) or dtype not in _COLUMN_DTYPES:
            raise CorruptDatasetError(f"{_EPISODES}: bad column {name!r} of dtype {dtype!r}")
        if name in series:
            raise CorruptDatasetError(f"{_EPISODES}: duplicate column {name!r}")
        values = data.get(name)
        if not isinstance(values, list) or len(values) != n:
            raise CorruptDatasetError(
                f"{_EPISODES}: column {name!r} must hold {n} values, got "
                f"{len(values) if isinstance(values, list) else type(values).__name__}"
            )
        series[name] = _typed_column(name, dtype, values)
        names.append(name)
    if set(data) != set(names):
        raise CorruptDatasetError(
            f"{_EPISODES}: data columns {sorted(data)} differ from declared {names}"
        )
    return pd.DataFrame(series, columns=names) if names else pd.DataFrame(index=range(n))


def _typed_column(name: str, dtype: str, values: list[Any]) -> pd.Series:
    def bad(v: Any) -> CorruptDatasetError:
        return CorruptDatasetError(f"{_EPISODES}: column {name!r} ({dtype}) holds {v!r}")

    if dtype == "bool":
        for v in values:
            if not isinstance(v, bool):
                raise bad(v)
    elif dtype[0] in "iu":
        info = np.iinfo(dtype)
        for v in values:
            if type(v) is not int or not info.min <= v <= info.max:
                raise bad(v)
    elif dtype.startswith("float"):
        for v in values:
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise bad(v)
        values = [math.nan if v is None else v for v in values]
    elif dtype == "str":
        for v in values:
            if v is not None and not isinstance(v, str):
                raise bad(v)
    else:  # object: JSON scalars only
        for v in values:
            if v is not None and not isinstance(v, (bool, int, float, str)):
                raise bad(v)
    return pd.Series(values, dtype=dtype, name=name)


def _find_jsonpickle_tag(value: Any, where: str) -> None:
    """Refuse jsonpickle/cloudpickle-style tags anywhere in a parsed JSON document."""
    stack = [(value, where)]
    while stack:
        v, path = stack.pop()
        if isinstance(v, dict):
            for k, item in v.items():
                if k.startswith("py/") or k in (":serialized:", "__reduce__"):
                    raise UnsafeDatasetError(
                        f"{path} contains the serialisation tag {k!r}; datasets never hold "
                        "pickled objects, so the file is refused without decoding it"
                    )
                stack.append((item, f"{path}.{k}"))
        elif isinstance(v, list):
            stack.extend((item, f"{path}[{j}]") for j, item in enumerate(v))


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorruptDatasetError(f"missing file {path.name} in {path.parent}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptDatasetError(f"cannot read {path}: {err}") from None

    def no_constants(c: str) -> Any:
        raise CorruptDatasetError(f"{path.name} contains the non-JSON constant {c}")

    try:
        doc = json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as err:
        raise CorruptDatasetError(f"{path.name} is not valid JSON: {err}") from None
    except RecursionError:
        raise CorruptDatasetError(f"{path.name} is nested too deeply") from None
    _find_jsonpickle_tag(doc, path.name)
    return doc


# --------------------------------------------------------------------------- save / load


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def save_dataset(
    dataset: Dataset, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write ``dataset`` to the directory ``path`` atomically.

    Everything is written into a temporary directory next to ``path`` and renamed into
    place. Overwriting (``overwrite=True``) moves the old directory aside, renames the
    new one in, then deletes the old one, so ``path`` is never a mix of two datasets.

    Returns:
        The dataset directory.

    Raises:
        DatasetExistsError: ``path`` exists and ``overwrite`` is False.
        DatasetError: metadata or the episodes table hold values JSON cannot store.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise DatasetExistsError(f"{path} exists; pass overwrite=True to replace it")
    if path.exists() and not path.is_dir():
        raise DatasetExistsError(f"{path} exists and is not a dataset directory")
    meta = _jsonable(dict(dataset.metadata), strict=True)
    meta.pop("files", None)
    meta["format"] = FORMAT
    meta["format_version"] = FORMAT_VERSION
    episodes_doc = _episodes_to_json(dataset.episodes)

    trajs = dataset.trajectories
    arrays = {
        "obs": np.concatenate([tr.obs for tr in trajs]),
        "acts": np.concatenate([np.asarray(tr.acts) for tr in trajs]),
        "rews": np.concatenate([np.asarray(tr.rews) for tr in trajs]),
        "lengths": np.array([len(tr.acts) for tr in trajs], dtype=np.int64),
        "terminal": np.array([bool(tr.terminal) for tr in trajs], dtype=bool),
    }
    if dataset.states is not None:
        arrays["states"] = np.concatenate(dataset.states).astype(np.int64, copy=False)
    for name, arr in arrays.items():
        if arr.dtype.hasobject:
            raise DatasetError(f"array {name!r} has dtype object, which datasets do not store")
    meta["obs_shape"] = list(arrays["obs"].shape[1:])
    meta["obs_dtype"] = arrays["obs"].dtype.str
    meta["episodes"] = len(trajs)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp-"))
    try:
        with open(tmp / _ARRAYS, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        episodes_bytes = json.dumps(episodes_doc, allow_nan=False).encode("utf-8")
        _fsync_write(tmp / _EPISODES, episodes_bytes)
        meta["files"] = {
            name: {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
            for name in (_ARRAYS, _EPISODES)
        }
        meta_bytes = json.dumps(meta, indent=2, allow_nan=False).encode("utf-8")
        _fsync_write(tmp / _META, meta_bytes)
        _fsync_dir(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
            os.rmdir(old)
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _check_npz_members(path: Path, expected: set[str]) -> None:
    """Check member names and dtypes from the .npy headers, without loading any data."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            members = {n.removesuffix(".npy") for n in names}
            if len(members) != len(names) or any(not n.endswith(".npy") for n in names):
                raise CorruptDatasetError(f"{_ARRAYS} holds unexpected members {names}")
            if members != expected:
                raise CorruptDatasetError(
                    f"{_ARRAYS} holds arrays {sorted(members)}, expected {sorted(expected)}"
                )
            for n in names:
                with zf.open(n) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        _, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        _, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        raise CorruptDatasetError(f"{_ARRAYS}/{n}: unsupported .npy version")
                if dtype.hasobject:
                    raise UnsafeDatasetError(
                        f"{_ARRAYS}/{n} is a pickled object array ({dtype}); datasets never "
                        "hold those, so it is refused without unpickling it"
                    )
    except DatasetError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as err:
        raise CorruptDatasetError(f"{path} is not a readable npz archive: {err}") from None


def _load_arrays(path: Path, expected: set[str]) -> dict[str, np.ndarray]:
    _check_npz_members(path, expected)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as err:
        raise CorruptDatasetError(f"cannot read {path}: {err}") from None


def _need(meta: Mapping[str, Any], key: str, types: type | tuple[type, ...]) -> Any:
    if key not in meta:
        raise CorruptDatasetError(f"{_META} has no {key!r}")
    v = meta[key]
    if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise CorruptDatasetError(f"{_META}: {key!r} has the wrong type ({v!r})")
    if not isinstance(v, types):
        raise CorruptDatasetError(f"{_META}: {key!r} has the wrong type ({v!r})")
    return v


def load_dataset(
    path: str | os.PathLike[str],
    *,
    env_id: str | None = None,
    split: str | None = None,
) -> Dataset:
    """Load and validate a dataset written by :func:`save_dataset`.

    Never executes code from the files: JSON is parsed with the standard decoder and a
    fixed schema, arrays are read with ``allow_pickle=False`` after their headers are
    checked. Every check runs before the dataset is built: format and version, file
    checksums and sizes, array names, dtypes and shapes, lengths against each other and
    against the episodes table, actions within ``n_actions``, state indices >= 0.

    Args:
        path: the dataset directory.
        env_id: if given, the dataset must have been recorded in this env.
        split: if given, the dataset must have been recorded on this split.

    Raises:
        DatasetNotFoundError: no directory or no metadata file at ``path``.
        DatasetVersionError: another format or format version.
        UnsafeDatasetError: pickled object arrays or jsonpickle tags in the files.
        CorruptDatasetError: truncated, unparsable or inconsistent files.
        DatasetMismatchError: ``env_id`` or ``split`` differ from the recorded ones.
    """
    path = Path(path)
    if not path.is_dir():
        raise DatasetNotFoundError(f"no dataset directory at {path}")
    if not (path / _META).is_file():
        raise DatasetNotFoundError(f"{path} has no {_META}: not a dataset directory")
    meta = _read_json(path / _META)
    if not isinstance(meta, dict):
        raise CorruptDatasetError(f"{_META} must hold a JSON object")
    if meta.get("format") != FORMAT:
        raise DatasetVersionError(f"{path} is not a {FORMAT} (format={meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION or isinstance(meta.get("format_version"), bool):
        raise DatasetVersionError(
            f"{path} has format version {meta.get('format_version')!r}; this library reads "
            f"version {FORMAT_VERSION}"
        )
    rec_env = _need(meta, "env_id", (str, type(None)))
    _need(meta, "env_kwargs", dict)
    rec_split = _need(meta, "split", (str, type(None)))
    _need(meta, "seed", int)
    n_episodes = _need(meta, "episodes", int)
    _need(meta, "policy", str)
    _need(meta, "behavioral_version", str)
    _need(meta, "created", str)
    obs_shape = _need(meta, "obs_shape", list)
    obs_dtype_str = _need(meta, "obs_dtype", str)
    n_actions = _need(meta, "n_actions", int)
    objectives = _need(meta, "objectives", list)
    files = _need(meta, "files", dict)
    if not all(type(d) is int and d >= 0 for d in obs_shape):
        raise CorruptDatasetError(f"{_META}: bad obs_shape {obs_shape!r}")
    if not all(isinstance(o, str) for o in objectives):
        raise CorruptDatasetError(f"{_META}: objectives must be names")
    if n_episodes < 1 or n_actions < 1:
        raise CorruptDatasetError(f"{_META}: episodes and n_actions must be >= 1")
    try:
        obs_dtype = np.dtype(obs_dtype_str)
    except TypeError:
        raise CorruptDatasetError(f"{_META}: bad obs_dtype {obs_dtype_str!r}") from None
    if obs_dtype.hasobject:
        raise UnsafeDatasetError(f"{_META}: object observation dtype is refused")

    if env_id is not None and rec_env != env_id:
        raise DatasetMismatchError(f"{path} was recorded in {rec_env!r}, expected {env_id!r}")
    if split is not None and rec_split != split:
        raise DatasetMismatchError(
            f"{path} was recorded on split {rec_split!r}, expected {split!r}"
        )

    has_states = "states" in _npz_names(path / _ARRAYS)
    expected = set(_REQUIRED_ARRAYS) | ({"states"} if has_states else set())
    _check_npz_members(path / _ARRAYS, expected)
    if set(files) != {_ARRAYS, _EPISODES}:
        raise CorruptDatasetError(f"{_META}: 'files' must describe {_ARRAYS} and {_EPISODES}")
    for name, rec in files.items():
        if not (isinstance(rec, dict) and isinstance(rec.get("sha256"), str)):
            raise CorruptDatasetError(f"{_META}: bad checksum record for {name}")
        fp = path / name
        if not fp.is_file():
            raise CorruptDatasetError(f"missing file {name} in {path}")
        size = fp.stat().st_size
        if rec.get("bytes") != size:
            raise CorruptDatasetError(
                f"{name} has {size} bytes, the metadata recorded {rec.get('bytes')!r} "
                "(truncated or modified)"
            )
        if _sha256(fp) != rec["sha256"]:
            raise CorruptDatasetError(f"{name} does not match its sha256 checksum (modified)")

    arrays = _load_arrays(path / _ARRAYS, expected)
    lengths, terminal = arrays["lengths"], arrays["terminal"]
    obs, acts, rews = arrays["obs"], arrays["acts"], arrays["rews"]
    if lengths.shape != (n_episodes,) or lengths.dtype.kind not in _INT_KINDS:
        raise CorruptDatasetError(
            f"lengths must be ({n_episodes},) ints, got {lengths.dtype} {lengths.shape}"
        )
    if np.any(lengths < 1):
        raise CorruptDatasetError("every episode must have at least one action")
    if terminal.shape != (n_episodes,) or terminal.dtype != np.bool_:
        raise CorruptDatasetError(f"terminal must be ({n_episodes},) bool")
    n_steps = int(lengths.sum())
    n_obs = n_steps + n_episodes
    if obs.dtype != obs_dtype or list(obs.shape[1:]) != obs_shape or obs.shape[:1] != (n_obs,):
        raise CorruptDatasetError(
            f"obs must be {obs_dtype} of shape {(n_obs, *obs_shape)}, got {obs.dtype} {obs.shape}"
        )
    if acts.shape != (n_steps,) or acts.dtype.kind not in _INT_KINDS:
        raise CorruptDatasetError(f"acts must be ({n_steps},) ints, got {acts.dtype} {acts.shape}")
    if acts.size and (acts.min() < 0 or acts.max() >= n_actions):
        raise CorruptDatasetError(f"acts outside [0, {n_actions})")
    if rews.shape != (n_steps,) or rews.dtype.kind != "f":
        raise CorruptDatasetError(
            f"rews must be ({n_steps},) floats, got {rews.dtype} {rews.shape}"
        )
    states = None
    if has_states:
        st = arrays["states"]
        if st.shape != (n_obs,) or st.dtype.kind not in _INT_KINDS or (st.size and st.min() < 0):
            raise CorruptDatasetError(f"states must be ({n_obs},) non-negative ints")
        states = tuple(np.split(st, np.cumsum(lengths + 1)[:-1]))

    episodes = _episodes_from_json(_read_json(path / _EPISODES), n_episodes)
    obs_split = np.split(obs, np.cumsum(lengths + 1)[:-1])
    act_split = np.split(acts, np.cumsum(lengths)[:-1])
    rew_split = np.split(rews, np.cumsum(lengths)[:-1])
    try:
        trajectories = tuple(
            TrajectoryWithRew(obs=o, acts=a, infos=None, terminal=bool(t), rews=r)
            for o, a, r, t in zip(obs_split, act_split, rew_split, terminal, strict=True)
        )
        return Dataset(trajectories=trajectories, episodes=episodes, states=states, metadata=meta)
    except (DatasetError, ValueError) as err:
        if isinstance(err, CorruptDatasetError):
            raise
        raise CorruptDatasetError(f"{path}: {err}") from None


def _npz_names(path: Path) -> set[str]:
    if not path.is_file():
        raise CorruptDatasetError(f"missing file {path.name} in {path.parent}")
    try:
        with zipfile.ZipFile(path) as zf:
            return {n.removesuffix(".npy") for n in zf.namelist()}
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise CorruptDatasetError(f"{path} is not a readable npz archive: {err}") from None
