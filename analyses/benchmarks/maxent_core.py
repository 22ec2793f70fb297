"""Benchmark: our sparse soft Bellman core against imitation's dense MCE IRL.

Run:  python analyses/benchmarks/maxent_core.py [--quick]

1. seals CliffWorld at three sizes: the time of one IRL iteration -- one soft backup
   plus one forward occupancy pass -- for ours (``soft_bellman`` + ``occupancy``, the
   public functions, including their input validation and fresh output arrays) and for
   imitation's ``mce_partition_fh`` + ``mce_occupancy_measures``, measured in the same
   run on the same env, and the ratio. Horizons follow seals' registered CliffWorlds
   (``seals/CliffWorld7x4-v0``: 9, ``15x6``: 18, ``100x20``: 110, i.e. width +
   height / 2; imitation's MCE IRL has no horizon of its own, it uses the env's): 9, 50
   and 110 here. Times are the best of several runs, as wall time and as process CPU
   time (the steadier one on a shared machine), each with its ratio. Both run
   on one core: imitation's dense products go through BLAS, limited to one thread
   (``--blas-threads`` to change); our kernels are single-threaded.
2. Ours alone on a 300x300 four-action gridworld (90,000 states, horizon 600):
   ``soft_bellman`` + ``occupancy``, first call in the process ("cold": its 4.3 GB of
   outputs are fresh memory) and a second call ("warm"), with the process's user and
   system CPU time; everything runs on one core (numba kernels, single-threaded).
3. One full MaxEnt IRL gradient step on that grid (soft backup without Q + forward pass
   fused with feature expectations), via ``MaxEntObjective.value_and_grad``.

``--quick`` runs the same code at small sizes (a smoke test, used by the test suite).
``--memory-floor`` only allocates (as ``soft_bellman`` and ``occupancy`` do) and
zero-fills arrays of the grid's output shapes: the cost of first-touching that much
memory, which no implementation returning those arrays avoids. Run it in its own
process (memory freed moments before comes back cheaper).
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from imitation.algorithms import mce_irl
from seals.diagnostics.cliff_world import CliffWorldEnv
from threadpoolctl import threadpool_limits

from behavioral import _kernels
from behavioral.irl.maxent import Demonstration, MaxEntObjective
from behavioral.tabular import TabularModel, from_seals, occupancy, soft_bellman

# (width, height, horizon): horizon = width + height / 2, as seals registers CliffWorlds.
CLIFF_SIZES = [(7, 4, 9), (40, 20, 50), (100, 20, 110)]
CLIFF_SIZES_QUICK = [(7, 4, 9), (15, 6, 18)]
GRID = (300, 600)  # side, horizon
GRID_QUICK = (40, 80)


def best_of(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Minimum wall time and minimum process CPU time of ``repeats`` calls (seconds).

    On a shared machine the CPU time is the steadier measure (a descheduled process
    accrues wall time but no CPU time); with one BLAS thread it is one core's time.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


class Timer:
    """Wall time and this process's user / system CPU time of a ``with`` block."""

    def __enter__(self) -> Timer:
        self._r0 = resource.getrusage(resource.RUSAGE_SELF)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        self.user = r1.ru_utime - self._r0.ru_utime
        self.sys = r1.ru_stime - self._r0.ru_stime

    def __str__(self) -> str:
        return f"{self.wall:6.2f}s (user {self.user:5.2f}s, sys {self.sys:5.2f}s)"


def grid_model(side: int, horizon: int) -> TabularModel:
    """A side x side four-action deterministic gridworld, walls at the border.

    Features (for the MaxEnt step): ``goal`` (the far corner), and the row and column
    scaled to [0, 1].
    """
    S, A = side * side, 4
    rows = np.arange(S * A)
    s, a = rows // A, rows % A
    r, c = s // side, s % side
    nr = np.clip(r + np.array([-1, 1, 0, 0])[a], 0, side - 1)
    nc = np.clip(c + np.array([0, 0, -1, 1])[a], 0, side - 1)
    T = sp.csr_array((np.ones(S * A), (rows, nr * side + nc)), shape=(S * A, S))
    init = np.zeros(S)
    init[0] = 1.0
    cell_r, cell_c = np.divmod(np.arange(S), side)
    feats = np.stack(
        [(np.arange(S) == S - 1).astype(float), cell_r / (side - 1), cell_c / (side - 1)],
        axis=1,
    )
    return TabularModel(
        transitions=T,
        initial_state_dist=init,
        horizon=horizon,
        features=feats,
        feature_names=("goal", "row", "col"),
    )


def straight_demo(side: int, horizon: int) -> Demonstration:
    """Down the first column, then right along the last row, then wait at the goal."""
    A_DOWN, A_RIGHT = 1, 3
    actions = ([A_DOWN] * (side - 1) + [A_RIGHT] * (side - 1) + [A_RIGHT] * horizon)[:horizon]
    states = [0]
    for a in actions:
        r, c = divmod(states[-1], side)
        if a == A_DOWN:
            r = min(r + 1, side - 1)
        else:
            c = min(c + 1, side - 1)
        states.append(r * side + c)
    return Demonstration(states=np.array(states), actions=np.array(actions))


def bench_cliffworld(sizes: list[tuple[int, int, int]], blas_threads: int) -> None:
    print(
        "1. CliffWorld: one IRL iteration (soft backup + occupancy), best of runs; "
        f"imitation with {blas_threads} BLAS thread(s)"
    )
    print(
        f"{'size':>8} {'S':>6} {'H':>4} {'imitation':>11} {'ours':>10} {'ratio':>7}"
        f"   | CPU time: {'imitation':>11} {'ours':>10} {'ratio':>7}"
    )
    for width, height, horizon in sizes:
        env = CliffWorldEnv(width=width, height=height, horizon=horizon, use_xy_obs=False)
        model = from_seals(env)
        reward = np.asarray(env.reward_matrix, dtype=float)

        def ours(model: TabularModel = model, reward: np.ndarray = reward) -> None:
            _, _, pi = soft_bellman(model, reward)
            occupancy(model, pi)

        def theirs(env: CliffWorldEnv = env, reward: np.ndarray = reward) -> None:
            _, _, pi = mce_irl.mce_partition_fh(env, reward=reward)
            mce_irl.mce_occupancy_measures(env, pi=pi)

        # Same answers (the oracle tests check 1e-9; here a cheap sanity check).
        _, _, pi = soft_bellman(model, reward)
        _, _, pi_ref = mce_irl.mce_partition_fh(env, reward=reward)
        assert np.max(np.abs(pi - pi_ref)) < 1e-9
        t_ours, c_ours = best_of(ours, 30)
        with threadpool_limits(limits=blas_threads):
            t_theirs, c_theirs = best_of(theirs, 3 if model.n_states > 1000 else 5)
        print(
            f"{f'{width}x{height}':>8} {model.n_states:>6} {horizon:>4} "
            f"{t_theirs * 1e3:>9.1f}ms {t_ours * 1e3:>8.2f}ms {t_theirs / t_ours:>6.0f}x"
            f"   | {'':>9} {c_theirs * 1e3:>9.1f}ms {c_ours * 1e3:>8.2f}ms "
            f"{c_theirs / c_ours:>6.0f}x"
        )


def bench_grid(side: int, horizon: int) -> None:
    model = grid_model(side, horizon)
    S, A = model.n_states, model.n_actions
    gb = (2 * horizon * S * A + (2 * horizon + 1) * S) * 8 / 1e9
    print(
        f"\n2. {side}x{side} grid (S={S}, A={A}, H={horizon}, nnz={model.transitions.nnz}): "
        f"soft_bellman + occupancy ({gb:.1f} GB of output arrays)"
    )
    reward = np.zeros(S)
    reward[-1] = 1.0
    for label in ("cold", "warm"):
        # cold: the first large allocation in this process, so every page of the outputs
        # is touched for the first time; warm: right after the previous outputs were
        # freed, as in a loop of iterations (the kernel hands the same pages back).
        with Timer() as t_sb:
            V, Q, pi = soft_bellman(model, reward)
        with Timer() as t_occ:
            D = occupancy(model, pi)
        assert np.allclose(D.sum(axis=1), 1.0)
        del V, Q, pi, D
        total = t_sb.wall + t_occ.wall
        cpu = t_sb.user + t_sb.sys + t_occ.user + t_occ.sys
        print(
            f"   {label}: soft_bellman {t_sb}  occupancy {t_occ}  "
            f"total {total:.2f}s wall, {cpu:.2f}s CPU"
        )


def bench_maxent_step(side: int, horizon: int) -> None:
    model = grid_model(side, horizon)
    print(
        f"\n3. {side}x{side} grid, H={horizon}: one MaxEnt IRL gradient step "
        "(MaxEntObjective.value_and_grad: backup without Q + fused forward features)"
    )
    with Timer() as t_init:
        objective = MaxEntObjective([model], [straight_demo(side, horizon)])
    theta = np.array([1.0, 0.5, 0.5])
    for label in ("first", "second"):
        with Timer() as t_step:
            value, grad = objective.value_and_grad(theta)
        assert np.isfinite(value) and np.all(np.isfinite(grad))
        print(f"   {label} call: {t_step}")
    print(f"   (building the objective: {t_init.wall:.2f}s)")


def memory_floor(side: int, horizon: int) -> None:
    S, A, H = side * side, 4, horizon
    with Timer() as t:
        shapes = [(H, S), (H, S, A), (H, S, A), (H + 1, S)]
        arrays = [_kernels.empty_output(shape) for shape in shapes]
        for arr in arrays:
            arr.fill(0.0)
    gb = sum(arr.nbytes for arr in arrays) / 1e9
    print(f"np.empty + fill of the {side}x{side} grid's output shapes ({gb:.1f} GB): {t}")


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel before timing anything."""
    model = grid_model(4, 3)
    _, _, pi = soft_bellman(model, np.zeros(model.n_states))
    occupancy(model, pi)
    MaxEntObjective([model], [straight_demo(4, 3)]).value_and_grad(np.zeros(3))
    env = CliffWorldEnv(width=3, height=2, horizon=2, use_xy_obs=False)
    cliff = from_seals(env)
    occupancy(cliff, soft_bellman(cliff, np.asarray(env.reward_matrix, dtype=float))[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument(
        "--blas-threads", type=int, default=1, help="BLAS threads for imitation (default 1)"
    )
    parser.add_argument(
        "--memory-floor",
        action="store_true",
        help="only time allocating and filling the grid's output shapes, then exit",
    )
    args = parser.parse_args()

    side, horizon = GRID_QUICK if args.quick else GRID
    if args.memory_floor:
        memory_floor(side, horizon)
        return
    warm_up()
    bench_cliffworld(CLIFF_SIZES_QUICK if args.quick else CLIFF_SIZES, args.blas_threads)
    bench_grid(side, horizon)
    bench_maxent_step(side, horizon)


if __name__ == "__main__":
    main()
