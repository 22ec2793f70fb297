"""Benchmark: extracting a Minigrid level with the fast codec against the generic one.

Run:  python analyses/benchmarks/extract_speed.py [--generic-states N | --full] [--quick]

``MiniGrid-DoorKey-8x8-v0`` reset with seed 0 has 9,210 reachable states (64,064
(state, action) steps from its 9,152 live states). :func:`behavioral.extract.extract_level`
with default settings (64 seeded re-steps and the root's 7 as determinism checks, no
cache) is timed in the same run with

* the fast codec (``behavioral.minigrid.MinigridCodec``): best of ``--repeats`` runs;
* the generic codec (``DeepCopyCodec(ignore=("step_count",))``: a deep copy of the env
  per step, a value encoding of its attributes as the key): stopped after
  ``--generic-states`` states (default 1,500) and its rate (steps per second) projected
  to the full search; ``--full`` runs it to the end instead (minutes).

Both run on one core (pure Python; torch and BLAS are not involved). Times are wall and
process CPU time (the steadier one on a shared machine); the ratio is the generic
codec's CPU time per step over the fast one's.

``--quick`` does the same on ``MiniGrid-DoorKey-5x5-v0`` (a smoke test).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import minigrid  # noqa: F401 - registers the MiniGrid ids

from behavioral.extract import DeepCopyCodec, TooManyStatesError, extract_level
from behavioral.minigrid import MinigridCodec


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall time and its process CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--generic-states", type=int, default=1500)
    parser.add_argument("--full", action="store_true", help="run the generic search to the end")
    parser.add_argument("--quick", action="store_true", help="DoorKey-5x5, small cap")
    args = parser.parse_args()
    if args.quick:
        args.env, args.generic_states, args.repeats = "MiniGrid-DoorKey-5x5-v0", 100, 2
    env = gym.make(args.env)
    env.reset(seed=args.seed)

    runs = [timed(lambda: extract_level(env, codec=MinigridCodec(), cache=False))]
    for _ in range(args.repeats - 1):
        runs.append(timed(lambda: extract_level(env, codec=MinigridCodec(), cache=False)))
    level = runs[0][0]
    fast_wall = min(r[1] for r in runs)
    fast_cpu = min(r[2] for r in runs)
    live = int((~level.ended).sum())
    print(
        f"{args.env}, reset(seed={args.seed}): {level.n_states} states, "
        f"{live * level.model.n_actions} steps from {live} live states "
        f"(+{level.steps - live * level.model.n_actions} re-steps for the checks)"
    )
    fast_rate = level.steps / fast_cpu
    print(
        f"fast codec (MinigridCodec):    wall {fast_wall:8.2f} s   cpu {fast_cpu:8.2f} s   "
        f"{fast_rate:9,.0f} steps/s   (best of {args.repeats})"
    )

    codec = DeepCopyCodec(ignore=("step_count",))
    cap = 10**7 if args.full else args.generic_states
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        generic = extract_level(env, codec=codec, cache=False, max_states=cap)
        steps, states, projected = generic.steps, generic.n_states, ""
        assert states == level.n_states, (states, level.n_states)
    except TooManyStatesError as err:  # stopped at the cap: project the rate
        steps, states = err.steps, err.states
        projected = None
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if projected is None:
        projected = f"  -> {level.steps:,} steps: ~{level.steps * cpu / steps:,.1f} s projected"
    generic_rate = steps / cpu
    print(
        f"generic codec (DeepCopyCodec): wall {wall:8.2f} s   cpu {cpu:8.2f} s   "
        f"{generic_rate:9,.0f} steps/s   ({states:,} states, {steps:,} steps){projected}"
    )
    print(f"ratio (generic / fast, cpu per step): {fast_rate / generic_rate:,.0f}x")


if __name__ == "__main__":
    main()
