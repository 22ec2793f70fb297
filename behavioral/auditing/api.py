"""The front end of an audit: roll a policy out (or load a dataset) in a gym env, build each
episode's level model, and hand the demonstrations to :func:`audit_demonstrations`."""

from __future__ import annotations

import contextlib
import inspect
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from behavioral.auditing.active import DESIGNS
from behavioral.auditing.core import ObjectiveSpec, audit_demonstrations
from behavioral.auditing.levels import audit_levels, is_state_function, merge_levels
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
        env: the gymnasium env (or its registered id, e.g. ``"behavioral/RedDoors-v0"``,
            ``"MiniGrid-FourRooms-v0"``). For a dataset it defaults to the env the dataset
            was recorded in (made from the validated id, kwargs and observation wrappers
            of its metadata); a different env raises ``DatasetMismatchError``. The env
            needs an exact tabular model: its own (``tabular_model()``, or a seals tabular
            env), or else each episode's level is extracted
            (:mod:`behavioral.extract`: ``Discrete`` actions and deterministic steps;
            Minigrid envs, with or without Minigrid's observation wrappers, through a fast
            codec). Extracted levels declare the env's reward as ``"reward"``, the
            default base, and get named MaxEnt features (:mod:`behavioral.auditing.levels`).
        episodes: episodes to roll out (policies only; an int >= 1).
        method: ``"maxent"`` (MaxEnt IRL over the levels' features) or ``"airl"``
            (imitation's AIRL on the env's observations).
        seed: a non-negative int; seeds the rollout, the IRL method and the bootstrap. The
            same seed gives the same audit.
        objectives: candidate objectives, a mapping name -> (S,) / (S, A) real array, or
            function: a *state function* ``f(unwrapped_env) -> float`` (the reward for
            entering each state, evaluated with the env restored to it) or a *model
            function* ``model -> array``. A ``behavioral.minigrid.Predicate`` (any
            ``behavioral.extract.StateFunction``) is a state function everywhere; another
            callable is a state function on envs whose levels are extracted and a model
            function on envs with their own tabular model
            (:mod:`behavioral.auditing.levels`). They extend the env's declared objectives
            (a declared name is replaced; a declared name mapped to None is left out of
            the candidates). A string is a Minigrid predicate's text (``"reach:goal"``,
            ``"region:5,1,5,1"``, ``"lava"``, ...; :func:`behavioral.minigrid.parse_predicate`).
            Complex, non-numeric or non-finite rewards are refused.
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
            ``design_options`` that are not what ``design`` takes; a state function that
            fails (``StateFunctionError``) or on an env whose own model cannot restore
            states.
        EnvContractError: ``env`` is not a gymnasium env, or has no tabular model and
            none can be extracted (an ``ExtractionError`` says why: actions that are
            not ``Discrete``, random steps, too many states, ...).
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
    extracted = not has_tabular_model(gym_env)
    state_functions = {
        n: f
        for n, f in (objectives or {}).items()
        if f is not None and is_state_function(f, extracted=extracted)
    }
    with _extraction_errors(gym_env):
        if extracted:  # refused before anything is rolled out if no level can be extracted
            _first_level(gym_env, dataset, seed)
        if dataset is None:
            dataset = rollout_mod.rollout(
                behaviour,
                gym_env,
                episodes=episodes,
                seed=seed,
                deterministic=deterministic,
                progress_bar=progress_bar,
                extract_levels=True if extracted else None,
            )
        elif replay:
            dataset.verify(gym_env)
        if len(dataset) == 0:
            raise InvalidDemonstrationError("the dataset has no episodes")
        if method == "airl":
            _check_airl_observations(dataset)
        found = audit_levels(
            dataset,
            gym_env,
            state_functions,
            extracted=extracted,
            merge_levels=merge_levels,
            observations=method == "airl",
        )
    models, levels = found.models, found.levels
    demos = dataset.demonstrations()

    if objectives is not None:
        declared = {n: (lambda m, n=n: m.objectives[n]) for n in models[0].objectives}
        given = {
            n: found.objective(n) if n in state_functions else _checked(n, spec)
            for n, spec in objectives.items()
        }
        merged = {**declared, **given}
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
        "observation_wrappers": dataset.metadata.get("observation_wrappers"),
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
    with _extraction_errors(gym_env):  # levels without a model of their own are extracted
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
    """The caller's objectives with each array checked (complex, non-numeric: refused,
    never truncated); functions are kept as given (see :func:`_checked`); text is parsed
    as a Minigrid predicate."""
    if objectives is None:
        return None
    if not isinstance(objectives, Mapping):
        raise InvalidArgumentError(
            "objectives must be a mapping name -> reward array or function (or None), got "
            f"{type(objectives).__name__}"
        )
    out: dict[str, Any] = {}
    for name, spec in objectives.items():
        if not isinstance(name, str):
            raise InvalidArgumentError(f"objective names must be strings, got {name!r}")
        if isinstance(spec, str):  # a Minigrid predicate by its text, as on the CLI
            from behavioral.minigrid import parse_predicate

            spec = parse_predicate(spec)
        out[name] = spec if spec is None or callable(spec) else _real_reward(name, spec)
    return out


def _checked(name: str, spec: Any) -> Any:
    """A model function's result checked when it is called; arrays and None as they are."""
    return _CheckedObjective(name, spec) if callable(spec) else spec


def _check_airl_observations(dataset: Any) -> None:
    from imitation.data.types import DictObs

    if isinstance(dataset.trajectories[0].obs, DictObs):
        raise EnvContractError(
            "AIRL learns a reward network on array observations, and this env emits dict "
            "observations: wrap it in an observation wrapper (e.g. "
            "behavioral.minigrid.flat_observations), or use method='maxent'"
        )


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
        env = make_env(
            dataset.metadata["env_id"],
            kwargs=dataset.metadata.get("env_kwargs"),
            wrappers=dataset.metadata.get("observation_wrappers"),
        )
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


def _env_name(env: Any) -> str:
    spec = getattr(env, "spec", None)
    return spec.id if spec is not None else type(env.unwrapped).__name__


@contextlib.contextmanager
def _extraction_errors(env: Any) -> Iterator[None]:
    """Say which env could not be audited when extracting one of its levels fails."""
    from behavioral.extract import ExtractionError

    try:
        yield
    except ExtractionError as err:
        raise type(err)(
            f"cannot audit {_env_name(env)}: the audit needs a discrete model of each level "
            f"and extracting one failed: {err}"
        ) from None


def _first_level(env: Any, dataset: Any, seed: int) -> None:
    """Extract the level of the first episode (the rollout's or the dataset's) once, so
    that an env whose levels cannot be extracted (random steps, too many states) is
    refused before any work; the extraction cache serves it again to the rollout."""
    from behavioral.extract import extract_level
    from behavioral.rollout import episode_seeds

    if dataset is not None and len(dataset) == 0:
        return
    reset_seed = episode_seeds(seed, 0)[0] if dataset is None else dataset.reset_seeds()[0]
    env.reset(seed=reset_seed)
    extract_level(env)


def _require_tabular_model(env: Any) -> None:
    """The one place an env without an exact model is refused: it has no model of its own
    (``tabular_model()``, seals) and none can be extracted (the specific
    ``ExtractionError``: actions that are not ``Discrete``, a wrapper that changes
    ``step``). Random steps and too many states are found when the first level is
    extracted."""
    if has_tabular_model(env):
        return
    from behavioral.extract import ExtractionError, check_extractable

    try:
        check_extractable(env)
    except ExtractionError as err:
        raise type(err)(
            f"cannot audit {_env_name(env)}: the audit needs a discrete model of each level (the env's "
            f"tabular_model(), a seals tabular env, or one extracted from its steps), and none "
            f"can be extracted: {err}"
        ) from None


def _version() -> str:
    import behavioral

    return behavioral.__version__
