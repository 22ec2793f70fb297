"""Which registered Minigrid and BabyAI envs the audit can reach: extract level 0 of each.

For every ``MiniGrid-*`` and ``BabyAI-*`` id in gymnasium's registry: make the env, reset
it with seed 0 and extract that level's model with the library's defaults
(:func:`behavioral.extract_level`, the fast Minigrid codec, at most ``max_states``
states). Each row is either the model's size and the CPU time it took, or the specific
refusal (an :class:`~behavioral.errors.EnvContractError` subclass and its message, which
says what to do) -- or that the env needs an extra package. Nothing here is tuned per
env: it is what a user who points ``behavioral audit --env ID`` at each id would get.

    python analyses/minigrid_registry.py --prefix MiniGrid-   # -> results/minigrid_registry.md
    python analyses/minigrid_registry.py --prefix BabyAI- --max-states 20000 \
        --out analyses/results/babyai_registry.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import minigrid  # noqa: F401  (registers the MiniGrid-* and BabyAI-* ids)
import pandas as pd

from behavioral.errors import EnvContractError
from behavioral.extract import extract_level
from behavioral.extract.search import DEFAULT_MAX_STATES

RESULTS = Path(__file__).resolve().parent / "results"


def row(env_id: str, max_states: int) -> dict:
    """One env: ``extracted`` with its size, or why not."""
    try:
        env = gym.make(env_id)
        env.reset(seed=0)
    except gym.error.DependencyNotInstalled as e:  # some raise it at make, WFC at reset
        return {"env": env_id, "result": "needs an extra package", "detail": str(e)}
    try:
        t0 = time.process_time()
        try:
            level = extract_level(env, max_states=max_states)
        except EnvContractError as e:
            detail = str(e).split(": ", 1)[0] if type(e).__name__ == "CodecError" else str(e)
            return {
                "env": env_id,
                "result": type(e).__name__,
                "detail": detail[:160],
                "cpu s": round(time.process_time() - t0, 2),
            }
        model = level.model
        return {
            "env": env_id,
            "result": "extracted",
            "states": model.n_states,
            "actions": model.n_actions,
            "horizon": model.horizon,
            "cpu s": round(time.process_time() - t0, 2),
        }
    finally:
        env.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-states", type=int, default=DEFAULT_MAX_STATES)
    parser.add_argument("--out", type=Path, default=RESULTS / "minigrid_registry.md")
    parser.add_argument(
        "--prefix", action="append", help="ids starting with this (default MiniGrid- and BabyAI-)"
    )
    args = parser.parse_args()
    prefixes = tuple(args.prefix or ("MiniGrid-", "BabyAI-"))
    ids = sorted(i for i in gym.registry if i.startswith(prefixes))
    rows = []
    for env_id in ids:
        rows.append(row(env_id, args.max_states))
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    counts = table["result"].value_counts()
    text = (
        f"# Registered {' and '.join(p.rstrip('-') for p in prefixes)} envs: level 0 "
        f"extracted (max_states = {args.max_states:,})\n\n"
        f"`python analyses/minigrid_registry.py "
        f"{' '.join(f'--prefix {p}' for p in prefixes)} --max-states {args.max_states}`\n\n"
        + "\n".join(f"* {k}: {v}" for k, v in counts.items())
        + "\n\n"
        + table.fillna("").to_markdown(index=False)
        + "\n"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)
    print(text)


if __name__ == "__main__":
    main()
