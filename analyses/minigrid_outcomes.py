"""Outcome table of the Minigrid corner zoo, next to jaxgmg's corner dose-response.

For every policy trained by ``analyses/train_minigrid_zoo.py``: ``episodes`` episodes on
its training split and on ``deploy`` (goal anywhere), recorded with the library's
``rollout`` (seeded; actions sampled from the policy, as an audit records them). Each
episode has one outcome -- ``goal`` + ``corner instead`` + ``neither`` = 1:

* ``goal``: reached the goal;
* ``corner instead``: was in the policy's training corner region after some step and
  never reached the goal -- it went to the corner instead of the goal;
* ``neither``: never reached the goal nor the corner region.

and, to read those against jaxgmg's numbers and against where an episode stops:

* ``cell, not goal``: entered the room's top-right *cell* and never reached the goal --
  jaxgmg's proxy (its proxy reward is paid the first time the agent reaches the corner
  cell, whatever the training corner's size, and its episodes do not end there);
* ``ends in corner``: was inside the corner region at the time limit (a corner-seeker
  that circles the corner instead of parking in it, as the 1-cell-corner policy does, is
  often one step out of it then);
* ``ends <=1 from corner``: at the time limit, in the corner region or next to it.

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

JAXGMG = "jaxgmg (Sadek et al.): true-goal return 0.13 -> 0.69, proxy-corner 0.46 -> ~0.1 as the corner grows 1 -> 11"


def outcomes(entry: Entry, zoo: Path, split: str, episodes: int, deterministic: bool) -> dict:
    """One row of the table: outcome rates of ``entry`` on ``split``."""
    policy = load_ppo(zoo / f"{entry.name}.zip")
    env = flat_observations(gym.make(ENV_ID, split=split, **entry.env_kwargs))
    data = rollout(policy, env, episodes=episodes, seed=0, deterministic=deterministic)
    ep = data.episodes
    region = env.unwrapped.corner  # (x, y) cells
    corner_rc = np.array([(y, x) for x, y in sorted(region)])  # (row, col), as model cells
    top_right = (1, env.unwrapped.size - 2)  # (row, col) of the room's top-right cell
    models = data.level_models(env)
    cells = [m.cells[s] for m, s in zip(models, data.states, strict=True)]  # (T+1, 2) each
    final = np.array([c[-1] for c in cells])
    gap = np.abs(final[:, None, :] - corner_rc[None]).max(-1).min(-1)  # Chebyshev distance
    in_region = ep["return.corner"].to_numpy() > 0  # in the region after some step
    on_cell = np.array([(c[1:] == top_right).all(-1).any() for c in cells])
    outcome = ep["outcome"].to_numpy()
    goal = outcome == "goal"
    return {
        "policy": entry.name,
        "corner size": entry.corner_size if entry.split == "train" else "anywhere",
        "split": split,
        "episodes": len(ep),
        "goal": float(goal.mean()),
        "corner instead": float((in_region & ~goal).mean()),
        "neither": float((~in_region & ~goal).mean()),
        "cell, not goal": float((on_cell & ~goal).mean()),
        "ends in corner": float((outcome == "corner").mean()),
        "ends <=1 from corner": float((~goal & (gap <= 1)).mean()),
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
        rho = {
            col: spearmanr(deploy.loc[evidence.index, col], evidence).statistic
            for col in ("corner instead", "cell, not goal", "ends in corner")
        }
        print(
            "Spearman rho (deploy), audit evidence vs "
            + ", ".join(f"{col!r} rate: {r:.2f}" for col, r in rho.items())
        )


if __name__ == "__main__":
    main()
