"""``behavioral irl`` against the audit's own MaxEnt fit of the same dataset.

``behavioral irl DATASET`` used to take 45 s where a whole audit of the same dataset took
12 s. The cause: it merged the dataset's levels by object identity, and the env builds a new
model object for every level seed, so a WaterPlants dataset (one house, a new start cell per
episode) became one "level" per episode -- the same model solved N times per IRL iteration
and per Fisher-information pass. The audit merges levels by content
(``behavioral.auditing.merge_levels``: the same house with another start cell is one level),
and so does ``irl`` now.

This script times, on one dataset (a zoo policy's rollout), in one process:

* ``old irl``: the former merging (by identity) + MaxEnt fit + Laplace intervals;
* ``irl``: the ``behavioral irl`` command's work (load, replay check, merge by content,
  fit, intervals) through its own function;
* ``audit's IRL stage``: the same steps as the audit takes them -- ``load_dataset``,
  ``Dataset.verify``, ``level_models`` + ``merge_levels``, its ``maxent_irl`` call, and the
  Laplace intervals its report draws (``weights.png``);
* ``audit's fit``: that ``maxent_irl`` call alone;
* ``whole audit``: ``behavioral.audit`` of the dataset (without writing the report),

and prints each time, the ratios ``irl / audit's IRL stage`` and ``irl / whole audit``, and
the largest difference between ``irl``'s weights and the audit's recovered weights.

    python analyses/benchmarks/irl_vs_audit.py            # 50 kettle-on-hose episodes
    python analyses/benchmarks/irl_vs_audit.py --episodes 100 --policy zoo:reddoors-train
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import behavioral
from behavioral.auditing import merge_levels
from behavioral.cli import main as cli
from behavioral.cli.commands import _irl_document
from behavioral.environments import make_env
from behavioral.irl.intervals import maxent_weight_intervals
from behavioral.irl.maxent import Demonstration, maxent_irl
from behavioral.rollout import load_dataset


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def old_irl(dataset, env) -> np.ndarray:
    per_episode = dataset.level_models(env)
    index: dict[int, int] = {}
    models, levels = [], []
    for m in per_episode:  # the former merging: by object identity
        if id(m) not in index:
            index[id(m)] = len(models)
            models.append(m)
        levels.append(index[id(m)])
    demos = [
        Demonstration(np.asarray(s), np.asarray(a), bool(t), lvl)
        for (s, a, t), lvl in zip(dataset.demonstrations(), levels, strict=True)
    ]
    rec = maxent_irl(models, demos, features="model", l2=1e-2)
    maxent_weight_intervals(models, demos, rec, confidence=0.95)
    return rec.weights, len(models)


def audit_inputs(dataset, env):
    models, levels = merge_levels(dataset.level_models(env))
    demos = [
        Demonstration(np.asarray(s), np.asarray(a), bool(t), lvl)
        for (s, a, t), lvl in zip(dataset.demonstrations(), levels, strict=True)
    ]
    return models, demos


def audit_stage(data_dir: Path, env):
    dataset = load_dataset(data_dir)
    dataset.verify(env)
    models, demos = audit_inputs(dataset, env)
    rec = maxent_irl(models, demos, features="model", l2=1e-2)
    maxent_weight_intervals(models, demos, rec, confidence=0.95)
    return rec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", default="zoo:waterplants-kettle")
    parser.add_argument("--split", default="deploy")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-old", action="store_true", help="do not time the old merging")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        argv = ["rollout", "--policy", args.policy, "--split", args.split]
        argv += ["--episodes", str(args.episodes), "--out", str(data_dir)]
        assert cli(argv) == 0
        dataset = load_dataset(data_dir)
        meta = dataset.metadata
        env = make_env(meta["env_id"], kwargs=meta["env_kwargs"])
        ns = argparse.Namespace(dataset=str(data_dir), l2=1e-2, confidence=0.95, no_replay=False)

        t_irl, doc = best_of(lambda: _irl_document(load_dataset(data_dir), ns), args.repeats)
        t_stage, _ = best_of(lambda: audit_stage(data_dir, env), args.repeats)
        models, demos = audit_inputs(dataset, env)
        t_fit, _ = best_of(
            lambda: maxent_irl(models, demos, features="model", l2=1e-2), args.repeats
        )
        t_audit, result = best_of(
            lambda: behavioral.audit(load_dataset(data_dir), seed=0), args.repeats
        )
        rows = [
            ("irl (now)", t_irl),
            ("audit's IRL stage (same steps)", t_stage),
            ("audit's maxent_irl call alone", t_fit),
            ("whole audit", t_audit),
        ]
        if not args.skip_old:
            t_old, (_, n_old) = best_of(lambda: old_irl(dataset, env), 1)
            rows.insert(0, (f"irl (before: {n_old} 'levels')", t_old))

    print(f"{args.policy} on {args.split}, {args.episodes} episodes, {doc['n_levels']} level(s)")
    for name, t in rows:
        print(f"  {name:32s} {t:8.2f} s")
    print(
        f"  irl / audit's IRL stage = {t_irl / t_stage:.2f}x, "
        f"irl / whole audit = {t_irl / t_audit:.2f}x"
    )
    if not args.skip_old:
        print(f"  before / now = {rows[0][1] / t_irl:.0f}x")
    weights = result.recovered.weights_by_name
    gap = max(abs(doc["weights"][k] - weights[k]) for k in weights)
    print(f"  largest |irl weight - audit weight| = {gap:.2e}")


if __name__ == "__main__":
    main()
