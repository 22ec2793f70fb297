"""Candidate levels for an active audit: pools from a level generator, and mutation search.

A *source* of levels is what ``behavioral.audit(..., design="active", levels=SOURCE)``
takes (DESIGN.md, "Contract: active audits"):

* a callable ``rng -> env``: an env already reset at a new level (the generator decides
  how, drawing its randomness from ``rng``);
* the name of a split of the audited env's own id (``"deploy"``, ``"diverse"``; the env's
  other constructor arguments kept): levels drawn from that split's generator with reset
  seeds taken from ``rng``;
* a sequence of reset seeds of the audited env.

:func:`level_pool` turns any of them into a :class:`LevelPool` of distinct levels with
their tabular models. Envs with editable levels (``level_spec()``, ``reset(options={"level":
spec})``, ``level_mutations``; RedDoors and WaterPlants) also support
:func:`mutate_levels` (random edits of given levels) and :func:`search_levels` (an
evolutionary search, in the spirit of ACCEL's level editing, that keeps the levels a score
-- e.g. the expected evidence of :mod:`behavioral.design.chooser` -- ranks highest).
Only solvable levels are kept.

**Distance from the training distribution.** For an editable level, ``distance`` is the
fewest edits (the env's own ``level_mutations``) that turn it into a level the *training
split's generator* can draw -- 0 exactly when the level has non-zero probability under
that generator -- and ``violations`` names the generator invariants it breaks (e.g.
RedDoors' ``exit_not_red``). Both are computed by the env (``level_distance``,
``level_violations``) and checked against a breadth-first search over edits
(:func:`edit_distance`) in the tests. ``edits`` is the path the search actually took (its
length ``mutations`` is an upper bound on ``distance``). Levels of non-editable envs get
``distance`` 0 when drawn from the training split itself and None (unknown) otherwise.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd

from behavioral.design.scoring import LevelStack, ObjectiveSpec, stack_levels
from behavioral.errors import EnvContractError, InvalidArgumentError
from behavioral.tabular import TabularModel, content_digest

__all__ = [
    "CandidateLevel",
    "LevelPool",
    "edit_distance",
    "is_editable",
    "level_pool",
    "mutate_levels",
    "search_levels",
]

#: Most levels a pool may hold (each keeps its tabular model in memory).
MAX_POOL = 200_000

LevelSource = Callable[[np.random.Generator], gym.Env] | str | Sequence[int]


@dataclasses.dataclass(frozen=True, eq=False)
class CandidateLevel:
    """One candidate level and where it came from.

    Attributes:
        model: its tabular model.
        key: identity: the level spec's canonical JSON for editable envs, else a digest
            of the model (equal keys: the same level).
        origin: ``"generator"``, ``"split:<name>"``, ``"seeds"`` or ``"mutation"``.
        spec: the env's level object (editable envs), else None.
        reset_seed: the ``reset(seed=...)`` that re-creates it (split and seed sources).
        level_seed: the env's reported ``info["level_seed"]``, if any.
        env: the env returned by a callable source (the only handle on its level when the
            env has no level spec), else None.
        parent: key of the level it was mutated from.
        edits: the edits applied since its root level (descriptions).
        distance: fewest edits from the training split's generator (see module doc), or
            None when unknown.
        violations: the training generator's invariants it breaks.
    """

    model: TabularModel
    key: str
    origin: str
    spec: Any = None
    reset_seed: int | None = None
    level_seed: int | None = None
    env: Any = None
    parent: str | None = None
    edits: tuple[str, ...] = ()
    distance: float | None = None
    violations: tuple[str, ...] = ()

    @property
    def mutations(self) -> int:
        """Edits applied since its root level."""
        return len(self.edits)


@dataclasses.dataclass(frozen=True, eq=False)
class LevelPool:
    """Distinct candidate levels (by ``key``), in the order they were found."""

    levels: tuple[CandidateLevel, ...]

    def __post_init__(self) -> None:
        keys = [lv.key for lv in self.levels]
        if len(set(keys)) < len(keys):
            raise InvalidArgumentError("a LevelPool's levels must have distinct keys")

    def __len__(self) -> int:
        return len(self.levels)

    def __getitem__(self, i: int) -> CandidateLevel:
        return self.levels[i]

    @property
    def models(self) -> list[TabularModel]:
        """The levels' models, in pool order."""
        return [lv.model for lv in self.levels]

    def stack(self, objectives: dict[str, ObjectiveSpec] | None = None) -> LevelStack:
        """The pool stacked for :func:`behavioral.design.score_levels` (with the levels'
        declared objectives it is built once and kept: rescoring after a refit is then
        only the kernel)."""
        if objectives is not None:
            return stack_levels(self.models, objectives)
        if "_stack" not in self.__dict__:
            self.__dict__["_stack"] = stack_levels(self.models)
        return self.__dict__["_stack"]

    def merged(self, other: Iterable[CandidateLevel]) -> LevelPool:
        """This pool plus the levels of ``other`` whose keys are new."""
        seen = {lv.key for lv in self.levels}
        extra = []
        for lv in other:
            if lv.key not in seen:
                seen.add(lv.key)
                extra.append(lv)
        return LevelPool((*self.levels, *extra))

    def subset(self, indices: Iterable[int]) -> LevelPool:
        """The levels at ``indices`` (distinct), in that order."""
        return LevelPool(tuple(self.levels[int(i)] for i in indices))

    def table(self) -> pd.DataFrame:
        """One row per level: key, origin, seeds, states, mutations, distance, violations."""
        rows = [
            {
                "key": lv.key,
                "origin": lv.origin,
                "reset_seed": lv.reset_seed,
                "level_seed": lv.level_seed,
                "n_states": lv.model.n_states,
                "mutations": lv.mutations,
                "edits": "; ".join(lv.edits),
                "distance": lv.distance,
                "violations": ", ".join(lv.violations),
            }
            for lv in self.levels
        ]
        return pd.DataFrame(rows).rename_axis("level")


# ----------------------------------------------------------------------------- helpers


#: What an env with editable levels provides (besides ``reset(options={"level": spec})``).
EDITING_API = (
    "level_spec",
    "parse_level",
    "level_mutations",
    "level_violations",
    "level_distance",
    "level_solvable",
)


def is_editable(env: gym.Env) -> bool:
    """Whether ``env`` exposes an editable level spec and mutation operators
    (:data:`EDITING_API`)."""
    u = env.unwrapped
    return all(callable(getattr(u, name, None)) for name in EDITING_API)


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def level_model(env: gym.Env) -> TabularModel:
    """The model of ``env``'s current level: its own ``tabular_model()``, seals', or the
    level extracted through its steps (Minigrid, any deterministic discrete env)."""
    u = env.unwrapped
    if callable(getattr(u, "tabular_model", None)):
        model = u.tabular_model()
        if isinstance(model, TabularModel):
            return model
    from behavioral.policies import env_tabular_model, has_tabular_model  # heavy import

    if has_tabular_model(env):
        return env_tabular_model(env)
    from behavioral.extract import episode_level

    return episode_level(env, fresh=True).model


def _model_key(model: TabularModel) -> str:
    T = model.transitions
    objs = [x for name in sorted(model.objectives) for x in (name, model.objectives[name])]
    return (
        "model:"
        + content_digest(
            T.indptr, T.indices, T.data, model.initial_state_dist, model.horizon, *objs
        ).hex()
    )


def _train_split(env: gym.Env, train_split: str) -> str:
    splits = getattr(env.unwrapped, "SPLITS", None)
    if splits is not None and train_split not in splits:
        raise InvalidArgumentError(
            f"train_split {train_split!r} is not a split of this env {tuple(splits)}"
        )
    return train_split


def _describe(
    env: gym.Env, model: TabularModel, origin: str, train_split: str, **fields: Any
) -> CandidateLevel:
    """A :class:`CandidateLevel` for the env's current level."""
    u = env.unwrapped
    spec = None
    distance = fields.pop("distance", None)
    violations: tuple[str, ...] = ()
    if is_editable(env):
        spec = u.level_spec()
        key = spec.to_json()
        distance = float(u.level_distance(spec, train_split))
        violations = tuple(u.level_violations(spec, train_split))
    else:
        key = _model_key(model)
    return CandidateLevel(
        model=model,
        key=key,
        origin=origin,
        spec=spec,
        distance=distance,
        violations=violations,
        **fields,
    )


def split_env(env: gym.Env, split: str) -> gym.Env:
    """A new env of ``env``'s id and kwargs with another split, behind the same
    observation wrappers (the policy must see the observations it was trained on)."""
    from behavioral.environments import observation_wrappers, wrap_observations

    wrappers = observation_wrappers(env)
    if wrappers is None:
        raise InvalidArgumentError(
            "a split name as level source re-makes the env from its id, and one of its "
            "observation wrappers is not one this library can re-apply: give a callable "
            "rng -> env as the level source instead"
        )
    spec = env.spec
    if spec is None:
        raise InvalidArgumentError(
            "a split name as level source needs an env made with gymnasium.make (it has no spec)"
        )
    splits = getattr(env.unwrapped, "SPLITS", None)
    if splits is not None and split not in splits:
        raise InvalidArgumentError(f"{split!r} is not a split of {spec.id}: {tuple(splits)}")
    kwargs = {**dict(spec.kwargs), "split": split}
    kwargs.pop("render_mode", None)
    try:
        made = gym.make(spec.id, **kwargs)
    except TypeError:
        raise InvalidArgumentError(
            f"{spec.id} has no splits (its constructor takes no split=): give the levels as "
            f"reset seeds instead of the split name {split!r}"
        ) from None
    return wrap_observations(made, wrappers)


# ----------------------------------------------------------------------------- pools


def level_pool(
    source: LevelSource,
    env: gym.Env | None = None,
    *,
    n: int = 1000,
    rng: int | np.random.Generator = 0,
    train_split: str = "train",
    max_draws: int | None = None,
    model_of: Callable[[gym.Env], TabularModel] | None = None,
) -> LevelPool:
    """Distinct levels from a source, with their models.

    Args:
        source: a callable ``rng -> env`` (reset at a new level), the name of a split of
            ``env``'s id, or a sequence of reset seeds of ``env``.
        env: the audited env (needed for split names and seeds).
        n: how many distinct levels to collect (for seeds: at most one per seed).
        rng: seed or generator for the draws (callable and split sources).
        train_split: the split whose generator counts as the training distribution.
        max_draws: give up after this many draws (default ``10 * n``): a generator with
            few distinct levels (WaterPlants has 21 per split) yields a smaller pool.
        model_of: the model of the level an env is reset at (default: its
            ``tabular_model()``, seals', or the level extracted through its steps).

    Raises:
        InvalidArgumentError: a bad source, ``n`` out of range, or a split name the env
            does not have.
        EnvContractError: a generated env has no tabular model.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_POOL:
        raise InvalidArgumentError(f"n must be an int in [1, {MAX_POOL}], got {n!r}")
    gen = _rng(rng)
    draws = 10 * int(n) if max_draws is None else int(max_draws)
    model_of = level_model if model_of is None else model_of
    if callable(source):
        return _pool_from_generator(source, int(n), draws, gen, train_split, model_of)
    if env is None:
        raise InvalidArgumentError("a split name or seeds as level source need the env")
    if isinstance(source, str):
        made = split_env(env, source)
        try:
            return _pool_from_seeds(
                made, None, int(n), draws, gen, train_split, f"split:{source}", source, model_of
            )
        finally:
            made.close()
    if isinstance(source, (str, bytes)) or not isinstance(source, Sequence):
        raise InvalidArgumentError(
            "levels= must be a callable rng -> env, a split name or a sequence of reset seeds, "
            f"got {type(source).__name__}"
        )
    seeds = list(source)
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise InvalidArgumentError(f"reset seeds must be non-negative ints, got {s!r}")
    split = getattr(env.unwrapped, "split", None)
    return _pool_from_seeds(
        env, seeds, int(n), len(seeds), gen, train_split, "seeds", split, model_of
    )


def _pool_from_generator(
    source: Callable[[np.random.Generator], gym.Env],
    n: int,
    draws: int,
    rng: np.random.Generator,
    train_split: str,
    model_of: Callable[[gym.Env], TabularModel],
) -> LevelPool:
    levels: dict[str, CandidateLevel] = {}
    for _ in range(draws):
        env = source(rng)
        if not isinstance(env, gym.Env):
            raise InvalidArgumentError(
                f"a level generator must return a gymnasium env reset at a level, got {type(env).__name__}"
            )
        try:
            model = model_of(env)
        except gym.error.ResetNeeded:
            raise InvalidArgumentError(
                "a level generator must return its env reset at the new level (call "
                "env.reset() before returning it)"
            ) from None
        level = _describe(
            env,
            model,
            "generator",
            _train_split(env, train_split),
            level_seed=getattr(env.unwrapped, "level_seed", None),
        )
        if level.spec is None:  # the env itself is the only handle on this level
            level = dataclasses.replace(level, env=env)
        levels.setdefault(level.key, level)
        if len(levels) >= n:
            break
    return LevelPool(tuple(levels.values()))


def _pool_from_seeds(
    env: gym.Env,
    seeds: list[int] | None,
    n: int,
    draws: int,
    rng: np.random.Generator,
    train_split: str,
    origin: str,
    split: str | None,
    model_of: Callable[[gym.Env], TabularModel],
) -> LevelPool:
    train_split = _train_split(env, train_split)
    levels: dict[str, CandidateLevel] = {}
    for i in range(draws):
        seed = int(rng.integers(0, 2**63 - 1)) if seeds is None else int(seeds[i])
        _, info = env.reset(seed=seed)
        model = model_of(env)
        level = _describe(
            env,
            model,
            origin,
            train_split,
            reset_seed=seed,
            level_seed=info.get("level_seed"),
            distance=0.0 if split == train_split else None,
        )
        levels.setdefault(level.key, level)
        if len(levels) >= n:
            break
    return LevelPool(tuple(levels.values()))


# ----------------------------------------------------------------------------- mutation


def _editable_env(env: gym.Env) -> Any:
    if not is_editable(env):
        raise EnvContractError(
            f"{type(env.unwrapped).__name__} has no editable levels (level_spec, "
            "reset(options={'level': spec}), level_mutations): mutation search needs them"
        )
    return env.unwrapped


def _child(
    env: gym.Env, parent: CandidateLevel, spec: Any, edits: tuple[str, ...], train_split: str,
    model_of: Callable[[gym.Env], TabularModel],
) -> CandidateLevel:  # fmt: skip
    """The candidate for ``spec`` (its model built by resetting ``env`` to it)."""
    env.reset(options={"level": spec})
    u = env.unwrapped
    return CandidateLevel(
        model=model_of(env),
        key=spec.to_json(),
        origin="mutation",
        spec=u.level_spec(),
        parent=parent.key,
        edits=edits,
        distance=float(u.level_distance(spec, train_split)),
        violations=tuple(u.level_violations(spec, train_split)),
    )


def _roots(
    env: gym.Env, roots: LevelPool | Sequence[Any], train_split: str,
    model_of: Callable[[gym.Env], TabularModel],
) -> list[CandidateLevel]:  # fmt: skip
    if isinstance(roots, LevelPool):
        out = list(roots.levels)
    else:
        out = []
        for spec in roots:
            u = env.unwrapped
            level = u.parse_level(spec)
            env.reset(options={"level": level})
            out.append(_describe(env, model_of(env), "mutation", train_split))
    if not out or any(lv.spec is None for lv in out):
        raise InvalidArgumentError(
            "mutation needs root levels with level specs (an editable env's)"
        )
    return out


def _draw_edit(options: list[tuple[str, Any]], rng: np.random.Generator) -> tuple[str, Any]:
    """A kind of edit uniformly, then one edit of that kind uniformly."""
    kinds: dict[str, list[int]] = {}
    for i, (what, _) in enumerate(options):
        kinds.setdefault(what.split(":", 1)[0], []).append(i)
    group = list(kinds.values())[int(rng.integers(len(kinds)))]
    return options[group[int(rng.integers(len(group)))]]


def mutate_levels(
    env: gym.Env,
    roots: LevelPool | Sequence[Any],
    *,
    n: int = 1000,
    max_edits: int = 3,
    rng: int | np.random.Generator = 0,
    train_split: str = "train",
    max_tries: int | None = None,
    model_of: Callable[[gym.Env], TabularModel] | None = None,
) -> LevelPool:
    """Levels a few random edits away from ``roots``: solvable, distinct, new.

    Each candidate starts from a root drawn uniformly and applies ``k`` edits (``k``
    uniform in ``1 .. max_edits``) to it, each drawn from the env's ``level_mutations`` of
    the level so far: first a kind of edit uniformly (the part of the description before
    its colon: e.g. RedDoors' "move door", "recolour door", "move exit", "move start"),
    then an edit of that kind uniformly -- so that a kind with few instances (moving the
    exit sign: two) is tried as often as one with many (moving the start: forty).
    Unsolvable results and repeats (of a root or of another candidate) are dropped.

    Args:
        env: an env with editable levels (its state is changed: it is reset to each level).
        roots: a :class:`LevelPool` of editable levels, or level specs.
        n: how many levels to return (fewer if ``max_tries`` attempts do not find them).
        max_edits: most edits per candidate.
        rng: seed or generator.
        train_split: the split whose generator counts as the training distribution.
        max_tries: attempts before giving up (default ``20 * n``).
        model_of: the model of the level the env is reset at (as in :func:`level_pool`).

    Raises:
        EnvContractError: the env has no editable levels.
        InvalidArgumentError: bad ``n`` / ``max_edits`` or roots without specs.
    """
    u = _editable_env(env)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_POOL:
        raise InvalidArgumentError(f"n must be an int in [1, {MAX_POOL}], got {n!r}")
    if not 1 <= max_edits <= 100:
        raise InvalidArgumentError(f"max_edits must be in [1, 100], got {max_edits!r}")
    gen = _rng(rng)
    train_split = _train_split(env, train_split)
    model_of = level_model if model_of is None else model_of
    parents = _roots(env, roots, train_split, model_of)
    seen = {lv.key for lv in parents}
    out: list[CandidateLevel] = []
    for _ in range(20 * int(n) if max_tries is None else int(max_tries)):
        root = parents[int(gen.integers(len(parents)))]
        spec, edits = root.spec, []
        for _ in range(int(gen.integers(1, max_edits + 1))):
            options = u.level_mutations(spec)
            if not options:
                break
            what, spec = _draw_edit(options, gen)
            edits.append(what)
        key = spec.to_json()
        if key in seen or not u.level_solvable(spec):
            continue
        seen.add(key)
        out.append(_child(env, root, spec, (*root.edits, *edits), train_split, model_of))
        if len(out) >= n:
            break
    return LevelPool(tuple(out))


def search_levels(
    env: gym.Env,
    roots: LevelPool | Sequence[Any],
    score: Callable[[LevelPool], np.ndarray],
    *,
    rounds: int = 5,
    population: int = 32,
    children: int = 128,
    max_edits: int = 1,
    rng: int | np.random.Generator = 0,
    train_split: str = "train",
    model_of: Callable[[gym.Env], TabularModel] | None = None,
) -> tuple[LevelPool, np.ndarray]:
    """Evolutionary search for high-scoring levels by editing (ACCEL-style, no training).

    Each round mutates the ``population`` best levels found so far (parents drawn
    uniformly among them) into ``children`` new solvable levels (``max_edits`` edits
    each), scores them with ``score`` and keeps everything. Edits accumulate along a
    lineage, so after ``r`` rounds a level can be up to ``r * max_edits`` edits from its
    root; each level's ``distance`` is still the exact distance from the training
    distribution.

    Args:
        env: an env with editable levels.
        roots: the starting levels (a pool, or level specs).
        score: ``pool -> (len(pool),)`` array, higher is better (e.g. expected evidence
            per episode under the current hypotheses).
        rounds, population, children, max_edits, rng, train_split: as described.
        model_of: the model of the level the env is reset at (as in :func:`level_pool`).

    Returns:
        ``(pool, scores)``: every level evaluated (the roots first) and its score.
    """
    _editable_env(env)
    if not (1 <= rounds <= 1000 and 1 <= population <= MAX_POOL and 1 <= children <= MAX_POOL):
        raise InvalidArgumentError("rounds, population and children must be positive (and bounded)")
    gen = _rng(rng)
    train_split = _train_split(env, train_split)
    model_of = level_model if model_of is None else model_of
    pool = LevelPool(tuple(_roots(env, roots, train_split, model_of)))
    scores = _checked_scores(score(pool), len(pool))
    for _ in range(rounds):
        best = np.argsort(-scores, kind="stable")[:population]
        kids = mutate_levels(
            env,
            pool.subset(best),
            n=children,
            max_edits=max_edits,
            rng=gen,
            train_split=train_split,
            model_of=model_of,
        )
        known = {x.key for x in pool.levels}
        new = [lv for lv in kids.levels if lv.key not in known]
        if not new:
            break
        fresh = LevelPool(tuple(new))
        pool = pool.merged(fresh.levels)
        scores = np.concatenate([scores, _checked_scores(score(fresh), len(fresh))])
    return pool, scores


def _checked_scores(values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,) or np.any(np.isnan(arr)):
        raise InvalidArgumentError(
            f"score must return ({n},) numbers without NaN, got shape {arr.shape}"
        )
    return arr


def edit_distance(env: gym.Env, level: Any, split: str = "train", *, max_depth: int = 2) -> float:
    """Fewest edits from ``level`` to one that ``split``'s generator can draw, by
    breadth-first search over the env's ``level_mutations`` (exponential: for checking
    ``level_distance`` on small cases). ``inf`` if none within ``max_depth`` edits."""
    u = _editable_env(env)
    frontier = [u.parse_level(level)]
    seen = {frontier[0].to_json()}
    for depth in range(max_depth + 1):
        if any(not u.level_violations(lv, split) for lv in frontier):
            return float(depth)
        nxt = []
        for lv in frontier:
            for _, child in u.level_mutations(lv):
                key = child.to_json()
                if key not in seen:
                    seen.add(key)
                    nxt.append(child)
        frontier = nxt
    return math.inf
