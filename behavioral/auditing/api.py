"""The front end of an audit: roll a policy out (or load a dataset) in a gym env, build each
episode's level model, and hand the demonstrations to :func:`audit_demonstrations`."""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from behavioral.auditing.active import DESIGNS
from behavioral.auditing.core import ObjectiveSpec, audit_demonstrations
from behavioral.auditing.levels import merge_levels
from behavioral.auditing.result import Audit
from behavioral.checks import check_bool, check_choice, check_fraction, check_int, check_seed
from behavioral.environments import make_env
from behavioral.errors import (
    EnvContractError,
    InvalidArgumentError,
    InvalidDemonstrationError,
    InvalidRewardError,
)
from behavioral.policies import has_tabular_model
from behavioral.tabular import TabularModel

__all__ = ["audit", "merge_levels"]


#: audit_demonstrations' keywords that audit() sets itself (the others pass through).
_SET_HERE = frozenset(
    {"models", "demonstrations", "levels", "objectives", "base", "seed", "recovered",
     "metadata", "episodes"}
)  # fmt: skip


def audit(
    behaviour: Any,
    env: Any = None,
    *,
    episodes: int = 100,
    method: str = "maxent",
    seed: int = 0,
    objectives: Mapping[str, ObjectiveSpec] | None = None,
    base: str | None = None,
    deterministic: bool = False,
    progress_bar: bool = False,
    method_kwargs: Mapping[str, Any] | None = None,
    replay: bool = True,
    policy_name: str | None = None,
    design: str = "random",
    levels: Any = None,
    design_options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Audit:
    """Audit a policy (rolled out here) or a recorded trajectory dataset.

    Args:
        behaviour: a policy -- anything with stable-baselines3's ``predict``, a callable
            ``obs -> action``, a tabular planner -- or a :class:`behavioral.rollout.Dataset`,
            or the path of a saved dataset directory.
        env: the gymnasium env (or its registered id, e.g. ``"behavioral/RedDoors-v0"``).
            For a dataset it defaults to the env the dataset was recorded in (made from the
            validated id and kwargs of its metadata); a different env raises
            ``DatasetMismatchError``. The env must have an exact tabular model
            (``tabular_model()``, or a seals tabular env).
        episodes: episodes to roll out (policies only; an int >= 1).
        method: ``"maxent"`` (MaxEnt IRL over the levels' features) or ``"airl"``
            (imitation's AIRL on the env's observations).
        seed: a non-negative int; seeds the rollout, the IRL method and the bootstrap. The
            same seed gives the same audit.
        objectives: candidate objectives, a mapping name -> (S,) / (S, A) real array or
            function ``model -> array``. They extend the env's declared objectives (a
            declared name is replaced; a declared name mapped to None is left out of the
            candidates). Needed for envs that declare none, such as seals envs (whose
            reward is declared as ``"reward"``). Complex, non-numeric or non-finite
            rewards are refused.
        base: the base objective's name (default: the env's).
        deterministic: roll the policy out with its most probable actions (a bool).
        progress_bar: show progress bars (a bool).
        method_kwargs: extra arguments for the IRL method (e.g. AIRL's training steps).
        replay: for a dataset, replay every episode in the env first and check that its
            observations, rewards, states, returns and outcomes are what the env gives
            (:meth:`~behavioral.rollout.Dataset.verify`); False for envs that are not
            deterministic given the reset seed.
        policy_name: the short name reports show for the policy (titles, tables). Default:
            the dataset's recorded one, else the policy's own (``load_zoo`` and
            ``load_ppo`` name the models they return; planners are named by their spec,
            ``planner:red_door:5``), else one derived from its description.
        design: ``"random"`` (default): ``episodes`` episodes on the env's own levels,
            decided by :func:`~behavioral.auditing.decide`. ``"active"``: ``episodes`` is a
            budget; the audit chooses each next batch of levels by the evidence it is
            expected to add, and stops as soon as an anytime-valid test names a proxy or
            the base objective (:mod:`behavioral.auditing.active`). ``"sequential"``: the
            same test and stopping rule on levels drawn at random from ``levels``.
        levels: where an active or sequential audit takes its levels: a callable ``rng ->
            env`` (an env reset at a new level), the name of a split of ``env``'s own id
            (its other kwargs kept), or a sequence of reset seeds. Default: the env's own
            levels, edited by mutation search when the env has editable levels.
        design_options: options of an active or sequential audit (a mapping of
            :class:`~behavioral.auditing.active.ActiveConfig` fields, e.g.
            ``{"alpha": 0.01, "batch": 2}``).
        **kwargs: passed to :func:`audit_demonstrations` (``confidence``,
            ``n_bootstrap``, ``l2``, ``min_explained``, ``significance``, ``lapse``, ...).

    Returns:
        An :class:`Audit` (with ``design`` and ``sequential`` for active and sequential
        audits).

    Raises:
        InvalidArgumentError: an argument of the wrong type or outside its range, an
            unknown keyword, no env for a policy, a ``levels`` source or
            ``design_options`` that are not what ``design`` takes.
        EnvContractError: ``env`` is not a gymnasium env, or has no tabular model.
        InvalidEnvIdError, UnknownEnvError: an env id that is malformed or not registered.
        DatasetError: a dataset that cannot be loaded, does not fit the env or does not
            replay as recorded (its subclasses say which).
        InvalidRewardError: an objective that is complex, non-numeric, of the wrong shape
            or not finite.
    """
    import importlib

    # ``behavioral.rollout`` the module (the package may export names that shadow it).
    rollout_mod = importlib.import_module("behavioral.rollout")

    options = _check_options(
        kwargs, episodes=episodes, method=method, seed=seed, deterministic=deterministic,
        progress_bar=progress_bar, replay=replay, base=base, method_kwargs=method_kwargs,
        policy_name=policy_name,
    )  # fmt: skip
    seed, episodes = check_seed(seed), check_int(episodes, "episodes", minimum=1)
    objectives = _checked_objectives(objectives)
    if check_choice(design, "design", DESIGNS) != "random":
        return _chosen_levels_audit(
            behaviour, env, rollout_mod.Dataset, episodes=episodes, design=design,
            levels=levels, design_options=design_options, seed=seed, objectives=objectives,
            base=base, deterministic=deterministic, method=method, policy_name=policy_name,
            options=options,
        )  # fmt: skip
    if levels is not None or design_options is not None:
        raise InvalidArgumentError(
            "levels= and design_options= are for audits that choose their levels "
            "(design='active' or 'sequential'); a random audit plays the env's own levels"
        )
    ss = np.random.SeedSequence(seed)
    irl_seed, boot_seed = (int(s.generate_state(1)[0]) for s in ss.spawn(2))

    if isinstance(behaviour, (str, os.PathLike)):
        dataset = rollout_mod.load_dataset(behaviour)
    elif isinstance(behaviour, rollout_mod.Dataset):
        dataset = behaviour
    else:
        dataset = None
    gym_env = _audited_env(env, dataset)
    if dataset is None:
        dataset = rollout_mod.rollout(
            behaviour,
            gym_env,
            episodes=episodes,
            seed=seed,
            deterministic=deterministic,
            progress_bar=progress_bar,
        )
    elif replay:
        dataset.verify(gym_env)
    if len(dataset) == 0:
        raise InvalidDemonstrationError("the dataset has no episodes")
    models, levels = merge_levels(dataset.level_models(gym_env))
    demos = dataset.demonstrations()

    if objectives is not None:
        declared = {n: (lambda m, n=n: m.objectives[n]) for n in models[0].objectives}
        merged = {**declared, **objectives}
        objectives = {n: spec for n, spec in merged.items() if spec is not None}

    recovered = None
    if method == "airl":
        from behavioral.irl.airl import airl_irl

        recovered = airl_irl(
            dataset, gym_env, models, levels, seed=irl_seed, **dict(method_kwargs or {})
        )
    meta = {
        "env_id": dataset.metadata.get("env_id"),
        "env_kwargs": dataset.metadata.get("env_kwargs"),
        "split": dataset.metadata.get("split"),
        "policy": dataset.metadata.get("policy"),
        "policy_name": policy_name or dataset.metadata.get("policy_name"),
        "seed": seed,
        "method": method,
        "behavioral_version": _version(),
    }
    return audit_demonstrations(
        models,
        demos,
        levels,
        objectives=objectives,
        base=base,
        seed=boot_seed,
        recovered=recovered,
        metadata=meta,
        episodes=dataset.episodes,
        **options,
    )


def _chosen_levels_audit(
    behaviour: Any, env: Any, dataset_type: type, *, episodes: int, design: str, levels: Any,
    design_options: Any, seed: int, objectives: Any, base: str | None, deterministic: bool,
    method: str, policy_name: str | None, options: Mapping[str, Any],
) -> Audit:  # fmt: skip
    """An active or sequential audit (:mod:`behavioral.auditing.active`), after checking
    what only it takes."""
    from behavioral.auditing.active import active_audit, active_config, check_levels_source

    config = active_config(design_options)
    check_levels_source(levels)
    if isinstance(behaviour, (str, os.PathLike, dataset_type)):
        raise InvalidArgumentError(
            f"design={design!r} chooses the levels a policy is played on: it needs a policy, "
            "not a recorded dataset"
        )
    if method != "maxent":
        raise InvalidArgumentError(f"design={design!r} fits with method='maxent' only")
    gym_env = _audited_env(env, None)
    meta = {"seed": seed, "method": method, "behavioral_version": _version()}
    if policy_name is not None:
        meta["policy_name"] = policy_name
    return active_audit(
        behaviour, gym_env, episodes=episodes, design=design, levels=levels, seed=seed,
        objectives=objectives, base=base, deterministic=deterministic, config=config,
        metadata=meta, engine_options=options,
    )  # fmt: skip


def _check_options(kwargs: Mapping[str, Any], **given: Any) -> dict[str, Any]:
    """Validate audit()'s own arguments and the keywords passed on to the core; return
    the latter."""
    check_int(given["episodes"], "episodes", minimum=1)
    check_choice(given["method"], "method", ("maxent", "airl"))
    check_seed(given["seed"])
    if given["policy_name"] is not None and not (
        isinstance(given["policy_name"], str) and given["policy_name"].strip()
    ):
        raise InvalidArgumentError(
            f"policy_name must be a non-empty string, got {given['policy_name']!r}"
        )
    for flag in ("deterministic", "progress_bar", "replay"):
        check_bool(given[flag], flag)
    if given["base"] is not None and not isinstance(given["base"], str):
        raise InvalidArgumentError(f"base must be an objective's name, got {given['base']!r}")
    if given["method_kwargs"] is not None and not isinstance(given["method_kwargs"], Mapping):
        raise InvalidArgumentError("method_kwargs must be a mapping of keyword arguments")
    allowed = sorted(set(inspect.signature(audit_demonstrations).parameters) - _SET_HERE)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise InvalidArgumentError(
            f"audit() got unknown keyword arguments {unknown}; it takes episodes, method, "
            "seed, objectives, base, deterministic, progress_bar, method_kwargs, replay, "
            "policy_name, design, levels, design_options and "
            f"{', '.join(allowed)}"
        )
    options = dict(kwargs)
    for name in ("confidence", "significance"):
        if name in options:
            options[name] = check_fraction(options[name], name)
    if "n_bootstrap" in options:
        options["n_bootstrap"] = check_int(options["n_bootstrap"], "n_bootstrap", minimum=10)
    for name in ("living_reward",):
        if name in options:
            check_bool(options[name], name)
    if "lapse" in options and options["lapse"] not in (True, False, "auto"):
        raise InvalidArgumentError(f"lapse must be True, False or 'auto', got {options['lapse']!r}")
    for name in ("min_explained", "min_evidence"):
        if name in options:
            _check_real(options[name], name)
    return options


def _check_real(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)) or float(value) < 0:
        raise InvalidArgumentError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _checked_objectives(objectives: Any) -> dict[str, Any] | None:
    """The caller's objectives with each array checked and each function's result checked
    when it is called (complex, non-numeric: refused, never truncated)."""
    if objectives is None:
        return None
    if not isinstance(objectives, Mapping):
        raise InvalidArgumentError(
            "objectives must be a mapping name -> reward array or function model -> array "
            f"(or None), got {type(objectives).__name__}"
        )
    out: dict[str, Any] = {}
    for name, spec in objectives.items():
        if not isinstance(name, str):
            raise InvalidArgumentError(f"objective names must be strings, got {name!r}")
        if spec is None:
            out[name] = None
        elif callable(spec):
            out[name] = _CheckedObjective(name, spec)
        else:
            out[name] = _real_reward(name, spec)
    return out


def _real_reward(name: str, value: Any) -> np.ndarray:
    """``value`` as a real float array; complex, object and string arrays are refused."""
    arr = np.asarray(value)
    if arr.dtype.kind == "c":
        raise InvalidRewardError(
            f"objective {name!r} is complex; rewards are real numbers (it would lose its "
            "imaginary part)"
        )
    if arr.dtype.kind not in "biuf":
        raise InvalidRewardError(f"objective {name!r} is not a numeric array (dtype {arr.dtype})")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise InvalidRewardError(f"objective {name!r} contains NaN or infinite entries")
    return arr


class _CheckedObjective:
    """A caller's objective function whose result is checked like an array objective."""

    def __init__(self, name: str, fn: Any) -> None:
        self.name, self.fn = name, fn
        self.__qualname__ = getattr(fn, "__qualname__", name)

    def __call__(self, model: TabularModel) -> np.ndarray:
        return _real_reward(self.name, self.fn(model))


def _audited_env(env: Any, dataset: Any) -> Any:
    """The gym env of an audit: the one given (or made from its id), or the dataset's;
    refused unless it has an exact tabular model."""
    if env is None:
        if dataset is None:
            raise InvalidArgumentError(
                "pass env= (a gymnasium env or a registered env id) to audit a policy"
            )
        if not dataset.metadata.get("env_id"):
            raise InvalidArgumentError(
                "the dataset does not record its env id: pass env= (a gymnasium env or id)"
            )
        env = make_env(dataset.metadata["env_id"], kwargs=dataset.metadata.get("env_kwargs"))
    elif isinstance(env, str):
        env = make_env(env)
    elif not all(callable(getattr(env, a, None)) for a in ("reset", "step")) or not hasattr(
        env, "action_space"
    ):
        raise EnvContractError(
            f"env must be a gymnasium env or a registered env id, got {type(env).__name__}"
        )
    _require_tabular_model(env)
    return env


def _require_tabular_model(env: Any) -> None:
    """The one place an env without an exact model is refused (model extraction for
    other discrete envs, e.g. Minigrid, plugs in here)."""
    if not has_tabular_model(env):
        name = (
            env.spec.id if getattr(env, "spec", None) is not None else type(env.unwrapped).__name__
        )
        raise EnvContractError(
            f"cannot audit {name}: the audit needs a discrete model of each level (the env's "
            "tabular_model(), or a seals tabular env), and none can be extracted from this env"
        )


def _version() -> str:
    import behavioral

    return behavioral.__version__
