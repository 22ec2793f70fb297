"""Regenerate the policy zoo shipped in ``behavioral/zoo/``.

Every RedDoors and WaterPlants entry of :data:`behavioral.zoo.ZOO` (the Minigrid entries:
``analyses/train_minigrid_zoo.py``) is trained here with stable-baselines3 PPO (the base
optimizer) on its env, split and training reward, with the fixed settings below:
fixed seeds, one torch thread, ``DummyVecEnv`` copies seeded ``seed + i``. Re-running it
on the same library versions reproduces the zips (SB3's zip also records the versions it
was saved with).

The proxies in the zoo are *learned*: ``reddoors-train`` only ever sees red exits and is
never told about colour; ``waterplants-kettle`` only ever holds a kettle. Nothing here
scripts what a policy does on the deploy split.

    python analyses/train_zoo.py                 # every entry
    python analyses/train_zoo.py reddoors-train  # some entries
    python analyses/train_zoo.py --out /tmp/zoo  # somewhere else (default: the package)

    # keep a checkpoint every 25,000 steps in ckpt/<name>/ (for `behavioral drift`), and
    # say whether the final model reproduces the shipped zip
    python analyses/train_zoo.py reddoors-train --out /tmp/zoo \
        --checkpoint-every 25000 --checkpoint-dir ckpt

Keeping checkpoints reads no random state, so a run with checkpoints trains the same
policy as one without.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

from behavioral.policies import train_ppo
from behavioral.zoo import ZOO, ZOO_DIR

#: PPO settings shared by every entry (SB3 defaults otherwise); entries override some.
PPO_KWARGS: dict[str, Any] = {
    "n_steps": 128,
    "batch_size": 256,
    "n_epochs": 4,
    "learning_rate": 1e-3,
    "gamma": 0.95,
    "ent_coef": 0.01,
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """PPO settings of one zoo entry (its env, split and kwargs come from ``ZOO``)."""

    total_timesteps: int
    seed: int = 0
    n_envs: int = 8
    ppo_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ppo_kwargs", {**PPO_KWARGS, **self.ppo_kwargs})


CONFIGS: dict[str, TrainConfig] = {
    "reddoors-train": TrainConfig(
        total_timesteps=300_000, ppo_kwargs={"n_epochs": 10, "learning_rate": 5e-4}
    ),
    "reddoors-diverse": TrainConfig(
        total_timesteps=600_000, ppo_kwargs={"n_epochs": 10, "learning_rate": 1e-3}
    ),
    "waterplants-kettle": TrainConfig(
        total_timesteps=400_000,
        ppo_kwargs={"n_epochs": 10, "learning_rate": 5e-4, "gamma": 0.99},
    ),
    "waterplants-hose": TrainConfig(
        total_timesteps=400_000,
        ppo_kwargs={"n_epochs": 10, "learning_rate": 5e-4, "gamma": 0.99},
    ),
}


def train_entry(
    name: str,
    out: Path,
    *,
    progress_bar: bool = True,
    checkpoint_every: int | None = None,
    checkpoint_dir: Path | None = None,
) -> Path:
    """Train zoo entry ``name`` with :data:`CONFIGS` and save it as ``out/<name>.zip``
    (with ``checkpoint_every``: checkpoints in ``checkpoint_dir``)."""
    entry, cfg = ZOO[name], CONFIGS[name]
    path = out / f"{name}.zip"
    train_ppo(
        entry.env_id,
        split=entry.split,
        env_kwargs=entry.env_kwargs,
        total_timesteps=cfg.total_timesteps,
        seed=cfg.seed,
        n_envs=cfg.n_envs,
        progress_bar=progress_bar,
        ppo_kwargs=cfg.ppo_kwargs,
        save_path=path,
        overwrite=True,  # regenerating an entry replaces its zip
        torch_threads=1,
        checkpoint_every=checkpoint_every,
        checkpoint_dir=checkpoint_dir,
    )
    return path


def compare_with_shipped(path: Path, name: str) -> str:
    """Whether ``path`` reproduces the shipped zip of ``name``: the same bytes, the same
    network parameters (SB3 zips also record save-time metadata), or how far apart."""
    import torch

    from behavioral.policies import load_ppo

    shipped = ZOO[name].path
    if not shipped.is_file():
        return "no shipped zip to compare with"
    if path.resolve() == shipped.resolve():
        return "written over the shipped zip"
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (path, shipped)]
    if digest[0] == digest[1]:
        return "the same bytes as the shipped zip"
    a, b = (load_ppo(p).policy.state_dict() for p in (path, shipped))
    if a.keys() != b.keys():
        return "a different network from the shipped zip"
    gap = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    if all(torch.equal(a[k], b[k]) for k in a):
        return "the same parameters as the shipped zip, bit for bit (the zip bytes differ)"
    return f"different parameters from the shipped zip (largest difference {gap:.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"entries (default: all of {', '.join(CONFIGS)})")
    parser.add_argument("--out", type=Path, default=ZOO_DIR, help="output directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--checkpoint-every", type=int, default=None, help="keep a checkpoint every N steps"
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=Path("checkpoints"),
        help="checkpoints go to CHECKPOINT_DIR/<name>/ (default: %(default)s)",
    )
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in CONFIGS]
    if unknown:  # the Minigrid entries: analyses/train_minigrid_zoo.py
        parser.error(f"unknown zoo entries {unknown}; known here: {list(CONFIGS)}")
    for name in args.names or list(CONFIGS):
        entry, cfg = ZOO[name], CONFIGS[name]
        print(
            f"training {name}: PPO on {entry.env_id} split={entry.split} "
            f"env_kwargs={dict(entry.env_kwargs)} training_reward={entry.training_reward!r} "
            f"steps={cfg.total_timesteps} seed={cfg.seed} n_envs={cfg.n_envs} "
            f"ppo_kwargs={cfg.ppo_kwargs}",
            flush=True,
        )
        t0 = time.perf_counter()
        ckpt = args.checkpoint_dir / name if args.checkpoint_every else None
        path = train_entry(
            name,
            args.out,
            progress_bar=not args.no_progress,
            checkpoint_every=args.checkpoint_every,
            checkpoint_dir=ckpt,
        )
        print(
            f"  wrote {path} ({path.stat().st_size / 1e6:.2f} MB) "
            f"in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        if ckpt is not None:
            print(f"  checkpoints: {len(list(ckpt.glob('*.zip')))} in {ckpt}", flush=True)
        print(f"  {compare_with_shipped(path, name)}", flush=True)


if __name__ == "__main__":
    main()
