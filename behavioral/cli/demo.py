"""The ``demo`` subcommand: audit the zoo on both splits of both envs into one directory.

The whole directory is staged next to ``--out`` and published at the end
(:mod:`behavioral.files`); ``--out`` is reserved (checked and locked) before the first
audit starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from behavioral.cli.specs import (
    PLANNER_BETA,
    PolicySpec,
    load_policy,
    make_env,
    one_line,
    zoo_env_kwargs,
)

__all__ = ["DEMO_PLANNERS", "DEMO_SPLITS", "DEMO_ZOO", "cmd_demo"]

#: The zoo policies ``demo`` audits, with the env each was trained in.
DEMO_ZOO = (
    ("reddoors-train", "behavioral/RedDoors-v0"),
    ("reddoors-diverse", "behavioral/RedDoors-v0"),
    ("waterplants-kettle", "behavioral/WaterPlants-v0"),
    ("waterplants-hose", "behavioral/WaterPlants-v0"),
)
#: What ``demo`` audits when the zoo is not installed: Boltzmann-rational planners.
DEMO_PLANNERS = (
    ("planner-red-door", "behavioral/RedDoors-v0", "red_door"),
    ("planner-exit", "behavioral/RedDoors-v0", "exit"),
    ("planner-water-stuff", "behavioral/WaterPlants-v0", "water_stuff"),
    ("planner-plant-health", "behavioral/WaterPlants-v0", "plant_health"),
)
_PLANNER_ROLE = {
    "red_door": "the proxy: pseudo-aligned by construction, since on train the exit is the red door",
    "exit": "the base objective: robustly aligned by construction",
    "water_stuff": "the proxy (a reward per pour, wherever the water lands)",
    "plant_health": "the base objective: robustly aligned by construction",
}
DEMO_SPLITS = ("train", "deploy")


def _demo_jobs() -> tuple[list[tuple[str, str, Any, str]], bool]:
    """(name, env id, policy, description) of every policy the demo audits, and whether
    they are the zoo's. The zoo is used when every one of its demo policies loads;
    otherwise planners.
    """
    from behavioral.errors import BehavioralError
    from behavioral.zoo import load_zoo

    try:
        jobs = []
        for name, env_id in DEMO_ZOO:
            policy = load_zoo(name)
            jobs.append((name, env_id, policy, _zoo_description(name)))
        return jobs, True
    except (BehavioralError, OSError) as err:
        sys.stderr.write(f"behavioral: the policy zoo cannot be loaded: {one_line(err)}\n")
    sys.stderr.write(
        "behavioral: the trained policy zoo is not installed; auditing tabular planners "
        f"(Boltzmann-rational, beta={PLANNER_BETA:g}) for each objective instead\n"
    )
    jobs = [
        (
            name,
            env_id,
            load_policy(PolicySpec("planner", objective, PLANNER_BETA)),
            f"a Boltzmann-rational planner (beta={PLANNER_BETA:g}) for {objective!r}, "
            f"{_PLANNER_ROLE[objective]}",
        )
        for name, env_id, objective in DEMO_PLANNERS
    ]
    return jobs, False


def _zoo_description(name: str) -> str:
    from behavioral.zoo import ZOO

    entry = ZOO.get(name)
    return str(getattr(entry, "description", "")) if entry is not None else ""


def cmd_demo(args: argparse.Namespace) -> int:
    from behavioral import files

    with files.reserve(args.out, overwrite=args.force, expect=("index.html",)) as out:
        episodes = args.episodes if args.episodes is not None else (20 if args.fast else 100)
        jobs, use_zoo = _demo_jobs()
        with out.stage() as tmp:
            rows = _run_demo(tmp, jobs, use_zoo, episodes=episodes, args=args)
    for name, _env_id, split, result in rows:
        proxy = f" ({result.proxy})" if result.proxy else ""
        print(f"{name:22s} {split:7s} {result.verdict}{proxy}")
    print(f"report: {Path(args.out) / 'index.html'}")
    return 0


def _run_demo(
    tmp: Path, jobs: Sequence[tuple[str, str, Any, str]], use_zoo: bool, *, episodes: int,
    args: argparse.Namespace,
) -> list[tuple[str, str, str, Any]]:  # fmt: skip
    """Every audit, the comparison reports and the index, written into ``tmp``."""
    from behavioral.auditing import audit as run_audit
    from behavioral.report import write_comparison_report

    kwargs: dict[str, Any] = {"n_bootstrap": 200} if args.fast else {}
    rows = []
    bar = _progress([(j, s) for j in jobs for s in DEMO_SPLITS], desc="auditing", unit="audit")
    audits: dict[str, list[Any]] = {}
    for (name, env_id, policy, _), split in bar:
        bar.set_postfix_str(f"{name} on {split}")
        zoo_env, env_kwargs = zoo_env_kwargs(name) if use_zoo else (None, {})
        env = make_env(zoo_env or env_id, split, env_kwargs)
        result = run_audit(policy, env, episodes=episodes, seed=args.seed, **kwargs)
        env.close()
        result.save(tmp / name / split)
        audits.setdefault(name, []).append(result)
        rows.append((name, zoo_env or env_id, split, result))
    for name, results in audits.items():
        write_comparison_report(
            results,
            tmp / name / "comparison",
            links=[f"../{s}/report.html" for s in DEMO_SPLITS],
            title=f"{name}: {' vs '.join(DEMO_SPLITS)}",
        )
    descriptions = {name: text for name, _, _, text in jobs}
    _write_index(tmp, rows, descriptions, episodes=episodes, seed=args.seed, use_zoo=use_zoo)
    return rows


def _progress(iterable: Any, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, file=sys.stderr, dynamic_ncols=True, **kwargs)


def _write_index(
    directory: Path,
    rows: Sequence[tuple[str, str, str, Any]],
    descriptions: Mapping[str, str],
    *,
    episodes: int,
    seed: int,
    use_zoo: bool,
) -> None:
    """index.html (self-contained: each comparison's glance figure embedded) and index.md."""
    from behavioral.report import write_demo_index

    write_demo_index(directory, rows, descriptions, episodes=episodes, seed=seed, use_zoo=use_zoo)
