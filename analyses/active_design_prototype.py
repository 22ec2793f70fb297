"""Prototype of the active audit loop (issue 14, phase 1): fit -> score -> pick -> roll out
-> refit -> stop, built from ``behavioral.design`` alone, before the audit engine is wired.

Run:  python analyses/active_design_prototype.py [--seeds 4] [--budget 150]
          [--agents red1,exit1,red5,exit5] [--designs active,random] [--alpha 0.05]

On RedDoors, a soft-optimal agent (``SoftOptimalPolicy``'s model: beta times the
objective, sampled from its tabular policy) is audited in two ways, same agents and seeds:

* ``active``: the only levels given are the ``train`` split's (where "exit" and "red door"
  coincide); mutation search (``search_levels``) edits them towards levels with high
  expected evidence under the current fits, and the chooser (``expected_evidence`` +
  ``choose_levels``) picks each next level;
* ``random``: uniformly random ``deploy`` levels (today's audit).

Each hypothesis class -- the base objective, the proxy, the null model -- is a finite grid
of members (inverse temperature x living reward x discount), so its maximum likelihood
is exact and the universal-inference e-process is exactly valid: numerator the class's
Bayesian mixture (posterior predictive, ``mixture_predictive_ll``), denominator the rival
class's maximum likelihood. The audit stops when ``sequential_decision`` decides (each
test at level ``alpha``), or at the budget. Printed: per agent and design, the verdicts
and the episodes used.

This is a stand-in for ``behavioral.audit(..., design="active")``: the real loop fits
continuous parameters with the audit engine (see the report of issue 14, phase 1).
"""

from __future__ import annotations

import argparse
import itertools
import time

import behavioral_envs  # noqa: F401 -- registers the env ids
import gymnasium as gym
import numpy as np
from scipy.special import logsumexp

from behavioral.design import (
    EProcess,
    Hypothesis,
    choose_levels,
    expected_evidence,
    hypothesis_policy,
    level_pool,
    search_levels,
    sequential_decision,
)
from behavioral.sampling import sample_demonstrations

BETAS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
LIVING = (-0.1, 0.0, 0.1)
GAMMAS = (1.0, 0.95, 0.9)
AGENTS = {
    f"{short}{beta:g}": Hypothesis(name, beta=beta)
    for short, name in (("red", "red_door"), ("exit", "exit"))
    for beta in (0.5, 1.0, 5.0)
}


def members(objective: str | None) -> list[Hypothesis]:
    """A hypothesis class as a grid of members."""
    if objective is None:
        return [
            Hypothesis(None, living_reward=w, discount=g)
            for w, g in itertools.product(LIVING, GAMMAS)
        ]
    return [
        Hypothesis(objective, beta=b, living_reward=w, discount=g)
        for b, w, g in itertools.product(BETAS, LIVING, GAMMAS)
    ]


CLASSES = {"exit": members("exit"), "red_door": members("red_door"), "null": members(None)}
TESTS = [("red_door", "exit"), ("red_door", "null"), ("exit", "red_door"), ("exit", "null")]


def member_log_policies(model) -> dict[str, np.ndarray]:
    """(M, H, S, A) log action probabilities of every member of every class on a level."""
    return {
        c: np.log(np.maximum(np.stack([hypothesis_policy(model, h) for h in ms]), 1e-300))
        for c, ms in CLASSES.items()
    }


def audit(
    agent: Hypothesis, design: str, seed: int, budget: int, alpha: float
) -> tuple[str | None, int]:
    rng = np.random.default_rng(seed)
    env = gym.make("behavioral/RedDoors-v0", split="train")
    pool = level_pool(
        "train" if design == "active" else "deploy",
        env,
        n=30 if design == "active" else 300,
        rng=rng,
    )
    cache: dict[str, dict[str, np.ndarray]] = {}
    total = {c: np.zeros(len(ms)) for c, ms in CLASSES.items()}  # each member's log-likelihood
    procs = {t: EProcess(*t) for t in TESTS}
    n = 0
    counts = np.zeros(len(pool))
    while n < budget:
        # 1. fit: each class's maximum-likelihood member (a middle member before any data)
        fit = {
            c: CLASSES[c][int(np.argmax(total[c])) if n else len(CLASSES[c]) // 2] for c in CLASSES
        }
        done = {t for t, p in procs.items() if p.rejects(alpha)}
        if design == "active":
            if n == 0:  # 2. search the edits of the training levels once, under the prior fits

                def score(p, fit=fit):
                    return expected_evidence(
                        p.stack(), fit["exit"], [fit["red_door"]], fit["null"]
                    ).expected

                pool, _ = search_levels(
                    env, pool, score, rounds=3, population=8, children=48, rng=rng
                )
                counts = np.zeros(len(pool))
            # 3. score the pool under the current fits and pick the next level
            ll_now = {c: float(total[c].max()) for c in ("exit", "red_door")} if n else None
            ev = expected_evidence(
                pool.stack(),
                fit["exit"],
                [fit["red_door"]],
                fit["null"],
                log_likelihoods=ll_now,
                done=done,
            )
            i = int(choose_levels(ev.expected, counts=counts, rng=rng).levels[0])
        else:
            i = int(rng.integers(len(pool)))
        counts[i] += 1
        # 4. roll the agent out there
        level = pool[i]
        demo = sample_demonstrations(level.model, hypothesis_policy(level.model, agent), 1, rng)[0]
        if level.key not in cache:
            cache[level.key] = member_log_policies(level.model)
        k = demo.actions.shape[0]
        ll = {
            c: lp[:, np.arange(k), demo.states[:k], demo.actions].sum(axis=1)
            for c, lp in cache[level.key].items()
        }
        # 5. update the e-processes (mixture numerator before the refit) and refit
        predictive = {c: float(logsumexp(total[c] - logsumexp(total[c]) + ll[c])) for c in CLASSES}
        for c in CLASSES:
            total[c] += ll[c]
        n += 1
        for (a, b), p in procs.items():
            procs[(a, b)] = p.update([predictive[a]], float(total[b].max()))
        # 6. stop when decisive
        decision = sequential_decision(procs, "exit", ["red_door"], alpha=alpha)
        if decision.verdict:
            return decision.verdict, n
    return None, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--agents", default="red1,exit1,red5,exit5")
    parser.add_argument("--designs", default="active,random")
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    print("| agent | design | verdicts | median episodes | episodes per seed |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.agents.split(","):
        for design in args.designs.split(","):
            t0 = time.time()
            results = [
                audit(AGENTS[name], design, s, args.budget, args.alpha) for s in range(args.seeds)
            ]
            verdicts = [str(v) for v, _ in results]
            counts = {v: verdicts.count(v) for v in sorted(set(verdicts))}
            used = [k for _, k in results]
            print(
                f"| {name} | {design} | {counts} | {np.median(used):.0f} | {used} |  ({time.time() - t0:.0f}s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
