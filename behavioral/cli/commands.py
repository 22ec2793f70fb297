"""The ``audit``, ``rollout``, ``irl`` and ``train`` subcommands.

Each reserves its output first (:func:`behavioral.files.reserve`: the target is checked and
locked before any work starts, so a bad ``--out`` or a second writer fails in a second),
refuses options that do not apply, then works and publishes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from behavioral.cli.specs import CLIError, PolicySpec, env_id, make_env, policy_and_env

__all__ = ["cmd_audit", "cmd_irl", "cmd_rollout", "cmd_train"]

DEFAULT_EPISODES = 100


def _not_with_dataset(args: argparse.Namespace) -> None:
    """Options that only describe a rollout are refused with ``--dataset``."""
    given = [
        flag
        for flag, value in (
            ("--policy", args.policy),
            ("--split", args.split),
            ("--env-kwarg", args.env_kwarg),
            ("--obs-wrapper", args.obs_wrapper),
            ("--episodes", args.episodes),
            ("--deterministic", args.deterministic or None),
            ("--trust-policy-file", args.trust_policy_file or None),
            ("--design", getattr(args, "design", None)),
            ("--levels", getattr(args, "levels", None)),
        )
        if value is not None
    ]
    if given:
        raise CLIError(
            f"{', '.join(given)} cannot be combined with --dataset: the dataset records its "
            "episodes, env, split and env arguments (pass either --policy or --dataset, not both)"
        )


def _only_with_dataset(args: argparse.Namespace) -> None:
    from behavioral.rollout import MAX_DATASET_BYTES

    if args.no_replay or args.max_dataset_bytes != MAX_DATASET_BYTES:
        raise CLIError("--no-replay and --max-dataset-bytes apply only with --dataset")


#: The most reset seeds ``--levels`` may name (a pool larger than its state budget is cut).
MAX_LEVEL_SEEDS = 200_000


def _seeds(text: str) -> list[int] | None:
    """Reset seeds from ``--levels``: comma-separated seeds and ``START:STOP`` ranges
    (STOP excluded); None when the text is not that."""
    seeds: list[int] = []
    for part in (x.strip() for x in text.split(",")):
        lo, colon, hi = part.partition(":")
        if not (lo.isdigit() and (not colon or hi.isdigit())):
            return None
        if not colon:
            seeds.append(int(part))
            continue
        start, stop = int(lo), int(hi)
        if stop <= start or len(seeds) + stop - start > MAX_LEVEL_SEEDS:
            raise CLIError(
                f"--levels range {part!r} must have START < STOP and at most "
                f"{MAX_LEVEL_SEEDS:,} seeds in all"
            )
        seeds.extend(range(start, stop))
    if len(seeds) > MAX_LEVEL_SEEDS:
        raise CLIError(f"--levels names more than {MAX_LEVEL_SEEDS:,} seeds")
    return seeds


def _design_options(args: argparse.Namespace) -> dict[str, Any]:
    """``design=`` and ``levels=`` of ``behavioral audit`` (``--levels``: a split name, or
    reset seeds: comma-separated, ``START:STOP`` ranges)."""
    if args.design in (None, "random"):
        if args.levels is not None:
            raise CLIError("--levels applies only with --design active or sequential")
        return {}
    out: dict[str, Any] = {"design": args.design}
    if args.levels is not None:
        seeds = _seeds(args.levels)
        if seeds is not None:
            out["levels"] = seeds
        elif "," not in args.levels and ":" not in args.levels:
            out["levels"] = args.levels.strip()
        else:
            raise CLIError(
                "--levels must be a split name or reset seeds (comma-separated, START:STOP "
                f"ranges), got {args.levels!r}"
            )
    return out


def _check_trust(spec: PolicySpec, args: argparse.Namespace) -> None:
    if args.trust_policy_file and spec.kind != "file":
        raise CLIError("--trust-policy-file applies only to a --policy .zip file")


def _load_dataset(path_text: str, args: argparse.Namespace) -> Any:
    from behavioral.errors import DatasetNotFoundError
    from behavioral.rollout import load_dataset

    path = Path(path_text)
    if not path.exists():
        raise DatasetNotFoundError(f"dataset directory not found: {path}")
    return load_dataset(path, max_bytes=args.max_dataset_bytes)


def _policy_env(args: argparse.Namespace) -> tuple[PolicySpec, Any, Any]:
    spec = PolicySpec.parse(args.policy)
    _check_trust(spec, args)
    policy, env = policy_and_env(
        spec,
        args.env,
        args.split,
        dict(args.env_kwarg or []),
        trusted=args.trust_policy_file,
        wrappers=args.obs_wrapper,
    )
    return spec, policy, env


# ----------------------------------------------------------------------------- audit


def cmd_audit(args: argparse.Namespace) -> int:
    from behavioral import files
    from behavioral.auditing import audit as run_audit

    kwargs: dict[str, Any] = {"method": args.method, "seed": args.seed}
    if args.fast:
        kwargs["n_bootstrap"] = 200
    if args.objective:
        kwargs["objectives"] = dict(args.objective)
    if args.base is not None:
        kwargs["base"] = args.base
    if args.dataset is not None:
        _not_with_dataset(args)
    elif args.policy is None:
        raise CLIError("pass --policy (zoo:NAME, planner:OBJECTIVE, random or a .zip) or --dataset")
    else:
        _only_with_dataset(args)
        kwargs.update(_design_options(args))
    with files.reserve(args.out, overwrite=args.force, expect=files.REPORT_FILES) as out:
        if args.dataset is not None:
            dataset = _load_dataset(args.dataset, args)
            env = make_env(env_id(args.env), None) if args.env is not None else None
            if args.objective:
                _check_minigrid(env if env is not None else dataset.metadata.get("env_id"))
            result = run_audit(dataset, env, replay=not args.no_replay, **kwargs)
        else:
            _, policy, env = _policy_env(args)
            if args.objective:
                _check_minigrid(env)
            result = run_audit(
                policy,
                env,
                episodes=args.episodes or DEFAULT_EPISODES,
                progress_bar=True,
                deterministic=args.deterministic,
                **kwargs,
            )
        result.save(out.target, overwrite=args.force)
    proxy = f" ({result.proxy})" if result.proxy else ""
    print(f"verdict: {result.verdict}{proxy}")
    print(f"reason: {result.reason}")
    if result.sequential is not None:
        s = result.sequential
        print(f"episodes: {s.n_episodes} of at most {s.budget} ({s.design} design)")
    print(f"report: {Path(args.out) / 'report.html'}")
    return 0


def _check_minigrid(env: Any) -> None:
    """``--objective`` names Minigrid predicates: refuse them for other envs."""
    import sys

    if isinstance(env, str):  # a dataset's env id: make it to look
        from behavioral.environments import make_env as make

        env = make(env)
    if "minigrid" in sys.modules:
        from minigrid.minigrid_env import MiniGridEnv

        if isinstance(env.unwrapped, MiniGridEnv):
            return
    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    raise CLIError(f"--objective takes Minigrid predicates, and {name} is not a Minigrid env")


# ----------------------------------------------------------------------------- rollout


def cmd_rollout(args: argparse.Namespace) -> int:
    from behavioral import files
    from behavioral.rollout import rollout, save_dataset

    with files.reserve(args.out, overwrite=args.force, expect=("metadata.json",)) as out:
        _, policy, env = _policy_env(args)
        dataset = rollout(
            policy,
            env,
            episodes=args.episodes or DEFAULT_EPISODES,
            seed=args.seed,
            deterministic=args.deterministic,
            progress_bar=True,
        )
        save_dataset(dataset, out.target, overwrite=args.force)
    print(f"dataset: {args.out} ({len(dataset)} episodes)")
    return 0


# ----------------------------------------------------------------------------- irl


def cmd_irl(args: argparse.Namespace) -> int:
    """MaxEnt IRL on a dataset: the audit's own fit (levels merged by content, the
    model's features, the same L2), with Laplace intervals on the weights."""
    import contextlib

    from behavioral import files

    if args.force and args.out is None:
        raise CLIError("--force applies only with --out")
    reserve = (
        files.reserve(args.out, kind="file", overwrite=args.force)
        if args.out is not None
        else contextlib.nullcontext()
    )
    with reserve:
        dataset = _load_dataset(args.dataset, args)
        doc = _irl_document(dataset, args)
        text = files.dumps_json(doc)
        if args.out is None:
            sys.stdout.write(text)
            return 0
        files.write_file(args.out, text, overwrite=args.force)
    print(f"weights: {args.out}")
    return 0


def _irl_document(dataset: Any, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    import behavioral
    from behavioral.auditing import merge_levels
    from behavioral.auditing.fitting import FTOL, GTOL
    from behavioral.auditing.levels import audit_levels
    from behavioral.environments import make_env as make
    from behavioral.irl.intervals import maxent_weight_intervals
    from behavioral.irl.maxent import Demonstration, maxent_irl
    from behavioral.policies import has_tabular_model

    meta = dataset.metadata
    if not meta.get("env_id"):
        raise CLIError(f"the dataset at {args.dataset} does not record its env id")
    env = make(
        meta["env_id"], kwargs=meta.get("env_kwargs"), wrappers=meta.get("observation_wrappers")
    )
    if not args.no_replay:
        dataset.verify(env)
    # the audit's levels: for envs without a model, extracted, with the audit's features
    found = audit_levels(
        dataset, env, {}, extracted=not has_tabular_model(env), merge_levels=merge_levels
    )
    models, levels = found.models, found.levels
    features = "model" if all(m.features is not None for m in models) else "states"
    demos = [
        Demonstration(np.asarray(s), np.asarray(a), bool(t), lvl)
        for (s, a, t), lvl in zip(dataset.demonstrations(), levels, strict=True)
    ]
    # the audit's own fit: the same features, L2 and tolerances
    recovered = maxent_irl(models, demos, features=features, l2=args.l2, gtol=GTOL, ftol=FTOL)
    ci = maxent_weight_intervals(models, demos, recovered, confidence=args.confidence)
    intervals = None
    if ci is not None:
        intervals = {
            "confidence": args.confidence,
            "method": "Laplace approximation (Fisher information of the MaxEnt fit)",
            "intervals": {n: [r["low"], r["high"]] for n, r in ci.iterrows()},
        }
    return {
        "method": recovered.method,
        "feature_mode": recovered.feature_mode,
        "weights": dict(zip(recovered.feature_names, recovered.weights, strict=True)),
        "confidence_intervals": intervals,
        "log_likelihood_per_episode": recovered.log_likelihood,
        "converged": recovered.converged,
        "iterations": recovered.iterations,
        "feature_gap": recovered.feature_gap,
        "l2": recovered.l2,
        "n_episodes": len(dataset),
        "n_levels": len(models),
        "dataset": str(args.dataset),
        "env_id": meta.get("env_id"),
        "split": meta.get("split"),
        "policy": meta.get("policy"),
        "behavioral_version": behavioral.__version__,
    }


# ----------------------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    from behavioral import files
    from behavioral.environments import accepts_split
    from behavioral.policies import train_ppo

    if args.env is None:
        raise CLIError("--env is required (e.g. behavioral/RedDoors-v0)")
    out = Path(args.out)
    if out.suffix == "":
        out = out.with_name(out.name + ".zip")
    wanted = env_id(args.env)
    with files.reserve(out, kind="file", overwrite=args.force):
        env_kwargs = dict(args.env_kwarg or [])
        split = args.split
        if split is None and "split" not in env_kwargs and accepts_split(wanted):
            split = "train"
        make_env(wanted, split, env_kwargs).close()  # fail fast on bad input
        checkpoints = None
        if args.checkpoint_every is not None:
            checkpoints = Path(args.checkpoint_dir or out.with_name(out.stem + "-checkpoints"))
        train_ppo(
            wanted,
            split=split,
            env_kwargs=env_kwargs,
            total_timesteps=args.timesteps,
            seed=args.seed,
            n_envs=args.n_envs,
            progress_bar=True,
            save_path=out,
            overwrite=args.force,
            checkpoint_every=args.checkpoint_every,
            checkpoint_dir=checkpoints,
        )
    print(f"policy: {out}")
    if checkpoints is not None:
        print(f"checkpoints: {checkpoints} (behavioral drift {checkpoints} --out DIR)")
    return 0
