"""What a command line names: policies (``zoo:NAME``, ``planner:OBJECTIVE[:BETA]``,
``random``, a ``.zip``) and envs (ids, aliases, keyword arguments), turned into objects.

Self-contained (no parser state): the commands and any other front end (a sweep) share it.
Policy files are read without unpickling unless ``trusted`` (see
:func:`behavioral.policies.load_ppo`); env ids and keywords go through
:func:`behavioral.environments.make_env`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from behavioral.errors import BehavioralError

__all__ = [
    "ENV_ALIASES",
    "PLANNER_BETA",
    "CLIError",
    "PolicySpec",
    "env_id",
    "load_policy",
    "make_env",
    "one_line",
    "policy_and_env",
    "zoo_env_kwargs",
]

ENV_ALIASES = {
    "reddoors": "behavioral/RedDoors-v0",
    "waterplants": "behavioral/WaterPlants-v0",
}
PLANNER_BETA = 5.0


def one_line(message: Any) -> str:
    """``message`` on one line (whitespace runs collapsed)."""
    return " ".join(str(message).split())


class CLIError(BehavioralError, ValueError):
    """Bad command-line input found after parsing (reported as one line, exit 1)."""


@dataclasses.dataclass(frozen=True)
class PolicySpec:
    """A policy named on the command line.

    Forms: ``zoo:NAME`` (a trained policy of the zoo), ``planner:OBJECTIVE[:BETA]`` (a
    Boltzmann-rational planner for one of the env's objectives), ``random`` (uniformly
    random actions), or the path of a stable-baselines3 PPO ``.zip``.
    """

    kind: str
    value: str
    beta: float = PLANNER_BETA

    @classmethod
    def parse(cls, text: str) -> PolicySpec:
        if text == "random":
            return cls("random", "")
        if text.startswith("zoo:"):
            name = text[4:]
            if not name:
                raise CLIError("--policy zoo:NAME needs a name, e.g. zoo:reddoors-train")
            return cls("zoo", name)
        if text.startswith("planner:"):
            return cls._planner(text)
        return cls("file", text)

    @classmethod
    def _planner(cls, text: str) -> PolicySpec:
        parts = text[8:].split(":")
        if not parts[0] or len(parts) > 2:
            raise CLIError(
                f"bad planner policy {text!r}: expected planner:OBJECTIVE or "
                "planner:OBJECTIVE:BETA, e.g. planner:exit:5"
            )
        beta = PLANNER_BETA
        if len(parts) == 2:
            try:
                beta = float(parts[1])
            except ValueError:
                raise CLIError(f"bad planner beta {parts[1]!r} in {text!r}") from None
            if not (math.isfinite(beta) and beta > 0):
                raise CLIError(f"planner beta must be a positive number, got {parts[1]!r}")
        return cls("planner", parts[0], beta)

    @property
    def label(self) -> str:
        if self.kind == "zoo":
            return self.value
        if self.kind == "planner":
            return f"planner-{self.value}"
        if self.kind == "random":
            return "random"
        return Path(self.value).stem


def zoo_env_kwargs(name: str) -> tuple[str | None, dict[str, Any]]:
    """(env id, env kwargs other than split) a zoo policy was trained with, if known."""
    from behavioral.zoo import ZOO

    entry = ZOO.get(name)
    if entry is None:
        return None, {}
    return entry.env_id, dict(entry.env_kwargs)


def load_policy(spec: PolicySpec, *, trusted: bool = False, env: Any = None) -> Any:
    """The policy object a :class:`PolicySpec` names.

    Args:
        spec: the parsed ``--policy``.
        trusted: load a ``.zip`` with SB3's pickle-based loader (``--trust-policy-file``).
        env: the env the policy will act in (its spaces stand in for a zip's unreadable
            ones and must fit the policy's).

    Raises:
        CLIError: a file that does not exist or is a directory.
        PolicyFileError, UnsafePolicyError, PolicyEnvMismatchError: see
            :func:`behavioral.policies.load_ppo`.
        UnknownZooEntryError, ZooFileError: see :func:`behavioral.zoo.load_zoo`.
    """
    from behavioral.policies import SoftOptimalPolicy, UniformPolicy, load_ppo

    if spec.kind == "random":
        return UniformPolicy()
    if spec.kind == "planner":
        return SoftOptimalPolicy(spec.value, beta=spec.beta)
    if spec.kind == "zoo":
        from behavioral.zoo import load_zoo

        return load_zoo(spec.value)
    path = Path(spec.value)
    if not path.exists():
        raise CLIError(
            f"policy file not found: {path} (expected zoo:NAME, planner:OBJECTIVE, random, "
            "or the path of an SB3 .zip)"
        )
    if path.is_dir():
        raise CLIError(f"{path} is a directory, not an SB3 policy .zip")
    return load_ppo(path, trusted=trusted, env=env)


def env_id(name: str) -> str:
    """An env id from ``--env`` (``reddoors`` and ``waterplants`` are aliases)."""
    return ENV_ALIASES.get(name.lower(), name)


def make_env(
    env_id: str,
    split: str | None,
    kwargs: Mapping[str, Any] | None = None,
    wrappers: tuple[str, ...] = (),
) -> Any:
    """:func:`behavioral.environments.make_env` for an id from the command line.

    ``split=None`` leaves the split to ``kwargs`` (or the env's default); a split given
    to an env without splits is an error. ``wrappers``: names of observation wrappers
    (:data:`behavioral.environments.OBSERVATION_WRAPPERS`).
    """
    from behavioral.environments import make_env as make

    return make(env_id, split=split, kwargs=kwargs, wrappers=wrappers)


def _trained_env(
    spec: PolicySpec, path_meta: Mapping[str, Any] | None
) -> tuple[str | None, dict, tuple[str, ...]]:
    """(env id, env kwargs other than split, observation wrappers) a policy was trained in."""
    from behavioral.environments import recorded_wrappers
    from behavioral.errors import InvalidArgumentError

    if spec.kind == "zoo":
        from behavioral.zoo import ZOO

        env, kwargs = zoo_env_kwargs(spec.value)
        entry = ZOO.get(spec.value)
        return env, kwargs, entry.observation_wrappers if entry is not None else ()
    if spec.kind == "file" and path_meta and isinstance(path_meta.get("env_id"), str):
        saved = path_meta.get("env_kwargs")
        saved = dict(saved) if isinstance(saved, Mapping) else {}
        try:
            wrappers = recorded_wrappers(path_meta)
        except InvalidArgumentError as err:
            raise CLIError(f"{spec.value}: {err}") from None
        return path_meta["env_id"], {k: v for k, v in saved.items() if k != "split"}, wrappers
    return None, {}, ()


def policy_and_env(
    spec: PolicySpec,
    env: str | None,
    split: str | None,
    extra: Mapping[str, Any] | None,
    *,
    trusted: bool = False,
) -> tuple[Any, Any]:
    """The policy a spec names and the env to run it in.

    The env is ``--env``, or else the one the policy was trained in (a zoo entry's, or the
    ``behavioral_metadata`` a zip saved by ``behavioral train`` carries); in the env it was
    trained in, its training env kwargs (e.g. the level size) and observation wrappers
    (the Minigrid zoo's flattened view) are reused. ``--env-kwarg``
    values override them. The split is passed only when given (the env's default
    otherwise). A trained policy must fit the env's spaces, and a planner's objective must
    be one the env declares.

    Raises:
        CLIError: no env named and none known for the policy.
        PolicyEnvMismatchError: the policy's observation or action space differs from
            the env's.
        UnknownObjectiveError: a planner objective the env does not declare.
    """
    from behavioral.errors import UnsafePolicyError
    from behavioral.policies import check_policy_fits_env

    try:
        policy = load_policy(spec, trusted=trusted)
    except UnsafePolicyError:
        if env is None or spec.kind != "file":
            raise
        # Spaces stored only pickled: the env named on the command line stands in.
        made = make_env(env_id(env), split, extra)
        return load_policy(spec, trusted=trusted, env=made), made
    meta = getattr(policy, "behavioral_metadata", None)
    trained_env, trained_kwargs, wrappers = _trained_env(
        spec, meta if isinstance(meta, Mapping) else None
    )
    wanted = env_id(env) if env is not None else trained_env
    if wanted is None:
        raise CLIError("--env is required for this policy (e.g. behavioral/RedDoors-v0)")
    kwargs = dict(trained_kwargs) if wanted == trained_env else {}
    kwargs.update(extra or {})
    made = make_env(wanted, split, kwargs, wrappers if wanted == trained_env else ())
    if spec.kind in ("zoo", "file"):
        check_policy_fits_env(policy, made)
    if spec.kind == "planner":
        _check_planner_objective(spec, made)
    return policy, made


def _check_planner_objective(spec: PolicySpec, env: Any) -> None:
    from behavioral.errors import EnvContractError, UnknownObjectiveError
    from behavioral.extract import is_extractable
    from behavioral.policies import env_tabular_model, has_tabular_model

    if not has_tabular_model(env) and not is_extractable(env):
        raise EnvContractError(
            f"a planner needs the env's tabular model, and {env.spec.id if env.spec else env} "
            "has none and no Discrete actions to extract one with (use random or a trained "
            "policy)"
        )
    env.reset(seed=0)
    names = sorted(env_tabular_model(env).objectives)
    if spec.value not in names:
        raise UnknownObjectiveError(
            f"planner objective {spec.value!r} is not among the env's objectives {names}"
        )
