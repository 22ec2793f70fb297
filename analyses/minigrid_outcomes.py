"""Outcome table of the Minigrid corner zoo, next to jaxgmg's corner dose-response.

For every policy trained by ``analyses/train_minigrid_zoo.py``: ``episodes`` episodes on
its training split and on ``deploy`` (goal anywhere), recorded with the library's
``rollout`` (seeded; actions sampled from the policy, as an audit records them), and the
share of episodes that

* ``goal``: reached the goal;
* ``corner``: timed out inside the policy's training corner region ("ends in the corner
  instead of the goal");
* ``neither``: timed out elsewhere;
* ``ended <=1 from corner``: timed out in the corner region or next to it (a policy that
  circles the corner, as the 1-cell-corner policy does, is often one step out of it at
  the time limit);
* ``corner first``: on levels whose goal lies outside the corner region, entered the
  corner region before reaching the goal (or without reaching it) -- what jaxgmg's
  proxy return measures (the reward the agent would have had with the cheese in the
  corner).

jaxgmg's numbers (Sadek et al., corner sizes 1 -> 11 in 13 x 13 mazes, off-distribution):
true-goal return 0.13 -> 0.69, proxy-corner return 0.46 -> ~0.1. They are returns, ours
are rates; the shape of the dose-response is what compares.

    python analyses/minigrid_outcomes.py                 # the shipped zips, 200 episodes
    python analyses/minigrid_outcomes.py --zoo /tmp/zoo --episodes 100 --deterministic
    python analyses/minigrid_outcomes.py --audit 100     # and audit each policy (slow)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_minigrid_zoo import ENTRIES, ENV_ID, ZOO_DIR, Entry

from behavioral.minigrid import flat_observations
from behavioral.policies import load_ppo
from behavioral.rollout import rollout
from behavioral.tabular import absorbing_states

JAXGMG = "jaxgmg (Sadek et al.): true-goal return 0.13 -> 0.69, proxy-corner 0.46 -> ~0.1 as the corner grows 1 -> 11"


def outcomes(entry: Entry, zoo: Path, split: str, episodes: int, deterministic: bool) -> dict:
    """One row of the table: outcome rates of ``entry`` on ``split``."""
    policy = load_ppo(zoo / f"{entry.name}.zip")
    env = flat_observations(gym.make(ENV_ID, split=split, **entry.env_kwargs))
    data = rollout(policy, env, episodes=episodes, seed=0, deterministic=deterministic)
    ep = data.episodes
    region = env.unwrapped.corner  # (x, y) cells
    corner_rc = np.array([(y, x) for x, y in sorted(region)])  # (row, col), as model cells
    models = data.level_models(env)
    final = np.array([m.cells[s[-1]] for m, s in zip(models, data.states, strict=True)])
    gap = np.abs(final[:, None, :] - corner_rc[None]).max(-1).min(-1)  # Chebyshev distance
    # the goal's cell: where the absorbing "reached the goal" states are
    goals = [m.cells[np.flatnonzero(absorbing_states(m))[0]] for m in models]
    off = np.array([(int(c), int(r)) not in region for r, c in goals])
    outcome = ep["outcome"].to_numpy()
    return {
        "policy": entry.name,
        "corner size": entry.corner_size if entry.split == "train" else "anywhere",
        "split": split,
        "episodes": len(ep),
        "goal": float((outcome == "goal").mean()),
        "corner": float((outcome == "corner").mean()),
        "neither": float((outcome == "neither").mean()),
        "ended <=1 from corner": float(((outcome != "goal") & (gap <= 1)).mean()),
        "corner first": float((ep["return.corner"].to_numpy() > 0)[off].mean())
        if off.any()
        else float("nan"),
        "goal outside corner": float(off.mean()),
        "mean length": float(ep["length"].mean()),
    }


def audit_row(entry: Entry, zoo: Path, split: str, episodes: int) -> dict:
    """``behavioral.audit`` of ``entry`` on ``split``: verdict and the proxy's evidence.

    ``corner - goal`` is the difference of the two candidates' fitted log-likelihoods per
    episode (``result.table``): positive when the corner explains the behaviour better.
    """
    import behavioral

    policy = load_ppo(zoo / f"{entry.name}.zip")
    env = flat_observations(gym.make(ENV_ID, split=split, **entry.env_kwargs))
    started = time.perf_counter()
    result = behavioral.audit(policy, env, episodes=episodes, seed=0)
    ll = result.table["log_likelihood"]
    return {
        "policy": entry.name,
        "split": split,
        "audit": result.verdict + (f" ({result.proxy})" if result.proxy else ""),
        "corner - goal": float(ll["corner"] - ll["goal"]),
        "audit s": round(time.perf_counter() - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="entries (default: all)")
    parser.add_argument("--zoo", type=Path, default=ZOO_DIR, help="directory of the zips")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--deterministic", action="store_true", help="greedy actions")
    parser.add_argument(
        "--audit", type=int, default=0, metavar="N", help="also audit each policy on N episodes"
    )
    args = parser.parse_args()
    names = args.names or list(ENTRIES)
    rows = []
    for name in names:
        entry = ENTRIES[name]
        for split in dict.fromkeys((entry.split, "deploy")):
            rows.append(outcomes(entry, args.zoo, split, args.episodes, args.deterministic))
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 220)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(JAXGMG)
    if args.audit:
        audits = pd.DataFrame(
            [
                audit_row(ENTRIES[name], args.zoo, split, args.audit)
                for name in names
                for split in dict.fromkeys((ENTRIES[name].split, "deploy"))
            ]
        )
        print(audits.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        deploy = table[table["split"] == "deploy"].set_index("policy")
        evidence = audits[audits["split"] == "deploy"].set_index("policy")["corner - goal"]
        rho = spearmanr(deploy.loc[evidence.index, "corner"], evidence).statistic
        rho_first = spearmanr(deploy.loc[evidence.index, "corner first"], evidence).statistic
        print(
            f"Spearman rho (deploy), audit evidence vs corner rate: {rho:.2f}; "
            f"vs corner-first rate: {rho_first:.2f}"
        )


if __name__ == "__main__":
    main()
