"""Benchmark: our MaxEnt fit against imitation's ``MCEIRL`` on the same demonstrations.

Run:  python analyses/benchmarks/audit_vs_imitation.py [--quick] [--episodes N] [--seed S]

For seals CliffWorld levels (one-hot observations, so both methods fit a per-state reward),
a soft-optimal expert (β = 1) of the env's reward gives N demonstrations (state indices).
In the same run we fit:

* imitation's ``MCEIRL`` with a linear reward net on the one-hot observations, with its
  defaults (Adam, lr 1e-2, ``train()``: at most 1000 iterations, stopping at
  ``linf_eps=1e-3`` / ``grad_l2_eps=1e-4``);
* imitation's ``MCEIRL`` run to convergence (``linf_eps=1e-6``, ``grad_l2_eps=1e-8``, at
  most 20,000 iterations; it stops earlier only when its occupancy matches the data);
* ours, ``behavioral.maxent_irl(model, demos, features="states", l2="cv")``: L-BFGS on the
  MCE dual (gradient tolerance 1e-8), its L2 coefficient chosen by 5-fold cross-validation
  of the held-out demonstrations' likelihood (the time includes the 35 cross-validation
  fits),

and print wall times, the ratio of imitation's converged time to ours, each recovered
reward's EPIC distance to the true reward (uniform over feasible transitions), and each
fit's largest occupancy gap to the demonstrations.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch as th
from imitation.algorithms import mce_irl
from imitation.data.types import Trajectory
from imitation.rewards.reward_nets import BasicRewardNet
from seals.diagnostics.cliff_world import CliffWorldEnv

from behavioral import from_seals, maxent_irl, soft_bellman
from behavioral.compare import model_epic
from behavioral.sampling import sample_demonstrations
from behavioral.tabular import occupancy


def fit_imitation(env, trajs, *, converge: bool, seed: int) -> tuple[np.ndarray, float, int]:
    th.manual_seed(seed)
    net = BasicRewardNet(
        env.observation_space,
        env.action_space,
        hid_sizes=[],
        use_action=False,
        use_next_state=False,
        use_done=False,
    )
    kwargs = dict(linf_eps=1e-6, grad_l2_eps=1e-8) if converge else {}
    algo = mce_irl.MCEIRL(
        trajs, env, net, rng=np.random.default_rng(seed), log_interval=None, **kwargs
    )
    iters = 0

    # Count iterations by wrapping the step (imitation does not return the count).
    step = algo._train_step

    def counted(obs_mat):
        nonlocal iters
        iters += 1
        return step(obs_mat)

    algo._train_step = counted
    t0 = time.perf_counter()
    algo.train(max_iter=20_000 if converge else 1000)
    elapsed = time.perf_counter() - t0
    obs = th.as_tensor(env.observation_matrix, dtype=net.dtype)
    with th.no_grad():
        reward = net(obs, None, None, None).squeeze(-1).numpy().astype(np.float64)
    return reward, elapsed, iters


def occupancy_gap(model, reward, demo_counts) -> float:
    _, _, pi = soft_bellman(model, reward)
    return float(np.max(np.abs(occupancy(model, pi)[:-1].sum(axis=0) - demo_counts)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="smallest level only, no convergence run"
    )
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    th.set_num_threads(1)

    sizes = [(7, 4, 9)] if args.quick else [(7, 4, 9), (12, 5, 16), (20, 8, 28)]
    header = (
        f"{'level':>10} {'S':>4} {'method':<28} {'time':>9} {'iters':>6} "
        f"{'EPIC to true':>12} {'occ. gap':>9}"
    )
    print(f"CliffWorld, soft-optimal expert (β=1), {args.episodes} demonstrations\n")
    print(header)
    rng = np.random.default_rng(args.seed)
    for width, height, horizon in sizes:
        env = CliffWorldEnv(width=width, height=height, horizon=horizon, use_xy_obs=False)
        model = from_seals(env)
        true_r = np.asarray(env.reward_matrix, dtype=np.float64)
        _, _, pi = soft_bellman(model, true_r)
        demos = sample_demonstrations(model, pi, args.episodes, rng, stop_at_absorbing=False)
        trajs = [Trajectory(obs=d.states, acts=d.actions, infos=None, terminal=True) for d in demos]
        counts = np.zeros(model.n_states)
        for d in demos:
            np.add.at(counts, d.states[:-1], 1.0)
        counts /= len(demos)

        t0 = time.perf_counter()
        ours = maxent_irl(model, demos, features="states", l2="cv", seed=args.seed)
        t_ours = time.perf_counter() - t0
        runs = [(f"ours (L-BFGS, cv l2={ours.l2:g})", ours.rewards[0], t_ours, ours.iterations)]
        r, t, n = fit_imitation(env, trajs, converge=False, seed=args.seed)
        runs.append(("imitation MCEIRL (defaults)", r, t, n))
        if not args.quick:
            r, t, n = fit_imitation(env, trajs, converge=True, seed=args.seed)
            runs.append(("imitation MCEIRL (converged)", r, t, n))
        label = f"{width}x{height}"
        for name, reward, elapsed, iters in runs:
            epic = model_epic(model, true_r, reward, coverage="feasible").distance
            gap = occupancy_gap(model, reward, counts)
            print(
                f"{label:>10} {model.n_states:>4} {name:<28} {elapsed:>8.2f}s {iters:>6} "
                f"{epic:>12.3f} {gap:>9.2e}"
            )
        slowest = runs[-1]
        print(f"{'':>10} {'':>4} ratio {slowest[0]} / ours: {slowest[2] / t_ours:.0f}x\n")


if __name__ == "__main__":
    main()
