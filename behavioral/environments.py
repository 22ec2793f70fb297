"""Making gymnasium envs from ids and keyword arguments that come from users and files.

A dataset's ``metadata.json``, a policy zip's metadata and a command line all name envs by
id. gymnasium's ``make`` accepts ids of the form ``module:Name-vN`` and *imports* ``module``
first, so an id read from a file could run code. Everything here refuses that:

* :func:`check_env_id` -- an id must be ``Name-vN`` or ``namespace/Name-vN`` (letters,
  digits, ``_ . -``; no ``:``), see :data:`ENV_ID_PATTERN`;
* :func:`check_env_kwargs` -- keyword names are identifiers and values JSON scalars
  (str, int, finite float, bool, None): nothing that could smuggle an object in;
* :func:`make_env` -- both checks, then the id must be registered: this project's ids are
  registered by the ``gymnasium.envs`` entry point, and the namespaces of a fixed list of
  packages (:data:`KNOWN_PACKAGES`: ``seals/...`` imports ``seals``, ``MiniGrid-...``
  imports ``minigrid``) are imported when installed; nothing else is imported. ``split=``
  is passed only to envs whose constructor takes it (CartPole, FrozenLake have none);
* observation wrappers are named, never imported from a file: :data:`OBSERVATION_WRAPPERS`
  lists the ones an env can be re-made with (Minigrid's, ``FlattenObservation``,
  :func:`behavioral.minigrid.flat_observations`); :func:`observation_wrappers` names an
  env's chain for datasets and policy files to record.

Errors are one line: :class:`~behavioral.errors.InvalidEnvIdError` for a malformed id,
:class:`~behavioral.errors.UnknownEnvError` for an unregistered one (with gymnasium's
"did you mean"), :class:`~behavioral.errors.InvalidArgumentError` for keywords the env
refuses.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from behavioral.errors import (
    BehavioralError,
    InvalidArgumentError,
    InvalidEnvIdError,
    UnknownEnvError,
)

__all__ = [
    "ENV_ID_PATTERN",
    "KNOWN_PACKAGES",
    "OBSERVATION_WRAPPERS",
    "accepts_split",
    "check_env_id",
    "check_env_kwargs",
    "check_observation_wrappers",
    "make_env",
    "observation_wrappers",
    "recorded_wrappers",
    "wrap_observations",
]

#: A registered gymnasium id without a module part: ``Name-vN`` or ``namespace/Name-vN``.
ENV_ID_PATTERN = re.compile(
    r"\A(?:[A-Za-z][A-Za-z0-9_.-]{0,63}/)?[A-Za-z][A-Za-z0-9_.-]{0,127}-v\d{1,4}\Z"
)

#: Id prefix (a namespace ``ns/`` or a name prefix) -> the package whose import registers
#: those ids. The only imports an id can cause.
KNOWN_PACKAGES: Mapping[str, str] = {
    "seals/": "seals",
    "MiniGrid-": "minigrid",
    "BabyAI-": "minigrid",
}

#: ``gym.make``'s own keywords, which are not the env's and are refused from files.
_MAKE_KEYWORDS = frozenset(
    {"max_episode_steps", "autoreset", "apply_api_compatibility", "disable_env_checker"}
)


#: Observation wrappers an env can be re-made with (name -> wrapper layers it adds). A name
#: read from a file selects one of these; nothing named in a file is imported.
OBSERVATION_WRAPPERS: Mapping[str, int] = {
    "behavioral.minigrid.flat_observations": 2,
    "gymnasium.wrappers.FlattenObservation": 1,
    "minigrid.wrappers.FlatObsWrapper": 1,
    "minigrid.wrappers.FullyObsWrapper": 1,
    "minigrid.wrappers.ImgObsWrapper": 1,
    "minigrid.wrappers.OneHotPartialObsWrapper": 1,
    "minigrid.wrappers.RGBImgObsWrapper": 1,
    "minigrid.wrappers.RGBImgPartialObsWrapper": 1,
}
#: The attribute :func:`behavioral.minigrid.flat_observations` (and any factory in
#: :data:`OBSERVATION_WRAPPERS` that adds several layers) sets on its outer wrapper.
WRAPPER_TAG = "behavioral_observation_wrapper"
_MAX_WRAPPERS = 8
# Wrappers that change nothing an episode records.
_BOOKKEEPING = frozenset(
    {
        "gymnasium.wrappers.time_limit.TimeLimit",
        "gymnasium.wrappers.order_enforcing.OrderEnforcing",
        "gymnasium.wrappers.env_checker.PassiveEnvChecker",
        "gymnasium.wrappers.record_episode_statistics.RecordEpisodeStatistics",
        "stable_baselines3.common.monitor.Monitor",
    }
)


def _wrapper_factory(name: str) -> Callable[[Any], Any]:
    """The function that applies the observation wrapper ``name`` (from the fixed table)."""
    if name == "behavioral.minigrid.flat_observations":
        from behavioral.minigrid import flat_observations

        return flat_observations
    if name == "gymnasium.wrappers.FlattenObservation":
        from gymnasium.wrappers import FlattenObservation

        return FlattenObservation
    import minigrid.wrappers

    return getattr(minigrid.wrappers, name.rsplit(".", 1)[1])


def check_observation_wrappers(names: Any) -> tuple[str, ...]:
    """``names`` as a tuple if it is a list of names in :data:`OBSERVATION_WRAPPERS`."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise InvalidArgumentError(f"observation wrappers must be a list of names, got {names!r}")
    if len(names) > _MAX_WRAPPERS:
        raise InvalidArgumentError(f"more than {_MAX_WRAPPERS} observation wrappers")
    for name in names:
        if not isinstance(name, str) or name not in OBSERVATION_WRAPPERS:
            shown = name[:100] if isinstance(name, str) else name
            raise InvalidArgumentError(
                f"unknown observation wrapper {shown!r}; known: {', '.join(OBSERVATION_WRAPPERS)}"
            )
    return tuple(names)


def wrap_observations(env: Any, names: Sequence[str]) -> Any:
    """``env`` wrapped in the named observation wrappers, innermost first."""
    for name in check_observation_wrappers(names):
        env = _wrapper_factory(name)(env)
    return env


def _class_name(wrapper: Any) -> str | None:
    """The table name of a one-layer wrapper's class, if it is one of them."""
    t = type(wrapper)
    for name, layers in OBSERVATION_WRAPPERS.items():
        module, _, cls = name.rpartition(".")
        in_module = t.__module__ == module or t.__module__.startswith(module + ".")
        if layers == 1 and t.__qualname__ == cls and in_module:
            return name
    return None


def recorded_wrappers(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """The observation wrappers a policy file's or dataset's metadata names:
    ``observation_wrappers`` (a list, innermost first) or ``observation_wrapper`` (one
    name, as the Minigrid zoo's zips record it); ``()`` when it names none.

    Raises:
        InvalidArgumentError: a name not in :data:`OBSERVATION_WRAPPERS`.
    """
    if metadata.get("observation_wrappers") is not None:
        return check_observation_wrappers(metadata["observation_wrappers"])
    one = metadata.get("observation_wrapper")
    return () if one is None else check_observation_wrappers([one])


def observation_wrappers(env: Any) -> tuple[str, ...] | None:
    """The names (innermost first) of ``env``'s observation wrappers: ``()`` for none,
    None when one of its wrappers is not in :data:`OBSERVATION_WRAPPERS` (an env that
    cannot be re-made from its id and these names)."""
    import gymnasium as gym

    found = []
    w = env
    while isinstance(w, gym.Wrapper):
        tag = vars(w).get(WRAPPER_TAG)
        if tag in OBSERVATION_WRAPPERS:
            found.append(tag)
            for _ in range(OBSERVATION_WRAPPERS[tag]):
                w = w.env
            continue
        name = _class_name(w)
        t = type(w)
        transparent = f"{t.__module__}.{t.__qualname__}" in _BOOKKEEPING or (
            t.step is gym.Wrapper.step and t.reset is gym.Wrapper.reset
        )
        if name is None and not transparent:
            return None
        if name is not None:
            found.append(name)
        w = w.env
    return tuple(reversed(found))


def check_env_id(env_id: Any) -> str:
    """``env_id`` if it matches :data:`ENV_ID_PATTERN`, else InvalidEnvIdError."""
    if not isinstance(env_id, str):
        raise InvalidEnvIdError(f"an env id must be a string, got {env_id!r}")
    if not ENV_ID_PATTERN.fullmatch(env_id):
        why = (
            "ids with a module part are refused, because gymnasium would import that module"
            if ":" in env_id
            else "expected Name-vN or namespace/Name-vN, e.g. behavioral/RedDoors-v0"
        )
        raise InvalidEnvIdError(f"invalid env id {env_id[:200]!r}: {why}")
    return env_id


def check_env_kwargs(kwargs: Any, *, what: str = "env_kwargs") -> dict[str, Any]:
    """A copy of ``kwargs`` if its keys are identifiers and its values JSON scalars."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        raise InvalidArgumentError(f"{what} must be a mapping, got {type(kwargs).__name__}")
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise InvalidArgumentError(f"{what}: {key!r} is not a keyword name")
        if key in _MAKE_KEYWORDS:
            raise InvalidArgumentError(f"{what}: {key!r} is gym.make's option, not the env's")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidArgumentError(f"{what}[{key!r}] = {value!r} is not finite")
        if value is not None and not isinstance(value, (str, bool, int, float)):
            raise InvalidArgumentError(
                f"{what}[{key!r}] must be a JSON scalar (str, number, bool or null), got "
                f"{type(value).__name__}"
            )
        out[key] = value
    return out


def _import_known_package(env_id: str) -> None:
    for prefix, package in KNOWN_PACKAGES.items():
        if env_id.startswith(prefix) and importlib.util.find_spec(package) is not None:
            importlib.import_module(package)


def _spec(env_id: str) -> Any:
    import gymnasium as gym

    import behavioral.registration

    behavioral.registration.register_envs()
    _import_known_package(env_id)
    try:
        return gym.spec(env_id)
    except gym.error.Error as err:
        raise UnknownEnvError(f"cannot make env {env_id!r}: {' '.join(str(err).split())}") from None


def accepts_split(env_id: str) -> bool:
    """Whether the constructor of the registered env ``env_id`` takes ``split=``."""
    spec = _spec(check_env_id(env_id))
    return _accepts(spec, "split")


def _accepts(spec: Any, name: str) -> bool:
    from gymnasium.envs.registration import load_env_creator

    creator = spec.entry_point
    if isinstance(creator, str):
        creator = load_env_creator(creator)  # a registered entry point (not from data)
    try:
        params = inspect.signature(creator).parameters
    except (TypeError, ValueError):  # pragma: no cover - C callables
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def make_env(
    env_id: str,
    *,
    split: str | None = None,
    kwargs: Mapping[str, Any] | None = None,
    wrappers: Sequence[str] | None = None,
) -> Any:
    """``gymnasium.make(env_id, **kwargs)`` for an id and keywords from an untrusted source.

    Args:
        env_id: a registered id (:func:`check_env_id`).
        split: passed as ``split=`` (overriding ``kwargs["split"]``); an env whose
            constructor takes no ``split`` refuses it. None: the env's default.
        kwargs: the env's keyword arguments (:func:`check_env_kwargs`).
        wrappers: names of observation wrappers (:data:`OBSERVATION_WRAPPERS`) to wrap
            the env in, innermost first.

    Raises:
        InvalidEnvIdError: a malformed id (or one with a module part).
        UnknownEnvError: an id that is not registered.
        InvalidArgumentError: keywords that are not JSON scalars, that the env does not
            take, or that it refuses; a split for an env without splits.
    """
    import gymnasium as gym

    check_env_id(env_id)
    kw = check_env_kwargs(kwargs)
    names = check_observation_wrappers(wrappers or ())
    spec = _spec(env_id)
    if split is not None:
        if not isinstance(split, str):
            raise InvalidArgumentError(f"split must be a string, got {split!r}")
        if not _accepts(spec, "split"):
            raise InvalidArgumentError(
                f"env {env_id!r} has no splits: it does not take split={split!r}"
            )
        kw["split"] = split
    try:
        return wrap_observations(gym.make(env_id, **kw), names)
    except BehavioralError:
        raise
    except gym.error.Error as err:
        raise UnknownEnvError(f"cannot make env {env_id!r}: {' '.join(str(err).split())}") from None
    except (TypeError, ValueError, AssertionError) as err:
        raise InvalidArgumentError(
            f"env {env_id!r} refuses the arguments {kw}: {' '.join(str(err).split())}"
        ) from None
