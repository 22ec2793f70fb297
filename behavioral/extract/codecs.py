"""State codecs: the generic deep copy and this project's grid envs (Minigrid's is in
:mod:`behavioral.minigrid`), and the choice of one for an env."""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import types
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from behavioral.extract.base import Binding, CodecError, StateCodec, primitive_attributes

__all__ = ["DeepCopyCodec", "GridEnvCodec", "default_codec"]

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
    if isinstance(value, np.dtype):  # e.g. held by BabyAI's instructions
        return ("dtype", value.str)
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
        memo: dict[int, int] = {id(self.env): -1}  # the env itself, wherever referred to
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
        # references back to the env (BabyAI's instructions hold one) stay the env: a
        # copy of it would be stale as soon as the env steps again
        memo: dict[int, Any] = {id(self.env): self.env}
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
        state = copy.deepcopy(snapshot, {id(self.env): self.env})
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
        return (
            t.__module__,
            t.__qualname__,
            primitive_attributes(self.env, {"_t", "_pours"}),
            self.key(),
        )

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
