"""The front end of an audit: roll a policy out (or load a dataset) in a gym env, build each
episode's level model, and hand the demonstrations to :func:`audit_demonstrations`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from behavioral.auditing.core import ObjectiveSpec, audit_demonstrations
from behavioral.auditing.result import Audit
from behavioral.errors import InvalidDemonstrationError
from behavioral.tabular import TabularModel, content_digest

__all__ = ["audit", "merge_levels"]


def _make_env(env: Any, dataset: Any) -> Any:
    import gymnasium as gym

    from behavioral.errors import UnknownEnvError

    if env is None:
        if dataset is None or not dataset.metadata.get("env_id"):
            raise ValueError("pass env= (a gymnasium env or env id) to audit a policy")
        env = dataset.metadata["env_id"]
        kwargs = dict(dataset.metadata.get("env_kwargs") or {})
    else:
        kwargs = {}
    if isinstance(env, str):
        try:
            return gym.make(env, **kwargs)
        except gym.error.Error as err:
            raise UnknownEnvError(f"cannot make env {env!r}: {err}") from None
    return env


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
    **kwargs: Any,
) -> Audit:
    """Audit a policy (rolled out here) or a recorded trajectory dataset.

    Args:
        behaviour: a policy -- anything with stable-baselines3's ``predict``, a callable
            ``obs -> action``, a tabular planner -- or a :class:`behavioral.rollout.Dataset`,
            or the path of a saved dataset directory.
        env: the gymnasium env (or its id). For a dataset it defaults to the env the
            dataset was recorded in; a different env raises ``DatasetMismatchError``.
        episodes: episodes to roll out (policies only).
        method: ``"maxent"`` (MaxEnt IRL over the levels' features) or ``"airl"``
            (imitation's AIRL on the env's observations).
        seed: seeds the rollout, the IRL method and the bootstrap. The same seed gives the
            same audit.
        objectives: candidate objectives (name -> array or ``model -> array``). They
            extend the env's declared objectives (a declared name is replaced; a declared
            name mapped to None is left out of the candidates). Needed
            for envs that declare none, such as seals envs (whose reward is declared as
            ``"reward"``).
        base: the base objective's name (default: the env's).
        deterministic: roll the policy out with its most probable actions.
        progress_bar: show progress bars.
        method_kwargs: extra arguments for the IRL method (e.g. AIRL's training steps).
        **kwargs: passed to :func:`audit_demonstrations` (``confidence``,
            ``n_bootstrap``, ``l2``, ``min_explained``, ``significance``, ``lapse``, ...).

    Returns:
        An :class:`Audit`.
    """
    import importlib

    # ``behavioral.rollout`` the module (the package may export names that shadow it).
    rollout_mod = importlib.import_module("behavioral.rollout")

    if method not in ("maxent", "airl"):
        raise ValueError(f"method must be 'maxent' or 'airl', got {method!r}")
    ss = np.random.SeedSequence(int(seed))
    rollout_seed = int(seed)
    irl_seed, boot_seed = (int(s.generate_state(1)[0]) for s in ss.spawn(2))

    if isinstance(behaviour, (str, os.PathLike)):
        dataset = rollout_mod.load_dataset(behaviour)
    elif isinstance(behaviour, rollout_mod.Dataset):
        dataset = behaviour
    else:
        dataset = None
    gym_env = _make_env(env, dataset)
    if dataset is None:
        dataset = rollout_mod.rollout(
            behaviour,
            gym_env,
            episodes=episodes,
            seed=rollout_seed,
            deterministic=deterministic,
            progress_bar=progress_bar,
        )
    if len(dataset) == 0:
        raise InvalidDemonstrationError("the dataset has no episodes")
    models, levels = merge_levels(dataset.level_models(gym_env))
    demos = dataset.demonstrations()

    if objectives is not None:
        declared = {n: (lambda m, n=n: m.objectives[n]) for n in models[0].objectives}
        merged = {**declared, **dict(objectives)}
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
        "seed": int(seed),
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
        **kwargs,
    )


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
    models: list[TabularModel] = []
    levels: list[int] = []
    for m in per_episode:
        idx = by_id.get(id(m))
        if idx is None:
            key = _model_key(m)
            idx = by_key.get(key)
            if idx is None:
                idx = by_key[key] = len(models)
                models.append(m)
            by_id[id(m)] = idx
        levels.append(idx)
    return models, levels


def _version() -> str:
    import behavioral

    return behavioral.__version__
