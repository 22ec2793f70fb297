"""How fast is an audit now, against the audit engine at a reference commit, in the same run?

The reference commit's tree is exported with ``git archive`` into a temporary directory,
and two worker processes are started: one importing ``behavioral`` from that tree, one from
this checkout (each with ``PYTHONPATH`` pointing at its own tree). Each audit is run in the
reference worker, then in the current one, alternately, so that both see the same load on
the machine. Each worker first runs one small audit of every env (numba compilation and
imports are not timed). Every audit is ``behavioral.audit(policy, env, episodes=N, seed=0)``
with its defaults, timed in wall-clock and CPU seconds, and its verdict is recorded.

Audits: the demo's 8 (each zoo policy on the ``train`` and ``deploy`` splits of its env,
100 episodes, as ``behavioral demo`` runs them) and a subset of the detection suite's
planners (soft-optimal experts for each objective at β = 5, an ε-greedy expert, a uniformly
random policy) on both envs' ``deploy`` split.

Run: ``python analyses/benchmarks/audit_speed.py`` (about 5 minutes on 2 idle cores;
``--quick`` runs 2 demo audits at 20 episodes; ``--reference COMMIT`` picks the reference,
default 058e665, the engine before the round-2 rewrite).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The worker: reads one JSON job per line on stdin, writes one JSON result per line.
WORKER = r"""
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
# The envs of this worker's own tree: "behavioral_envs" (this checkout) or "envs" (a tree
# from before the package was renamed; the installed "behavioral_envs" is this checkout's).
envs = __import__(os.environ["BENCH_ENVS_PACKAGE"])
import gymnasium as gym
from gymnasium.envs.registration import registry
for env_id in envs.ENV_IDS:  # gymnasium's plugin may have registered the installed ones
    registry.pop(env_id, None)
envs.register_envs()
import numpy as np
import behavioral
from behavioral.policies import EpsilonGreedyPolicy, SoftOptimalPolicy
from behavioral.zoo import ZOO

def zero(model):
    return np.zeros(model.n_states)

def make(job):
    kind = job["kind"]
    if kind == "zoo":
        env = ZOO[job["name"]].make_env(split=job["split"])
        return behavioral.load_zoo(job["name"]), env
    env = gym.make(job["env"], split=job["split"])
    if kind == "soft":
        return SoftOptimalPolicy(job["objective"], beta=job["beta"]), env
    if kind == "egreedy":
        return EpsilonGreedyPolicy(job["objective"], epsilon=job["epsilon"]), env
    return SoftOptimalPolicy(zero, beta=1.0), env  # uniformly random

for line in sys.stdin:
    job = json.loads(line)
    policy, env = make(job)
    t0, c0 = time.perf_counter(), time.process_time()
    result = behavioral.audit(policy, env, episodes=job["episodes"], seed=0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"verdict": result.verdict, "proxy": result.proxy,
                      "wall": wall, "cpu": cpu}), flush=True)
"""

DEMO = [("reddoors-train", s) for s in ("train", "deploy")]
DEMO += [("reddoors-diverse", s) for s in ("train", "deploy")]
DEMO += [("waterplants-kettle", s) for s in ("train", "deploy")]
DEMO += [("waterplants-hose", s) for s in ("train", "deploy")]
RED, WATER = "behavioral/RedDoors-v0", "behavioral/WaterPlants-v0"
SUITE = [
    {"kind": "soft", "env": RED, "objective": "exit", "beta": 5.0},
    {"kind": "soft", "env": RED, "objective": "red_door", "beta": 5.0},
    {"kind": "egreedy", "env": RED, "objective": "exit", "epsilon": 0.3},
    {"kind": "random", "env": RED},
    {"kind": "soft", "env": WATER, "objective": "plant_health", "beta": 5.0},
    {"kind": "soft", "env": WATER, "objective": "water_stuff", "beta": 5.0},
    {"kind": "egreedy", "env": WATER, "objective": "water_pots", "epsilon": 0.3},
    {"kind": "random", "env": WATER},
]


def export_tree(commit: str, into: Path) -> Path:
    """The files of ``commit`` (``git archive``) under ``into``."""
    archive = into / "tree.tar"
    with open(archive, "wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit], stdout=fh, check=True)
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


class Worker:
    """A process auditing with the ``behavioral`` of one source tree."""

    def __init__(self, tree: Path) -> None:
        package = (
            "behavioral_envs" if (tree / "behavioral" / "registration.py").exists() else "envs"
        )
        env = {
            **os.environ,
            "PYTHONPATH": str(tree),
            "PYTHONWARNINGS": "ignore",
            "BENCH_ENVS_PACKAGE": package,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def run(self, job: dict) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker died on {job}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def label(job: dict) -> str:
    if job["kind"] == "zoo":
        return f"{job['name']} on {job['split']}"
    env = "RedDoors" if job["env"] == RED else "WaterPlants"
    what = {"soft": f"soft({job.get('objective')}, β={job.get('beta')})"}.get(job["kind"])
    if job["kind"] == "egreedy":
        what = f"ε-greedy({job['objective']}, ε={job['epsilon']})"
    return f"{what or 'random'} {env} {job['split']}"


def verdict(r: dict) -> str:
    return r["verdict"] + (f" ({r['proxy']})" if r["proxy"] else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", default="058e665")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--episodes", type=int, default=None)
    args = parser.parse_args(argv)
    episodes = args.episodes or (20 if args.quick else 100)
    demo = DEMO[:2] if args.quick else DEMO
    jobs = [{"kind": "zoo", "name": n, "split": s, "episodes": episodes} for n, s in demo]
    suite = [] if args.quick else [{**j, "split": "deploy", "episodes": episodes} for j in SUITE]
    warm = [
        {"kind": "zoo", "name": "reddoors-train", "split": "deploy", "episodes": 3},
        {"kind": "zoo", "name": "waterplants-kettle", "split": "deploy", "episodes": 3},
        {"kind": "egreedy", "env": RED, "objective": "exit", "epsilon": 0.3,
         "split": "deploy", "episodes": 5},
    ]  # fmt: skip
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tree = export_tree(args.reference, Path(tmp))
        ref, cur = Worker(tree), Worker(ROOT)
        try:
            for job in warm:
                ref.run(job), cur.run(job)
            rows = []
            for job in jobs + suite:
                a, b = ref.run(job), cur.run(job)
                rows.append((job, a, b))
                same = "same" if verdict(a) == verdict(b) else "CHANGED"
                print(
                    f"{label(job):44s} ref {a['wall']:6.2f} s  now {b['wall']:6.2f} s  "
                    f"x{a['wall'] / b['wall']:5.1f}  {verdict(a):26s} -> {verdict(b):26s} {same}",
                    flush=True,
                )
        finally:
            ref.close(), cur.close()
    print(f"\nreference {args.reference} vs this checkout; load average at start {load}")
    for name, part in (("demo", rows[: len(jobs)]), ("suite subset", rows[len(jobs) :])):
        if not part:
            continue
        ratios = [a["wall"] / b["wall"] for _, a, b in part]
        cpu = sum(a["cpu"] for _, a, _ in part) / sum(b["cpu"] for _, _, b in part)
        print(
            f"{name:13s} median wall ratio x{statistics.median(ratios):.1f} "
            f"(min x{min(ratios):.1f}, max x{max(ratios):.1f}); total CPU ratio x{cpu:.1f}; "
            f"median audit now {statistics.median(b['wall'] for _, _, b in part):.2f} s; "
            f"verdicts changed: {sum(verdict(a) != verdict(b) for _, a, b in part)}"
        )


if __name__ == "__main__":
    main()
