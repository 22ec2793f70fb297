"""The breadth-first search of a level (:func:`extract_level`) and the level cache."""

from __future__ import annotations

import collections
import dataclasses
import time
import types
import weakref
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import scipy.sparse as sp
from gymnasium import spaces

from behavioral.errors import InvalidArgumentError
from behavioral.extract.base import (
    Binding,
    CodecError,
    ExtractedLevel,
    ExtractionError,
    MissingHorizonError,
    StateCodec,
    StochasticStepError,
    TooManyStatesError,
    UnsupportedActionSpaceError,
    UnsupportedWrapperError,
    preserved,
)
from behavioral.extract.codecs import default_codec
from behavioral.tabular import TabularModel

__all__ = [
    "DEFAULT_MAX_STATES",
    "LevelCache",
    "check_extractable",
    "episode_level",
    "extract_level",
    "extract_model",
    "is_extractable",
]

#: Default bound on the number of states of one level.
DEFAULT_MAX_STATES = 100_000


# ----------------------------------------------------------------------------- wrappers


def _qualified(obj: Any) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


_BOOKKEEPING = frozenset(
    {
        "gymnasium.wrappers.time_limit.TimeLimit",
        "gymnasium.wrappers.order_enforcing.OrderEnforcing",
        "gymnasium.wrappers.env_checker.PassiveEnvChecker",
        "gymnasium.wrappers.record_episode_statistics.RecordEpisodeStatistics",
        "stable_baselines3.common.monitor.Monitor",
        "imitation.data.wrappers.RolloutInfoWrapper",
    }
)


def _wrappers(env: gym.Env) -> list[gym.Wrapper]:
    """The wrappers around ``env.unwrapped``, outermost first."""
    chain = []
    while isinstance(env, gym.Wrapper):
        chain.append(env)
        env = env.env
    return chain


def _observation_wrappers(env: gym.Env) -> list[gym.ObservationWrapper]:
    """The observation wrappers to apply to raw observations, innermost first.

    Raises:
        UnsupportedWrapperError: a wrapper changes ``step`` otherwise.
    """
    found = []
    for w in _wrappers(env):
        step = type(w).step
        if _qualified(w) in _BOOKKEEPING or step is gym.Wrapper.step:
            continue
        if isinstance(w, gym.ObservationWrapper) and step is gym.ObservationWrapper.step:
            found.append(w)
            continue
        if isinstance(w, gym.RewardWrapper) and step is gym.RewardWrapper.step:
            continue  # the model's "reward" is the unwrapped env's own reward
        raise UnsupportedWrapperError(
            f"the wrapper {_qualified(w)} changes step(): the extracted model would not be "
            "the wrapped env's; extract the model of an env without it (observation, "
            "reward and bookkeeping wrappers are fine)"
        )
    return found[::-1]


def _horizon(env: gym.Env, horizon: int | None) -> int:
    if horizon is not None:
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise InvalidArgumentError(f"horizon must be an int >= 1, got {horizon!r}")
        return int(horizon)
    limits = [
        int(w._max_episode_steps)
        for w in _wrappers(env)
        if isinstance(w, gym.wrappers.TimeLimit) and w._max_episode_steps is not None
    ]
    own = getattr(env.unwrapped, "max_steps", None)
    if isinstance(own, (int, np.integer)) and not isinstance(own, bool) and own >= 1:
        limits.append(int(own))
    if not limits:
        raise MissingHorizonError(
            f"{type(env.unwrapped).__name__} has neither a TimeLimit nor a max_steps "
            "attribute: pass horizon= (the episode length the audit should assume)"
        )
    return min(limits)


def _actions(env: gym.Env) -> tuple[int, int]:
    """(A, first action) of the env's Discrete action space."""
    space = env.action_space
    if not isinstance(space, spaces.Discrete):
        raise UnsupportedActionSpaceError(
            f"the extraction needs a Discrete action space, got {space!r}: a tabular model "
            "has finitely many actions"
        )
    inner = env.unwrapped.action_space
    if inner != space:
        raise UnsupportedWrapperError(
            f"the wrapped env's actions {space!r} are not the unwrapped env's {inner!r}"
        )
    return int(space.n), int(space.start)


# ----------------------------------------------------------------------------- search


@dataclasses.dataclass
class _Graph:
    """What the breadth-first search found (mutable while searching)."""

    keys: list[Hashable]
    ended: list[bool]
    snapshots: list[Any]
    cells: list[tuple[int, int] | None]
    next_state: list[int]
    reward: list[float]
    info_objectives: dict[str, list[float]]
    steps: int = 0


def _real_valued(a: Any, b: Any, name: str | None = None) -> str | None:
    """The name of a real-valued part of a state key that differs between keys ``a`` and
    ``b`` (``"state"`` when unnamed), or None: a continuous state space's sign. Keys are
    walked as nested tuples; a ``(str, value)`` pair names its value, as the deep-copy
    codec's ``(attribute, value)`` items do."""
    if isinstance(a, (float, np.floating)) and isinstance(b, (float, np.floating)):
        differ = a != b and not (float(a).is_integer() and float(b).is_integer())
        return (name or "state") if differ else None
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        if len(a) == 2 and isinstance(a[0], str) and a[0] == b[0]:
            return _real_valued(a[1], b[1], a[0])
        for x, y in zip(a, b):
            found = _real_valued(x, y, name)
            if found:
                return found
    return None


class _Search:
    """Breadth-first search of one level through a binding (see :func:`extract_level`)."""

    def __init__(
        self, binding: Binding, n_actions: int, first_action: int, max_states: int
    ) -> None:
        self.binding = binding
        self.actions = [first_action + a for a in range(n_actions)]
        self.max_states = max_states
        self.index: dict[bool, dict[Hashable, int]] = {False: {}, True: {}}
        self.graph = _Graph([], [], [], [], [], [], {})

    def _add(self, key: Hashable, ended: bool) -> int:
        g = self.graph
        j = len(g.keys)
        if j >= self.max_states:
            real = _real_valued(g.keys[0], key)
            raise TooManyStatesError(
                f"more than {self.max_states} states are reachable from this level's reset "
                f"state (found after {g.steps} steps): "
                + (
                    f"its {real!r} holds real numbers that change from step to step; if the "
                    "state is continuous it has no finite model: discretise it in the env, or "
                    "give the env a tabular_model() (docs/own_env.md); if not, pass a larger "
                    "max_states="
                    if real
                    else "pass a larger max_states= if memory allows, or audit smaller levels"
                ),
                states=self.max_states,
                steps=g.steps,
            )
        self.index[ended][key] = j
        g.keys.append(key)
        g.ended.append(ended)
        g.snapshots.append(self.binding.snapshot())
        g.cells.append(self.binding.cell())
        return j

    def _advance(self, action: int) -> tuple[Hashable, bool, float, Any]:
        """Step the env from its current state: (key, ended, model reward, info)."""
        _, reward, terminated, _, info = self.binding.env.step(action)
        self.graph.steps += 1
        reward = float(reward)
        if reward != 0.0:
            reward = float(self.binding.model_reward(reward))
        return self.binding.key(), bool(terminated), reward, info

    def _record_objectives(self, info: Any, row: int) -> None:
        objs = info.get("objectives") if isinstance(info, Mapping) else None
        table = self.graph.info_objectives
        if objs is None:
            if table:
                raise ExtractionError(
                    "info['objectives'] is missing from some steps but not others"
                )
            return
        if not table and row == 0:
            for name in objs:
                table[str(name)] = []
        if set(objs) != set(table):
            raise ExtractionError(
                f"info['objectives'] names changed from {sorted(table)} to {sorted(objs)}"
            )
        for name, value in objs.items():
            table[str(name)].append(float(value))

    def run(self) -> _Graph:
        b, g = self.binding, self.graph
        root = b.key()
        self._add(root, False)
        b.restore(g.snapshots[0])
        if b.key() != root:
            raise CodecError(
                f"{type(b).__name__}: restoring the reset state of "
                f"{type(b.env).__name__} does not give back its key; the codec cannot "
                "restore this env (try codec=DeepCopyCodec())"
            )
        n_actions = len(self.actions)
        i = 0
        while i < len(g.keys):
            if g.ended[i]:
                g.next_state.extend([i] * n_actions)
                g.reward.extend([0.0] * n_actions)
                for values in g.info_objectives.values():
                    values.extend([0.0] * n_actions)
            else:
                snap = g.snapshots[i]
                for action in self.actions:
                    b.restore(snap)
                    key, ended, reward, info = self._advance(action)
                    j = self.index[ended].get(key)
                    if j is None:
                        j = self._add(key, ended)
                    self._record_objectives(info, len(g.next_state))
                    g.next_state.append(j)
                    g.reward.append(reward)
                    if i == 0:  # the root's steps twice: catch random steps early
                        self.recheck(0, action - self.actions[0])
            i += 1
        return g

    def recheck(self, s: int, a: int) -> None:
        """Step (s, a) again and compare with the search's record."""
        b, g = self.binding, self.graph
        b.restore(g.snapshots[s])
        if b.key() != g.keys[s]:
            raise CodecError(
                f"{type(b).__name__}: restoring state {s} does not reproduce it; the codec "
                f"cannot restore {type(b.env).__name__} (try codec=DeepCopyCodec())"
            )
        row = s * len(self.actions) + a
        key, ended, reward, _ = self._advance(self.actions[a])
        j = self.index[ended].get(key)
        before = (g.next_state[row], g.reward[row])
        if (j, reward) != before:
            raise StochasticStepError(
                f"step({self.actions[a]}) from state {s} of {type(b.env).__name__} led to "
                f"state {before[0]} with reward {before[1]} the first time and to state {j} "
                f"with reward {reward} the second: the step is random, or depends on state "
                "the codec does not capture (try codec=DeepCopyCodec()); the extraction "
                "needs deterministic dynamics"
            )


def _check_sample(search: _Search, checks: int, seed: int) -> None:
    g = search.graph
    n_actions = len(search.actions)
    live = np.flatnonzero(~np.asarray(g.ended, dtype=bool))
    pairs = live.size * n_actions
    if checks <= 0 or pairs == 0:
        return
    rng = np.random.default_rng(seed)
    picks = rng.choice(pairs, size=min(checks, pairs), replace=False)
    for p in np.sort(picks):
        search.recheck(int(live[p // n_actions]), int(p % n_actions))


# ----------------------------------------------------------------------------- cache


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidArgumentError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


class LevelCache:
    """A least-recently-used cache of extracted levels (keyed by the level's encoding).

    Args:
        maxsize: at most this many levels.
        max_states: at most this many states over all levels (a level's keys and
            snapshots cost a few hundred bytes per state); the newest level is kept even
            if it alone is larger.
    """

    def __init__(self, maxsize: int = 256, max_states: int = 250_000) -> None:
        self.maxsize = _check_int("maxsize", maxsize, 1)
        self.max_states = _check_int("max_states", max_states, 1)
        self._items: collections.OrderedDict[Hashable, ExtractedLevel] = collections.OrderedDict()
        self._states = 0

    def get(self, key: Hashable) -> ExtractedLevel | None:
        level = self._items.get(key)
        if level is not None:
            self._items.move_to_end(key)
        return level

    def put(self, key: Hashable, level: ExtractedLevel) -> None:
        old = self._items.pop(key, None)
        self._states += level.n_states - (0 if old is None else old.n_states)
        self._items[key] = level
        while len(self._items) > 1 and (
            len(self._items) > self.maxsize or self._states > self.max_states
        ):
            _, dropped = self._items.popitem(last=False)
            self._states -= dropped.n_states

    def clear(self) -> None:
        self._items.clear()
        self._states = 0

    def __len__(self) -> int:
        return len(self._items)


_CACHE = LevelCache()


def _stack(values: list[Any], space: spaces.Space) -> Any:
    if isinstance(space, spaces.Dict):
        return types.MappingProxyType(
            {k: _stack([v[k] for v in values], sub) for k, sub in space.spaces.items()}
        )
    if isinstance(space, spaces.Tuple):
        return tuple(_stack([v[i] for v in values], sub) for i, sub in enumerate(space.spaces))
    if isinstance(space, spaces.Text):
        return tuple(str(v) for v in values)
    arr = np.stack([np.asarray(v) for v in values])
    arr.setflags(write=False)
    return arr


def _observations(env: gym.Env, binding: Binding, snapshots: Sequence[Any]) -> Any:
    wrappers = _observation_wrappers(env)
    obs = []
    with preserved(binding):
        for snap in snapshots:
            binding.restore(snap)
            o = binding.observe()
            for w in wrappers:
                o = w.observation(o)
            obs.append(o)
    return _stack(obs, env.observation_space)


def _model(graph: _Graph, n_actions: int, horizon: int, observations: Any) -> TabularModel:
    S, A = len(graph.keys), n_actions
    transitions = sp.csr_array(
        (np.ones(S * A), np.asarray(graph.next_state, dtype=np.int64), np.arange(S * A + 1)),
        shape=(S * A, S),
    )
    objectives = {name: np.asarray(v).reshape(S, A) for name, v in graph.info_objectives.items()}
    objectives["reward"] = np.asarray(graph.reward).reshape(S, A)
    init = np.zeros(S)
    init[0] = 1.0
    cells = None
    if all(c is not None for c in graph.cells):
        cells = np.asarray(graph.cells, dtype=np.int64).reshape(S, 2)
    return TabularModel(
        transitions=transitions,
        initial_state_dist=init,
        horizon=horizon,
        objectives=objectives,
        base="reward",
        cells=cells,
        observations=observations if isinstance(observations, np.ndarray) else None,
        n_actions=A,
    )


def extract_level(
    env: gym.Env,
    *,
    max_states: int = DEFAULT_MAX_STATES,
    codec: StateCodec | None = None,
    observations: bool = False,
    horizon: int | None = None,
    checks: int = 64,
    seed: int = 0,
    cache: LevelCache | bool | None = True,
) -> ExtractedLevel:
    """The exact model of ``env``'s current level, from its current state (call it right
    after ``reset``), and the codec index of its states.

    Args:
        env: a gymnasium env (wrapped or not) with ``Discrete`` actions and a
            deterministic ``step``.
        max_states: stop with :class:`TooManyStatesError` beyond this many states.
        codec: how to read and write the env's state; None: :func:`default_codec`.
        observations: also record the observation the (wrapped) env emits in each state.
        horizon: the episode length; None: the env's ``TimeLimit`` / ``max_steps``.
        checks: (state, action) pairs stepped a second time after the search (seeded by
            ``seed``), besides the root's actions.
        seed: seed of that sample.
        cache: a :class:`LevelCache`, True for the module's, False/None for none.

    Returns:
        The :class:`ExtractedLevel` (its ``model`` is the tabular model).

    Raises:
        UnsupportedActionSpaceError: the action space is not ``Discrete``.
        UnsupportedWrapperError: a wrapper changes ``step`` or the actions.
        MissingHorizonError: no horizon given or found.
        CodecError: the codec cannot encode, copy or restore the env's state.
        StochasticStepError: a (state, action) stepped twice gave different results.
        TooManyStatesError: more than ``max_states`` reachable states.
    """
    started = time.perf_counter()
    max_states = _check_int("max_states", max_states, 1)
    checks = _check_int("checks", checks, 0)
    n_actions, first = _actions(env)
    obs_wrappers = _observation_wrappers(env)
    H = _horizon(env, horizon)
    codec = default_codec(env) if codec is None else codec
    if not isinstance(codec, StateCodec):
        raise InvalidArgumentError(f"codec must be a StateCodec, got {codec!r}")
    store = _CACHE if cache is True else (cache if isinstance(cache, LevelCache) else None)
    binding = codec.bind(env.unwrapped)
    cache_key = None
    if store is not None:
        level_key = binding.level_key()
        if level_key is not None:
            wrap = tuple(_qualified(w) for w in obs_wrappers)
            obs_space = repr(env.observation_space) if observations else None
            cache_key = (codec, level_key, H, wrap, obs_space)
            hit = store.get(cache_key)
            if hit is not None and hit.n_states <= max_states:
                return dataclasses.replace(hit, binding=binding, steps=0, seconds=0.0)
    search = _Search(binding, n_actions, first, max_states)
    with preserved(binding):
        with binding.searching():
            graph = search.run()
            _check_sample(search, checks, seed)
        binding.check_search()
    obs = _observations(env, binding, graph.snapshots) if observations else None
    level = ExtractedLevel(
        model=_model(graph, n_actions, H, obs),
        keys=tuple(graph.keys),
        ended=np.asarray(graph.ended, dtype=bool),
        snapshots=tuple(graph.snapshots),
        binding=binding,
        observations=obs,
        steps=graph.steps,
        seconds=time.perf_counter() - started,
    )
    level.ended.setflags(write=False)
    if cache_key is not None:
        store.put(cache_key, level)
    return level


def extract_model(env: gym.Env, **kwargs: Any) -> TabularModel:
    """:func:`extract_level` (same arguments) and return only its model."""
    return extract_level(env, **kwargs).model


# ----------------------------------------------------------------------------- episodes

#: The level of each env's current episode (env.unwrapped -> ExtractedLevel), set by
#: :func:`episode_level` with ``fresh=True`` right after a reset.
_EPISODES: weakref.WeakKeyDictionary[Any, ExtractedLevel] = weakref.WeakKeyDictionary()


def episode_level(env: gym.Env, *, fresh: bool = False, **kwargs: Any) -> ExtractedLevel:
    """The extracted level of ``env``'s current episode, remembered per env.

    With ``fresh=True`` the level is extracted (through the cache) from the env's current
    state -- call it right after ``reset``, as :func:`behavioral.rollout.rollout` does --
    and remembered for ``env``. Without, the remembered level is returned while it is
    still the env's (its binding is current: Minigrid envs build a new grid at every
    reset), else the level is extracted from the current state as with ``fresh=True``.
    This is how tabular planners and ``state_index`` find the model of an env that has
    none of its own, mid-episode.

    Args:
        env: the env (wrapped or not).
        fresh: extract now instead of reusing the remembered level.
        **kwargs: passed to :func:`extract_level`.
    """
    u = env.unwrapped
    if not fresh:
        level = _EPISODES.get(u)
        if level is not None and level.binding.is_current():
            return level
    level = extract_level(env, **kwargs)
    _EPISODES[u] = level
    return level


def check_extractable(env: Any) -> None:
    """Raise the specific :class:`ExtractionError` that stops :func:`extract_level` before
    it steps ``env``: not a gymnasium env, actions that are not ``Discrete``, a wrapper that
    changes ``step``. (Whether its steps are deterministic and its states few enough is
    only known by trying.)"""
    if not isinstance(env, gym.Env):
        raise ExtractionError(f"{type(env).__name__} is not a gymnasium env")
    _actions(env)
    _observation_wrappers(env)


def is_extractable(env: Any) -> bool:
    """Whether :func:`check_extractable` passes."""
    try:
        check_extractable(env)
    except ExtractionError:
        return False
    return True
