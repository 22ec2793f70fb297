"""The levels of an audit: episodes' level models merged into distinct levels
(:func:`merge_levels`), each episode's model, re-created in the env, with the objectives
that are state functions and -- for levels extracted from envs without a model of their
own -- the MaxEnt features, evaluated on the env restored to every state.

**Which callables are state functions.** An objective given to ``behavioral.audit`` as a
callable is one of two things:

* a *state function* ``f(unwrapped_env) -> float``, evaluated with the env restored to
  each state of the level's model and paid on entering that state
  (:meth:`behavioral.extract.ExtractedLevel.entry_reward`), or
* a *model function* ``f(model) -> (S,) or (S, A) array``.

The type decides, never a trial call: a :class:`behavioral.extract.StateFunction` (every
``behavioral.minigrid.Predicate``, anything :func:`behavioral.extract.state_function`
wraps) is a state function on every env; any other callable is a state function on envs
whose levels are extracted (no ``tabular_model()`` of their own: Minigrid, any discrete
env) and a model function on envs with a ``tabular_model()`` or seals' matrices (the
library's envs, seals), as it always was there. A state function on an env with its own
model needs the extracted level its model was made from (``env.unwrapped.
extracted_level()``, e.g. MiniGridCorner); other envs refuse it.

**The features of an extracted level** (what MaxEnt's recovered reward is a linear
combination of, so that it reads as weights on named things), per step, each paid on
entering a state as the library's own envs' features are:

1. every objective of the level's model: the env's own reward (``"reward"``) and the
   objectives it reports in ``info["objectives"]``;
2. every state-function objective of the audit (the caller's predicates: a declared
   "corner" becomes a feature the recovered reward can weigh);
3. for Minigrid levels, the default vocabulary of the level's objects
   (:func:`behavioral.minigrid.default_vocabulary`: ``at_goal``, ``lava``,
   ``reach_key_yellow``, ``door_open_red``, ...; levels with other objects contribute
   their own names, which are 0 on the levels without them).

Columns that are 0 on every level, and columns equal on every level to an earlier one
(Minigrid's reward is ``at_goal``'s entry reward), are dropped; the first name is kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from behavioral.errors import InvalidArgumentError
from behavioral.extract import ExtractedLevel, StateFunction
from behavioral.tabular import TabularModel, content_digest

__all__ = ["AuditLevels", "audit_levels", "is_state_function", "merge_levels"]


Merge = Callable[[Sequence[TabularModel]], tuple[list[TabularModel], list[int]]]


def merge_tagged(
    merge_levels: Merge, per_episode: Sequence[TabularModel], tags: Sequence[bytes]
) -> tuple[list[TabularModel], list[int]]:
    """``merge_levels`` (:func:`behavioral.auditing.merge_levels`) within each group of
    episodes with equal ``tags``: levels whose models are equal but whose state-function
    objectives differ stay apart."""
    models: list[TabularModel] = []
    levels = [0] * len(per_episode)
    for tag in dict.fromkeys(tags):
        group = [i for i, t in enumerate(tags) if t == tag]
        merged, idx = merge_levels([per_episode[i] for i in group])
        for i, k in zip(group, idx, strict=True):
            levels[i] = len(models) + k
        models += merged
    return models, levels


def is_state_function(spec: Any, *, extracted: bool) -> bool:
    """Whether the objective ``spec`` is a state function (see the module docstring)."""
    return isinstance(spec, StateFunction) or (extracted and callable(spec))


@dataclasses.dataclass(frozen=True)
class AuditLevels:
    """The distinct levels of an audit.

    Attributes:
        models: the distinct level models (with features for extracted levels).
        levels: per episode, the index of its level in ``models``.
        state_rewards: name -> one (S_l, A) array per distinct level, for every
            state-function objective.
    """

    models: list[TabularModel]
    levels: list[int]
    state_rewards: Mapping[str, list[np.ndarray]]

    def objective(self, name: str) -> Callable[[TabularModel], np.ndarray]:
        """The state-function objective ``name`` as a function ``model -> array`` over
        these models (what the audit's candidates take)."""
        by_model = {id(m): r for m, r in zip(self.models, self.state_rewards[name], strict=True)}

        def reward(model: TabularModel) -> np.ndarray:
            return by_model[id(model)]

        reward.__qualname__ = name
        return reward


@dataclasses.dataclass
class LevelData:
    """One re-created level while the levels are gathered: its model, its state-function
    objectives' rewards and (extracted levels) its feature columns."""

    model: TabularModel
    rewards: dict[str, np.ndarray]  # state-function objectives, (S, A)
    features: dict[str, np.ndarray]  # extracted levels' feature columns, (S, A)


def _vocabulary(env: Any) -> list[Any]:
    import sys

    if "minigrid" not in sys.modules:
        return []
    from minigrid.minigrid_env import MiniGridEnv

    if not isinstance(env.unwrapped, MiniGridEnv):
        return []
    from behavioral.minigrid import default_vocabulary

    return default_vocabulary(env)


def evaluate_level(
    env: Any,
    model: TabularModel,
    level: ExtractedLevel | None,
    state_functions: Mapping[str, Any],
    extracted: bool,
) -> LevelData:
    """The state-function objectives and (extracted levels) the feature columns of the
    level ``env`` is in."""
    if state_functions and level is None:
        raise InvalidArgumentError(
            f"the objectives {sorted(state_functions)} are state functions, which need the "
            "states of the level restored one by one; the model of "
            f"{type(env.unwrapped).__name__} is its own tabular_model(), which cannot do "
            "that: pass reward arrays or functions model -> array"
        )
    vocabulary = [p for p in _vocabulary(env) if p.name not in state_functions] if extracted else []
    names = [*state_functions, *(p.name for p in vocabulary)]
    fns = [*state_functions.values(), *vocabulary]
    columns: dict[str, np.ndarray] = {}
    if fns:
        assert level is not None
        values, _ = level.features(fns, names)
        entry = level.entry_reward(values)  # (S, A, K)
        columns = {n: entry[..., k] for k, n in enumerate(names)}
    rewards = {n: columns[n] for n in state_functions}
    features: dict[str, np.ndarray] = {}
    if extracted:
        S, A = model.n_states, model.n_actions
        for name, r in model.objectives.items():
            r = np.asarray(r, dtype=np.float64)
            features[name] = r if r.ndim == 2 else np.repeat(r[:, None], A, axis=1)
        for name in names:
            features.setdefault(name, columns[name])
        assert all(f.shape == (S, A) for f in features.values())
    return LevelData(model, rewards, features)


def _with_features(gathered: list[LevelData]) -> list[TabularModel]:
    """Each level's model with the union of the feature columns (zeros where a level has
    no such column), all-zero and repeated columns dropped (see the module docstring)."""
    names = list(dict.fromkeys(n for g in gathered for n in g.features))

    def column(g: LevelData, name: str) -> np.ndarray:
        f = g.features.get(name)
        return np.zeros((g.model.n_states, g.model.n_actions)) if f is None else f

    kept: list[str] = []
    for name in names:
        cols = [column(g, name) for g in gathered]
        if not any(np.any(c != 0) for c in cols):
            continue
        if any(
            all(np.array_equal(c, column(g, other)) for c, g in zip(cols, gathered))
            for other in kept
        ):
            continue
        kept.append(name)
    out = []
    for g in gathered:
        if not kept:
            out.append(g.model)
            continue
        feats = np.stack([column(g, n) for n in kept], axis=-1)
        out.append(g.model.replace(features=feats, feature_names=tuple(kept)))
    return out


def audit_levels(
    dataset: Any,
    env: Any,
    state_functions: Mapping[str, Any],
    *,
    extracted: bool,
    merge_levels: Merge,
    observations: bool = False,
) -> AuditLevels:
    """The distinct levels of ``dataset``'s episodes, re-created in ``env``.

    Args:
        dataset: a :class:`behavioral.rollout.Dataset`.
        env: its env.
        state_functions: name -> state function (see the module docstring).
        extracted: the env's levels are extracted (it has no model of its own); their
            models get the features the module docstring lists.
        merge_levels: :func:`behavioral.auditing.merge_levels` (distinct models and each
            episode's level).
        observations: extracted models carry every state's observation (for AIRL).

    Raises:
        InvalidArgumentError: state functions on an env whose model cannot restore its
            states, or a state function that fails or returns something that is not a
            finite number (``StateFunctionError``).
    """
    if not extracted and not state_functions:
        models, levels = merge_tagged(merge_levels, dataset.level_models(env), [b""] * len(dataset))
        return AuditLevels(models, levels, {})
    per_episode = gather_levels(
        dataset, env, state_functions, extracted=extracted, observations=observations
    )
    return finish_levels(
        per_episode, state_functions, extracted=extracted, merge_levels=merge_levels
    )


def gather_levels(
    dataset: Any,
    env: Any,
    state_functions: Mapping[str, Any],
    *,
    extracted: bool,
    observations: bool = False,
) -> list[LevelData]:
    """Each episode's level of ``dataset`` re-created in ``env`` with its state-function
    objectives (and, ``extracted``, its feature columns): one :class:`LevelData` per
    episode, shared by the episodes of one level. :func:`finish_levels` makes the
    audit's levels of one or more datasets' gathered levels (an active audit gathers
    batch by batch)."""
    per_episode: list[Any] = [None] * len(dataset)
    seen: dict[int, LevelData] = {}
    for episodes, model, level in dataset.iter_levels(env, observations=observations):
        g = seen.get(id(model))
        if g is None:  # the same model object: a level the extraction cache served again
            g = seen[id(model)] = evaluate_level(env, model, level, state_functions, extracted)
        for i in episodes:
            per_episode[i] = g
    return per_episode


def finish_levels(
    per_episode: Sequence[LevelData],
    state_functions: Mapping[str, Any],
    *,
    extracted: bool,
    merge_levels: Merge,
) -> AuditLevels:
    """The distinct levels of episodes gathered by :func:`gather_levels`: features
    made one set over all of them (``extracted``), equal models merged."""
    index: dict[int, int] = {}
    gathered: list[LevelData] = []
    for g in per_episode:
        if id(g) not in index:
            index[id(g)] = len(gathered)
            gathered.append(g)
    which = [index[id(g)] for g in per_episode]
    finals = _with_features(gathered) if extracted else [g.model for g in gathered]
    tags = [content_digest(*(r for _, r in sorted(g.rewards.items()))) for g in gathered]
    models, levels = merge_tagged(
        merge_levels, [finals[g] for g in which], [tags[g] for g in which]
    )
    first = {lvl: which[i] for i, lvl in reversed(list(enumerate(levels)))}
    rewards = {
        name: [gathered[first[k]].rewards[name] for k in range(len(models))]
        for name in state_functions
    }
    return AuditLevels(models, levels, rewards)


def _model_key(model: TabularModel) -> bytes:
    """Digest of everything but the initial distribution (IRL uses the data's starts)."""
    T = model.transitions
    objectives = [x for name, arr in model.objectives.items() for x in (name, arr)]
    return content_digest(
        (model.n_states, model.n_actions, model.horizon, model.discount, model.feature_names),
        T.indptr,
        T.indices,
        T.data,
        model.features,
        *objectives,
    )


def merge_levels(
    per_episode: Sequence[TabularModel],
) -> tuple[list[TabularModel], list[int]]:
    """Distinct level models and, per episode, the index of its level.

    Episodes whose models differ only in their initial state distribution (e.g. the same
    house with another start cell) share a level: IRL and the likelihoods use each
    episode's own start state, so nothing is lost and the levels are solved once.
    """
    by_id: dict[int, int] = {}
    by_key: dict[bytes, int] = {}
    # models that share their arrays (the same level, other starts) are hashed once
    by_arrays: dict[tuple[int, ...], bytes] = {}
    models: list[TabularModel] = []
    levels: list[int] = []
    for m in per_episode:
        idx = by_id.get(id(m))
        if idx is None:
            shared = (id(m.transitions), id(m.features), id(m.objectives))
            key = by_arrays.get(shared)
            if key is None:
                key = by_arrays[shared] = _model_key(m)
            idx = by_key.get(key)
            if idx is None:
                idx = by_key[key] = len(models)
                models.append(m)
            by_id[id(m)] = idx
        levels.append(idx)
    return models, levels
