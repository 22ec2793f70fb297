"""Train the Minigrid corner zoo: PPO policies whose training goal was always in a corner.

The dose-response of jaxgmg's "corner" experiments (Sadek et al.), in Minigrid:
``behavioral/MiniGridCorner-v0`` (an open 7 x 7 room) with the goal always inside the
top-right ``k x k`` corner region in training, for k = 1, 2, 3, 4, plus a control trained
with the goal anywhere (``split="deploy"``). Each policy is stable-baselines3 PPO with an
``MlpPolicy`` on Minigrid's egocentric partial view and direction, flattened into one
vector (:func:`behavioral.minigrid.flat_observations`): the view alone cannot tell the
top-right corner from the others in an open room.

Everything is seeded (``set_random_seed``, PPO's seed, env copy ``i`` seeded ``seed +
i`` by ``make_vec_env``) and runs on one torch thread, so re-running on the same library
versions reproduces the zips. Nothing here scripts what a policy does off its training
distribution: the corner policies only ever see goals in their corner.

CPU budget (one core of a shared 2-core machine): 400k steps per policy took 172 to
412 s of wall time here (1,000 to 2,300 environment steps per second, depending on the
load; about 5,000 on an idle core), 23 minutes for the five policies.

    python analyses/train_minigrid_zoo.py                      # every policy
    python analyses/train_minigrid_zoo.py minigrid-corner1     # some of them
    python analyses/train_minigrid_zoo.py --steps 50000 --out /tmp/zoo   # a quick trial
    python analyses/train_minigrid_zoo.py minigrid-corner1 --seed 1 --out /tmp/zoo  # spread
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

ENV_ID = "behavioral/MiniGridCorner-v0"
ZOO_DIR = Path(__file__).resolve().parents[1] / "behavioral" / "zoo"

#: PPO settings shared by every policy (SB3 defaults otherwise).
PPO_KWARGS: dict[str, Any] = {
    "n_steps": 256,
    "batch_size": 256,
    "n_epochs": 4,
    "learning_rate": 5e-4,
    "gamma": 0.99,
    "ent_coef": 0.01,
    # 32 x 32 actor and critic keep each zip under 300 KB (64 x 64: 390 KB).
    "policy_kwargs": {"net_arch": {"pi": [32, 32], "vf": [32, 32]}},
}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One policy of the corner zoo: the env it trains on and for how long."""

    name: str
    split: str
    corner_size: int
    total_timesteps: int = 400_000
    seed: int = 0
    n_envs: int = 8
    size: int = 9

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return {"size": self.size, "corner_size": self.corner_size}


ENTRIES: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry("minigrid-corner1", "train", 1),
        Entry("minigrid-corner2", "train", 2),
        Entry("minigrid-corner3", "train", 3),
        Entry("minigrid-corner4", "train", 4),
        Entry("minigrid-anywhere", "deploy", 1),
    )
}


def train(entry: Entry, out: Path, *, steps: int | None = None) -> Path:
    """Train ``entry`` and save it as ``out/<name>.zip`` (SB3 zip with our metadata;
    ``out/<name>-seed<k>.zip`` for another seed than the entry's)."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.utils import set_random_seed

    import behavioral
    from behavioral.minigrid import flat_observations
    from behavioral.policies import save_sb3

    total = entry.total_timesteps if steps is None else steps
    kwargs = {**entry.env_kwargs, "split": entry.split}
    torch.set_num_threads(1)
    set_random_seed(entry.seed)
    venv = make_vec_env(
        ENV_ID,
        n_envs=entry.n_envs,
        seed=entry.seed,
        env_kwargs=kwargs,
        wrapper_class=flat_observations,
    )
    model = PPO("MlpPolicy", venv, seed=entry.seed, device="cpu", verbose=0, **PPO_KWARGS)
    model.behavioral_metadata = {
        "behavioral_version": behavioral.__version__,
        "env_id": ENV_ID,
        "env_kwargs": kwargs,
        "split": entry.split,
        "observation_wrapper": "behavioral.minigrid.flat_observations",
        "seed": entry.seed,
        "n_envs": entry.n_envs,
        "total_timesteps": total,
        "ppo_kwargs": PPO_KWARGS,
    }
    started = time.perf_counter()
    model.learn(total_timesteps=total)
    seconds = time.perf_counter() - started
    stem = (
        entry.name if entry.seed == ENTRIES[entry.name].seed else f"{entry.name}-seed{entry.seed}"
    )
    path = save_sb3(model, out / f"{stem}.zip")
    print(f"{entry.name}: {total} steps in {seconds:.0f} s -> {path} ({path.stat().st_size} bytes)")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"entries (default all): {', '.join(ENTRIES)}")
    parser.add_argument("--out", type=Path, default=ZOO_DIR, help="output directory")
    parser.add_argument("--steps", type=int, default=None, help="override total timesteps")
    parser.add_argument("--seed", type=int, default=None, help="another seed (robustness)")
    args = parser.parse_args()
    names = args.names or list(ENTRIES)
    unknown = [n for n in names if n not in ENTRIES]
    if unknown:
        parser.error(f"unknown entries {unknown}; known: {', '.join(ENTRIES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        entry = ENTRIES[name]
        if args.seed is not None:
            entry = dataclasses.replace(entry, seed=args.seed)
        train(entry, args.out, steps=args.steps)


if __name__ == "__main__":
    main()
