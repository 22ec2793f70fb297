"""Minigrid adapter: a fast state codec for model extraction and a vocabulary of predicates.

**The codec** (:class:`MinigridCodec`, chosen by :func:`behavioral.extract.extract_level`
for every ``MiniGridEnv``). A Minigrid state is the agent's position and direction, the
grid (which object is in which cell), the state of each object that can change (doors
open or locked, what a box holds, where an object is) and the carried object. Objects
are numbered once per level in reading order of the reset grid (then what boxes and the
agent hold), so a key is a tuple of small integers, equal for equal states of any
re-creation of the level. Restoring puts the *same* object instances back in the grid,
so envs that compare objects by identity (``self.carrying == self.obj`` in KeyCorridor)
behave as in an episode. ``step_count`` is not state: restoring sets it to 0.

Minigrid's success reward ``1 - 0.9 * step_count / max_steps`` depends on the step
count; the model pays the success reward at ``step_count = 0`` (1 for Minigrid's
``_reward``), so that "reach the goal" is a reward of states, and leaves the preference
for reaching it early to the audit's discount nuisance. During the search the env's
``gen_obs`` is shadowed by a no-op (Minigrid renders the agent's view in every ``step``,
30x the cost of the step itself); observations are computed once per state when asked.

BabyAI levels also keep their instruction's progress (what was carried before the last
step, how far a sequence of instructions has got) and the positions its object
descriptions match (a drop moves them): both are part of the key and restored.

Not handled (use ``DeepCopyCodec``): envs whose steps change other state outside the grid
and the agent (caught by a check after the search), random steps (``DynamicObstacles``:
caught as stochastic).

**The vocabulary**: named state predicates ``f(unwrapped_env) -> float`` evaluated on the
restored env of every state (:meth:`behavioral.extract.ExtractedLevel.values`), usable as
candidate objectives and as MaxEnt features (:func:`predicate_features`):

=======================  ==================================================================
``reach(type, color)``   the agent stands on such an object, or faces one it cannot enter
``at(type, color)``      the agent stands on such an object (goal, lava, floor, open door)
``in_region(cells)``     the agent is in one of these (x, y) cells (:func:`rect` builds one)
``door_open(color)``     a door of that colour is open
``carrying(type, color)`` the agent carries such an object (picked it up)
``on_lava()``            the agent is on lava (touched it: the episode ends there)
=======================  ==================================================================

Coordinates are Minigrid's ``(x, y)`` = (column, row); models' ``cells`` are (row, column).
:func:`parse_predicate` reads the same vocabulary from text (``"reach:goal"``,
``"door_open:red"``, ``"carrying:key:yellow"``, ``"region:1,1,3,3"``, ``"lava"``);
:func:`default_vocabulary` names the predicates about a level's objects (an audit's
default MaxEnt features for Minigrid levels).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from behavioral.errors import InvalidArgumentError
from behavioral.extract.base import (
    Binding,
    CodecError,
    ExtractedLevel,
    StateCodec,
    StateFunction,
    primitive_attributes,
)

__all__ = [
    "MinigridCodec",
    "Predicate",
    "at",
    "carrying",
    "default_vocabulary",
    "door_open",
    "flat_observations",
    "in_region",
    "on_lava",
    "parse_predicate",
    "predicate_features",
    "reach",
    "rect",
]

# Attributes of every WorldObj that never change in a step.
_FIXED_ATTRS = frozenset({"type", "color", "init_pos"})
# Env attributes the codec handles itself, or that are not state (rendering).
_CODEC_ATTRS = frozenset(
    {
        "agent_pos",
        "agent_dir",
        "carrying",
        "step_count",
        "render_mode",
        "render_size",
        "screen_size",
        "window",
        "clock",
        "highlight",
        "tile_size",
        "agent_pov",
        "gen_obs",
    }
)


def _static_types() -> tuple[type, ...]:
    from minigrid.core.world_object import Floor, Goal, Lava, Wall

    return (Wall, Goal, Lava, Floor)


class _Index(tuple):
    """A reference to pool object ``i`` inside an object's frozen attributes."""

    __slots__ = ()


class _List(tuple):
    """A list inside an object's frozen attributes (restored as a list)."""

    __slots__ = ()


def _no_observation() -> None:
    return None


class _MinigridBinding(Binding):
    """See :class:`MinigridCodec`."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        from minigrid.core.world_object import WorldObj

        self._worldobj = WorldObj
        self._grid = env.grid
        pool: list[Any] = []
        ids: dict[int, int] = {}

        def add(obj: Any) -> None:
            while obj is not None and id(obj) not in ids:
                ids[id(obj)] = len(pool)
                pool.append(obj)
                obj = getattr(obj, "contains", None)

        for obj in env.grid.grid:
            add(obj)
        add(env.carrying)
        ids[id(None)] = -1
        self.pool = pool
        self._lookup = [*pool, None]  # index -1 -> None
        self._ids = ids
        self._id_get = ids.get
        static = _static_types()
        self.dynamic = [o for o in pool if type(o) not in static]
        self._attrs = [tuple(k for k in vars(o) if k not in _FIXED_ATTRS) for o in self.dynamic]
        # The grid is keyed by the cells that differ from the reset grid (object pool
        # indices), a few per state, instead of every cell.
        self._root = list(env.grid.grid)
        self._layout = tuple(map(ids.__getitem__, map(id, self._root)))
        # list == list compares by identity first: exact (and ~50x faster than a scan)
        # when no object compares equal to another one
        self._identity_eq = all(type(o).__eq__ is object.__eq__ for o in pool)
        self._before = self._env_fingerprint()

    # -- keys
    def _freeze(self, value: Any) -> Hashable:
        if isinstance(value, self._worldobj):
            i = self._ids.get(id(value))
            if i is None:
                raise CodecError(
                    f"a step of {type(self.env).__name__} created a new object "
                    f"({value.type}); MinigridCodec only tracks the reset grid's objects: "
                    "use codec=DeepCopyCodec(ignore=('step_count',))"
                )
            return _Index((i,))
        if isinstance(value, np.ndarray):
            return tuple(value.tolist())
        if isinstance(value, tuple):
            return tuple([self._freeze(v) for v in value])
        if isinstance(value, list):
            return _List(self._freeze(v) for v in value)
        return value

    def _thaw(self, value: Any) -> Any:
        if isinstance(value, _Index):
            return self.pool[value[0]]
        if isinstance(value, tuple):
            items = [self._thaw(v) for v in value]
            return items if isinstance(value, _List) else tuple(items)
        return value

    def _changed_cells(self) -> tuple[tuple[int, int | None], ...]:
        """(cell, pool index of its object) of the cells that differ from the reset grid."""
        grid, root = self.env.grid.grid, self._root
        if self._identity_eq and grid == root:
            return ()
        if len(grid) != len(root):
            raise CodecError(f"a step of {type(self.env).__name__} resized the grid")
        get = self._id_get
        return tuple((i, get(id(a))) for i, (a, b) in enumerate(zip(grid, root)) if a is not b)

    def key(self) -> Hashable:
        env = self.env
        cells = self._changed_cells()
        carried = self._id_get(id(env.carrying))
        if carried is None or any(j is None for _, j in cells):
            self._freeze(next(o for o in [env.carrying, *env.grid.grid] if id(o) not in self._ids))
        objects = tuple(
            tuple([self._freeze(getattr(o, k)) for k in attrs])
            for o, attrs in zip(self.dynamic, self._attrs, strict=True)
        )
        pos = env.agent_pos
        return (
            (int(pos[0]), int(pos[1])),
            int(env.agent_dir),
            carried,
            cells,
            objects,
        )

    def restore(self, snapshot: Any) -> None:
        pos, direction, carried, cells, objects = snapshot
        env = self.env
        env.agent_pos = pos
        env.agent_dir = direction
        env.carrying = self._lookup[carried]
        grid = env.grid.grid
        grid[:] = self._root
        for i, j in cells:
            grid[i] = self._lookup[j]
        for o, attrs, values in zip(self.dynamic, self._attrs, objects, strict=True):
            for k, v in zip(attrs, values, strict=True):
                setattr(o, k, self._thaw(v))
        env.step_count = 0

    # -- the rest of the binding
    def is_current(self) -> bool:
        return self.env.grid is self._grid

    def _env_fingerprint(self) -> tuple[Any, ...]:
        env = self.env
        refs = tuple(
            (k, id(v))
            for k, v in sorted(vars(env).items())
            if k not in _CODEC_ATTRS and isinstance(v, self._worldobj)
        )
        return (primitive_attributes(env, _CODEC_ATTRS), refs, id(env.grid))

    def level_key(self) -> Hashable | None:
        t = type(self.env)
        objects = tuple(o.encode() for o in self.pool)
        return (t.__module__, t.__qualname__, self._before[0], objects, self._layout, self.key())

    def cell(self) -> tuple[int, int] | None:
        x, y = self.env.agent_pos
        return int(y), int(x)

    def observe(self) -> Any:
        return type(self.env).gen_obs(self.env)

    def model_reward(self, reward: float) -> float:
        env = self.env
        if reward != env._reward():
            return reward
        count = env.step_count
        env.step_count = 0
        try:
            return float(env._reward())
        finally:
            env.step_count = count

    def searching(self) -> Any:
        return _fast_steps(self.env)

    def check_search(self) -> None:
        after = self._env_fingerprint()
        if after == self._before:
            return
        prims0, refs0, grid0 = self._before
        prims1, refs1, grid1 = after
        changed = sorted(
            {k for k, _ in set(prims0) ^ set(prims1)} | {k for k, _ in set(refs0) ^ set(refs1)}
        )
        if grid0 != grid1:
            changed.append("grid")
        raise CodecError(
            f"steps of {type(self.env).__name__} changed {', '.join(changed)}, state that "
            "MinigridCodec does not restore: use codec=DeepCopyCodec(ignore=('step_count',))"
        )


@contextlib.contextmanager
def _fast_steps(env: Any) -> Iterator[None]:
    """Shadow ``gen_obs`` and turn off human rendering while the search steps the env."""
    had = "gen_obs" in vars(env)
    shadowed = vars(env).get("gen_obs")
    render_mode = env.render_mode
    env.gen_obs = _no_observation
    env.render_mode = None
    try:
        yield
    finally:
        if had:
            env.gen_obs = shadowed
        else:
            del env.gen_obs
        env.render_mode = render_mode


#: What a BabyAI instruction remembers between steps (``verifier.py``): whether the last
#: step matched, what was carried before it, how far a sequence has got.
_PROGRESS = ("lastStepMatch", "preCarrying", "a_done", "b_done")
#: An instruction's object descriptions, whose matching positions a drop updates.
_DESCRIPTIONS = ("desc", "desc_fixed", "desc_move")


class _BabyAIBinding(_MinigridBinding):
    """A BabyAI level's state: Minigrid's, plus its instruction's progress and the
    positions its object descriptions match (``update_objs_poss`` moves them on a drop)."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        nodes, stack = [], [env.instrs]
        while stack:
            node = stack.pop()
            nodes.append(node)
            stack += [getattr(node, k) for k in ("instr_b", "instr_a") if hasattr(node, k)]
        self._progress = [(n, tuple(k for k in _PROGRESS if hasattr(n, k))) for n in nodes]
        self._descriptions = [getattr(n, k) for n in nodes for k in _DESCRIPTIONS if hasattr(n, k)]

    def key(self) -> Hashable:
        progress = tuple(
            tuple(self._freeze(getattr(n, k)) for k in keys) for n, keys in self._progress
        )
        positions = tuple(
            tuple((int(x), int(y)) for x, y in d.obj_poss) for d in self._descriptions
        )
        return (*super().key(), progress, positions)

    def restore(self, snapshot: Any) -> None:
        *grid_state, progress, positions = snapshot
        super().restore(tuple(grid_state))
        for (node, keys), values in zip(self._progress, progress, strict=True):
            for k, v in zip(keys, values, strict=True):
                setattr(node, k, self._thaw(v))
        for d, poss in zip(self._descriptions, positions, strict=True):
            d.obj_poss = list(poss)


@dataclasses.dataclass(frozen=True)
class MinigridCodec(StateCodec):
    """The fast state codec of Minigrid envs, BabyAI levels included (see the module
    docstring)."""

    name: str = "minigrid"

    def bind(self, env: Any) -> Binding:
        from minigrid.minigrid_env import MiniGridEnv

        if not isinstance(env, MiniGridEnv):
            raise CodecError(f"MinigridCodec needs a MiniGridEnv, got {type(env).__name__}")
        if env.agent_pos is None or getattr(env, "step_count", None) is None:
            raise CodecError(f"{type(env).__name__} has not been reset: call reset() first")
        try:
            from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel
        except ImportError:  # pragma: no cover - every Minigrid 3 has BabyAI
            RoomGridLevel = ()
        if isinstance(env, RoomGridLevel):
            if getattr(env, "instrs", None) is None:
                raise CodecError(f"{type(env).__name__} has no instructions: call reset() first")
            return _BabyAIBinding(env)
        return _MinigridBinding(env)


# ----------------------------------------------------------------------------- predicates


@dataclasses.dataclass(frozen=True)
class Predicate(StateFunction):
    """A named state predicate: ``pred(unwrapped_env) -> 0.0 | 1.0`` (a
    :class:`~behavioral.extract.StateFunction`: as an audit objective, always a state
    reward paid on entering the states where it holds).

    Attributes:
        name: the objective / feature name (``"reach_goal"``, ``"door_open_red"``, ...).
        fn: the test on the unwrapped ``MiniGridEnv``.
        description: one line for reports.
    """

    name: str
    fn: Callable[[Any], bool]
    description: str = ""

    def __call__(self, env: Any) -> float:
        return float(bool(self.fn(getattr(env, "unwrapped", env))))


def _matches(obj: Any, type_: str | None, color: str | None) -> bool:
    return (
        obj is not None
        and (type_ is None or obj.type == type_)
        and (color is None or obj.color == color)
    )


def _check_names(type_: str | None, color: str | None) -> None:
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

    if type_ is not None and type_ not in OBJECT_TO_IDX:
        raise InvalidArgumentError(
            f"unknown Minigrid object type {type_!r}; known: {sorted(OBJECT_TO_IDX)}"
        )
    if color is not None and color not in COLOR_TO_IDX:
        raise InvalidArgumentError(
            f"unknown Minigrid colour {color!r}; known: {sorted(COLOR_TO_IDX)}"
        )


def _suffix(*parts: str | None) -> str:
    return "".join(f"_{p}" for p in parts if p is not None)


def _here(env: Any) -> Any:
    return env.grid.get(*env.agent_pos)


def _ahead(env: Any) -> Any:
    x, y = env.front_pos
    if 0 <= x < env.grid.width and 0 <= y < env.grid.height:
        return env.grid.get(x, y)
    return None


def at(type_: str, color: str | None = None) -> Predicate:
    """The agent stands on an object of this type (and colour): goal, lava, floor, an
    open door."""
    _check_names(type_, color)
    return Predicate(
        f"at_{type_}{_suffix(color)}",
        lambda env: _matches(_here(env), type_, color),
        f"standing on a {color + ' ' if color else ''}{type_}",
    )


def reach(type_: str, color: str | None = None) -> Predicate:
    """The agent has reached an object of this type (and colour): it stands on it, or
    faces it from the next cell when it cannot enter it (a key, a ball, a closed door)."""
    _check_names(type_, color)

    def test(env: Any) -> bool:
        if _matches(_here(env), type_, color):
            return True
        ahead = _ahead(env)
        return _matches(ahead, type_, color) and not ahead.can_overlap()

    return Predicate(
        f"reach_{type_}{_suffix(color)}",
        test,
        f"at or facing a {color + ' ' if color else ''}{type_}",
    )


def rect(x: int, y: int, width: int, height: int) -> frozenset[tuple[int, int]]:
    """The (x, y) cells of the ``width`` x ``height`` rectangle whose top-left is (x, y)."""
    if min(width, height) < 1:
        raise InvalidArgumentError(f"a region needs width, height >= 1, got {width}, {height}")
    return frozenset((x + i, y + j) for i in range(width) for j in range(height))


def in_region(cells: Iterable[Sequence[int]], name: str = "region") -> Predicate:
    """The agent is in one of these (x, y) cells."""
    region = frozenset((int(c[0]), int(c[1])) for c in cells)
    if not region:
        raise InvalidArgumentError("a region needs at least one cell")
    return Predicate(
        name,
        lambda env: (int(env.agent_pos[0]), int(env.agent_pos[1])) in region,
        f"in a region of {len(region)} cells",
    )


def door_open(color: str | None = None) -> Predicate:
    """A door of this colour (any door) is open."""
    _check_names("door", color)
    return Predicate(
        f"door_open{_suffix(color)}",
        lambda env: any(
            _matches(o, "door", color) and o.is_open for o in env.grid.grid if o is not None
        ),
        f"a {color + ' ' if color else ''}door is open",
    )


def carrying(type_: str | None = None, color: str | None = None) -> Predicate:
    """The agent carries an object of this type and colour (it picked one up)."""
    _check_names(type_, color)
    return Predicate(
        f"carrying{_suffix(type_, color)}",
        lambda env: _matches(env.carrying, type_, color),
        f"carrying a {color + ' ' if color else ''}{type_ or 'object'}",
    )


def on_lava() -> Predicate:
    """The agent is on lava (it touched lava: the episode ends there)."""
    return Predicate("lava", lambda env: _matches(_here(env), "lava", None), "on lava")


def _parse_region(args: list[str]) -> Predicate:
    try:
        x0, y0, x1, y1 = (int(v) for v in ",".join(args).split(","))
    except ValueError:
        raise InvalidArgumentError(
            f"a region is region:X0,Y0,X1,Y1 (inclusive corners), got {':'.join(args)!r}"
        ) from None
    lo_x, hi_x, lo_y, hi_y = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
    cells = rect(lo_x, lo_y, hi_x - lo_x + 1, hi_y - lo_y + 1)
    return in_region(cells, name=f"region_{lo_x}_{lo_y}_{hi_x}_{hi_y}")


_PARSERS: dict[str, Callable[[list[str]], Predicate]] = {
    "reach": lambda a: reach(*a),
    "at": lambda a: at(*a),
    "door_open": lambda a: door_open(*a),
    "carrying": lambda a: carrying(*a),
    "lava": lambda a: on_lava(*a),
    "region": _parse_region,
}


def parse_predicate(text: str) -> Predicate:
    """A predicate from text: ``reach:TYPE[:COLOR]``, ``at:TYPE[:COLOR]``,
    ``door_open[:COLOR]``, ``carrying[:TYPE[:COLOR]]``, ``lava``,
    ``region:X0,Y0,X1,Y1``.

    Raises:
        InvalidArgumentError: unknown name, type or colour, or wrong arguments.
    """
    head, *args = str(text).strip().split(":")
    parser = _PARSERS.get(head)
    if parser is None:
        raise InvalidArgumentError(
            f"unknown Minigrid predicate {head!r} in {text!r}; known: {', '.join(_PARSERS)}"
        )
    try:
        return parser(args)
    except TypeError:
        raise InvalidArgumentError(f"wrong arguments for {head!r}: {text!r}") from None


def default_vocabulary(env: Any) -> list[Predicate]:
    """The predicates about the objects of ``env``'s current level: Minigrid's default
    MaxEnt features of an extracted level (:func:`behavioral.audit` adds them to the
    audit's own objectives).

    For the objects in the grid (and the one carried), in reading order, each named once:

    =======================  =========================================================
    a goal                   ``at_goal`` (standing on it)
    lava                     ``lava`` (standing on it: the episode ended there)
    a key, ball or box       ``reach_<type>_<colour>``, ``carrying_<type>_<colour>``
    a door                   ``reach_door_<colour>``, ``door_open_<colour>``
    =======================  =========================================================

    Walls, floor and empty cells name nothing; positions are not in the vocabulary (a
    region is an objective the caller declares, :func:`in_region`).
    """
    u = getattr(env, "unwrapped", env)
    seen: dict[str, Predicate] = {}

    def add(pred: Predicate) -> None:
        seen.setdefault(pred.name, pred)

    for obj in [*u.grid.grid, u.carrying]:
        kind = getattr(obj, "type", None)
        if kind == "goal":
            add(at("goal"))
        elif kind == "lava":
            add(on_lava())
        elif kind in ("key", "ball", "box"):
            add(reach(kind, obj.color))
            add(carrying(kind, obj.color))
        elif kind == "door":
            add(reach("door", obj.color))
            add(door_open(obj.color))
    return list(seen.values())


def predicate_features(
    level: ExtractedLevel, predicates: Sequence[Predicate | str]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """(S, K) values of K predicates on every state of ``level`` and their names.

    Use :meth:`~behavioral.extract.ExtractedLevel.entry_reward` to make them per-step
    (S, A, K) features paid on entering a state, as this project's envs' features are.
    """
    preds = [parse_predicate(p) if isinstance(p, str) else p for p in predicates]
    return level.features(preds, [p.name for p in preds])


def flat_observations(env: Any) -> Any:
    """``env`` wrapped to emit Minigrid's egocentric view and direction as one flat
    vector (gymnasium's ``FilterObservation(["direction", "image"])`` then
    ``FlattenObservation``: a one-hot direction, then the (view, view, 3) image), for
    MLP policies. The direction is needed: in an open room the view alone is the same
    from every corner."""
    from gymnasium.wrappers import FilterObservation, FlattenObservation

    wrapped = FlattenObservation(FilterObservation(env, ["direction", "image"]))
    # how datasets and policy files name this wrapping: behavioral.environments.WRAPPER_TAG
    wrapped.behavioral_observation_wrapper = "behavioral.minigrid.flat_observations"
    return wrapped
