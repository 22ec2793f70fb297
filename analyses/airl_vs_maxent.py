"""AIRL against MaxEnt: the same audits, the behavioural objective recovered two ways.

    python analyses/airl_vs_maxent.py [--envs red_doors water_plants] [--episodes 100]
        [--airl-timesteps 30000] [--seed 0] [--out FILE.md]

On the ``deploy`` split of each env (where the base objective and the proxy come apart),
two soft-optimal experts (beta = 5): one for the base objective, one for the proxy.
Each dataset is audited twice with ``behavioral.audit`` -- ``method="maxent"`` (linear
reward on the levels' features) and ``method="airl"`` (imitation's AIRL, state-only
reward network on the observations) -- with everything else shared: candidates, fitted
temperatures, EPIC on the data's coverage, bootstrap, verdict. The table gives, per
dataset and method, the EPIC distance of the recovered reward to the base objective and
to the proxy (with the bootstrap CI), the verdict, the IRL fit's wall time and the whole
audit's. The verdict depends on the recovered reward only through the "unexplained"
test, so the EPIC columns are where the two methods differ.

The expected verdict is ``aligned`` for the base expert and ``proxy`` for the proxy
expert; a recovered reward that is closer (EPIC) to the expert's objective than to the
other one "points the right way".
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import behavioral_envs  # noqa: F401  (registers the ids when the project is not installed)
import gymnasium as gym
import pandas as pd

from behavioral.auditing import audit
from behavioral.files import write_atomic
from behavioral.policies import SoftOptimalPolicy
from behavioral.rollout import rollout


@dataclasses.dataclass(frozen=True)
class Config:
    envs: tuple[str, ...] = ("red_doors", "water_plants")
    split: str = "deploy"
    beta: float = 5.0
    episodes: int = 100
    seed: int = 0
    airl_timesteps: int = 30_000
    n_bootstrap: int = 1000


ENVS = {
    "red_doors": ("behavioral/RedDoors-v0", "exit", "red_door"),
    "water_plants": ("behavioral/WaterPlants-v0", "plant_health", "water_stuff"),
}


def run(cfg: Config) -> pd.DataFrame:
    """One row per (env, expert, method)."""
    rows = []
    for key in cfg.envs:
        env_id, base, proxy = ENVS[key]
        env = gym.make(env_id, split=cfg.split)
        for expert in (base, proxy):
            # 1. The demonstrations: a soft-optimal expert for one objective.
            data = rollout(
                SoftOptimalPolicy(expert, beta=cfg.beta), env, episodes=cfg.episodes, seed=cfg.seed
            )
            for method in ("maxent", "airl"):
                # 2. The same audit, the behavioural objective recovered two ways.
                kwargs = {"total_timesteps": cfg.airl_timesteps} if method == "airl" else None
                t0 = time.perf_counter()
                result = audit(
                    data,
                    env,
                    method=method,
                    seed=cfg.seed,
                    method_kwargs=kwargs,
                    n_bootstrap=cfg.n_bootstrap,
                )
                wall = time.perf_counter() - t0
                t = result.table
                rows.append(
                    {
                        "env": f"{env_id.split('/')[1]} {cfg.split}",
                        "expert": expert,
                        "method": method,
                        "epic_to_base": t.loc[base, "epic_to_recovered"],
                        "base_ci": (t.loc[base, "epic_low"], t.loc[base, "epic_high"]),
                        "epic_to_proxy": t.loc[proxy, "epic_to_recovered"],
                        "proxy_ci": (t.loc[proxy, "epic_low"], t.loc[proxy, "epic_high"]),
                        "points_right": (t.loc[expert, "epic_to_recovered"])
                        < t.loc[proxy if expert == base else base, "epic_to_recovered"],
                        "verdict": result.verdict + (f" ({result.proxy})" if result.proxy else ""),
                        "expected": "aligned" if expert == base else f"proxy ({proxy})",
                        "irl_s": result.recovered.wall_time,
                        "audit_s": wall,
                        "recovered_ll": result.recovered.log_likelihood,
                    }
                )
                print(f"done: {key} expert={expert} {method} in {wall:.1f}s", flush=True)
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame, cfg: Config) -> str:
    """The results as a markdown table (no external formatter needed)."""
    head = (
        "| env | expert | method | EPIC to base [95% CI] | EPIC to proxy [95% CI] | "
        "closer to expert's objective | verdict (expected) | IRL time (s) | audit time (s) |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in df.itertuples():
        lines.append(
            f"| {r.env} | {r.expert} | {r.method} | {r.epic_to_base:.3f} "
            f"[{r.base_ci[0]:.3f}, {r.base_ci[1]:.3f}] | {r.epic_to_proxy:.3f} "
            f"[{r.proxy_ci[0]:.3f}, {r.proxy_ci[1]:.3f}] | {'yes' if r.points_right else 'no'} | "
            f"{r.verdict} ({r.expected}) | {r.irl_s:.1f} | {r.audit_s:.1f} |"
        )
    lines.append("")
    lines.append(
        f"Soft-optimal experts (beta = {cfg.beta}), {cfg.episodes} episodes each, "
        f"split {cfg.split!r}, seed {cfg.seed}; AIRL {cfg.airl_timesteps} generator steps; "
        f"{cfg.n_bootstrap} bootstrap resamples."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", choices=sorted(ENVS), default=list(Config.envs))
    parser.add_argument("--episodes", type=int, default=Config.episodes)
    parser.add_argument("--airl-timesteps", type=int, default=Config.airl_timesteps)
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    cfg = Config(
        envs=tuple(args.envs),
        episodes=args.episodes,
        airl_timesteps=args.airl_timesteps,
        seed=args.seed,
    )
    text = markdown(run(cfg), cfg)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out, text)


if __name__ == "__main__":
    main()
