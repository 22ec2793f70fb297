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
  is passed only to envs whose constructor takes it (CartPole, FrozenLake have none).

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
from collections.abc import Mapping
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
    "accepts_split",
    "check_env_id",
    "check_env_kwargs",
    "make_env",
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
) -> Any:
    """``gymnasium.make(env_id, **kwargs)`` for an id and keywords from an untrusted source.

    Args:
        env_id: a registered id (:func:`check_env_id`).
        split: passed as ``split=`` (overriding ``kwargs["split"]``); an env whose
            constructor takes no ``split`` refuses it. None: the env's default.
        kwargs: the env's keyword arguments (:func:`check_env_kwargs`).

    Raises:
        InvalidEnvIdError: a malformed id (or one with a module part).
        UnknownEnvError: an id that is not registered.
        InvalidArgumentError: keywords that are not JSON scalars, that the env does not
            take, or that it refuses; a split for an env without splits.
    """
    import gymnasium as gym

    check_env_id(env_id)
    kw = check_env_kwargs(kwargs)
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
        return gym.make(env_id, **kw)
    except BehavioralError:
        raise
    except gym.error.Error as err:
        raise UnknownEnvError(f"cannot make env {env_id!r}: {' '.join(str(err).split())}") from None
    except (TypeError, ValueError, AssertionError) as err:
        raise InvalidArgumentError(
            f"env {env_id!r} refuses the arguments {kw}: {' '.join(str(err).split())}"
        ) from None
