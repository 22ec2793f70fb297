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
                    lengths (N,), terminal (N,), states (sum(L_i + 1),) if tabular;
                    dict observations as obs.<key> (sum(L_i + 1), *shape) per array key,
                    and each text key (Minigrid's mission, constant within an episode)
                    as the episodes table's obs.<key> column

Envs without a model of their own (Minigrid, any discrete env): each episode's level is
extracted right after its reset (:mod:`behavioral.extract`) and the state indices refer to
it; :meth:`Dataset.level_models` re-creates those levels from the reset seeds.

A dataset comes from the people whose policy is audited, so loading it trusts nothing:

* nothing is unpickled or imported: arrays are read from their ``.npy`` headers and data
  (object dtypes refused unread), JSON with the standard decoder and a fixed schema
  (jsonpickle tags such as ``py/reduce`` refused; imitation's own loader decodes ``infos``
  with jsonpickle, which runs code from the file -- imitation issue #874 -- and this
  format stores no ``infos``); the env id must be a plain registered id (no
  ``module:`` part, :mod:`behavioral.environments`) and ``env_kwargs`` JSON scalars;
* memory is bounded: every array's shape, dtype and size are checked against the
  metadata and :data:`MAX_DATASET_BYTES` (512 MiB; ``load_dataset(..., max_bytes=...)``,
  CLI ``--max-dataset-bytes``) from the headers *before* anything is decompressed, then
  each array is streamed into a buffer of exactly its declared size
  (:mod:`behavioral.npz`); the JSON files are capped too;
* files must be regular files in the dataset directory (symbolic links are refused);
* values must be finite (rewards, float observations, returns);
* what the file claims happened is checked against the env: :meth:`Dataset.verify`
  replays every episode's recorded actions from its reset seed and compares observations,
  rewards, states, lengths, end flags, returns and outcomes (``behavioral.audit`` does
  this for every dataset it audits).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import inspect
import json
import math
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from imitation.data.types import DictObs, TrajectoryWithRew

from behavioral import files
from behavioral.checks import check_bool, check_int, check_seed
from behavioral.environments import (
    check_env_id,
    check_env_kwargs,
    check_observation_wrappers,
    observation_wrappers,
)
from behavioral.errors import (
    BehavioralError,
    CorruptDatasetError,
    DatasetError,
    DatasetExistsError,
    DatasetMismatchError,
    DatasetNotFoundError,
    DatasetTooLargeError,
    DatasetVersionError,
    EnvContractError,
    InvalidArgumentError,
    InvalidEnvIdError,
    OutputExistsError,
    UnsafeDatasetError,
)
from behavioral.npz import NpzReader
from behavioral.policies import (
    SB3Policy,
    as_policy,
    check_action,
    check_policy_fits_env,
    env_state_index,
    env_tabular_model,
    policy_name,
)
from behavioral.tabular import TabularModel

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LEVEL_INFO_KEYS",
    "MAX_DATASET_BYTES",
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

#: The most array data :func:`load_dataset` decompresses by default (bytes, all arrays).
MAX_DATASET_BYTES = 512 << 20
#: The largest ``metadata.json`` read.
MAX_METADATA_BYTES = 1 << 20
#: The largest ``episodes.json`` read (parsing JSON takes several times its size).
MAX_EPISODES_JSON_BYTES = 64 << 20

#: The longest level spec (canonical JSON) an episodes table may record (a 51 x 51
#: RedDoors maze takes about 3 kB).
MAX_LEVEL_SPEC_CHARS = 1 << 16

_META = "metadata.json"
_EPISODES = "episodes.json"
_ARRAYS = "arrays.npz"
_RETURN_PREFIX = "return."
_OUTCOME = "outcome"
_LEVEL = "level"
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
        trajs = tuple(self.trajectories)
        if not isinstance(self.episodes, pd.DataFrame):
            raise DatasetError("episodes must be a pandas DataFrame")
        if len(self.episodes) != len(trajs):
            raise DatasetError(
                f"{len(trajs)} trajectories but {len(self.episodes)} rows in the episodes table"
            )
        for i, tr in enumerate(trajs):
            _check_trajectory(i, tr, trajs[0])
        _check_episode_table(self.episodes, trajs)
        states = None if self.states is None else _checked_states(self.states, trajs)
        object.__setattr__(self, "trajectories", trajs)
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "metadata", dict(self.metadata))

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
        ``reset_seed``, and its recorded level spec when the episode was played on a given
        level (:meth:`level_specs`); this changes the env's state. Episodes of the same
        level (same ``level_seed`` or spec) share one model object. For seals tabular
        envs, whose dynamics do not change between episodes, one model is returned N times.
        For envs without a model of their own (Minigrid, any env with ``Discrete``
        actions) each level is extracted again from its reset state (:meth:`iter_levels`;
        the extraction cache serves levels seen before).

        Raises:
            DatasetMismatchError: ``env`` has another id or kwargs than the dataset's,
                re-creating a level gives another level seed or initial state than
                recorded, or a recorded level spec is not a level of ``env``.
            CorruptDatasetError: a recorded level spec is not a JSON object.
            EnvContractError: the env has no tabular model.
        """
        check_env_matches(self, env)
        u = env.unwrapped
        n = len(self)
        if _extracted_env(env):  # envs without a model of their own: extracted levels
            models: list[Any] = [None] * n
            for episodes, model, _ in self.iter_levels(env):
                for i in episodes:
                    models[i] = model
            return tuple(models)
        if not callable(getattr(u, "tabular_model", None)):
            model = env_tabular_model(env)
            return (model,) * n
        has_level = "level_seed" in self.episodes.columns
        cache: dict[Any, TabularModel] = {}
        models = []
        reset_seeds = self.reset_seeds()
        specs = self.level_specs(env)
        levels = self.episodes["level_seed"].tolist() if has_level else reset_seeds
        for i in range(n):
            spec = specs[i]
            key = (_LEVEL, spec.to_json()) if spec is not None else _py(levels[i])
            reset_seed = int(reset_seeds[i])
            if key in cache:
                models.append(cache[key])
                continue
            _, info = env.reset(seed=reset_seed, options=None if spec is None else {"level": spec})
            if has_level and spec is None:
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

    def iter_levels(
        self, env: gym.Env, *, observations: bool = False
    ) -> Iterator[tuple[tuple[int, ...], TabularModel, Any]]:
        """Each level of the dataset re-created in ``env``: ``(its episodes, its model, its
        extracted level or None)``.

        While the caller holds an item, ``env`` is in that level (reset with the
        ``reset_seed`` of its first episode), so state functions can be evaluated on the
        extracted level (:meth:`behavioral.extract.ExtractedLevel.features`). Levels are
        told apart as in :meth:`level_models` (by ``level_seed`` when the env reports
        one, else by reset seed: identical levels reached by different seeds come as
        separate items with equal models). The extracted level is the one the
        dataset's state indices refer to: for envs without a model of their own, the
        level extracted from the reset state (:func:`behavioral.extract.episode_level`);
        for envs whose own model is extracted (``env.unwrapped.extracted_level()``, e.g.
        MiniGridCorner), that level; else None. Seals tabular envs (one model for every
        episode) give one item. ``observations=True``: extracted models carry the
        observation of every state (``model.observations``, for AIRL).

        Raises:
            DatasetMismatchError: another env than the dataset's, or a re-created level
                with another level seed or initial state than recorded.
            EnvContractError: the env has no tabular model and none can be extracted.
        """
        check_env_matches(self, env)
        u = env.unwrapped
        extracted = _extracted_env(env)
        if not extracted and not callable(getattr(u, "tabular_model", None)):
            yield tuple(range(len(self))), env_tabular_model(env), None
            return
        has_level = "level_seed" in self.episodes.columns
        seeds = self.reset_seeds()
        specs = [None] * len(self) if extracted else self.level_specs(env)
        keys = [_py(v) for v in self.episodes["level_seed"].tolist()] if has_level else seeds
        keys = [k if p is None else (_LEVEL, p.to_json()) for k, p in zip(keys, specs)]
        groups: dict[Any, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(key, []).append(i)
        for key, episodes in groups.items():
            i = episodes[0]
            spec = specs[i]
            _, info = env.reset(
                seed=int(seeds[i]), options=None if spec is None else {"level": spec}
            )
            if has_level and spec is None and _level_of(info) != key:
                raise DatasetMismatchError(
                    f"episode {i}: resetting with seed {seeds[i]} gives level "
                    f"{_level_of(info)!r}, the dataset recorded {key!r}"
                )
            if extracted:
                from behavioral.extract import episode_level

                level = episode_level(env, fresh=True, observations=observations)
                model, s0 = level.model, level.state_index(env, terminated=False)
            else:
                own = getattr(u, "extracted_level", None)
                level = own() if callable(own) else None
                model, s0 = env_tabular_model(env), env_state_index(env)
            if self.states is not None and s0 != int(self.states[i][0]):
                raise DatasetMismatchError(
                    f"episode {i}: the re-created level starts in state {s0}, the dataset "
                    f"recorded {int(self.states[i][0])}"
                )
            yield tuple(episodes), model, level

    def level_specs(self, env: gym.Env) -> list[Any]:
        """Each episode's level spec as recorded in the ``level`` column, validated and
        parsed by ``env`` (None for episodes whose level came from their reset seed).

        The column comes from a file: each entry must be a string of at most
        :data:`MAX_LEVEL_SPEC_CHARS` characters holding a JSON object (no serialisation
        tags), which the env's own ``parse_level`` must accept and whose canonical JSON
        must be the recorded string.

        Raises:
            CorruptDatasetError: an entry that is not such a string or not JSON.
            DatasetMismatchError: the env has no editable levels, or refuses the spec.
        """
        if _LEVEL not in self.episodes.columns:
            return [None] * len(self)
        return [_recorded_level(env, v, i) for i, v in enumerate(self.episodes[_LEVEL].tolist())]

    def reset_seeds(self) -> list[int]:
        """Each episode's ``reset_seed`` (the seed its env reset used), as Python ints.

        Raises:
            DatasetError: the episodes table has no ``reset_seed`` column, or one that
                does not hold non-negative integers.
        """
        if "reset_seed" not in self.episodes.columns:
            raise DatasetError(
                "the episodes table has no 'reset_seed' column, so the levels cannot be re-created"
            )
        # The whole column, not rows: a row of mixed int/float columns would upcast the
        # 63-bit reset seeds to float.
        seeds = self.episodes["reset_seed"].tolist()
        for i, v in enumerate(seeds):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise DatasetError(f"episode {i}: reset_seed {v!r} is not a non-negative int")
        return seeds

    def verify(self, env: gym.Env) -> None:
        """Replay every episode in ``env`` and check that the file says what happened.

        Each episode is reset with its ``reset_seed`` and its recorded actions are taken
        again; the observations, rewards, state indices, length, end flags, level seed,
        returns (``return``, ``return.<name>``) and outcome columns the env produces must
        equal the recorded ones (floats to 1e-9). Assumes a deterministic env given the
        seed (the project's envs, seals' tabular envs).

        Raises:
            DatasetMismatchError: an episode does not replay as recorded (the dataset was
                edited, or the env is not deterministic or not the one recorded).
        """
        check_env_matches(self, env)
        space = env.action_space
        tabular = _is_tabular(env) or (self.states is not None and _extracted_env(env))
        columns = set(self.episodes.columns)
        rows = self.episodes.to_dict("records")
        seeds = self.reset_seeds()
        specs = self.level_specs(env)
        for i, tr in enumerate(self.trajectories):
            acts = [int(a) for a in tr.acts]

            def choose(obs: Any, t: int, acts: list[int] = acts) -> int | None:
                return check_action(acts[t], space) if t < len(acts) else None

            options = None if specs[i] is None else {"level": specs[i]}
            try:
                played = _play(env, seeds[i], choose, tabular=tabular, options=options)
            except BehavioralError as err:
                raise DatasetMismatchError(f"episode {i} does not replay: {err}") from None
            states = None if self.states is None else self.states[i]
            _compare_replay(i, tr, states, rows[i], columns, played)

    def __repr__(self) -> str:
        m = self.metadata
        return (
            f"Dataset(episodes={len(self)}, env_id={m.get('env_id')!r}, "
            f"split={m.get('split')!r}, policy={m.get('policy')!r}, "
            f"objectives={self.objective_names})"
        )


def check_env_matches(dataset: Dataset, env: gym.Env) -> None:
    """Raise :class:`DatasetMismatchError` unless ``env`` is the dataset's env.

    The ids must be equal, and so must the observation wrappers (when both are known,
    :func:`behavioral.environments.observation_wrappers`) and the keyword arguments once
    the env class's defaults are filled in (``gym.make(id)`` and ``gym.make(id, split="train")`` are the
    same env when ``"train"`` is the default). ``render_mode`` is ignored.
    """
    meta = dataset.metadata
    spec = env.spec
    env_id = spec.id if spec is not None else None
    if meta.get("env_id") is not None and env_id is not None and env_id != meta["env_id"]:
        raise DatasetMismatchError(
            f"the dataset was recorded in {meta['env_id']!r}, not {env_id!r}"
        )
    wrappers = meta.get("observation_wrappers")
    have = observation_wrappers(env)
    if wrappers is not None and have is not None and tuple(wrappers) != have:
        raise DatasetMismatchError(
            f"the dataset was recorded with the observation wrappers {list(wrappers)}, the "
            f"env has {list(have)}"
        )
    recorded = meta.get("env_kwargs")
    if spec is None or recorded is None:
        return
    defaults = _init_defaults(env.unwrapped)
    want = {**defaults, **recorded}
    have = {**defaults, **files.jsonable(dict(spec.kwargs))}
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
        p.name: files.jsonable(p.default)
        for p in params
        if p.default is not inspect.Parameter.empty
    }


# --------------------------------------------------------------------------- observations
# Array observations are stored as one array; Dict observations (Minigrid's image,
# direction and mission) as one array per key ("obs.<key>" in arrays.npz) and, for text
# (Minigrid's mission, constant within an episode), one string per episode (the
# "obs.<key>" column of episodes.json). In memory, Dict observations are imitation DictObs.

#: Column / array-name prefix of the keys of Dict observations.
OBS_PREFIX = "obs."
#: The most keys a Dict observation may have, and the longest text stored.
MAX_OBS_KEYS = 32
MAX_TEXT_CHARS = 4096
_OBS_KEY = re.compile(r"\A[A-Za-z_][A-Za-z0-9_-]{0,63}\Z")
_ARRAY_SPACES = (
    gym.spaces.Box,
    gym.spaces.Discrete,
    gym.spaces.MultiDiscrete,
    gym.spaces.MultiBinary,
)


def _is_text_space(space: gym.spaces.Space) -> bool:
    if isinstance(space, gym.spaces.Text):
        return True
    # Minigrid's mission space (a str-valued Space subclass) and its subclasses (BabyAI's)
    return any(
        t.__module__.startswith("minigrid.") and t.__name__ == "MissionSpace"
        for t in type(space).__mro__
    )


def observation_keys(space: gym.spaces.Space) -> dict[str, str] | None:
    """None for array observations; for a ``Dict`` space, key -> ``"array"`` or ``"text"``.

    Raises:
        EnvContractError: observations datasets cannot store (tuples, text outside a
            dict, nested dicts, keys that are not short names, more than
            :data:`MAX_OBS_KEYS` keys).
    """
    if isinstance(space, _ARRAY_SPACES):
        return None
    if not isinstance(space, gym.spaces.Dict):
        raise EnvContractError(
            f"observations of space {space!r} cannot be recorded: datasets store arrays and "
            "dicts of arrays and text (wrap the env with an observation wrapper)"
        )
    if len(space.spaces) > MAX_OBS_KEYS:
        raise EnvContractError(f"dict observations with more than {MAX_OBS_KEYS} keys")
    out = {}
    for key, sub in space.spaces.items():
        if not isinstance(key, str) or not _OBS_KEY.fullmatch(key):
            raise EnvContractError(f"observation key {key!r} is not a short name")
        if _is_text_space(sub):
            out[key] = "text"
        elif isinstance(sub, _ARRAY_SPACES):
            out[key] = "array"
        else:
            raise EnvContractError(
                f"observation key {key!r} has space {sub!r}: datasets store arrays and text"
            )
    return out


def stack_observations(observations: list[Any]) -> np.ndarray | DictObs:
    """(L+1, *obs_shape) array of an episode's observations, or a ``DictObs`` of one such
    array per key (text as a unicode array) for dict observations."""
    if not isinstance(observations[0], Mapping):
        return np.stack([np.asarray(o) for o in observations])
    out = {}
    for key, first in observations[0].items():
        column = [o[key] for o in observations]
        if isinstance(first, str):
            out[key] = np.array(column, dtype=str)
        else:
            out[key] = np.stack([np.asarray(v) for v in column])
    return DictObs(out)


def _obs_parts(obs: np.ndarray | DictObs) -> dict[str, np.ndarray]:
    """Array name in ``arrays.npz`` -> the (L+1, ...) array, for either kind."""
    if isinstance(obs, DictObs):
        return {OBS_PREFIX + k: v for k, v in obs.items()}
    return {"obs": np.asarray(obs)}


def _obs_metadata(obs: np.ndarray | DictObs) -> dict[str, Any]:
    """The metadata entries that describe the observations of an episode like ``obs``."""
    if not isinstance(obs, DictObs):
        return {"obs_shape": list(obs.shape[1:]), "obs_dtype": obs.dtype.str}
    keys = []
    for key, arr in obs.items():
        if arr.dtype.kind == "U":
            keys.append({"key": key, "kind": "text"})
        else:
            keys.append(
                {"key": key, "kind": "array", "shape": list(arr.shape[1:]), "dtype": arr.dtype.str}
            )
    return {"obs_keys": keys}


def _same_observations(a: np.ndarray | DictObs, b: np.ndarray | DictObs) -> bool:
    pa, pb = _obs_parts(a), _obs_parts(b)
    return pa.keys() == pb.keys() and all(
        pa[k].shape == pb[k].shape and np.array_equal(pa[k], pb[k]) for k in pa
    )


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


def rollout(
    policy: Any,
    env: gym.Env,
    *,
    episodes: int,
    seed: int,
    deterministic: bool = False,
    progress_bar: bool = False,
    extract_levels: bool | None = None,
    levels: Sequence[Any] | None = None,
) -> Dataset:
    """Run ``policy`` for ``episodes`` episodes of ``env`` and record a :class:`Dataset`.

    Args:
        policy: anything :func:`behavioral.policies.as_policy` accepts (SB3 model or
            policy, callable ``obs -> action``, tabular planner).
        env: a single (not vectorised) gymnasium env, e.g. from ``gym.make`` (time limits
            are respected: a truncated episode has ``terminal=False``). State indices
            and models are read from ``env.unwrapped``. Observations are arrays or a
            ``Dict`` of arrays and text (Minigrid's ``image``, ``direction`` and
            ``mission``; recorded as imitation ``DictObs``).
        episodes: number of episodes N >= 1 (an int).
        seed: a non-negative int; see the module docstring for how episode seeds derive
            from it. The same seed gives the same dataset.
        deterministic: ask the policy for its most probable action (a bool).
        progress_bar: show a tqdm bar over episodes (a bool).
        extract_levels: for envs without ``state_index()``: extract each episode's level
            right after its reset (:func:`behavioral.extract.episode_level`, cached per
            level) and record the state indices in it. None (default): when the env has
            a fast codec (Minigrid) and the first episode's level can be extracted (not
            for random steps: then no state indices are recorded); True: for any env
            with ``Discrete`` actions (the generic deep-copy codec), an
            ``ExtractionError`` when a level cannot be extracted; False: never.
        levels: the level of each episode (one per episode), for audits that choose
            their levels: an int is a reset seed (the level ``env.reset(seed=it)``
            draws, recorded as the episode's ``reset_seed``), anything else a level spec
            of an env with editable levels (``reset(options={"level": spec})``; its
            canonical JSON is recorded in the ``level`` column, from which
            :meth:`Dataset.level_models` and :meth:`Dataset.verify` re-create it).
            Default: levels drawn from the episode seeds.

    Returns:
        The :class:`Dataset`.

    Raises:
        InvalidActionError: the policy returned an invalid action.
        EnvContractError: non-Discrete action space, observations datasets cannot store
            (tuples, nested dicts), or objective names changing within a rollout.
        ExtractionError: a level cannot be extracted (``behavioral.extract``).
        InvalidArgumentError: ``episodes < 1``, a seed that is not a non-negative int, a
            flag that is not a bool, ``levels`` of another length than ``episodes``.
        EnvContractError: a level spec given for an env without editable levels.
    """
    episodes = check_int(episodes, "episodes", minimum=1)
    seed = check_seed(seed)
    deterministic = check_bool(deterministic, "deterministic")
    progress_bar = check_bool(progress_bar, "progress_bar")
    if extract_levels is not None:
        check_bool(extract_levels, "extract_levels")
    pol = as_policy(policy)
    if isinstance(pol, SB3Policy):
        check_policy_fits_env(pol.model, env)
    space = env.action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise EnvContractError(f"only Discrete action spaces are supported, got {space!r}")
    observation_keys(env.observation_space)
    extracted = _extracts(env, extract_levels)
    if extracted and extract_levels is None:  # automatic: only if the levels can be had
        extracted = _first_level_extracts(env, seed)
    tabular = _is_tabular(env) or extracted
    level_resets = _level_resets(env, levels, episodes)

    trajectories: list[TrajectoryWithRew] = []
    state_seqs: list[np.ndarray] = []
    rows: list[dict[str, Any]] = []
    objective_names: tuple[str, ...] | None = None
    base: str | None = None
    iterator: Any = range(episodes)
    if progress_bar:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="rollout", unit="ep")
    for i in iterator:
        reset_seed, rng = episode_seeds(seed, i)
        reset_seed, options = level_resets(i, reset_seed)

        def begin(rng: np.random.Generator = rng) -> None:
            pol.reset(env, rng)

        def choose(obs: Any, t: int, rng: np.random.Generator = rng) -> int:
            return check_action(pol.act(obs, env, rng, deterministic=deterministic), space)

        played = _play(env, reset_seed, choose, tabular=tabular, begin=begin, options=options)
        if i == 0 and tabular:
            base = env_tabular_model(env).base
        if objective_names is None:
            objective_names = played.objective_names
        elif played.objective_names != objective_names:
            raise EnvContractError(
                f"info['objectives'] names changed from {objective_names} to "
                f"{played.objective_names} (episode {i})"
            )
        trajectories.append(played.trajectory())
        if played.states is not None:
            state_seqs.append(played.states)
        rows.append(_episode_row(i, reset_seed, played))

    episodes_df = pd.DataFrame(rows)
    if "level_seed" in episodes_df.columns and episodes_df["level_seed"].isna().any():
        from_spec = episodes_df.get(_LEVEL, pd.Series(None, index=episodes_df.index)).notna()
        if (episodes_df["level_seed"].isna() & ~from_spec).any():
            raise EnvContractError("the env reported a level seed in some reset infos but not all")
    metadata = {
        **_env_metadata(env),
        "seed": seed,
        "episodes": episodes,
        "deterministic": deterministic,
        "policy": pol.description,
        "policy_name": policy_name(policy) or policy_name(pol),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **_obs_metadata(trajectories[0].obs),
        "n_actions": int(space.n),
        "objectives": list(objective_names or ()),
        "base": base,
        "states": ("extracted" if extracted else "env") if tabular else None,
    }
    return Dataset(
        trajectories=tuple(trajectories),
        episodes=episodes_df,
        states=tuple(state_seqs) if tabular else None,
        metadata=metadata,
    )


def _env_metadata(env: gym.Env) -> dict[str, Any]:
    """Format, version and what re-makes the env: id, kwargs, split, observation wrappers."""
    import behavioral

    spec = env.spec
    env_kwargs = files.jsonable(dict(spec.kwargs)) if spec is not None else {}
    split = env_kwargs.get("split", getattr(env.unwrapped, "split", None))
    wrappers = observation_wrappers(env)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "behavioral_version": behavioral.__version__,
        "env_id": spec.id if spec is not None else None,
        "env_kwargs": env_kwargs,
        "split": split if isinstance(split, str) or split is None else str(split),
        "observation_wrappers": None if wrappers is None else list(wrappers),
    }


def _is_tabular(env: gym.Env) -> bool:
    u = env.unwrapped
    return callable(getattr(u, "state_index", None)) or (
        hasattr(u, "transition_matrix") and hasattr(u, "state_space")
    )


# --------------------------------------------------------------------------- extracted levels
# Envs without a model of their own (Minigrid, any discrete env): each episode's level is
# extracted right after its reset (behavioral.extract, cached per level) and every step's
# state is looked up in it.


def _extracted_env(env: gym.Env) -> bool:
    """Whether ``env``'s levels are extracted (no model or state indices of its own)."""
    from behavioral.extract import is_extractable
    from behavioral.policies import has_tabular_model

    return not _is_tabular(env) and not has_tabular_model(env) and is_extractable(env)


def _extracts(env: gym.Env, extract_levels: bool | None) -> bool:
    """Whether a rollout of ``env`` records state indices in extracted levels: envs
    without their own state indices, when asked (True) or, by default (None), when a fast
    codec knows the env (Minigrid)."""
    from behavioral.extract import DeepCopyCodec, default_codec, is_extractable

    if extract_levels is False or _is_tabular(env) or not is_extractable(env):
        return False
    return bool(extract_levels) or not isinstance(default_codec(env), DeepCopyCodec)


def _first_level_extracts(env: gym.Env, seed: int) -> bool:
    """Whether the level of a rollout's first episode can be extracted (it is then in the
    extraction cache for the rollout); a random env (Minigrid's DynamicObstacles) cannot."""
    from behavioral.extract import ExtractionError, episode_level

    env.reset(seed=episode_seeds(seed, 0)[0])
    try:
        episode_level(env, fresh=True)
    except ExtractionError:
        return False
    return True


def _state_reader(env: gym.Env) -> Callable[[bool], int]:
    """``terminated -> state index`` of ``env``'s current state, for an env just reset:
    its own ``state_index()``, or its current level's extracted model (extracted now)."""
    if _is_tabular(env):
        return lambda terminated: env_state_index(env)
    from behavioral.extract import episode_level

    level = episode_level(env, fresh=True)
    return lambda terminated: level.state_index(env, terminated=terminated)


@dataclasses.dataclass
class _Played:
    """One episode as the env produced it: the one place observations are recorded."""

    obs: list[Any]
    acts: list[int]
    rews: list[float]
    states: np.ndarray | None
    objective_names: tuple[str, ...]
    objective_sums: dict[str, float]
    info: Mapping[str, Any]
    level: Any
    terminated: bool
    truncated: bool
    spec: str | None = None

    def trajectory(self) -> TrajectoryWithRew:
        return TrajectoryWithRew(
            obs=stack_observations(self.obs),
            acts=np.asarray(self.acts, dtype=np.int64),
            infos=None,
            terminal=bool(self.terminated),
            rews=np.asarray(self.rews, dtype=np.float64),
        )


def _play(
    env: gym.Env,
    reset_seed: int,
    choose: Callable[[Any, int], int | None],
    *,
    tabular: bool,
    begin: Callable[[], None] | None = None,
    options: Mapping[str, Any] | None = None,
) -> _Played:
    """Reset ``env`` with ``reset_seed`` (and ``options``: a level spec) and step it with
    ``choose(obs, t)`` until it ends (or, when replaying, until ``choose`` returns None: no
    recorded action is left)."""
    obs, info = env.reset(seed=reset_seed, options=None if options is None else dict(options))
    level = _level_of(info)
    state_of = _state_reader(env) if tabular else None  # extracted envs: extracted here
    spec = _spec_of(env, info) if options is not None else None
    if begin is not None:
        begin()
    observations, acts, rews = [obs], [], []
    states = [state_of(False)] if state_of is not None else None
    names: tuple[str, ...] | None = None
    sums: dict[str, float] = {}
    terminated = truncated = False
    while not (terminated or truncated):
        a = choose(obs, len(acts))
        if a is None:
            break
        obs, reward, terminated, truncated, info = env.step(a)
        observations.append(obs)
        acts.append(a)
        rews.append(float(reward))
        if state_of is not None:
            states.append(state_of(terminated))
        step_obj = info.get("objectives")
        where = f"step {len(acts) - 1}"
        if step_obj is None:
            if names:
                raise EnvContractError(f"info['objectives'] missing at {where}")
            names = ()
            continue
        if names is None:
            names = tuple(step_obj)
            sums = dict.fromkeys(names, 0.0)
        if tuple(step_obj) != names:
            raise EnvContractError(
                f"info['objectives'] names changed from {names} to {tuple(step_obj)} ({where})"
            )
        for k, v in step_obj.items():
            sums[k] += float(v)
    return _Played(
        obs=observations,
        acts=acts,
        rews=rews,
        states=None if states is None else np.asarray(states, dtype=np.int64),
        objective_names=names or (),
        objective_sums=sums,
        info=info,
        level=level,
        terminated=bool(terminated),
        truncated=bool(truncated),
        spec=spec,
    )


def _episode_row(i: int, reset_seed: int, played: _Played) -> dict[str, Any]:
    """The episodes-table row of one played episode."""
    row: dict[str, Any] = {"episode": i, "reset_seed": reset_seed}
    if played.spec is not None:
        row[_LEVEL] = played.spec
    elif played.level is not None:
        row["level_seed"] = played.level
    row.update(
        length=len(played.acts),
        terminated=played.terminated,
        truncated=played.truncated,
        **{"return": float(np.sum(played.rews))},
    )
    for k, v in played.objective_sums.items():
        row[_RETURN_PREFIX + k] = v
    row.update(_outcome_columns(played.info))
    return row


def _is_checked_column(name: Any) -> bool:
    return isinstance(name, str) and (
        name in ("level_seed", _LEVEL, "length", "terminated", "truncated", "return", _OUTCOME)
        or name.startswith((_RETURN_PREFIX, _OUTCOME + "."))
    )


def _same(a: Any, b: Any) -> bool:
    """Equal as recorded values: missing (None/NaN) alike, floats to 1e-9."""
    a, b = _py(a), _py(b)
    a_missing = a is None or (isinstance(a, float) and math.isnan(a))
    b_missing = b is None or (isinstance(b, float) and math.isnan(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b  # seeds, counts: exact
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _compare_replay(
    i: int,
    tr: TrajectoryWithRew,
    states: np.ndarray | None,
    row: Mapping[str, Any],
    columns: set[Any],
    played: _Played,
) -> None:
    """Raise DatasetMismatchError where the recorded episode differs from the replay."""

    def mismatch(what: str) -> DatasetMismatchError:
        return DatasetMismatchError(
            f"episode {i} does not replay as recorded: {what} (the dataset was edited, or "
            "the env is not deterministic; audit(..., replay=False) skips this check)"
        )

    if len(played.acts) != len(tr.acts):
        raise mismatch(
            f"the env ended after {len(played.acts)} of the {len(tr.acts)} recorded actions"
        )
    if not (played.terminated or played.truncated):
        raise mismatch(f"the env had not ended after the {len(tr.acts)} recorded actions")
    replayed = played.trajectory()
    if not _same_observations(replayed.obs, tr.obs):
        raise mismatch("the observations differ")
    if not np.allclose(replayed.rews, tr.rews, rtol=1e-9, atol=1e-9):
        raise mismatch("the rewards differ")
    if bool(tr.terminal) != played.terminated:
        raise mismatch("the terminal flag differs")
    if (states is None) != (played.states is None):
        raise mismatch(
            "the dataset records no state indices but the env has them"
            if states is None
            else "the dataset records state indices but the env has none"
        )
    if states is not None and not np.array_equal(played.states, states):
        raise mismatch("the state indices differ")
    expected = _episode_row(i, 0, played)
    for name in sorted(c for c in columns if _is_checked_column(c)):
        if name not in expected:
            if _same(row.get(name), None):  # (a column of other episodes: level_seed, level)
                continue
            raise mismatch(f"the column {name!r} is not something the env reports")
        if not _same(row.get(name), expected[name]):
            raise mismatch(f"{name} is {row.get(name)!r}, the env gives {expected[name]!r}")
    for name in expected:
        if _is_checked_column(name) and name not in columns and name != "level_seed":
            raise mismatch(f"the column {name!r} is missing")


# ------------------------------------------------------ levels given per episode (specs)
# Audits that choose their levels (``audit(..., design="active")``) play each episode on a
# given level: a reset seed, or a level spec of an env with editable levels. A spec is
# recorded as its canonical JSON in the ``level`` column and re-created from there; as it
# comes from a file when the dataset is loaded, it is validated before use.


def _level_resets(
    env: gym.Env, levels: Sequence[Any] | None, episodes: int
) -> Callable[[int, int], tuple[int, dict[str, Any] | None]]:
    """``(i, drawn reset seed) -> (reset seed, reset options)`` of episode ``i``."""
    if levels is None:
        return lambda i, seed: (seed, None)
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence):
        raise InvalidArgumentError(
            f"levels must be a sequence of reset seeds or level specs, got {type(levels).__name__}"
        )
    items = list(levels)
    if len(items) != episodes:
        raise InvalidArgumentError(f"levels gives {len(items)} levels for {episodes} episodes")
    parse = getattr(env.unwrapped, "parse_level", None)
    resets: list[tuple[int | None, dict[str, Any] | None]] = []
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            resets.append((check_seed(int(item), "a level's reset seed"), None))
        elif callable(parse):
            resets.append((None, {"level": parse(item)}))
        else:
            raise EnvContractError(
                f"{type(env.unwrapped).__name__} has no editable levels: levels may only be reset seeds"
            )
    return lambda i, seed: (seed if resets[i][0] is None else resets[i][0], resets[i][1])


def _spec_of(env: gym.Env, info: Mapping[str, Any]) -> str:
    """The canonical JSON of the level an episode was reset to from a spec."""
    spec = info.get(_LEVEL)
    if not isinstance(spec, str):
        spec = env.unwrapped.level_spec().to_json()
    return spec


def _check_level_column(episodes: pd.DataFrame) -> None:
    if _LEVEL not in episodes.columns:
        return
    for i, v in enumerate(episodes[_LEVEL].tolist()):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if not isinstance(v, str) or len(v) > MAX_LEVEL_SPEC_CHARS:
            raise DatasetError(
                f"episode {i}: the level column must hold level specs as JSON strings of at "
                f"most {MAX_LEVEL_SPEC_CHARS} characters"
            )


def _recorded_level(env: gym.Env, value: Any, i: int) -> Any:
    """Episode ``i``'s recorded level spec parsed by ``env`` (None: no spec recorded)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, str) or len(value) > MAX_LEVEL_SPEC_CHARS:
        raise CorruptDatasetError(f"episode {i}: the recorded level is not a level spec string")
    doc = _parse_json(value.encode("utf-8"), f"episode {i}'s level spec")
    if not isinstance(doc, dict):
        raise CorruptDatasetError(f"episode {i}: the recorded level spec is not a JSON object")
    parse = getattr(env.unwrapped, "parse_level", None)
    if not callable(parse):
        raise DatasetMismatchError(
            f"episode {i} was played on a given level spec, but "
            f"{type(env.unwrapped).__name__} has no editable levels"
        )
    try:
        level = parse(doc)
    except (BehavioralError, ValueError, TypeError, KeyError) as err:
        raise DatasetMismatchError(
            f"episode {i}: the recorded level spec is not a level of this env: {err}"
        ) from None
    if level.to_json() != value:
        raise DatasetMismatchError(
            f"episode {i}: the recorded level spec is not in the env's canonical form (edited?)"
        )
    return level


def _check_trajectory(i: int, tr: Any, first: Any) -> None:
    """One trajectory of a Dataset: its type, dtypes, shapes and finite values."""
    if not isinstance(tr, TrajectoryWithRew):
        raise DatasetError(f"trajectory {i} is a {type(tr).__name__}, not TrajectoryWithRew")
    parts, want = _obs_parts(tr.obs), _obs_parts(first.obs)
    if parts.keys() != want.keys():
        raise DatasetError(
            f"trajectory {i} has observations {sorted(parts)}, trajectory 0 has {sorted(want)}"
        )
    for name, arr in parts.items():
        ref = want[name]
        same_text = arr.dtype.kind == ref.dtype.kind == "U"
        if arr.shape[1:] != ref.shape[1:] or (arr.dtype != ref.dtype and not same_text):
            raise DatasetError(
                f"trajectory {i} has observations {name} {arr.dtype} {arr.shape[1:]}, "
                f"trajectory 0 has {ref.dtype} {ref.shape[1:]}"
            )
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise DatasetError(f"trajectory {i}: observations hold NaN or infinite values")
        if arr.dtype.hasobject:
            raise DatasetError(f"trajectory {i}: observations {name} have dtype object")
    acts, rews = np.asarray(tr.acts), np.asarray(tr.rews)
    if acts.ndim != 1 or acts.dtype.kind not in _INT_KINDS:
        raise DatasetError(f"trajectory {i}: acts must be a 1-D int array")
    if rews.dtype.kind != "f":
        raise DatasetError(f"trajectory {i}: rews must be floats")
    if not np.all(np.isfinite(rews)):
        raise DatasetError(f"trajectory {i}: rewards hold NaN or infinite values")


def _check_episode_table(episodes: pd.DataFrame, trajs: tuple[Any, ...]) -> None:
    """The episodes table agrees with the trajectories (lengths, end flags, returns)."""
    for col in ("length", "terminated"):
        if col not in episodes.columns:
            raise DatasetError(f"the episodes table has no {col!r} column")
    _check_return_columns(episodes)
    _check_level_column(episodes)
    lengths = np.array([len(tr.acts) for tr in trajs], dtype=np.int64)
    if not np.array_equal(episodes["length"].to_numpy(), lengths):
        raise DatasetError("the episodes table's 'length' column differs from the trajectories")
    terminal = np.array([bool(tr.terminal) for tr in trajs], dtype=bool)
    if not np.array_equal(episodes["terminated"].to_numpy(dtype=bool), terminal):
        raise DatasetError(
            "the episodes table's 'terminated' column differs from the trajectories' terminal flags"
        )


def _checked_states(states: Any, trajs: tuple[Any, ...]) -> tuple[np.ndarray, ...]:
    """Per-episode state sequences: one more than the episode's actions, ints >= 0."""
    states = tuple(np.asarray(s) for s in states)
    if len(states) != len(trajs):
        raise DatasetError(f"{len(trajs)} trajectories but {len(states)} state sequences")
    for i, (s, tr) in enumerate(zip(states, trajs, strict=True)):
        if s.ndim != 1 or s.shape[0] != len(tr.acts) + 1:
            raise DatasetError(
                f"episode {i}: state sequence of shape {s.shape} for "
                f"{len(tr.acts)} actions (expected ({len(tr.acts) + 1},))"
            )
        if s.dtype.kind not in _INT_KINDS or (s.size and s.min() < 0):
            raise DatasetError(f"episode {i}: state indices must be non-negative ints")
    return states


def _check_return_columns(episodes: pd.DataFrame) -> None:
    for name in episodes.columns:
        if isinstance(name, str) and (name == "return" or name.startswith(_RETURN_PREFIX)):
            values = episodes[name].to_numpy()
            if values.dtype.kind not in "iuf" or not np.all(np.isfinite(values.astype(float))):
                raise DatasetError(f"the episodes table's {name!r} column must hold finite numbers")


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


def _fits_column(dtype: str, v: Any) -> bool:
    """Whether the JSON value ``v`` may stand in a column of ``dtype``."""
    if dtype == "bool":
        return isinstance(v, bool)
    if dtype[0] in "iu":
        info = np.iinfo(dtype)
        return type(v) is int and info.min <= v <= info.max
    if v is None:
        return True
    if dtype.startswith("float"):
        return not isinstance(v, bool) and isinstance(v, (int, float))
    if dtype == "str":
        return isinstance(v, str)
    return isinstance(v, (bool, int, float, str))  # object: JSON scalars only


def _typed_column(name: str, dtype: str, values: list[Any]) -> pd.Series:
    for v in values:
        if not _fits_column(dtype, v):
            raise CorruptDatasetError(f"{_EPISODES}: column {name!r} ({dtype}) holds {v!r}")
    if dtype.startswith("float"):
        values = [math.nan if v is None else v for v in values]
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


def _open_regular(directory: Path, name: str, limit: int) -> tuple[int, int]:
    """Open ``directory/name`` for reading: (fd, size). Refuses symbolic links and
    anything that is not a regular file, and files above ``limit`` bytes."""
    path = directory / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise CorruptDatasetError(f"missing file {name} in {directory}") from None
    except OSError as err:
        if os.path.islink(path):
            raise UnsafeDatasetError(
                f"{name} in {directory} is a symbolic link; dataset files must be regular "
                "files inside the dataset directory"
            ) from None
        raise CorruptDatasetError(f"cannot open {path}: {err.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise CorruptDatasetError(f"{name} in {directory} is not a regular file")
    if st.st_size > limit:
        os.close(fd)
        raise DatasetTooLargeError(
            f"{name} in {directory} has {st.st_size} bytes, above the limit of {limit} "
            f"bytes{_LIMIT_HINT}"
        )
    return fd, st.st_size


_LIMIT_HINT = " (load_dataset(..., max_bytes=N) or the CLI's --max-dataset-bytes N raise the limit)"


def _read_small(directory: Path, name: str, limit: int) -> bytes:
    fd, _size = _open_regular(directory, name, limit)
    with os.fdopen(fd, "rb") as fh:
        return fh.read(limit + 1)


def _parse_json(blob: bytes, name: str) -> Any:
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorruptDatasetError(f"{name} is not UTF-8 text: {err}") from None

    def no_constants(c: str) -> Any:
        raise CorruptDatasetError(f"{name} contains the non-JSON constant {c}")

    try:
        doc = json.loads(text, parse_constant=no_constants)
    except json.JSONDecodeError as err:
        raise CorruptDatasetError(f"{name} is not valid JSON: {err}") from None
    except RecursionError:
        raise CorruptDatasetError(f"{name} is nested too deeply") from None
    _find_jsonpickle_tag(doc, name)
    return doc


# --------------------------------------------------------------------------- save / load


def save_dataset(
    dataset: Dataset, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write ``dataset`` to the directory ``path`` through :mod:`behavioral.files`.

    Everything is written into a temporary directory next to ``path`` and published by
    a rename: ``path`` is never a mix of two datasets, an existing dataset is replaced
    only with ``overwrite=True`` (and kept until the new one is in place), and a
    directory that is not a dataset (no ``metadata.json``) is never replaced.

    Returns:
        The dataset directory (absolute).

    Raises:
        DatasetExistsError: ``path`` exists (or appeared meanwhile) and ``overwrite`` is
            False, or it is not a dataset directory.
        OutputError: ``path`` cannot be written (a file on the way, no permission).
        DatasetError: metadata or the episodes table hold values JSON cannot store.
    """
    check_bool(overwrite, "overwrite")
    try:
        meta = files.jsonable(dict(dataset.metadata), strict=True)
    except files.UnstorableValueError as err:
        raise DatasetError(f"the dataset's metadata cannot be saved: {err}") from None
    meta.pop("files", None)
    meta["format"] = FORMAT
    meta["format_version"] = FORMAT_VERSION
    trajs = dataset.trajectories
    obs_arrays, texts = _split_observations(trajs)
    episodes_doc = _episodes_to_json(_with_texts(dataset.episodes, texts))

    arrays = {
        **obs_arrays,
        "acts": np.concatenate([np.asarray(tr.acts) for tr in trajs]),
        "rews": np.concatenate([np.asarray(tr.rews) for tr in trajs]),
        "lengths": np.array([len(tr.acts) for tr in trajs], dtype=np.int64),
        "terminal": np.array([bool(tr.terminal) for tr in trajs], dtype=bool),
    }
    if dataset.states is not None:
        arrays["states"] = np.concatenate(dataset.states).astype(np.int64, copy=False)
    for name, arr in arrays.items():
        if arr.dtype.hasobject or arr.dtype.kind in "USV":
            raise DatasetError(f"array {name!r} has dtype {arr.dtype}, which datasets do not store")
    for key in ("obs_shape", "obs_dtype", "obs_keys"):
        meta.pop(key, None)
    meta.update(_obs_metadata(trajs[0].obs))
    meta["episodes"] = len(trajs)
    episodes_bytes = json.dumps(episodes_doc, allow_nan=False).encode("utf-8")

    def fill(tmp: Path) -> None:
        with open(tmp / _ARRAYS, "xb") as f:
            np.savez(f, **arrays)
        with open(tmp / _EPISODES, "xb") as f:
            f.write(episodes_bytes)
        meta["files"] = {
            name: {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size}
            for name in (_ARRAYS, _EPISODES)
        }
        with open(tmp / _META, "xb") as f:
            f.write(json.dumps(meta, indent=2, allow_nan=False).encode("utf-8"))

    try:
        return files.write_dir(path, fill, overwrite=overwrite, expect=(_META,))
    except DatasetExistsError:
        raise
    except OutputExistsError as err:
        raise DatasetExistsError(str(err)) from None


def _split_observations(
    trajs: tuple[TrajectoryWithRew, ...],
) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """The observations as arrays for ``arrays.npz`` (name -> all episodes concatenated)
    and, for text keys of dict observations, one string per episode (key -> texts).

    Raises:
        DatasetError: a text that changes within an episode, or is too long.
    """
    names = _obs_parts(trajs[0].obs)
    arrays, texts = {}, {}
    for name, first in names.items():
        parts = [_obs_parts(tr.obs)[name] for tr in trajs]
        if first.dtype.kind != "U":
            arrays[name] = np.concatenate(parts)
            continue
        key = name[len(OBS_PREFIX) :]
        texts[key] = []
        for i, part in enumerate(parts):
            if part.size == 0 or np.any(part != part[0]):
                raise DatasetError(
                    f"the text observation {key!r} changes within episode {i}; datasets "
                    "store one text per episode"
                )
            text = str(part[0])
            if len(text) > MAX_TEXT_CHARS:
                raise DatasetError(f"the text observation {key!r} of episode {i} is too long")
            texts[key].append(text)
    return arrays, texts


def _with_texts(episodes: pd.DataFrame, texts: Mapping[str, list[str]]) -> pd.DataFrame:
    """The episodes table with one ``obs.<key>`` column per text observation."""
    if not texts:
        return episodes
    clash = sorted(OBS_PREFIX + k for k in texts if OBS_PREFIX + k in episodes.columns)
    if clash:
        raise DatasetError(f"the episodes table already has columns {clash}")
    out = episodes.copy()
    for key, values in texts.items():
        out[OBS_PREFIX + key] = pd.Series(values, index=out.index, dtype=object)
    return out


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return _sha256_of(f)


def _sha256_of(fh: Any) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def _need(meta: Mapping[str, Any], key: str, types: type | tuple[type, ...]) -> Any:
    if key not in meta:
        raise CorruptDatasetError(f"{_META} has no {key!r}")
    v = meta[key]
    if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise CorruptDatasetError(f"{_META}: {key!r} has the wrong type ({v!r})")
    if not isinstance(v, types):
        raise CorruptDatasetError(f"{_META}: {key!r} has the wrong type ({v!r})")
    return v


@dataclasses.dataclass(frozen=True)
class _Layout:
    """What ``metadata.json`` says the arrays hold."""

    n_episodes: int
    obs: Mapping[str, tuple[tuple[int, ...], np.dtype]]
    obs_keys: tuple[tuple[str, str], ...] | None
    n_actions: int
    files: Mapping[str, Any]
    """``obs``: array name in ``arrays.npz`` -> (shape of one observation, dtype);
    ``obs_keys``: (key, "array" | "text") of dict observations, in order, or None."""


def _obs_dtype(text: Any) -> np.dtype:
    if not isinstance(text, str):
        raise CorruptDatasetError(f"{_META}: bad observation dtype {text!r}")
    try:
        dtype = np.dtype(text)
    except TypeError:
        raise CorruptDatasetError(f"{_META}: bad observation dtype {text!r}") from None
    if dtype.hasobject:
        raise UnsafeDatasetError(f"{_META}: object observation dtype is refused")
    if dtype.kind not in "biuf":
        raise CorruptDatasetError(f"{_META}: observation dtype {text!r} is not numeric")
    return dtype


def _obs_shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, list) or len(shape) > 32:
        raise CorruptDatasetError(f"{_META}: bad observation shape {shape!r}")
    if not all(type(d) is int and d >= 0 for d in shape):
        raise CorruptDatasetError(f"{_META}: bad observation shape {shape!r}")
    return tuple(shape)


def _read_obs_layout(
    meta: Mapping[str, Any],
) -> tuple[dict[str, tuple[tuple[int, ...], np.dtype]], tuple[tuple[str, str], ...] | None]:
    """What the metadata says the observations are: array observations (``obs_shape``,
    ``obs_dtype``) or dict observations (``obs_keys``)."""
    if "obs_keys" not in meta:
        shape = _obs_shape(_need(meta, "obs_shape", list))
        return {"obs": (shape, _obs_dtype(_need(meta, "obs_dtype", str)))}, None
    entries = meta["obs_keys"]
    if "obs_shape" in meta or "obs_dtype" in meta:
        raise CorruptDatasetError(f"{_META}: both obs_keys and obs_shape/obs_dtype")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_OBS_KEYS:
        raise CorruptDatasetError(f"{_META}: obs_keys must list 1 to {MAX_OBS_KEYS} keys")
    arrays: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    keys: list[tuple[str, str]] = []
    for e in entries:
        key = e.get("key") if isinstance(e, dict) else None
        if not isinstance(key, str) or not _OBS_KEY.fullmatch(key) or key in dict(keys):
            raise CorruptDatasetError(f"{_META}: bad observation key entry {e!r}")
        if e.get("kind") == "text" and set(e) == {"key", "kind"}:
            keys.append((key, "text"))
        elif e.get("kind") == "array" and set(e) == {"key", "kind", "shape", "dtype"}:
            keys.append((key, "array"))
            arrays[OBS_PREFIX + key] = (_obs_shape(e["shape"]), _obs_dtype(e["dtype"]))
        else:
            raise CorruptDatasetError(f"{_META}: bad observation key entry {e!r}")
    return arrays, tuple(keys)


def _check_optional_metadata(meta: Mapping[str, Any]) -> None:
    """The entries older datasets lack: where the state indices come from, and the
    names of the observation wrappers the env was wrapped in."""
    if meta.get("states") not in (None, "env", "extracted"):
        raise CorruptDatasetError(f"{_META}: bad 'states' {meta.get('states')!r}")
    wrappers = meta.get("observation_wrappers")
    if wrappers is not None:
        try:
            check_observation_wrappers(wrappers)
        except InvalidArgumentError as err:
            raise CorruptDatasetError(f"{_META}: {err}") from None


def _read_metadata(path: Path) -> tuple[dict[str, Any], _Layout]:
    meta = _parse_json(_read_small(path, _META, MAX_METADATA_BYTES), _META)
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
    if rec_env is not None:
        try:
            check_env_id(rec_env)
        except InvalidEnvIdError as err:
            cls = UnsafeDatasetError if ":" in rec_env else CorruptDatasetError
            raise cls(f"{_META}: {err}") from None
    try:
        meta["env_kwargs"] = check_env_kwargs(_need(meta, "env_kwargs", dict))
    except InvalidArgumentError as err:
        raise CorruptDatasetError(f"{_META}: {err}") from None
    _need(meta, "split", (str, type(None)))
    _need(meta, "seed", int)
    n_episodes = _need(meta, "episodes", int)
    _need(meta, "policy", str)
    if not isinstance(meta.get("policy_name", ""), (str, type(None))):
        raise CorruptDatasetError(f"{_META}: 'policy_name' must be a string")
    _need(meta, "behavioral_version", str)
    _need(meta, "created", str)
    obs, obs_keys = _read_obs_layout(meta)
    n_actions = _need(meta, "n_actions", int)
    objectives = _need(meta, "objectives", list)
    files_rec = _need(meta, "files", dict)
    if not all(isinstance(o, str) for o in objectives):
        raise CorruptDatasetError(f"{_META}: objectives must be names")
    if n_episodes < 1 or n_actions < 1:
        raise CorruptDatasetError(f"{_META}: episodes and n_actions must be >= 1")
    _check_optional_metadata(meta)
    if set(files_rec) != {_ARRAYS, _EPISODES} or not all(
        isinstance(r, dict) and isinstance(r.get("sha256"), str) and type(r.get("bytes")) is int
        for r in files_rec.values()
    ):
        raise CorruptDatasetError(
            f"{_META}: 'files' must give the sha256 and bytes of {_ARRAYS} and {_EPISODES}"
        )
    layout = _Layout(n_episodes, obs, obs_keys, n_actions, files_rec)
    return meta, layout


def _checked_file(path: Path, name: str, layout: _Layout, limit: int) -> Any:
    """Open a data file, check its size and checksum against the metadata; return it
    open and rewound."""
    rec = layout.files[name]
    fd, size = _open_regular(path, name, limit)
    fh = os.fdopen(fd, "rb")
    try:
        if rec["bytes"] != size:
            raise CorruptDatasetError(
                f"{name} has {size} bytes, the metadata recorded {rec['bytes']!r} "
                "(truncated or modified)"
            )
        if _sha256_of(fh) != rec["sha256"]:
            raise CorruptDatasetError(f"{name} does not match its sha256 checksum (modified)")
        fh.seek(0)
    except BaseException:
        fh.close()
        raise
    return fh


def _expect_header(
    npz: NpzReader, name: str, shape: tuple[int, ...], kinds: str, dtype: Any = None
) -> None:
    h = npz.headers[name]
    ok_dtype = h.dtype == dtype if dtype is not None else h.dtype.kind in kinds
    if h.shape != shape or not ok_dtype:
        want = dtype if dtype is not None else {"iu": "ints", "b": "bool", "f": "floats"}[kinds]
        raise CorruptDatasetError(
            f"{name} must be {want} of shape {shape}, got {h.dtype} {h.shape}"
        )


def _read_arrays(fh: Any, layout: _Layout, max_bytes: int) -> dict[str, np.ndarray]:
    """The arrays of ``arrays.npz``, every header checked before any data is read."""
    N = layout.n_episodes
    with NpzReader(fh, label=_ARRAYS) as npz:
        names = set(npz.headers)
        required = (set(_REQUIRED_ARRAYS) - {"obs"}) | set(layout.obs)
        if names not in (required, required | {"states"}):
            raise CorruptDatasetError(
                f"{_ARRAYS} holds arrays {sorted(names)}, expected {sorted(required)} "
                "(and states for tabular envs)"
            )
        total = sum(h.nbytes for h in npz.headers.values())
        if total > max_bytes:
            raise DatasetTooLargeError(
                f"{_ARRAYS} would decompress to {total} bytes, above the limit of "
                f"{max_bytes} bytes{_LIMIT_HINT}"
            )
        _expect_header(npz, "lengths", (N,), "iu")
        _expect_header(npz, "terminal", (N,), "b")
        lengths = npz.read("lengths")
        if np.any(lengths < 1) or np.any(lengths > 10**9):
            raise CorruptDatasetError("every episode must have between 1 and 10**9 actions")
        n_steps = int(lengths.astype(np.int64).sum())
        n_obs = n_steps + N
        for name, (shape, dtype) in layout.obs.items():
            _expect_header(npz, name, (n_obs, *shape), "", dtype)
        _expect_header(npz, "acts", (n_steps,), "iu")
        _expect_header(npz, "rews", (n_steps,), "f")
        if "states" in names:
            _expect_header(npz, "states", (n_obs,), "iu")
        return {"lengths": lengths, **{n: npz.read(n) for n in sorted(names - {"lengths"})}}


def load_dataset(
    path: str | os.PathLike[str],
    *,
    env_id: str | None = None,
    split: str | None = None,
    max_bytes: int = MAX_DATASET_BYTES,
) -> Dataset:
    """Load and validate a dataset written by :func:`save_dataset`.

    Never executes code from the files and never decompresses more than ``max_bytes``
    (see the module docstring). Every check runs before the dataset is built: format and
    version, the env id's form, file types, sizes and checksums, array names, dtypes and
    shapes (from the headers, before reading), lengths against each other and against
    the episodes table, actions within ``n_actions``, state indices >= 0, finite rewards
    and observations. (Replaying the episodes in their env is :meth:`Dataset.verify`.)

    Args:
        path: the dataset directory.
        env_id: if given, the dataset must have been recorded in this env.
        split: if given, the dataset must have been recorded on this split.
        max_bytes: the most array data to decompress (default :data:`MAX_DATASET_BYTES`).

    Raises:
        DatasetNotFoundError: no directory or no metadata file at ``path``.
        DatasetVersionError: another format or format version.
        UnsafeDatasetError: pickled object arrays, jsonpickle tags, an env id with a
            module part, or symbolic links among the files.
        DatasetTooLargeError: the arrays would take more than ``max_bytes``.
        CorruptDatasetError: truncated, unparsable or inconsistent files.
        DatasetMismatchError: ``env_id`` or ``split`` differ from the recorded ones.
    """
    max_bytes = check_int(max_bytes, "max_bytes", minimum=1)
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"a dataset path must be a str or path, got {path!r}")
    path = Path(path)
    if not path.is_dir():
        raise DatasetNotFoundError(f"no dataset directory at {path}")
    if not os.path.lexists(path / _META):
        raise DatasetNotFoundError(f"{path} has no {_META}: not a dataset directory")
    meta, layout = _read_metadata(path)
    if env_id is not None and meta["env_id"] != env_id:
        raise DatasetMismatchError(
            f"{path} was recorded in {meta['env_id']!r}, expected {env_id!r}"
        )
    if split is not None and meta["split"] != split:
        raise DatasetMismatchError(
            f"{path} was recorded on split {meta['split']!r}, expected {split!r}"
        )
    with _checked_file(path, _ARRAYS, layout, max_bytes + (1 << 20)) as fh:
        arrays = _read_arrays(fh, layout, max_bytes)
    with _checked_file(path, _EPISODES, layout, MAX_EPISODES_JSON_BYTES) as fh:
        episodes = _episodes_from_json(_parse_json(fh.read(), _EPISODES), layout.n_episodes)
    return _build(path, meta, layout, arrays, episodes)


def _episode_observations(
    layout: _Layout, arrays: Mapping[str, np.ndarray], episodes: pd.DataFrame, lengths: np.ndarray
) -> tuple[list[Any], pd.DataFrame]:
    """Each episode's observations (arrays, or DictObs with the texts of the episodes
    table's ``obs.<key>`` columns repeated over the episode), and the table without
    those columns."""
    cuts = np.cumsum(lengths + 1)[:-1]
    texts = {OBS_PREFIX + k for k, kind in layout.obs_keys or () if kind == "text"}
    stray = [c for c in episodes.columns if str(c).startswith(OBS_PREFIX) and c not in texts]
    if stray:
        raise CorruptDatasetError(f"{_EPISODES} has columns {stray} for no text observation")
    if layout.obs_keys is None:
        return np.split(arrays["obs"], cuts), episodes
    parts: dict[str, list[np.ndarray]] = {}
    for key, kind in layout.obs_keys:
        column = OBS_PREFIX + key
        if kind == "array":
            parts[key] = np.split(arrays[column], cuts)
            continue
        if column not in episodes.columns:
            raise CorruptDatasetError(f"{_EPISODES} has no {column!r} column for the text {key!r}")
        texts = episodes[column].tolist()
        if not all(isinstance(t, str) and len(t) <= MAX_TEXT_CHARS for t in texts):
            raise CorruptDatasetError(
                f"{_EPISODES}: {column!r} must hold strings of at most {MAX_TEXT_CHARS} characters"
            )
        parts[key] = [np.array([t] * (int(n) + 1), dtype=str) for t, n in zip(texts, lengths)]
        episodes = episodes.drop(columns=[column])
    n = len(lengths)
    return [DictObs({k: v[i] for k, v in parts.items()}) for i in range(n)], episodes


def _build(
    path: Path,
    meta: dict[str, Any],
    layout: _Layout,
    arrays: dict[str, np.ndarray],
    episodes: pd.DataFrame,
) -> Dataset:
    lengths, terminal = arrays["lengths"], arrays["terminal"]
    acts, rews = arrays["acts"], arrays["rews"]
    if acts.size and (acts.min() < 0 or acts.max() >= layout.n_actions):
        raise CorruptDatasetError(f"acts outside [0, {layout.n_actions})")
    states = None
    if "states" in arrays:
        st = arrays["states"]
        if st.size and st.min() < 0:
            raise CorruptDatasetError("states must be non-negative ints")
        states = tuple(np.split(st, np.cumsum(lengths + 1)[:-1]))
    obs_split, episodes = _episode_observations(layout, arrays, episodes, lengths)
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
