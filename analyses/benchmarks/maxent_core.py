"""Benchmark: our sparse soft Bellman core against imitation's dense MCE IRL.

Run:  python analyses/benchmarks/maxent_core.py [--quick]

Prints, for seals CliffWorld at three sizes, the time of one IRL iteration (one soft
backup + one forward occupancy pass) for ours and for imitation's
``mce_partition_fh`` + ``mce_occupancy_measures``, measured in the same run, and the ratio.
Then ours alone on a 300x300 four-action gridworld (90,000 states, horizon 600).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp
from imitation.algorithms import mce_irl
from seals.diagnostics.cliff_world import CliffWorldEnv

from behavioral.tabular import TabularModel, from_seals, occupancy, soft_bellman


def best_of(fn, repeats: int) -> float:
    """Minimum wall time of ``repeats`` calls (seconds)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def grid_model(side: int, horizon: int) -> TabularModel:
    """A side x side four-action deterministic gridworld with walls at the border."""
    S, A = side * side, 4
    rows = np.arange(S * A)
    s, a = rows // A, rows % A
    r, c = s // side, s % side
    nr = np.clip(r + np.array([-1, 1, 0, 0])[a], 0, side - 1)
    nc = np.clip(c + np.array([0, 0, -1, 1])[a], 0, side - 1)
    T = sp.csr_array((np.ones(S * A), (rows, nr * side + nc)), shape=(S * A, S))
    init = np.zeros(S)
    init[0] = 1.0
    return TabularModel(transitions=T, initial_state_dist=init, horizon=horizon)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the largest sizes")
    args = parser.parse_args()

    sizes = [(7, 4), (40, 20)] if args.quick else [(7, 4), (40, 20), (100, 20)]
    print("CliffWorld: one IRL iteration (soft backup + occupancy), best of runs")
    print(f"{'size':>8} {'S':>6} {'H':>4} {'imitation':>11} {'ours':>10} {'ratio':>8}")
    for width, height in sizes:
        horizon = width + height
        env = CliffWorldEnv(width=width, height=height, horizon=horizon, use_xy_obs=False)
        model = from_seals(env)
        reward = np.asarray(env.reward_matrix, dtype=float)

        def ours() -> None:
            _, _, pi = soft_bellman(model, reward)
            occupancy(model, pi)

        def theirs() -> None:
            _, _, pi = mce_irl.mce_partition_fh(env, reward=reward)
            mce_irl.mce_occupancy_measures(env, pi=pi)

        ours()  # compile
        t_ours = best_of(ours, 10)
        t_theirs = best_of(theirs, 3 if model.n_states > 1000 else 5)
        print(
            f"{width}x{height:<4} {model.n_states:>6} {horizon:>4} {t_theirs * 1e3:>9.1f}ms "
            f"{t_ours * 1e3:>8.2f}ms {t_theirs / t_ours:>7.0f}x"
        )

    side, horizon = (100, 200) if args.quick else (300, 600)
    model = grid_model(side, horizon)
    reward = np.zeros(model.n_states)
    reward[-1] = 1.0
    t0 = time.perf_counter()
    _, _, pi = soft_bellman(model, reward)
    t1 = time.perf_counter()
    D = occupancy(model, pi)
    t2 = time.perf_counter()
    assert np.allclose(D.sum(axis=1), 1.0)
    print(
        f"\n{side}x{side} grid (S={model.n_states}, H={horizon}): soft_bellman {t1 - t0:.2f}s "
        f"+ occupancy {t2 - t1:.2f}s = {t2 - t0:.2f}s"
    )


if __name__ == "__main__":
    main()
