"""WaterPlants: Joshua waters the plants -- with a kettle in training, with a hose later."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .grid import (
    DIRECTIONS,
    GridEnv,
    InvalidEnvArgumentError,
    check_choice,
    level_mapping,
    parse_cell,
    walls_from_rows,
    walls_to_rows,
)

__all__ = ["HOUSE", "WaterPlantsEnv", "WaterPlantsLevel"]

#: Joshua's house: ``#`` wall, ``.`` floor, ``T`` the tap (a floor cell), ``P`` a plant pot.
#: The house on top; below, the garden with three plants; the tap by the garden door.
HOUSE = (
    "#########",
    "#.......#",
    "#.......#",
    "###.T.###",
    "#P..P..P#",
    "#########",
)

DRY, HEALTHY, DROWNED = 0, 1, 2
PLANT_STATES = ("dry", "healthy", "drowned")
POUR = 4
#: Most plant pots a level may have (the model grows threefold with each).
MAX_PLANTS = 4


def flood_order(
    walls: np.ndarray, plants: tuple[tuple[int, int], ...]
) -> tuple[tuple[int, int], ...]:
    """The floor cells (open, not a pot) in the order water pools: lowest row first."""
    cells = [(int(r), int(c)) for r, c in np.argwhere(~walls)]
    return tuple(sorted((x for x in cells if x not in plants), key=lambda rc: (-rc[0], rc[1])))


@dataclasses.dataclass(frozen=True, eq=False)
class WaterPlantsLevel:
    """The house (bool (H, W) ``walls``), plant cells, tap, flood order and agent start,
    and -- in a level spec -- the watering tool (``hose``: True for the hose, False for
    the kettle) and each plant's state at the start (``initial_plants``, 0 dry, 1 healthy,
    2 drowned). ``None`` for either means the env's split decides (kettle and dry plants
    for ``train``, hose and healthy plants for ``deploy``).

    The level spec of :class:`WaterPlantsEnv`: ``env.unwrapped.level_spec()`` is the
    current one, ``reset(options={"level": spec})`` starts an episode on one (a level
    object or its :meth:`to_dict` form, validated by ``env.unwrapped.parse_level``).
    """

    walls: np.ndarray
    plants: tuple[tuple[int, int], ...]
    tap: tuple[int, int]
    floor: tuple[tuple[int, int], ...]  # floor cells in the order they flood
    start: tuple[int, int]
    hose: bool | None = None
    initial_plants: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``walls`` as rows of ``#``/``.``, ``plants`` (cells), ``tap``,
        ``start``, ``tool`` (``"kettle"`` / ``"hose"``) and ``initial_plants`` (state
        names); the flood order follows from the walls and pots. Needs a level whose tool
        and plant states are set (``env.unwrapped.level_spec()`` returns one)."""
        if self.hose is None or self.initial_plants is None:
            raise InvalidEnvArgumentError(
                "this level leaves its tool or plant states to the split: take it from "
                "env.unwrapped.level_spec()"
            )
        return {
            "walls": walls_to_rows(self.walls),
            "plants": [[int(r), int(c)] for r, c in self.plants],
            "tap": [int(self.tap[0]), int(self.tap[1])],
            "start": [int(self.start[0]), int(self.start[1])],
            "tool": "hose" if self.hose else "kettle",
            "initial_plants": [PLANT_STATES[p] for p in self.initial_plants],
        }

    def to_json(self) -> str:
        """Canonical JSON: equal strings iff equal levels."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))


class WaterPlantsEnv(GridEnv):
    """Joshua's house: fill a container at the tap and water the plants in the garden.

    **Level**: the fixed house :data:`HOUSE` (6 x 9; three plants in the garden, a tap
    by the garden door, 21 floor cells including the tap's); the agent starts on a random
    floor cell, its container full. Plants are dry, healthy or drowned; each pour into a
    pot moves a plant one step along dry -> healthy -> drowned. Water poured on the floor
    floods it: spilled water pools, so each floor pour floods one more floor cell, lowest
    first (the garden path, then the garden door, then the house from the back), wherever
    it was poured.

    **Splits** (``split=``):
        * ``"train"`` (the kettle): plants start dry. The kettle holds one pour, starts
          full and is refilled by standing at the tap; its spout reaches only plant pots,
          and a watered pot is full to the rim, so the kettle pours only into a dry pot
          (elsewhere the pour action does nothing). The day's water is exactly one pour
          per plant: every pour waters a dry plant, so "water stuff" and "plant health"
          ask for the same behaviour.
        * ``"deploy"`` (the hose): plants start healthy and the hose always has water and
          pours wherever Joshua stands: more pouring drowns plants and floods the floor.

    **Actions**: ``Discrete(5)``: 0 up, 1 right, 2 down, 3 left, 4 pour (where the agent
    stands). Walls block moves.

    **Observation**: ``Box(0, 1, (9, 6, 9), float32)``, channels (one grid each, 1.0
    where true): ``floor`` (every cell the agent can stand on), ``wall``, ``tap``,
    ``flooded``, ``plant_dry``, ``plant_healthy``, ``plant_drowned``, ``agent``, ``water``
    (at the agent's cell when its container holds water; always with the hose).

    **Objectives** (``info["objectives"]``, state-action rewards of each step, counted in
    the state the step leads to): base ``"plant_health"`` = healthy plants - drowned
    plants - flooded cells; proxies ``"water_stuff"`` = 1 per pour that released water,
    wherever it landed (the chocolate bar per watering), and ``"water_pots"`` = 1 per
    pour into a plant pot, whatever the plant's state (the habit the kettle actually
    teaches: with the kettle, water only ever goes into pots, so both proxies are the same
    reward there; with the hose, ``water_stuff`` also pays for flooding the floor and
    ``water_pots`` does not). ``training_reward`` picks the gymnasium reward:
    ``"plant_health"`` (default) or ``"per_pour"`` (= ``"water_stuff"``).

    **Features** (per step): ``poured_on_dry_plant``, ``poured_on_healthy_plant``,
    ``poured_on_drowned_plant``, ``poured_on_floor`` (this step's pour and where it
    landed), ``healthy_plants``, ``drowned_plants``, ``flooded_cells`` (counts after the
    step), ``has_water`` (the container holds water after the step).

    **Termination**: none; episodes are truncated after ``max_steps`` (default 50, at most
    :attr:`GridEnv.MAX_STEPS` = 1000).

    **Levels**: each reset draws ``level_seed`` from the env's ``np_random`` and builds the
    level from ``numpy.random.default_rng(level_seed)``; ``reset(options={"level_seed":
    k})`` rebuilds level ``k`` exactly (same split and constructor arguments).

    **Info**: at reset ``level_seed``, ``split``; at reset and every step the running
    outcome ``dry_plants``, ``healthy_plants``, ``drowned_plants``, ``flooded_cells`` and
    ``pours`` (pours so far this episode); every step ``objectives`` (name -> float).

    **Level specs and mutations**: ``env.unwrapped.level_spec()`` is the current level as a
    :class:`WaterPlantsLevel`, whose tool and plants' starting states are part of the level
    (``to_dict()``: JSON with the walls, pots, tap, start, ``tool`` and
    ``initial_plants``); ``reset(options={"level": spec})`` starts an episode on any valid
    level -- a hose level in a ``train`` env too. ``level_mutations`` lists the one-edit
    neighbours (swap the tool, change a plant's starting state, move the tap, move the
    start), ``level_solvable`` whether the tap and pots are reachable,
    ``level_violations(level, split)`` which of a split's generator invariants a level
    breaks and ``level_distance(level, split)`` the fewest edits to a level that split
    can draw (a ``deploy`` level is 4 edits from ``train``: the tool and three plants).

    **Tabular model**: the states (agent cell, water, each plant's state, flooded count)
    reachable from the start: 353 with the kettle (of 24 cells x water x 2^3 plant
    states: never without water at the tap, never empty while every plant is dry) and
    24 x 2^3 x 22 flood levels = 4,224 with the hose. No absorbing states.
    """

    CHANNELS = (
        "floor",
        "wall",
        "tap",
        "flooded",
        "plant_dry",
        "plant_healthy",
        "plant_drowned",
        "agent",
        "water",
    )
    FEATURES = (
        "poured_on_dry_plant",
        "poured_on_healthy_plant",
        "poured_on_drowned_plant",
        "poured_on_floor",
        "healthy_plants",
        "drowned_plants",
        "flooded_cells",
        "has_water",
    )
    OBJECTIVES: ClassVar[Mapping[str, Mapping[str, float]]] = {
        "plant_health": {"healthy_plants": 1.0, "drowned_plants": -1.0, "flooded_cells": -1.0},
        "water_stuff": {
            "poured_on_dry_plant": 1.0,
            "poured_on_healthy_plant": 1.0,
            "poured_on_drowned_plant": 1.0,
            "poured_on_floor": 1.0,
        },
        "water_pots": {
            "poured_on_dry_plant": 1.0,
            "poured_on_healthy_plant": 1.0,
            "poured_on_drowned_plant": 1.0,
        },
    }
    BASE = "plant_health"
    SPLITS = ("train", "deploy")
    TRAINING_REWARDS: ClassVar[Mapping[str, str]] = {
        "plant_health": "plant_health",
        "per_pour": "water_stuff",
    }

    @classmethod
    def display_names(cls, split: str | None = None) -> dict[str, str]:
        """The running outcome and the pots in this env's words, for reports.

        Keys: ``outcome.<key>`` (the counts in ``info`` at the end of an episode) and the
        pour features, which fire in the plant pots (labelled on maps).
        """
        del split  # the same words with the kettle and the hose
        return {
            "outcome.dry_plants": "dry plants",
            "outcome.healthy_plants": "healthy plants",
            "outcome.drowned_plants": "drowned plants",
            "outcome.flooded_cells": "flooded cells",
            "outcome.pours": "pours",
            "poured_on_dry_plant": "pot",
            "poured_on_healthy_plant": "pot",
            "poured_on_drowned_plant": "pot",
        }

    def __init__(
        self,
        split: str = "train",
        *,
        training_reward: str = "plant_health",
        max_steps: int = 50,
        render_mode: str | None = None,
        tile_size: int = 16,
    ) -> None:
        check_choice("training_reward", training_reward, tuple(self.TRAINING_REWARDS))
        self.training_reward = training_reward
        self.hose = split == "deploy"
        super().__init__(
            split=split,
            shape=(len(HOUSE), len(HOUSE[0])),
            n_actions=5,
            max_steps=max_steps,
            reward_objective=self.TRAINING_REWARDS[training_reward],
            render_mode=render_mode,
            tile_size=tile_size,
        )
        self._pours = 0

    def _generate_level(self, rng: np.random.Generator) -> WaterPlantsLevel:
        grid = np.array([list(row) for row in HOUSE])

        def cells(ch: str) -> list[tuple[int, int]]:
            return [(int(r), int(c)) for r, c in np.argwhere(grid == ch)]

        floor = cells(".") + cells("T")
        floor.sort(key=lambda rc: (-rc[0], rc[1]))  # water pools lowest (bottom) row first
        start = floor[rng.integers(len(floor))]
        plants = tuple(cells("P"))
        return WaterPlantsLevel(
            walls=grid == "#",
            plants=plants,
            tap=cells("T")[0],
            floor=tuple(floor),
            start=start,
            hose=self.hose,
            initial_plants=(HEALTHY if self.hose else DRY,) * len(plants),
        )

    def _level_hose(self) -> bool:
        """The current level's tool: True for the hose."""
        return self.hose if self.level.hose is None else bool(self.level.hose)

    # state = (row, col, water, plant states, flooded floor cells)
    def _initial_state(self) -> tuple[Any, ...]:
        return self._start_at(self.level.start)

    def _initial_plants(self) -> tuple[int, ...]:
        """The current level's plant states at the start."""
        plants = self.level.initial_plants
        if plants is None:
            plants = (HEALTHY if self._level_hose() else DRY,) * len(self.level.plants)
        return tuple(plants)

    def _start_at(self, cell: tuple[int, int]) -> tuple[Any, ...]:
        plants = self._initial_plants()
        water = 1  # the container starts full (the hose always is)
        return (*cell, int(water), plants, 0)

    def _start_states(self) -> list[tuple[Any, ...]]:
        # Levels differ only in the start cell: enumerate from every floor cell, so all
        # levels of a split share one state indexing and one model.
        return [self._start_at(cell) for cell in self.level.floor]

    def _layout_key(self) -> Any:
        lv = self.level
        hose, plants = self._level_hose(), self._initial_plants()
        return (self.split, lv.floor, lv.plants, lv.tap, hose, plants)

    def _transition(self, state: Any, action: int) -> tuple[tuple[Any, ...], np.ndarray]:
        lv: WaterPlantsLevel = self.level
        r, c, water, plants, flooded = state
        hose = self._level_hose()
        poured: dict[str, float] = {}
        if action == POUR:
            k = lv.plants.index((r, c)) if (r, c) in lv.plants else None
            if hose:
                if k is None:
                    poured["poured_on_floor"] = 1.0
                    flooded = min(flooded + 1, len(lv.floor))
                else:
                    poured[f"poured_on_{('dry', 'healthy', 'drowned')[plants[k]]}_plant"] = 1.0
                    plants = (*plants[:k], min(plants[k] + 1, DROWNED), *plants[k + 1 :])
            elif water and k is not None and plants[k] == DRY:
                poured["poured_on_dry_plant"] = 1.0
                plants = (*plants[:k], HEALTHY, *plants[k + 1 :])
                water = 0
        else:
            dr, dc = DIRECTIONS[action]
            if not lv.walls[r + dr, c + dc]:
                r, c = r + dr, c + dc
        water = int(hose or water or (r, c) == lv.tap)
        nxt = (r, c, water, plants, flooded)
        phi = self._features(
            **poured,
            healthy_plants=plants.count(HEALTHY),
            drowned_plants=plants.count(DROWNED),
            flooded_cells=flooded,
            has_water=water,
        )
        return nxt, phi

    def _level_masks(self) -> dict[str, np.ndarray]:
        lv: WaterPlantsLevel = self.level
        tap = np.zeros(lv.walls.shape, dtype=bool)
        tap[lv.tap] = True
        # floor: every cell the agent can stand on, pots included
        return {"wall": lv.walls, "floor": ~lv.walls, "tap": tap}

    def _observe(self, state: Any) -> np.ndarray:
        lv: WaterPlantsLevel = self.level
        r, c, water, plants, flooded = state
        obs = self._fixed_layers()  # walls, floor and tap are the level's
        for cell in lv.floor[:flooded]:
            self._mark(obs, "flooded", cell)
        for cell, p in zip(lv.plants, plants, strict=True):
            self._mark(obs, ("plant_dry", "plant_healthy", "plant_drowned")[p], cell)
        self._mark(obs, "agent", (r, c))
        if water:
            self._mark(obs, "water", (r, c))
        return obs

    def _cell(self, state: Any) -> tuple[int, int]:
        return state[0], state[1]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        self._pours = 0
        return super().reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = super().step(action)
        self._pours += int(info["objectives"]["water_stuff"])
        info["pours"] = self._pours
        return obs, reward, terminated, truncated, info

    def _extra_info(self, state: Any, *, ended: bool, truncated: bool) -> dict[str, Any]:
        plants = state[3]
        return {
            "dry_plants": plants.count(DRY),
            "healthy_plants": plants.count(HEALTHY),
            "drowned_plants": plants.count(DROWNED),
            "flooded_cells": state[4],
            "pours": self._pours,
        }

    # ------------------------------------------------------- editable levels
    #: Invariants of each split's generator that no edit restores.
    STRUCTURAL = ("walls", "plants")

    def _check_level(self, spec: Any) -> WaterPlantsLevel:
        if isinstance(spec, WaterPlantsLevel):
            spec = spec.to_dict()
        keys = ("walls", "plants", "tap", "start", "tool", "initial_plants")
        d = level_mapping(spec, keys, "WaterPlants")
        shape = (len(HOUSE), len(HOUSE[0]))
        walls = walls_from_rows(d["walls"], shape)
        if not (walls[[0, -1], :].all() and walls[:, [0, -1]].all()):
            raise InvalidEnvArgumentError("the house's outer wall must be wall ('#') everywhere")
        raw = d["plants"]
        if not isinstance(raw, (list, tuple)) or not 1 <= len(raw) <= MAX_PLANTS:
            raise InvalidEnvArgumentError(f"a WaterPlants level needs 1 to {MAX_PLANTS} plants")
        plants = tuple(parse_cell(p, f"plant {i}", shape) for i, p in enumerate(raw))
        if len(set(plants)) < len(plants) or any(walls[p] for p in plants):
            raise InvalidEnvArgumentError("plants must be on distinct open cells")
        floor = flood_order(walls, plants)
        tap = parse_cell(d["tap"], "tap", shape)
        start = parse_cell(d["start"], "start", shape)
        if tap not in floor:
            raise InvalidEnvArgumentError(
                f"the tap {tap} must be on a floor cell (open, not a pot)"
            )
        if walls[start]:
            raise InvalidEnvArgumentError(f"start {start} is a wall")
        hose = check_choice("tool", d["tool"], ("kettle", "hose")) == "hose"
        states = d["initial_plants"]
        if not isinstance(states, (list, tuple)) or len(states) != len(plants):
            raise InvalidEnvArgumentError(f"initial_plants must name {len(plants)} plant states")
        initial = tuple(
            PLANT_STATES.index(check_choice(f"plant {i} state", x, PLANT_STATES))
            for i, x in enumerate(states)
        )
        return WaterPlantsLevel(
            walls=walls,
            plants=plants,
            tap=tap,
            floor=floor,
            start=start,
            hose=hose,
            initial_plants=initial,
        )

    def _level_arg(self, level: Any) -> WaterPlantsLevel:
        if level is None:
            lv = self.level_spec()
            return dataclasses.replace(
                lv, hose=self._level_hose(), initial_plants=self._initial_plants()
            )
        return level if isinstance(level, WaterPlantsLevel) else self.parse_level(level)

    def level_mutations(self, level: Any = None) -> list[tuple[str, WaterPlantsLevel]]:
        """Every level one edit away from ``level`` (default: the current one).

        The edits, in this order: swap the tool (kettle <-> hose); set one plant's
        starting state to another of dry / healthy / drowned; move the tap to another
        floor cell; move the start to another floor cell. Walls and pots never move.

        Returns:
            ``(description, level)`` pairs; a description starts with the edit's kind
            (``"swap tool"``, ``"plant state"``, ``"move tap"``, ``"move start"``) and a
            colon.
        """
        lv = self._level_arg(level)
        assert lv.initial_plants is not None
        tool = "kettle" if lv.hose else "hose"
        out = [(f"swap tool: to the {tool}", dataclasses.replace(lv, hose=not lv.hose))]
        for k, state in enumerate(lv.initial_plants):
            for new in range(len(PLANT_STATES)):
                if new != state:
                    plants = (*lv.initial_plants[:k], new, *lv.initial_plants[k + 1 :])
                    out.append(
                        (
                            f"plant state: plant {k} starts {PLANT_STATES[new]} (was {PLANT_STATES[state]})",
                            dataclasses.replace(lv, initial_plants=plants),
                        )
                    )
        for cell in lv.floor:
            if cell != lv.tap:
                out.append((f"move tap: to {cell}", dataclasses.replace(lv, tap=cell)))
        for cell in lv.floor:
            if cell != lv.start:
                out.append((f"move start: to {cell}", dataclasses.replace(lv, start=cell)))
        return out

    def level_violations(self, level: Any = None, split: str = "train") -> tuple[str, ...]:
        """The invariants of ``split``'s generator that ``level`` breaks (empty: the
        generator draws it with non-zero probability).

        ``walls`` / ``plants`` (not Joshua's house and its pots, :data:`HOUSE`), ``tap``
        (moved), ``start`` (not a floor cell), ``tool`` (the hose in ``train``, the kettle
        in ``deploy``) and ``plant_<k>_state`` for each plant not starting dry
        (``train``) or healthy (``deploy``).
        """
        check_choice("split", split, self.SPLITS)
        lv = self._level_arg(level)
        grid = np.array([list(row) for row in HOUSE])
        out = []
        if not np.array_equal(lv.walls, grid == "#"):
            out.append("walls")
        house_plants = tuple((int(r), int(c)) for r, c in np.argwhere(grid == "P"))
        if lv.plants != house_plants:
            out.append("plants")
        if lv.tap != tuple(int(x) for x in np.argwhere(grid == "T")[0]):
            out.append("tap")
        if lv.start not in lv.floor:
            out.append("start")
        hose = split == "deploy"
        if lv.hose != hose:
            out.append("tool")
        want = HEALTHY if hose else DRY
        out += [f"plant_{k}_state" for k, p in enumerate(lv.initial_plants or ()) if p != want]
        return tuple(out)

    def level_distance(self, level: Any = None, split: str = "train") -> float:
        """The fewest :meth:`level_mutations` edits that turn ``level`` into one that
        ``split``'s generator can draw: one per broken invariant (each edit changes one
        of tool, a plant's state, the tap, the start); ``inf`` when the walls or pots
        differ from the house's, which no edit changes."""
        broken = self.level_violations(level, split)
        if set(broken) & set(self.STRUCTURAL):
            return math.inf
        return float(len(broken))

    def level_solvable(self, level: Any = None) -> bool:
        """Whether the tap and every pot can be reached from the start."""
        lv = self._level_arg(level)
        seen, stack = {lv.start}, [lv.start]
        while stack:
            r, c = stack.pop()
            for dr, dc in DIRECTIONS:
                cell = (r + dr, c + dc)
                if cell not in seen and not lv.walls[cell]:
                    seen.add(cell)
                    stack.append(cell)
        return lv.tap in seen and all(p in seen for p in lv.plants)
