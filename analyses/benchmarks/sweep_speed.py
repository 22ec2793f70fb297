"""How much faster a sweep runs with more workers: the same sweep with 1 and with 2 (or
``--workers``) local workers, in one run.

Each configuration runs in a fresh process into a fresh directory (start-up, imports and
the forkserver included: what a user waits for), in alternating order when repeated. The
sweep is the detection suite's ``--fast`` subset (RedDoors: 16 policies x 2 sample sizes =
32 audits; ``--scale quick``: 4 audits; ``--scale medium``: both envs, 108 audits;
``--scale full``: the whole suite, 420 audits), or with
``--checkpoints DIR`` one audit per checkpoint zip (100 deploy episodes each, with reports:
a drift sweep). A sweep pays a fixed start-up (~4 s idle: imports, the forkserver) that
more workers cannot shorten, so small sweeps understate the speed-up.

Printed: wall time per configuration, the speed-up against 1 worker, the audits' own time
(sum of per-audit seconds) and per-audit cost, the peak memory of a worker and of the
driver, the share of the audits' wall time their workers spent on a CPU (below 100%: other
processes took the cores), and the load average before and after each run (the machine
is shared: a load above the core count means the numbers understate the speed-up). Then what a sweep of
``--project`` audits (default 500) would take on ``--cluster-cpus`` (default 64) Ray CPUs
at the measured per-audit cost.

    python analyses/benchmarks/sweep_speed.py                 # 1 vs 2 workers, suite subset
    python analyses/benchmarks/sweep_speed.py --scale quick   # a smoke run
    python analyses/benchmarks/sweep_speed.py --scale full    # the whole detection suite
    python analyses/benchmarks/sweep_speed.py --checkpoints analyses/out/ckpt/reddoors-train
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: Runs one sweep in a fresh process and prints one JSON line about it.
CHILD = r"""
import json, resource, sys, time
import behavioral
jobs, workers, out = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
table = behavioral.sweep(jobs, workers=workers, out=out, progress=False)
wall = time.perf_counter() - t0
print(json.dumps({
    "wall": wall,
    "audits": len(table),
    "failed": int((table["status"] == "failed").sum()),
    "audit_seconds": float(table["seconds"].sum()),
    "per_audit": float(table["seconds"].mean()),
    "cpu_share": float(table["cpu_seconds"].sum() / table["seconds"].sum()),
    "worker_peak_mb": float(table["worker_peak_rss_mb"].max()),
    "driver_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    "workers_seen": int(table["worker"].nunique()),
    "verdicts": list(table["verdict"].fillna("-")),
}))
"""


def suite_jobs(scale: str) -> list[dict]:
    """Detection-suite jobs: ``quick`` (4), ``fast`` (the suite's --fast subset: RedDoors, 16
    policies x 2 sample sizes = 32), ``medium`` (both envs, 36 policies x 3 sizes = 108) or
    ``full`` (the whole suite: 84 policies x 5 sizes = 420, as ``detection_suite.py`` runs it)."""
    import dataclasses
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "detection_suite", ROOT / "analyses" / "detection_suite.py"
    )
    suite = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = suite
    spec.loader.exec_module(suite)
    if scale == "full":
        config = suite.Config()
        return suite.jobs(suite.make_cases(config), config)
    config = dataclasses.replace(
        suite.Config(),
        sample_sizes=(10, 50, 100) if scale == "medium" else (10, 50),
        betas=(5.0,),
        epsilons=(0.1,),
        envs=("reddoors", "waterplants") if scale == "medium" else ("reddoors",),
        zoo=False,
        n_bootstrap=300,
    )
    jobs = suite.jobs(suite.make_cases(config), config)
    return jobs[::8] if scale == "quick" else jobs


def checkpoint_jobs(directory: Path) -> list[dict]:
    from behavioral.drift import checkpoint_steps

    return [
        {"policy": str(path), "split": "deploy", "episodes": 100, "tags": {"step": step}}
        for step, path in checkpoint_steps(directory)
    ]


def run(jobs: list[dict], workers: int) -> dict:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sweep-speed-") as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(jobs), str(workers), str(Path(tmp) / "out")],
            capture_output=True,
            text=True,
            check=False,
            env=dict(os.environ, PYTHONWARNINGS="ignore"),
        )
    if proc.returncode != 0:
        raise SystemExit(f"the sweep with {workers} worker(s) failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(workers=workers, load_before=load_before[0], load_after=os.getloadavg()[0])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale",
        choices=("quick", "fast", "medium", "full"),
        default="fast",
        help="detection-suite jobs: 4, 32 (default), 108 or 420 audits (the whole suite)",
    )
    parser.add_argument("--checkpoints", type=Path, default=None, help="a checkpoint directory")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs per worker count")
    parser.add_argument("--project", type=int, default=500, help="audits to project")
    parser.add_argument("--cluster-cpus", type=int, default=64, help="Ray CPUs to project to")
    args = parser.parse_args()
    jobs = checkpoint_jobs(args.checkpoints) if args.checkpoints else suite_jobs(args.scale)
    print(
        f"{len(jobs)} audits; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f} "
        f"at start; worker counts {args.workers}, {args.repeat} run(s) each",
        flush=True,
    )
    results: list[dict] = []
    for _ in range(args.repeat):
        for workers in args.workers:
            r = run(jobs, workers)
            results.append(r)
            print(
                f"  {workers} worker(s): {r['wall']:7.1f} s wall, {r['audit_seconds']:7.1f} s of "
                f"audits ({r['per_audit']:.2f} s per audit, {r['cpu_share']:.0%} of it on a CPU), "
                f"worker peak {r['worker_peak_mb']:.0f} "
                f"MB, driver peak {r['driver_peak_mb']:.0f} MB, load {r['load_before']:.2f} -> "
                f"{r['load_after']:.2f}, failed {r['failed']}",
                flush=True,
            )
    best = {w: min(r["wall"] for r in results if r["workers"] == w) for w in args.workers}
    verdicts = {tuple(r["verdicts"]) for r in results}
    print("\nbest wall time per worker count (speed-up against the smallest count):")
    base = best[min(best)]
    for w, wall in best.items():
        print(f"  {w} worker(s): {wall:7.1f} s   speed-up {base / wall:.2f}x")
    print(f"identical verdicts across runs: {len(verdicts) == 1}")
    per_audit = sum(r["audit_seconds"] for r in results) / sum(r["audits"] for r in results)
    peak = max(r["worker_peak_mb"] for r in results)
    waves = math.ceil(args.project / args.cluster_cpus)
    print(
        f"\nprojection: {args.project} audits at {per_audit:.2f} s each = "
        f"{args.project * per_audit / 3600:.2f} CPU-hours; on {args.cluster_cpus} Ray CPUs (one "
        f"audit per CPU, {peak:.0f} MB each, {args.cluster_cpus * peak / 1024:.0f} GB in all) "
        f"{waves} waves = {waves * per_audit / 60:.1f} min of audits, plus cluster and worker "
        "start-up"
    )


if __name__ == "__main__":
    main()
