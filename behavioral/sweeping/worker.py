"""One audit of a sweep, as a worker process runs it: roll the policy out, audit the
episodes, render the report, and return one flat row (plus the report's files).

The worker never writes into the sweep directory: the report comes back as bytes and the
driver writes it (atomically) next to its journal record, so a worker on another machine
(Ray) needs no shared file system, and a worker orphaned by a killed driver cannot touch
the directory a re-run is using.

:func:`audit_row` is the one place that reads an audit result into columns: adapt it
when the result's table changes.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["audit_row", "limit_threads", "outcome_rates", "run_job"]

#: Largest report (bytes, all files) a worker ships back.
MAX_REPORT_BYTES = 256 * 2**20
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "BEHAVIORAL_FIT_THREADS",  # the audit's own threads (behavioral.auditing.fitting)
)
_limited = False


def limit_threads() -> None:
    """One BLAS / OpenMP / torch / numba thread in this process (once per process).

    Workers share the machine's cores: one audit per core, each single-threaded, beats
    several audits fighting over every core. Sets the environment variables (for
    libraries not loaded yet) and limits the loaded ones.
    """
    global _limited
    if _limited:
        return
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import torch

    torch.set_num_threads(1)
    # numba: our kernels are serial; NUMBA_NUM_THREADS (above, or inherited from the
    # forkserver) caps a parallel one. numba.set_num_threads would start numba's thread
    # pool (and a process lock) just to shrink it.
    _limited = True


def run_job(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one audit (``task`` from :meth:`Job.task`); returns ``{"row": {...}, "files":
    {relative path: bytes} | None}``. Errors propagate: the driver records them."""
    import behavioral_envs  # noqa: F401  (registers the env ids in this process)

    from behavioral.auditing import audit
    from behavioral.rollout import rollout
    from behavioral.specs import PolicySpec, policy_and_env

    limit_threads()
    t0, cpu0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="behavioral-policy-") as tmp:
        spec = PolicySpec.parse(_policy_file(task, Path(tmp)))
        policy, env = policy_and_env(
            spec,
            task["env"],
            task["split"],
            task["env_kwargs"],
            wrappers=task.get("observation_wrappers"),
        )
    try:
        options = dict(task["options"])
        method = options.pop("method", "maxent")
        deterministic = bool(options.pop("deterministic", False))
        if "objectives" in options:
            options["objectives"] = _objectives(options["objectives"])
        t1 = time.perf_counter()
        data = rollout(
            policy,
            env,
            episodes=int(task["episodes"]),
            seed=int(task["seed"]),
            deterministic=deterministic,
        )
        t2 = time.perf_counter()
        result = audit(data, env, method=method, seed=int(task["seed"]), **options)
        t3 = time.perf_counter()
        files = _report_files(result) if task["report"] else None
        t4 = time.perf_counter()
        row: dict[str, Any] = {
            "env": env.spec.id if env.spec is not None else task["env"],
            "env_kwargs": _kwargs_json(env),
            "description": data.metadata.get("policy"),
        }
        row.update(audit_row(result))
        row.update(outcome_rates(data.episodes))
        row["policy_ll"] = _generating_log_likelihood(policy, data, env, deterministic)
        row.update(
            load_seconds=t1 - t0,
            rollout_seconds=t2 - t1,
            audit_seconds=t3 - t2,
            report_seconds=t4 - t3,
            seconds=t4 - t0,
            cpu_seconds=time.process_time() - cpu0,
            worker_peak_rss_mb=_peak_rss_mb(),
            worker=f"{socket.gethostname()}:{os.getpid()}",
        )
    finally:
        env.close()
    return {"row": row, "files": files}


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (MB; NaN where unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return math.nan
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


def _policy_file(task: Mapping[str, Any], tmp: Path) -> str:
    """The policy spec to load: the shipped bytes of a policy file written under ``tmp``
    (same file name), else the task's spec."""
    data = task.get("policy_bytes")
    if data is None:
        return str(task["policy"])
    path = tmp / Path(str(task["policy"])).name
    path.write_bytes(data)
    return str(path)


def _objectives(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The ``objectives=`` of :func:`behavioral.audit` from name -> expression, or None /
    False (leave the declared objective out)."""
    from behavioral.specs import parse_objective

    out: dict[str, Any] = {}
    for name, expr in spec.items():
        out[name] = None if expr in (None, False) else _expression_reward(parse_objective(expr))
    return out


def _expression_reward(expr: Any) -> Callable[[Any], Any]:
    from behavioral.specs import objective_reward

    reward = objective_reward(expr)
    if callable(reward):
        return reward
    return lambda model, name=reward: model.objectives[name]


def _kwargs_json(env: Any) -> str:
    import json

    kwargs = dict(env.spec.kwargs) if env.spec is not None else {}
    return json.dumps(kwargs, sort_keys=True, default=repr)


# ----------------------------------------------------------------------------- the row


def audit_row(result: Any) -> dict[str, Any]:
    """The audit's columns: verdict, proxy, reason, base, the null model's log-likelihood
    and, per candidate ``c``: ``ll.c`` (mean per-episode log-likelihood) with
    ``ll_low.c``/``ll_high.c``, ``delta.c`` (mean per-episode difference to the base
    objective) with ``delta_low.c``/``delta_high.c``, ``epic.c`` (EPIC distance to the
    recovered reward) with ``epic_low.c``/``epic_high.c``, and ``beta.c``; and
    ``coinciding`` (proxies that are the named proxy's reward on this data, ``;``-joined).

    This is the only function that reads an audit's table columns.
    """
    table = result.table
    roles = table["role"] if "role" in table.columns else None
    base = None
    if roles is not None and (roles == "base").any():
        base = str(table.index[list(roles).index("base")])
    row: dict[str, Any] = {
        "verdict": result.verdict,
        "proxy": result.proxy,
        "reason": result.reason,
        "base": base,
        "ll_null": float(table["ll_null"].iloc[0]),
    }
    columns = {
        "ll": "log_likelihood",
        "ll_low": "ll_low",
        "ll_high": "ll_high",
        "delta": "delta_vs_base",
        "delta_low": "delta_low",
        "delta_high": "delta_high",
        "epic": "epic_to_recovered",
        "epic_low": "epic_low",
        "epic_high": "epic_high",
        "beta": "beta",
    }
    for name in table.index:
        for prefix, column in columns.items():
            row[f"{prefix}.{name}"] = float(table.loc[name, column])
    row["coinciding"] = ";".join(str(t) for t in result.twins)
    row["explained"] = bool(result.explained)
    row["distinguishable"] = bool(result.distinguishable)
    row["aliases"] = ";".join(f"{a}={b}" for a, b in result.aliases.items())
    return row


def outcome_rates(episodes: Any) -> dict[str, float]:
    """Summary columns of the rollout's outcomes (``rate.*`` are fractions of episodes).

    Every env: ``mean_length`` and ``mean_return.<objective>``; the share of each value of
    the env's ``outcome`` (``rate.<value>``). RedDoors (``outcome.door_color``):
    ``rate.red_decoy`` (ended at a red door that is not the exit). WaterPlants (plant
    counts): ``mean.healthy_plants``, ``mean.drowned_plants``, ``rate.drowned`` (ended with
    a drowned plant), ``rate.flooded`` (ended with a flooded cell).
    """
    out: dict[str, float] = {"mean_length": float(episodes["length"].mean())}
    for col in episodes.columns:
        if col.startswith("return."):
            out[f"mean_{col}"] = float(episodes[col].mean())
    if "outcome" in episodes.columns:
        shares = episodes["outcome"].astype(str).value_counts(normalize=True)
        out.update({f"rate.{value}": float(share) for value, share in shares.items()})
    if "outcome.door_color" in episodes.columns and "outcome" in episodes.columns:
        red = (episodes["outcome"] == "other_door") & (episodes["outcome.door_color"] == "red")
        out["rate.red_decoy"] = float(red.mean())
    for what in ("healthy_plants", "drowned_plants"):
        col = f"outcome.{what}"
        if col in episodes.columns:
            out[f"mean.{what}"] = float(episodes[col].mean())
    if "outcome.drowned_plants" in episodes.columns:
        out["rate.drowned"] = float((episodes["outcome.drowned_plants"] > 0).mean())
    if "outcome.flooded_cells" in episodes.columns:
        out["rate.flooded"] = float((episodes["outcome.flooded_cells"] > 0).mean())
    return out


def _generating_log_likelihood(policy: Any, data: Any, env: Any, deterministic: bool) -> float:
    """Mean per-episode log-likelihood of the episodes under the policy that produced them,
    for tabular planners (their exact policy is known); NaN otherwise."""
    from behavioral.policies import TabularPlanner

    if deterministic or not isinstance(policy, TabularPlanner):
        return math.nan
    import numpy as np

    total = 0.0
    models = data.level_models(env)
    for model, (states, actions, _) in zip(models, data.demonstrations(), strict=True):
        pi = policy.plan(model)
        t = np.minimum(np.arange(len(actions)), pi.shape[0] - 1)
        total += float(np.log(pi[t, states[: len(actions)], actions]).sum())
    return total / len(data)


def _report_files(result: Any) -> dict[str, bytes]:
    """The report directory ``result.save`` writes, as relative path -> bytes."""
    with tempfile.TemporaryDirectory(prefix="behavioral-sweep-") as tmp:
        target = Path(tmp) / "report"
        result.save(target)
        files: dict[str, bytes] = {}
        size = 0
        for path in sorted(target.rglob("*")):
            if path.is_file() and not path.is_symlink():
                size += path.stat().st_size
                if size > MAX_REPORT_BYTES:
                    raise ValueError(f"the report exceeds {MAX_REPORT_BYTES} bytes")
                files[path.relative_to(target).as_posix()] = path.read_bytes()
    return files
