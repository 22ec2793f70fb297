"""Benchmark: how fast candidate levels are scored, and how fast they are generated.

Run:  python analyses/benchmarks/design_speed.py [--quick] [--levels N]

1. **Levels scored per second once their models exist.** RedDoors ``deploy`` levels (the
   default 9x9, 43 states, horizon 50), two hypotheses -- the base objective ``exit`` and
   the proxy ``red_door``, each with its own inverse temperature, living reward, discount
   and (second case) lapse -- scored both ways: ``KL(P_exit || P_red)``,
   ``KL(P_red || P_exit)`` and the two regret gaps. Ours is ``score_levels`` on a
   ``LevelStack`` (one compiled call; the stack is built once per pool and reused after
   every refit, and its build rate is printed too). Its peers, measured in the same run on
   the same levels: the same computation written level by level in numpy
   (``behavioral.design._kernels.score_reference``: dense soft value iteration, forward
   pass, KL and returns), and a per-level Python loop over the library's own compiled
   ``soft_bellman`` + ``occupancy`` (what a user of the public core would write). Times
   are process CPU time (steadier than wall time on a shared machine), best of
   ``--repeats``; numba is single-threaded and BLAS is limited to one thread.
2. **Levels generated per second**: ``env.reset(seed=...)`` + ``tabular_model()`` for
   RedDoors ``deploy``, the same through ``reset(options={"level": spec})`` for mutated
   RedDoors levels, and WaterPlants ``deploy`` (whose levels share one cached layout).

``--quick`` runs the same code at small sizes (a smoke test, used by the test suite).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import behavioral_envs  # noqa: F401 -- registers the env ids
import gymnasium as gym
import numpy as np
from threadpoolctl import threadpool_limits

from behavioral.design import Hypothesis, level_pool, mutate_levels, score_levels, stack_levels
from behavioral.design import _kernels as design_kernels
from behavioral.design.scoring import _hypothesis_rewards
from behavioral.tabular import TabularModel, absorbing_states, occupancy, soft_bellman

HYPOTHESES = {
    "no lapse": [
        Hypothesis("exit", beta=4.0, living_reward=-0.1, discount=0.99),
        Hypothesis("red_door", beta=2.5, living_reward=-0.05, discount=0.95),
    ],
    "with lapse": [
        Hypothesis("exit", beta=4.0, living_reward=-0.1, discount=0.99, lapse=0.05),
        Hypothesis("red_door", beta=2.5, living_reward=-0.05, discount=0.95, lapse=0.1),
    ],
}


def cpu_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """Minimum process CPU time of ``repeats`` calls (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        c0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - c0)
    return best, out


def generate(env_id: str, split: str, n: int) -> tuple[float, list[TabularModel]]:
    """Levels per second of reset(seed) + tabular_model(), and the models."""
    env = gym.make(env_id, split=split)
    env.reset(seed=0)
    env.unwrapped.tabular_model()  # warm up (imports, first layout)
    models = []
    c0 = time.process_time()
    for seed in range(1, n + 1):
        env.reset(seed=seed)
        models.append(env.unwrapped.tabular_model())
    return n / (time.process_time() - c0), models


def reference_inputs(models: list[TabularModel], hyps: list[Hypothesis]) -> tuple:
    """The per-level arrays of :func:`score_reference` (built outside the timing)."""
    stack = stack_levels(models)
    R = _hypothesis_rewards(stack, hyps)
    off = stack.state_offsets
    parts = [slice(off[i], off[i + 1]) for i in range(len(models))]
    return (
        [m.transition_tensor() for m in models],
        [m.initial_state_dist for m in models],
        [~absorbing_states(m) for m in models],
        [m.horizon for m in models],
        [m.discount for m in models],
        [R[:, p] for p in parts],
        np.array([h.discount for h in hyps]),
        np.array([h.lapse for h in hyps]),
        [stack.objectives[:, p] for p in parts],
    )


def public_core_loop(
    models: list[TabularModel], hyps: list[Hypothesis], rewards: list
) -> tuple[np.ndarray, np.ndarray]:
    """KL both ways and the exit objective's returns, level by level, with the library's
    public compiled core."""
    kl = np.zeros((len(models), 2, 2))
    ret = np.zeros((len(models), 2))
    for i, m in enumerate(models):
        run = ~absorbing_states(m)
        pols, logs = [], []
        for h, r in zip(hyps, rewards[i]):
            _, _, pi = soft_bellman(m.replace(discount=h.discount), r)
            p = (1 - h.lapse) * pi + h.lapse / m.n_actions
            pols.append(p)
            logs.append(np.log(np.maximum(p, 1e-300)))
        for a in range(2):
            D = occupancy(m, pols[a])[:-1] * run  # (H, S)
            w = D[:, :, None] * pols[a]
            kl[i, a, 1 - a] = float(np.sum(w * (logs[a] - logs[1 - a])))
            ret[i, a] = float(np.sum(w.sum(axis=0) * m.objectives["exit"]))
    return kl, ret


def scoring(models: list[TabularModel], n_reference: int, repeats: int) -> None:
    n = len(models)
    print(
        f"levels scored per second once their models exist (RedDoors deploy, {models[0].n_states}"
        f"-ish states, horizon {models[0].horizon}; 2 hypotheses: KL both ways + regret gaps), "
        "one core, CPU time:"
    )
    t_stack, stack = cpu_time(lambda: stack_levels(models), repeats)
    for name, hyps in HYPOTHESES.items():
        score_levels(models[:3], hyps)  # compile
        t_kernel, scores = cpu_time(lambda hyps=hyps: score_levels(stack, hyps), repeats)
        sub = models[:n_reference]
        args = reference_inputs(sub, hyps)
        with threadpool_limits(limits=1):
            t_ref, (kl_ref, ret_ref) = cpu_time(
                lambda args=args: design_kernels.score_reference(*args), 1
            )
            rewards = [[args[5][i][h] for h in range(2)] for i in range(len(sub))]
            public_core_loop(sub[:2], hyps, rewards)  # compile
            t_core, _ = cpu_time(
                lambda sub=sub, hyps=hyps, rewards=rewards: public_core_loop(sub, hyps, rewards), 1
            )
        err = max(
            float(np.max(np.abs(scores.kl[: len(sub)] - kl_ref))),
            float(np.max(np.abs(scores.returns[: len(sub)] - ret_ref))),
        )
        rate, rate_ref, rate_core = n / t_kernel, len(sub) / t_ref, len(sub) / t_core
        print(f"  [{name}]")
        print(
            f"    stacked kernel:      {rate:>10,.0f} levels/s  ({n:,} levels; stack built at "
            f"{n / t_stack:,.0f} levels/s, kernel + stack {n / (t_kernel + t_stack):,.0f} levels/s)"
        )
        print(
            f"    per-level numpy loop: {rate_ref:>9,.1f} levels/s  ({len(sub):,} levels)   "
            f"ratio {rate / rate_ref:.1f}x"
        )
        print(
            f"    per-level loop over the public compiled core (soft_bellman + occupancy): "
            f"{rate_core:,.1f} levels/s   ratio {rate / rate_core:.1f}x"
        )
        print(f"    max |kernel - reference| = {err:.2e}")


def generation(n: int) -> None:
    print("levels generated per second (env.reset + tabular_model()), one core, CPU time:")
    rate, _ = generate("behavioral/RedDoors-v0", "deploy", n)
    print(f"  RedDoors deploy (reset(seed)):                {rate:>9,.0f} levels/s")
    env = gym.make("behavioral/RedDoors-v0", split="train")
    roots = level_pool("train", env, n=min(20, n), rng=0)
    c0 = time.process_time()
    pool = mutate_levels(env, roots, n=n, max_edits=2, rng=0)
    t = time.process_time() - c0
    print(
        f"  RedDoors mutants (edit + solvability + reset(options={{'level': spec}}) + model + "
        f"distance): {len(pool) / t:,.0f} levels/s"
    )
    rate, _ = generate("behavioral/WaterPlants-v0", "deploy", max(21, n // 10))
    print(f"  WaterPlants deploy (one cached layout):       {rate:>9,.0f} levels/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--levels", type=int, default=10_000, help="levels scored by the kernel")
    parser.add_argument("--reference", type=int, default=200, help="levels scored by the peers")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, n_ref, n_gen = (args.levels, args.reference, 2000)
    if args.quick:
        n, n_ref, n_gen = 300, 20, 60
    _, models = generate("behavioral/RedDoors-v0", "deploy", min(n, n_gen))
    models = (models * (n // len(models) + 1))[:n]  # distinct levels, tiled to n
    scoring(models, min(n_ref, len(models)), 1 if args.quick else args.repeats)
    generation(n_gen)


if __name__ == "__main__":
    main()
