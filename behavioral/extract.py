"""Exact tabular models of the levels of discrete environments others wrote.

:func:`extract_level` turns the current level of a gymnasium env with ``Discrete`` actions
and a deterministic ``step`` into a :class:`~behavioral.tabular.TabularModel`: a
breadth-first search over the states reachable from the env's current state (call it
right after ``reset``), one ``env.unwrapped.step`` per (state, action), through a *state
codec* that encodes the env's full state as a hashable key and restores it.

Codecs (:class:`StateCodec`):

* :class:`DeepCopyCodec` -- any env: a state is a deep copy of ``env.unwrapped``'s
  attributes, its key a canonical, value-based encoding of them (two states are the same
  when all their attributes are equal, whatever the objects' identities). Slow (one deep
  copy per step) but general. Attributes that count time (``ignore=``, e.g. Minigrid's
  ``step_count``) are left out of the key and set back to their reset values on restore.
* :class:`GridEnvCodec` -- this project's own envs (RedDoors, WaterPlants): their
  hashable ``_state``.
* ``behavioral.minigrid.MinigridCodec`` -- Minigrid: agent position and direction, the
  grid (which object is in which cell), each movable object's state and the carried
  object; not the step counter.

``codec=None`` picks the fast one for the env, else :class:`DeepCopyCodec`.

The model (see :class:`ExtractedLevel`):

* States are indexed in breadth-first order from the current state (index 0).
* A step that ends the episode (``terminated``) leads to an *absorbing* state: one per
  distinct final state ("ended here"), whose every action loops back with reward 0, as in
  this project's envs. Truncation (time limits) is not part of the dynamics: the horizon
  is.
* ``objectives["reward"]`` (the base) is the env's own reward of each (state, action),
  through the codec (:meth:`Binding.model_reward`: Minigrid's success reward
  ``1 - 0.9 * step_count / max_steps`` depends on the step count, which is not part of
  the state, so the model pays its time-free value 1 and leaves the time preference to
  the audit's discount nuisance). Envs that report ``info["objectives"]`` (this
  project's environment contract) get each of those objectives too, per (state, action).
* ``horizon``: the smallest of the env's ``TimeLimit`` and its own ``max_steps``
  attribute, or ``horizon=``.
* ``cells`` (grid row, column of each state) when the codec knows them;
  ``observations`` (the observation the *wrapped* env emits in each state, through its
  observation wrappers) only with ``observations=True``.

Wrappers: ``extract_level`` steps ``env.unwrapped``. Observation wrappers are applied to
the observations; bookkeeping wrappers (``TimeLimit``, ``OrderEnforcing``,
``PassiveEnvChecker``, ``RecordEpisodeStatistics``, SB3's ``Monitor``), reward wrappers
(the model's ``"reward"`` is the unwrapped env's) and wrappers that do not override
``step`` are passed over; any other wrapper (an action wrapper, one that changes
``step``) raises :class:`UnsupportedWrapperError`.

Checks: restoring the root state must give back its key; the root's actions are stepped
twice and a seeded sample of ``checks`` (state, action) pairs is stepped again after the
search; any difference raises :class:`StochasticStepError` (or :class:`CodecError` when
restoring does not reproduce a state). The env is left as it was found (state, counters
and random generator).

Levels are cached (:class:`LevelCache`) under the codec's encoding of the reset state,
so calling :func:`extract_level` after every ``reset`` costs one encoding when the level
was seen before.
"""

from __future__ import annotations

import abc
import collections
import contextlib
import copy
import dataclasses
import enum
import functools
import time
import types
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import scipy.sparse as sp
from gymnasium import spaces

from behavioral.errors import EnvContractError, InvalidArgumentError
from behavioral.tabular import TabularModel

__all__ = [
    "Binding",
    "CodecError",
    "DeepCopyCodec",
    "ExtractedLevel",
    "ExtractionError",
    "GridEnvCodec",
    "LevelCache",
    "MissingHorizonError",
    "StateCodec",
    "StochasticStepError",
    "TooManyStatesError",
    "UnsupportedActionSpaceError",
    "UnsupportedWrapperError",
    "default_codec",
    "extract_level",
    "extract_model",
    "on_entry",
]

#: Default bound on the number of states of one level.
DEFAULT_MAX_STATES = 100_000


# ----------------------------------------------------------------------------- errors


class ExtractionError(EnvContractError):
    """The exact model of an env's level cannot be extracted (base class)."""


class UnsupportedActionSpaceError(ExtractionError):
    """The env's action space is not ``Discrete``: a tabular model needs finitely many
    actions (discretize the actions with an action wrapper on a copy of the env whose
    ``step`` takes the discrete action, or audit with a model you build)."""


class StochasticStepError(ExtractionError):
    """Stepping the same (state, action) twice gave different results: the env's step is
    random, or depends on state the codec does not capture."""


class CodecError(ExtractionError):
    """The codec cannot encode, copy or restore the env's state."""


class TooManyStatesError(ExtractionError):
    """More states are reachable from the level's reset state than ``max_states``.

    Attributes:
        states: the bound that was exceeded.
        steps: ``env.step`` calls made before giving up.
    """

    def __init__(self, message: str, *, states: int = 0, steps: int = 0) -> None:
        super().__init__(message)
        self.states = states
        self.steps = steps


class UnsupportedWrapperError(ExtractionError):
    """A wrapper changes ``step`` in a way the extraction cannot see through."""


class MissingHorizonError(ExtractionError):
    """The env has no time limit the extraction can read: pass ``horizon=``."""


# ----------------------------------------------------------------------------- codecs


class Binding(abc.ABC):
    """A codec bound to one env (``env.unwrapped``) in one level.

    Made by :meth:`StateCodec.bind` with the env in the level's root state (right after
    ``reset``). Keys must identify states completely within the level and be equal for
    equal states of any re-creation of the same level (an env reset again with the same
    seed), so that cached models and :meth:`ExtractedLevel.state_index` work across
    episodes once the new episode is bound.
    """

    def __init__(self, env: Any) -> None:
        self.env = env

    @abc.abstractmethod
    def key(self) -> Hashable:
        """The key of the env's current state."""

    def snapshot(self) -> Any:
        """What :meth:`restore` needs to put the env back in its current state (default:
        the key)."""
        return self.key()

    @abc.abstractmethod
    def restore(self, snapshot: Any) -> None:
        """Put the env in the snapshot's state, its time counters at their level-start
        values."""

    def level_key(self) -> Hashable | None:
        """A key of the whole level (layout and current state) for caching; None: never
        cache."""
        return None

    def cell(self) -> tuple[int, int] | None:
        """Grid (row, column) of the current state, or None when the env has no grid."""
        return None

    def observe(self) -> Any:
        """The observation ``env.unwrapped`` emits in its current state."""
        raise CodecError(
            f"{type(self).__name__} cannot compute the observation of a state of "
            f"{type(self.env).__name__}; extract without observations=True, or give the "
            "codec an observe function"
        )

    def is_current(self) -> bool:
        """Whether the env is still in the level this binding was made in (not reset
        since: a reset builds a new level, even with the same seed)."""
        return True

    def model_reward(self, reward: float) -> float:
        """The model's reward for a step whose env reward was ``reward`` (non-zero)."""
        return reward

    def searching(self) -> contextlib.AbstractContextManager[None]:
        """A context in which steps may skip work the search does not need."""
        return contextlib.nullcontext()

    def check_search(self) -> None:  # noqa: B027 - an optional hook
        """Called after the search, before the env is put back: raise CodecError if the
        steps changed state the codec does not restore."""


class StateCodec(abc.ABC):
    """How to read and write the state of one kind of env (a hashable config)."""

    #: Short name, for reports.
    name: str = "codec"

    @abc.abstractmethod
    def bind(self, env: Any) -> Binding:
        """A :class:`Binding` of ``env`` (the unwrapped env) in its current level.

        Raises:
            CodecError: the env cannot be handled by this codec.
        """


# The attributes of a gymnasium env that are not state: spaces, spec, rendering, RNG.
_NOT_STATE = frozenset(
    {
        "_np_random",
        "np_random_seed",
        "_np_random_seed",
        "spec",
        "observation_space",
        "action_space",
        "metadata",
        "render_mode",
        "reward_range",
        "window",
        "clock",
    }
)


class _Ref(tuple):
    """A reference to the ``i``-th object met while freezing (shared and cyclic objects)."""

    __slots__ = ()


def _freeze(value: Any, memo: dict[int, int]) -> Hashable:
    """A hashable, value-based encoding of ``value`` (see :class:`DeepCopyCodec`)."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, complex)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, enum.Enum):
        return (type(value).__qualname__, value.name)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return ("ndarray", value.shape, tuple(_freeze(v, memo) for v in value.ravel()))
        return _freeze(value.tolist(), memo) if value.ndim else value.item()
    if isinstance(value, (tuple, list)):
        return tuple(_freeze(v, memo) for v in value)
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return ("callable", getattr(value, "__module__", ""), getattr(value, "__qualname__", ""))
    if isinstance(value, (types.MethodType, functools.partial)):
        return ("method", _freeze(getattr(value, "__func__", value.func), memo))
    seen = memo.get(id(value))
    if seen is not None:
        return _Ref((seen,))
    memo[id(value)] = len(memo)
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((_freeze(v, memo) for v in value), key=repr)))
    if isinstance(value, Mapping):
        items = sorted(((_freeze(k, memo), _freeze(v, memo)) for k, v in value.items()), key=repr)
        return ("dict", tuple(items))
    if isinstance(value, np.random.Generator):
        return ("Generator",)  # never state: see DeepCopyCodec
    attrs = getattr(value, "__dict__", None)
    if attrs is None and hasattr(type(value), "__slots__"):
        attrs = {s: getattr(value, s) for s in type(value).__slots__ if hasattr(value, s)}
    if attrs is None:
        raise CodecError(
            f"a {type(value).__module__}.{type(value).__qualname__} has no attributes to compare"
        )
    frozen = tuple((k, _freeze(attrs[k], memo)) for k in sorted(attrs))
    return (type(value).__module__, type(value).__qualname__, frozen)


class _DeepCopyBinding(Binding):
    def __init__(self, env: Any, codec: DeepCopyCodec) -> None:
        super().__init__(env)
        self.codec = codec
        self.exclude = _NOT_STATE | set(codec.ignore) | set(codec.exclude)
        self.counters = {k: getattr(env, k) for k in codec.ignore if hasattr(env, k)}

    def _state(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self.env).items() if k not in self.exclude}

    def key(self) -> Hashable:
        memo: dict[int, int] = {}
        state = self._state()
        out = []
        for k in sorted(state):
            try:
                out.append((k, _freeze(state[k], memo)))
            except (CodecError, RecursionError) as err:
                raise CodecError(
                    f"cannot encode attribute {k!r} of {type(self.env).__name__} ({err}); if "
                    f"it is not state (a cache), leave it out with DeepCopyCodec(exclude="
                    f"({k!r},)), else pass a codec that knows the env's state"
                ) from None
        return tuple(out)

    def snapshot(self) -> Any:
        memo: dict[int, Any] = {}
        out = {}
        for k, v in self._state().items():
            try:
                out[k] = copy.deepcopy(v, memo)
            except Exception as err:  # deepcopy raises whatever the objects raise
                raise CodecError(
                    f"cannot deep-copy attribute {k!r} of {type(self.env).__name__} ({err}); "
                    f"if it is not state (a cache), leave it out with DeepCopyCodec("
                    f"exclude=({k!r},)), else pass a codec that can save and restore it"
                ) from err
        return out

    def restore(self, snapshot: Any) -> None:
        state = copy.deepcopy(snapshot)
        attrs = vars(self.env)
        for k in [k for k in attrs if k not in self.exclude and k not in state]:
            del attrs[k]
        attrs.update(state)
        attrs.update(self.counters)

    def level_key(self) -> Hashable | None:
        t = type(self.env)
        return (t.__module__, t.__qualname__, self.key())

    def cell(self) -> tuple[int, int] | None:
        return None if self.codec.cell is None else tuple(self.codec.cell(self.env))

    def observe(self) -> Any:
        if self.codec.observe is None:
            return super().observe()
        return self.codec.observe(self.env)


@dataclasses.dataclass(frozen=True)
class DeepCopyCodec(StateCodec):
    """The generic codec: a deep copy of ``env.unwrapped``'s attributes.

    The key is a canonical encoding of the attributes' *values* (numbers, strings,
    arrays, containers and objects' attributes, recursively; shared objects as
    references), so two states are the same when every attribute compares equal.
    Never part of the state: spaces, ``spec``, rendering attributes and the random
    generator, which is *not* restored, so that a step that draws random numbers gives a
    different result when stepped again (and is caught as stochastic).

    Attributes:
        ignore: attributes that count time (Minigrid's ``"step_count"``): left out of the
            key, set back to their root values on every restore.
        exclude: attributes that are not state (caches): neither encoded nor restored.
        observe: ``f(unwrapped_env) -> observation`` of the current state (needed for
            ``observations=True``), or None.
        cell: ``f(unwrapped_env) -> (row, col)`` of the current state, or None.
    """

    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    observe: Callable[[Any], Any] | None = None
    cell: Callable[[Any], Sequence[int]] | None = None
    name: str = "deepcopy"

    def bind(self, env: Any) -> Binding:
        return _DeepCopyBinding(env, self)


class _GridEnvBinding(Binding):
    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self._level = env.level

    def is_current(self) -> bool:
        return self.env.level is self._level

    def key(self) -> Hashable:
        return self.env._state

    def restore(self, snapshot: Any) -> None:
        self.env._state = snapshot
        self.env._t = 0

    def level_key(self) -> Hashable | None:
        t = type(self.env)
        return (t.__module__, t.__qualname__, _primitives(self.env, {"_t", "_pours"}), self.key())

    def cell(self) -> tuple[int, int] | None:
        r, c = self.env._cell(self.env._state)
        return int(r), int(c)

    def observe(self) -> Any:
        return self.env._observe(self.env._state)


@dataclasses.dataclass(frozen=True)
class GridEnvCodec(StateCodec):
    """This project's grid envs (``behavioral_envs.grid.GridEnv``): their hashable
    ``_state`` is the whole state; the step counter ``_t`` is not."""

    name: str = "gridenv"

    def bind(self, env: Any) -> Binding:
        if getattr(env, "_state", None) is None or not callable(getattr(env, "_observe", None)):
            raise CodecError(
                f"{type(env).__name__} is not a reset GridEnv (no _state): call reset() first"
            )
        return _GridEnvBinding(env)


def _is_primitive(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return True
    return isinstance(value, tuple) and all(_is_primitive(v) for v in value)


def _primitives(env: Any, exclude: set[str] | frozenset[str]) -> tuple[tuple[str, Any], ...]:
    """The env's primitive attributes (numbers, strings, tuples of them), sorted."""
    return tuple(
        (k, v) for k, v in sorted(vars(env).items()) if k not in exclude and _is_primitive(v)
    )


def default_codec(env: gym.Env) -> StateCodec:
    """The fast codec for ``env`` (Minigrid, this project's grid envs), else a
    :class:`DeepCopyCodec`."""
    import sys

    u = env.unwrapped
    if "minigrid" in sys.modules:
        from minigrid.minigrid_env import MiniGridEnv

        if isinstance(u, MiniGridEnv):
            from behavioral.minigrid import MinigridCodec

            return MinigridCodec()
    if "behavioral_envs.grid" in sys.modules:
        from behavioral_envs.grid import GridEnv

        if isinstance(u, GridEnv):
            return GridEnvCodec()
    return DeepCopyCodec()


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
            raise TooManyStatesError(
                f"more than {self.max_states} states are reachable from this level's reset "
                f"state (found after {g.steps} steps): pass a larger max_states= if memory "
                "allows, or audit smaller levels",
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


# ----------------------------------------------------------------------------- result


@contextlib.contextmanager
def _preserved(binding: Binding) -> Iterator[None]:
    """Put the env back as it was (state, primitive counters, RNG) on exit."""
    env = binding.env
    snap = binding.snapshot()
    counters = dict(_primitives(env, frozenset()))
    rng = getattr(env, "_np_random", None)
    rng_state = None if rng is None else copy.deepcopy(rng.bit_generator.state)
    try:
        yield
    finally:
        binding.restore(snap)
        for k, v in counters.items():
            setattr(env, k, v)
        if rng is not None:
            env._np_random = rng
            rng.bit_generator.state = rng_state


def on_entry(
    model: TabularModel, values: np.ndarray, absorbing: np.ndarray | None = None
) -> np.ndarray:
    """A state quantity paid on entering each state, as a per-step reward.

    Args:
        model: the MDP.
        values: (S,) or (S, K) value of each state (a predicate's truth, a feature).
        absorbing: (S,) bool mask of the states where the episode has ended (default:
            :func:`behavioral.tabular.absorbing_states`); they pay 0, as every absorbing
            state of this project's models does.

    Returns:
        (S, A) or (S, A, K): ``out[s, a] = sum_s' P(s' | s, a) values[s']``, 0 where ``s``
        is absorbing -- the reward of the step that enters ``s'``.
    """
    from behavioral.tabular import absorbing_states

    v = np.asarray(values, dtype=np.float64)
    S, A = model.n_states, model.n_actions
    if v.shape[:1] != (S,) or v.ndim not in (1, 2):
        raise InvalidArgumentError(f"values must be (S,) or (S, K) with S={S}, got {v.shape}")
    mask = absorbing_states(model) if absorbing is None else np.asarray(absorbing, dtype=bool)
    out = np.asarray(model.transitions @ v).reshape((S, A, *v.shape[1:]))
    out[mask] = 0.0
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class ExtractedLevel:
    """The exact model of one level and the codec index of its states.

    Attributes:
        model: the :class:`~behavioral.tabular.TabularModel` (see the module docstring).
        keys: (S,) codec key of each state.
        ended: (S,) bool, the absorbing "episode ended here" states.
        snapshots: (S,) what restores each state.
        binding: the codec bound to the env this level was extracted from (or re-bound
            to, on a cache hit).
        observations: (S, *obs_shape) observation of each state (a mapping of such
            arrays, tuples of strings for text, for ``Dict`` observation spaces), or None.
        steps: ``env.step`` calls the extraction made (0 when served from the cache).
        seconds: wall time of the extraction.
    """

    model: TabularModel
    keys: tuple[Hashable, ...]
    ended: np.ndarray
    snapshots: tuple[Any, ...]
    binding: Binding
    observations: Any = None
    steps: int = 0
    seconds: float = 0.0

    @property
    def n_states(self) -> int:
        """S, the number of states."""
        return len(self.keys)

    @functools.cached_property
    def _index(self) -> dict[bool, dict[Hashable, int]]:
        index: dict[bool, dict[Hashable, int]] = {False: {}, True: {}}
        for s, (key, ended) in enumerate(zip(self.keys, self.ended.tolist(), strict=True)):
            index[ended].setdefault(key, s)
        return index

    def _env(self, env: Any) -> Any:
        u = self.binding.env if env is None else getattr(env, "unwrapped", env)
        if u is not self.binding.env:
            raise ExtractionError(
                "this level is bound to another env instance: call extract_level(env) "
                "after resetting env (a cache hit re-binds it)"
            )
        if not self.binding.is_current():
            raise ExtractionError(
                "the env was reset since this level was extracted: call extract_level(env) "
                "again after every reset (a level seen before comes from the cache)"
            )
        return u

    def state_index(self, env: Any = None, *, terminated: bool | None = None) -> int:
        """Index of ``env``'s current state (the bound env by default).

        Args:
            env: the env (or its unwrapped env) this level is bound to.
            terminated: whether the last step ended the episode; None looks up a live
                state first, then an ended one.

        Raises:
            ExtractionError: the state is not in the model, or ``env`` is another env.
        """
        self._env(env)
        key = self.binding.key()
        order = (False, True) if terminated is None else (bool(terminated),)
        for ended in order:
            s = self._index[ended].get(key)
            if s is not None:
                return s
        raise ExtractionError(
            "the env's current state is not in this level's model (another level, or a "
            "state the search did not reach from the reset state)"
        )

    def restore(self, env: Any, s: int) -> None:
        """Put ``env`` (the bound env) in state ``s`` (its time counter at 0)."""
        self._env(env)
        if not 0 <= int(s) < self.n_states:
            raise InvalidArgumentError(f"state {s} is not in [0, {self.n_states})")
        self.binding.restore(self.snapshots[int(s)])

    def values(self, fn: Callable[[Any], float]) -> np.ndarray:
        """(S,) ``float(fn(env.unwrapped))`` with the env restored to each state.

        The env is put back in the state it was in. A predicate (``bool``) gives 0/1.

        Raises:
            InvalidArgumentError: ``fn`` returned something that is not a finite number.
        """
        out = np.empty(self.n_states)
        u = self.binding.env
        with _preserved(self.binding):
            for s, snap in enumerate(self.snapshots):
                self.binding.restore(snap)
                v = fn(u)
                try:
                    out[s] = float(v)
                except (TypeError, ValueError):
                    raise InvalidArgumentError(
                        f"{_name(fn)} returned {v!r} in state {s}, not a number"
                    ) from None
                if not np.isfinite(out[s]):
                    raise InvalidArgumentError(f"{_name(fn)} returned {v!r} in state {s}")
        return out

    def features(
        self, fns: Sequence[Callable[[Any], float]], names: Sequence[str] | None = None
    ) -> tuple[np.ndarray, tuple[str, ...]]:
        """(S, K) values of K state functions (:meth:`values` each) and their names
        (``names``, else each function's ``name`` attribute or ``__name__``)."""
        fns = list(fns)
        names = tuple(names) if names is not None else tuple(_name(f) for f in fns)
        if len(names) != len(fns) or len(set(names)) != len(names):
            raise InvalidArgumentError(f"need {len(fns)} distinct names, got {names}")
        if not fns:
            return np.zeros((self.n_states, 0)), ()
        return np.stack([self.values(f) for f in fns], axis=1), names

    def entry_reward(self, values: np.ndarray) -> np.ndarray:
        """:func:`on_entry` of (S,) or (S, K) state values on this model, 0 from the
        ended states."""
        return on_entry(self.model, values, self.ended)


def _name(fn: Any) -> str:
    return str(getattr(fn, "name", None) or getattr(fn, "__name__", None) or repr(fn))


# ----------------------------------------------------------------------------- cache


class LevelCache:
    """A least-recently-used cache of extracted levels (keyed by the level's encoding)."""

    def __init__(self, maxsize: int = 16) -> None:
        if maxsize < 1:
            raise InvalidArgumentError(f"maxsize must be >= 1, got {maxsize}")
        self.maxsize = int(maxsize)
        self._items: collections.OrderedDict[Hashable, ExtractedLevel] = collections.OrderedDict()

    def get(self, key: Hashable) -> ExtractedLevel | None:
        level = self._items.get(key)
        if level is not None:
            self._items.move_to_end(key)
        return level

    def put(self, key: Hashable, level: ExtractedLevel) -> None:
        self._items[key] = level
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

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
    with _preserved(binding):
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


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidArgumentError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


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
    with _preserved(binding):
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
