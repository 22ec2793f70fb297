"""Render one level of each environment (and each split) to PNG files.

    python analyses/render_levels.py [OUT_DIR] [--seed N] [--tile-size T]

Writes ``red_doors_<split>.png`` and ``water_plants_<split>.png`` into OUT_DIR (default
``docs/img``). The PNGs are the envs' own ``rgb_array`` frames of the first state of the
level drawn by ``reset(seed=N)``, scaled by nothing but the tile size.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import behavioral_envs  # noqa: F401  (registers the ids when the project is not installed)
import gymnasium as gym
import matplotlib.image

from behavioral.files import write_atomic

SPLITS = {
    "behavioral/RedDoors-v0": ("train", "deploy", "diverse"),
    "behavioral/WaterPlants-v0": ("train", "deploy"),
}


def render_level(env_id: str, split: str, seed: int, tile_size: int):
    """First frame (H, W, 3) uint8 of the level that ``reset(seed=seed)`` draws."""
    env = gym.make(env_id, split=split, render_mode="rgb_array", tile_size=tile_size)
    env.reset(seed=seed)
    frame = env.render()
    env.close()
    return frame


def save_png(path: Path, frame) -> None:
    """Write ``frame`` to ``path`` as a PNG, atomically."""
    buf = io.BytesIO()
    matplotlib.image.imsave(buf, frame, format="png")
    write_atomic(path, buf.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="docs/img", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tile-size", type=int, default=32)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for env_id, splits in SPLITS.items():
        stem = "red_doors" if "RedDoors" in env_id else "water_plants"
        for split in splits:
            path = args.out_dir / f"{stem}_{split}.png"
            save_png(path, render_level(env_id, split, args.seed, args.tile_size))
            print(f"wrote {path}  ({env_id}, split={split}, reset seed={args.seed})")


if __name__ == "__main__":
    main()
