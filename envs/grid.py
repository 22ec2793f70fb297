"""The small grid-world base shared by ``RedDoors`` and ``WaterPlants``.

Three things live here, so that each task env is one short file that only says how its
levels look and how its state changes:

* :data:`LAYERS` -- the ONE table of objects and colours. An env's observation is a stack
  of layers (channels) named in its ``CHANNELS``; the table gives each layer the value it
  carries in the observation (its salience) and how the renderer draws it. Rendering is
  computed *from the observation*, so a frame always shows exactly what the agent sees.
* :func:`render_layers` -- a numpy renderer: (C, H, W) observation -> (H*T, W*T, 3) uint8.
* :class:`GridEnv` -- a gymnasium env over a deterministic transition function on hashable
  states. It owns seeding, levels (``info["level_seed"]``, ``reset(options={"level_seed":
  k})``, and for envs with editable levels ``reset(options={"level": spec})``),
  truncation, ``info["objectives"]`` and the exact tabular model of the current level,
  enumerated from the *same* transition function that ``step`` uses.

Objectives are declared as weights over the env's named features, so every objective is an
exact linear function of the features by construction.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import scipy.sparse as sp
from gymnasium import spaces

from behavioral.errors import BehavioralError
from behavioral.tabular import StateObservations, TabularModel

__all__ = [
    "COLORS",
    "DIRECTIONS",
    "LAYERS",
    "GridEnv",
    "InvalidEnvArgumentError",
    "Layer",
    "level_mapping",
    "parse_cell",
    "render_layers",
    "walls_from_rows",
    "walls_to_rows",
]

RGB = tuple[int, int, int]


class InvalidEnvArgumentError(BehavioralError, ValueError):
    """An env was given an invalid constructor argument, reset option or action."""


#: Door colours (RedDoors) and their RGB values, as drawn.
COLORS: dict[str, RGB] = {
    "red": (230, 40, 40),
    "green": (40, 190, 70),
    "blue": (60, 110, 240),
    "yellow": (240, 210, 40),
    "purple": (150, 70, 210),
}

#: Moves of the four movement actions, in action order: up, right, down, left.
DIRECTIONS: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1))


@dataclasses.dataclass(frozen=True)
class Layer:
    """One observation channel and how it is drawn.

    Attributes:
        name: the channel's name, as listed in an env's ``CHANNELS``.
        rgb: colour it is drawn in.
        style: shape drawn in each cell where the channel is non-zero: ``"fill"`` (whole
            tile), ``"inset"`` (tile minus a margin), ``"frame"`` (tile border),
            ``"circle"``, ``"dot"`` (small circle), ``"square"`` (small centred square),
            ``"plaque"`` (small sign at the top of the tile) or ``"blend"`` (tinted tile).
        value: the value the observation carries in the channel's cells. Less than 1 makes
            a cue less salient to a learner (RedDoors' exit sign).
    """

    name: str
    rgb: RGB
    style: str
    value: float = 1.0


LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        # shared
        Layer("wall", (100, 100, 100), "fill"),
        Layer("floor", (215, 200, 170), "fill"),
        Layer("agent", (255, 255, 255), "circle"),
        # RedDoors
        Layer("door", (30, 30, 30), "fill"),
        *(Layer(f"door_{c}", rgb, "inset") for c, rgb in COLORS.items()),
        Layer("exit_sign", (255, 255, 255), "plaque", value=0.25),
        # WaterPlants
        Layer("tap", (170, 190, 200), "square"),
        Layer("flooded", (60, 120, 230), "blend"),
        Layer("plant_dry", (160, 110, 40), "circle"),
        Layer("plant_healthy", (30, 160, 50), "circle"),
        Layer("plant_drowned", (20, 60, 110), "circle"),
        Layer("water", (40, 120, 255), "dot"),
    )
}


def _tile_masks(tile: int) -> dict[str, np.ndarray]:
    """Boolean (T, T) masks of every drawing style for tiles of ``tile`` pixels."""
    yy, xx = np.mgrid[0:tile, 0:tile] + 0.5
    mid = tile / 2
    rad = np.hypot(yy - mid, xx - mid)
    m = max(1, tile // 8)
    full = np.ones((tile, tile), dtype=bool)
    inset = np.zeros_like(full)
    inset[m:-m, m:-m] = True
    square = np.zeros_like(full)
    q = tile // 4
    square[q:-q, q:-q] = True
    plaque = np.zeros_like(full)
    plaque[m : m + max(2, tile // 4), q : tile - q] = True
    return {
        "fill": full,
        "blend": full,
        "inset": inset,
        "frame": full & ~inset,
        "circle": rad <= 0.34 * tile,
        "dot": rad <= 0.14 * tile,
        "square": square,
        "plaque": plaque,
    }


def render_layers(obs: np.ndarray, channels: Sequence[str], tile_size: int = 16) -> np.ndarray:
    """Draw an observation with the styles of :data:`LAYERS`.

    Args:
        obs: (C, H, W) observation; a cell shows layer ``c`` where ``obs[c] > 0``.
        channels: the C layer names, in drawing order (later ones on top).
        tile_size: T, pixels per grid cell.

    Returns:
        (H*T, W*T, 3) uint8 RGB image on a black background.
    """
    obs = np.asarray(obs)
    if obs.ndim != 3 or obs.shape[0] != len(channels):
        raise InvalidEnvArgumentError(
            f"obs must be (C, H, W) with C={len(channels)} channels, got shape {obs.shape}"
        )
    if tile_size < 4:
        raise InvalidEnvArgumentError(f"tile_size must be >= 4, got {tile_size}")
    _, h, w = obs.shape
    t = int(tile_size)
    masks = _tile_masks(t)
    img = np.zeros((h, t, w, t, 3), dtype=np.float64)
    for c, name in enumerate(channels):
        layer = LAYERS[name]
        where = (obs[c] > 0)[:, None, :, None] & masks[layer.style][None, :, None, :]
        rgb = np.asarray(layer.rgb, dtype=np.float64)
        if layer.style == "blend":
            img[where] = 0.45 * img[where] + 0.55 * rgb
        else:
            img[where] = rgb
    # thin grid lines, as in Minigrid
    img[:, 0, :, :] *= 0.75
    img[:, :, :, 0] *= 0.75
    return np.clip(np.rint(img), 0, 255).astype(np.uint8).reshape(h * t, w * t, 3)


def walls_to_rows(walls: np.ndarray) -> list[str]:
    """A boolean (H, W) wall grid as H strings of ``#`` (wall) and ``.`` (open)."""
    return ["".join("#" if w else "." for w in row) for row in np.asarray(walls, dtype=bool)]


def walls_from_rows(rows: Any, shape: tuple[int, int]) -> np.ndarray:
    """Parse :func:`walls_to_rows`' form back into a read-only bool (H, W) array.

    Raises:
        InvalidEnvArgumentError: not a list of ``H`` strings of ``W`` characters in ``#.``.
    """
    h, w = shape
    if not isinstance(rows, (list, tuple)) or len(rows) != h:
        raise InvalidEnvArgumentError(f"level walls must be a list of {h} strings")
    for i, row in enumerate(rows):
        if not isinstance(row, str) or len(row) != w or set(row) - {"#", "."}:
            raise InvalidEnvArgumentError(
                f"level walls row {i} must be a string of {w} characters '#' or '.', got {row!r:.40}"
            )
    walls = np.array([[ch == "#" for ch in row] for row in rows], dtype=bool)
    walls.setflags(write=False)
    return walls


def parse_cell(value: Any, what: str, shape: tuple[int, int]) -> tuple[int, int]:
    """A (row, col) pair of ints inside a grid of ``shape``.

    Raises:
        InvalidEnvArgumentError: not two ints, or outside the grid.
    """
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in value)
    ):
        raise InvalidEnvArgumentError(
            f"{what} must be a (row, col) pair of ints, got {value!r:.60}"
        )
    r, c = int(value[0]), int(value[1])
    if not (0 <= r < shape[0] and 0 <= c < shape[1]):
        raise InvalidEnvArgumentError(f"{what} {(r, c)} is outside the {shape[0]}x{shape[1]} grid")
    return r, c


def level_mapping(spec: Any, keys: Sequence[str], what: str) -> Mapping[str, Any]:
    """``spec`` as a mapping with exactly ``keys`` (the JSON form of a level).

    Raises:
        InvalidEnvArgumentError: not a mapping, or missing or unknown keys.
    """
    if not isinstance(spec, Mapping):
        raise InvalidEnvArgumentError(
            f"a {what} level must be a {what} level object or its to_dict() mapping, "
            f"got {type(spec).__name__}"
        )
    missing, extra = set(keys) - set(spec), set(spec) - set(keys)
    if missing or extra:
        raise InvalidEnvArgumentError(
            f"a {what} level needs exactly the keys {sorted(keys)}; missing {sorted(missing)}, "
            f"unknown {sorted(map(str, extra))[:5]}"
        )
    return spec


def check_choice(what: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise InvalidEnvArgumentError."""
    if value not in choices:
        raise InvalidEnvArgumentError(f"{what} must be one of {tuple(choices)}, got {value!r}")
    return value


class GridEnv(gym.Env[np.ndarray, np.int64]):
    """Base of the grid envs: a deterministic MDP on hashable states, one level per reset.

    Subclasses set the class constants and implement the ``_`` hooks below; ``step`` and
    :meth:`tabular_model` both go through :meth:`_transition`, so the model is the env.

    Class constants:
        MAX_STEPS: the largest ``max_steps`` (episode length, the IRL horizon) accepted,
            1000: IRL's memory grows with horizon x states x actions. Raise it in a
            subclass for longer episodes.
        MAX_TILE_SIZE: the largest ``tile_size`` (pixels per cell when rendering), 128.
        CHANNELS: observation layer names (keys of :data:`LAYERS`), in channel order.
        FEATURES: names of the K state-action features.
        OBJECTIVES: objective name -> {feature name: weight}; objective = features @ weights.
        BASE: name of the base objective.
        SPLITS: accepted ``split`` values.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 6}
    MAX_STEPS: ClassVar[int] = 1000
    MAX_TILE_SIZE: ClassVar[int] = 128
    CHANNELS: ClassVar[tuple[str, ...]] = ()
    FEATURES: ClassVar[tuple[str, ...]] = ()
    OBJECTIVES: ClassVar[Mapping[str, Mapping[str, float]]] = {}
    BASE: ClassVar[str] = ""
    SPLITS: ClassVar[tuple[str, ...]] = ("train", "deploy")

    def __init__(
        self,
        *,
        split: str,
        shape: tuple[int, int],
        n_actions: int,
        max_steps: int,
        reward_objective: str,
        render_mode: str | None = None,
        tile_size: int = 16,
    ) -> None:
        self.split = check_choice("split", split, self.SPLITS)
        if render_mode is not None:
            check_choice("render_mode", render_mode, self.metadata["render_modes"])
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)):
            raise InvalidEnvArgumentError(f"max_steps must be an int, got {max_steps!r}")
        if not 1 <= max_steps <= self.MAX_STEPS:
            raise InvalidEnvArgumentError(
                f"max_steps must be in [1, {self.MAX_STEPS}], got {max_steps} (the limit is "
                f"{type(self).__name__}.MAX_STEPS: IRL's memory grows with the horizon; raise "
                "it in a subclass for longer episodes)"
            )
        if isinstance(tile_size, bool) or not isinstance(tile_size, (int, np.integer)):
            raise InvalidEnvArgumentError(f"tile_size must be an int, got {tile_size!r}")
        if not 4 <= tile_size <= self.MAX_TILE_SIZE:
            raise InvalidEnvArgumentError(
                f"tile_size must be in [4, {self.MAX_TILE_SIZE}], got {tile_size} "
                f"({type(self).__name__}.MAX_TILE_SIZE)"
            )
        self.reward_objective = check_choice(
            "reward objective", reward_objective, tuple(self.OBJECTIVES)
        )
        self.render_mode = render_mode
        self.tile_size = int(tile_size)
        self.max_steps = int(max_steps)
        self.height, self.width = shape
        self.observation_space = spaces.Box(
            low=0.0, high=1.0, shape=(len(self.CHANNELS), *shape), dtype=np.float32
        )
        self.action_space = spaces.Discrete(n_actions)
        self._weights = np.array(
            [[w.get(f, 0.0) for f in self.FEATURES] for w in self.OBJECTIVES.values()],
            dtype=np.float64,
        ).T  # (K, n_objectives)
        self.level: Any = None
        self.level_seed: int | None = None
        self._state: Hashable | None = None
        self._t = 0
        self._model: TabularModel | None = None
        self._index: dict[Hashable, int] | None = None
        self._layout_cache: dict[Hashable, tuple[TabularModel, dict[Hashable, int]]] = {}
        self._level_models: OrderedDict[Hashable, tuple[TabularModel, dict[Hashable, int]]] = (
            OrderedDict()
        )

    # ------------------------------------------------------------------ hooks
    def _generate_level(self, rng: np.random.Generator) -> Any:
        """Draw a level (any object) using only ``rng``."""
        raise NotImplementedError

    def _initial_state(self) -> Hashable:
        """The start state of ``self.level``."""
        raise NotImplementedError

    def _transition(self, state: Hashable, action: int) -> tuple[Hashable, np.ndarray]:
        """Next state and (K,) features of taking ``action`` in non-absorbing ``state``."""
        raise NotImplementedError

    def _is_absorbing(self, state: Hashable) -> bool:
        """Whether the episode has ended in ``state`` (default: never)."""
        return False

    def _observe(self, state: Hashable) -> np.ndarray:
        """(C, H, W) float32 observation of ``state``."""
        raise NotImplementedError

    def _cell(self, state: Hashable) -> tuple[int, int]:
        """Grid (row, col) of ``state`` for heatmaps."""
        raise NotImplementedError

    def _start_states(self) -> list[Hashable]:
        """Every start state the level's layout allows, in a canonical order.

        The tabular model enumerates the states reachable from all of them, so levels that
        differ only in where the agent starts share one state indexing (and one model, up
        to its initial distribution). Default: the level's own start state only.
        """
        return [self._initial_state()]

    def _layout_key(self) -> Hashable | None:
        """A key under which the enumerated model can be reused for other levels with the
        same layout (None: no reuse). Must determine the states, transitions, features
        and observations completely."""
        return None

    def _extra_info(self, state: Hashable, *, ended: bool, truncated: bool) -> dict[str, Any]:
        """Env-specific ``info`` entries after a step (or reset) that led to ``state``."""
        return {}

    # ------------------------------------------------------------- helpers
    def _layers(self, masks: Mapping[str, np.ndarray]) -> np.ndarray:
        """Stack boolean (H, W) masks into the (C, H, W) observation (absent = zeros)."""
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        for c, name in enumerate(self.CHANNELS):
            if name in masks:
                obs[c][masks[name]] = LAYERS[name].value
        return obs

    def _level_masks(self) -> Mapping[str, np.ndarray]:
        """The boolean (H, W) masks of the layers the level fixes (walls, doors, ...),
        which no step changes; :meth:`_fixed_layers` draws them once per level."""
        return {}

    def _fixed_layers(self) -> np.ndarray:
        """A fresh copy of the observation of the level's fixed layers (drawn once per
        level), for :meth:`_observe` to mark the state's own cells on (:meth:`_mark`)."""
        cached = getattr(self, "_fixed_cache", None)
        if cached is None or cached[0] is not self.level:
            cached = self._fixed_cache = (self.level, self._layers(self._level_masks()))
        return cached[1].copy()

    def _mark(self, obs: np.ndarray, name: str, cell: tuple[int, int]) -> None:
        """Set layer ``name`` at ``cell`` of the observation ``obs``."""
        obs[self.CHANNELS.index(name)][cell] = LAYERS[name].value

    def _features(self, **values: float) -> np.ndarray:
        """(K,) feature vector from keyword values (others 0)."""
        phi = np.zeros(len(self.FEATURES), dtype=np.float64)
        for name, v in values.items():
            phi[self.FEATURES.index(name)] = v
        return phi

    def _objectives(self, phi: np.ndarray) -> dict[str, float]:
        vals = phi @ self._weights
        return {name: float(v) for name, v in zip(self.OBJECTIVES, vals, strict=True)}

    # ------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Draw a level (or rebuild ``options["level_seed"]``) and return its first observation.

        The level is generated from ``numpy.random.default_rng(level_seed)``, where
        ``level_seed`` is drawn from ``self.np_random`` unless given in ``options``; it is
        reported as ``info["level_seed"]`` so any level can be re-created. Envs with
        editable levels also take ``options={"level": spec}`` (a level object or its
        ``to_dict()`` form, validated by :meth:`parse_level`): the episode starts on that
        level, reported as ``info["level"]`` (its canonical JSON) instead of a seed.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"level_seed", "level"}
        if unknown:
            raise InvalidEnvArgumentError(
                f"unknown reset options {sorted(unknown)}; the options are 'level_seed' and 'level'"
            )
        if "level" in options:
            if "level_seed" in options:
                raise InvalidEnvArgumentError("pass reset option 'level' or 'level_seed', not both")
            return self._reset_to_level(options["level"])
        if "level_seed" in options:
            level_seed = options["level_seed"]
            if (
                isinstance(level_seed, bool)
                or not isinstance(level_seed, (int, np.integer))
                or level_seed < 0
            ):
                raise InvalidEnvArgumentError(
                    f"level_seed must be a non-negative int, got {level_seed!r}"
                )
            level_seed = int(level_seed)
        else:
            level_seed = int(self.np_random.integers(0, 2**31 - 1))
        self.level_seed = level_seed
        self.level = self._generate_level(np.random.default_rng(level_seed))
        self._state = self._initial_state()
        self._t = 0
        self._model = None
        self._index = None
        info = {"level_seed": level_seed, "split": self.split}
        info.update(self._extra_info(self._state, ended=False, truncated=False))
        return self._observe(self._state), info

    def _reset_to_level(self, spec: Any) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode on an explicit level (``reset(options={"level": spec})``)."""
        self.level = self.parse_level(spec)
        self.level_seed = None
        self._state = self._initial_state()
        self._t = 0
        self._model = None
        self._index = None
        info: dict[str, Any] = {"level": self.level.to_json(), "split": self.split}
        info.update(self._extra_info(self._state, ended=False, truncated=False))
        return self._observe(self._state), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action``; ``info["objectives"]`` holds every objective's reward."""
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        a = self._check_action(action)
        if self._is_absorbing(self._state):
            nxt, phi = self._state, np.zeros(len(self.FEATURES))
        else:
            nxt, phi = self._transition(self._state, a)
        self._state = nxt
        self._t += 1
        terminated = self._is_absorbing(nxt)
        truncated = (not terminated) and self._t >= self.max_steps
        objectives = self._objectives(phi)
        info: dict[str, Any] = {"objectives": objectives}
        info.update(self._extra_info(nxt, ended=terminated or truncated, truncated=truncated))
        return (
            self._observe(nxt),
            objectives[self.reward_objective],
            terminated,
            truncated,
            info,
        )

    def _check_action(self, action: Any) -> int:
        try:
            a = int(np.asarray(action).item())
        except (TypeError, ValueError):
            raise InvalidEnvArgumentError(f"action must be an int, got {action!r}") from None
        if not 0 <= a < self.action_space.n or a != np.asarray(action).item():
            raise InvalidEnvArgumentError(
                f"action must be an int in [0, {self.action_space.n}), got {action!r}"
            )
        return a

    def render(self) -> np.ndarray | None:
        """(H*T, W*T, 3) uint8 frame of the current state (T = ``tile_size``)."""
        if self.render_mode is None:
            gym.logger.warn(
                'render() called without render_mode; create the env with render_mode="rgb_array"'
            )
            return None
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before render()")
        return render_layers(self._observe(self._state), self.CHANNELS, self.tile_size)

    # ------------------------------------------------------- editable levels
    # Envs whose levels are frozen dataclasses with ``to_dict`` / ``from_dict`` /
    # ``to_json`` implement :meth:`_check_level` (and, for mutation search,
    # ``level_mutations``, ``level_violations``, ``level_distance`` and
    # ``level_solvable``). Levels given by a user or read from a file are untrusted:
    # ``parse_level`` validates every field against the env's configuration.

    def level_spec(self) -> Any:
        """The current level (a frozen dataclass; ``.to_dict()`` gives its JSON form).

        ``reset(options={"level": spec})`` starts an episode on it again, in this env or
        in another one made with the same constructor arguments.
        """
        if self.level is None:
            raise gym.error.ResetNeeded("call reset() before level_spec()")
        return self.level

    def parse_level(self, spec: Any) -> Any:
        """A validated level of this env from a level object or its ``to_dict()`` form.

        Raises:
            InvalidEnvArgumentError: this env has no editable levels, or ``spec`` is not a
                valid level for this env's configuration (the message says which field).
        """
        return self._check_level(spec)

    def _check_level(self, spec: Any) -> Any:
        """Validate ``spec`` (a level object or its dict form) and return the level."""
        raise InvalidEnvArgumentError(
            f"{type(self).__name__} has no editable levels: reset option 'level' is not supported"
        )

    # -------------------------------------------------------- tabular model
    def state_index(self) -> int:
        """Index of the current state in :meth:`tabular_model` (absorbing once ended)."""
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before state_index()")
        self.tabular_model()
        assert self._index is not None
        return self._index[self._state]

    def tabular_model(self) -> TabularModel:
        """The exact model of the level drawn by the last ``reset``.

        States are those reachable from the level's possible start states (breadth-first
        from :meth:`_start_states`, which come first), so levels that differ only in the
        agent's start share their state indexing; ``initial_state_dist`` is one-hot on
        this level's start. Absorbing states (episode over) map to themselves with zero features.
        ``observations`` are computed on demand (:class:`~behavioral.tabular.StateObservations`):
        the model never holds S full observations unless asked (``np.asarray``).
        ``features`` are (S, A, K) with ``feature_names = FEATURES``; ``objectives[name][s,
        a]`` equals ``info["objectives"][name]`` of ``step(a)`` in state ``s``;
        ``horizon = max_steps``; ``discount = 1``.
        """
        if self._state is None:
            raise gym.error.ResetNeeded("call reset() before tabular_model()")
        if self._model is None:
            model, index = self._cached_model()
            start = index[self._initial_state()]
            if model.initial_state_dist[start] != 1.0:
                init = np.zeros(model.n_states)
                init[start] = 1.0
                model = model.with_initial_state_dist(init)
            self._model, self._index = model, index
        return self._model

    #: Levels whose models are kept (by level seed or spec) when no layout is shared:
    #: rolling a policy out and auditing it then builds each level's model once.
    LEVEL_CACHE_SIZE: ClassVar[int] = 256

    def _cached_model(self) -> tuple[TabularModel, dict[Hashable, int]]:
        """The enumerated model of the current level, from a cache when it was built before:
        by layout (:meth:`_layout_key`, one kept: such models can be large), else by level
        (its seed, or its spec's JSON), the last :attr:`LEVEL_CACHE_SIZE` kept."""
        key = self._layout_key()
        if key is not None:
            cached = self._layout_cache.get(key)
            if cached is None:
                cached = self._enumerate()
                self._layout_cache.clear()
                self._layout_cache[key] = cached
            return cached
        level_key: Hashable = (
            ("seed", self.level_seed)
            if self.level_seed is not None
            else ("spec", self.level.to_json())
        )
        cached = self._level_models.get(level_key)
        if cached is None:
            cached = self._level_models[level_key] = self._enumerate()
            while len(self._level_models) > self.LEVEL_CACHE_SIZE:
                self._level_models.popitem(last=False)
        else:
            self._level_models.move_to_end(level_key)
        return cached

    def _enumerate(self) -> tuple[TabularModel, dict[Hashable, int]]:
        n_actions = int(self.action_space.n)
        n_feats = len(self.FEATURES)
        starts = list(dict.fromkeys(self._start_states()))
        if self._initial_state() not in starts:
            starts.insert(0, self._initial_state())
        index: dict[Hashable, int] = {s: i for i, s in enumerate(starts)}
        states: list[Hashable] = list(starts)
        next_index: list[int] = []
        feats: list[np.ndarray] = []
        zeros = np.zeros(n_feats)
        i = 0
        while i < len(states):
            s = states[i]
            absorbing = self._is_absorbing(s)
            for a in range(n_actions):
                nxt, phi = (s, zeros) if absorbing else self._transition(s, a)
                j = index.get(nxt)
                if j is None:
                    j = index[nxt] = len(states)
                    states.append(nxt)
                next_index.append(j)
                feats.append(phi)
            i += 1
        n_states = len(states)
        transitions = sp.csr_array(
            (
                np.ones(n_states * n_actions),
                np.asarray(next_index),
                np.arange(n_states * n_actions + 1),
            ),
            shape=(n_states * n_actions, n_states),
        )
        features = np.asarray(feats, dtype=np.float64).reshape(n_states, n_actions, n_feats)
        objectives = {
            name: features @ self._weights[:, k] for k, name in enumerate(self.OBJECTIVES)
        }
        init = np.zeros(n_states)
        init[index[self._initial_state()]] = 1.0
        model = TabularModel(
            transitions=transitions,
            initial_state_dist=init,
            horizon=self.max_steps,
            discount=1.0,
            features=features,
            feature_names=self.FEATURES,
            objectives=objectives,
            base=self.BASE,
            cells=np.asarray([self._cell(s) for s in states], dtype=np.int64),
            observations=StateObservations(
                n_states,
                self.observation_space.shape,
                self.observation_space.dtype,
                _LevelObserver(self, states),
            ),
            n_actions=n_actions,
        )
        return model, index


class _LevelObserver:
    """``state index -> observation`` of one level: a shallow copy of the env keeps the
    level it was made for (a later ``reset`` gives the env a new level object)."""

    def __init__(self, env: GridEnv, states: Sequence[Hashable]) -> None:
        self.env = copy.copy(env)
        self.env._layout_cache = {}  # the copy needs no cached models (and holds none)
        self.states = tuple(states)

    def __call__(self, index: int) -> np.ndarray:
        return self.env._observe(self.states[index])
