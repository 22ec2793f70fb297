"""The pieces every extraction shares: errors, the codec interface, the extracted level.

See :mod:`behavioral.extract` for how a level is extracted.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import dataclasses
import functools
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

import numpy as np

from behavioral.errors import BehavioralError, EnvContractError, InvalidArgumentError
from behavioral.tabular import TabularModel

__all__ = [
    "Binding",
    "CodecError",
    "ExtractedLevel",
    "ExtractionError",
    "MissingHorizonError",
    "StateCodec",
    "StateFunction",
    "StateFunctionError",
    "StochasticStepError",
    "TooManyStatesError",
    "UnsupportedActionSpaceError",
    "UnsupportedWrapperError",
    "is_primitive",
    "on_entry",
    "preserved",
    "primitive_attributes",
    "state_function",
]


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


class StateFunctionError(InvalidArgumentError):
    """A state function (an objective or feature evaluated on the env restored to each
    state) raised an exception."""


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


def is_primitive(value: Any) -> bool:
    """Whether ``value`` is a number, string, None or a tuple of such (hashable, copied
    by value)."""
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return True
    return isinstance(value, tuple) and all(is_primitive(v) for v in value)


def primitive_attributes(
    env: Any, exclude: set[str] | frozenset[str]
) -> tuple[tuple[str, Any], ...]:
    """The env's primitive attributes (numbers, strings, tuples of them), sorted."""
    return tuple(
        (k, v) for k, v in sorted(vars(env).items()) if k not in exclude and is_primitive(v)
    )


# ----------------------------------------------------------------------------- result


@contextlib.contextmanager
def preserved(binding: Binding) -> Iterator[None]:
    """Put the env back as it was (state, primitive counters, RNG) on exit."""
    env = binding.env
    snap = binding.snapshot()
    counters = dict(primitive_attributes(env, frozenset()))
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
            StateFunctionError: ``fn`` raised an exception.
        """
        return self.features([fn])[0][:, 0]

    def features(
        self, fns: Sequence[Callable[[Any], float]], names: Sequence[str] | None = None
    ) -> tuple[np.ndarray, tuple[str, ...]]:
        """(S, K) values of K state functions and their names (``names``, else each
        function's ``name`` attribute or ``__name__``).

        One pass over the states: the env is restored to each state once and every
        function is called on ``env.unwrapped`` there (see :meth:`values`).
        """
        fns = list(fns)
        names = tuple(names) if names is not None else tuple(_name(f) for f in fns)
        if len(names) != len(fns) or len(set(names)) != len(names):
            raise InvalidArgumentError(f"need {len(fns)} distinct names, got {names}")
        out = np.empty((self.n_states, len(fns)))
        if not fns:
            return out, ()
        u = self.binding.env
        with preserved(self.binding):
            for s, snap in enumerate(self.snapshots):
                self.binding.restore(snap)
                for k, fn in enumerate(fns):
                    out[s, k] = _number(fn, names[k], u, s)
        return out, names

    def entry_reward(self, values: np.ndarray) -> np.ndarray:
        """:func:`on_entry` of (S,) or (S, K) state values on this model, 0 from the
        ended states."""
        return on_entry(self.model, values, self.ended)


def _name(fn: Any) -> str:
    return str(getattr(fn, "name", None) or getattr(fn, "__name__", None) or repr(fn))


def _number(fn: Callable[[Any], Any], name: str, env: Any, s: int) -> float:
    """``float(fn(env))`` in state ``s``, or a specific error naming ``name``."""
    try:
        v = fn(env)
    except BehavioralError:
        raise
    except Exception as err:  # the caller's function: say which one failed, and where
        raise StateFunctionError(
            f"the state function {name!r} raised {type(err).__name__}: {err} on the env "
            f"restored to state {s} (a state function takes the unwrapped env and returns "
            "a number)"
        ) from err
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (str, bytes)):
        raise InvalidArgumentError(f"{name!r} returned {v!r} in state {s}, not a number")
    if isinstance(v, (complex, np.complexfloating)):
        raise InvalidArgumentError(f"{name!r} returned {v!r} in state {s}, not a real number")
    try:
        out = float(v)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name!r} returned {v!r} in state {s}, not a number") from None
    if not np.isfinite(out):
        raise InvalidArgumentError(f"{name!r} returned {v!r} in state {s}, not a finite number")
    return out


class StateFunction:
    """Base class of state functions: ``f(unwrapped_env) -> float``, evaluated on the env
    restored to each state of a level (:meth:`ExtractedLevel.features`).

    ``behavioral.audit`` reads an objective that is a ``StateFunction`` (every
    ``behavioral.minigrid.Predicate``, anything :func:`state_function` wraps) as a state
    reward -- paid on entering each state -- on every env, also on envs whose
    ``tabular_model()`` takes plain functions ``model -> array``.
    """

    name: str

    def __call__(self, env: Any) -> float:  # pragma: no cover - subclasses implement it
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class _Wrapped(StateFunction):
    fn: Callable[[Any], Any]
    name: str

    def __call__(self, env: Any) -> float:
        return self.fn(getattr(env, "unwrapped", env))


def state_function(fn: Callable[[Any], Any], name: str | None = None) -> StateFunction:
    """Mark ``fn(unwrapped_env) -> number`` as a state function (see :class:`StateFunction`).

    Args:
        fn: called with the unwrapped env restored to a state; returns a real number
            (a ``bool`` counts as 0 / 1).
        name: its name in reports (default: ``fn``'s ``__name__``).
    """
    if isinstance(fn, StateFunction):
        return fn
    if not callable(fn):
        raise InvalidArgumentError(f"a state function must be callable, got {fn!r}")
    return _Wrapped(fn, str(name) if name is not None else _name(fn))
