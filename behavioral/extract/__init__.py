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
was seen before. :func:`episode_level` remembers the level of each env's current episode
(rollouts extract it right after every reset; planners and state indices read it).

State functions (:class:`StateFunction`, :func:`state_function`): ``f(unwrapped_env) ->
float`` evaluated on the env restored to each state (:meth:`ExtractedLevel.features`,
one pass over the states for any number of functions), turned into per-step rewards paid
on entering a state by :meth:`ExtractedLevel.entry_reward`: candidate objectives and
MaxEnt features of extracted levels.
"""

from __future__ import annotations

from behavioral.extract.base import (
    Binding,
    CodecError,
    ExtractedLevel,
    ExtractionError,
    MissingHorizonError,
    StateCodec,
    StateFunction,
    StateFunctionError,
    StochasticStepError,
    TooManyStatesError,
    UnsupportedActionSpaceError,
    UnsupportedWrapperError,
    on_entry,
    state_function,
)
from behavioral.extract.codecs import DeepCopyCodec, GridEnvCodec, default_codec
from behavioral.extract.search import (
    DEFAULT_MAX_STATES,
    LevelCache,
    check_extractable,
    episode_level,
    extract_level,
    extract_model,
    is_extractable,
)

__all__ = [
    "DEFAULT_MAX_STATES",
    "Binding",
    "CodecError",
    "DeepCopyCodec",
    "ExtractedLevel",
    "ExtractionError",
    "GridEnvCodec",
    "LevelCache",
    "MissingHorizonError",
    "StateCodec",
    "StateFunction",
    "StateFunctionError",
    "StochasticStepError",
    "TooManyStatesError",
    "UnsupportedActionSpaceError",
    "UnsupportedWrapperError",
    "check_extractable",
    "default_codec",
    "episode_level",
    "extract_level",
    "extract_model",
    "is_extractable",
    "on_entry",
    "state_function",
]
