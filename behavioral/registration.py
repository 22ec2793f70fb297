"""Registration of the project's gymnasium ids (the ``gymnasium.envs`` entry point).

gymnasium calls :func:`register_envs` while ``import gymnasium`` itself runs, so this module
imports nothing but gymnasium's registry, and only inside the function. The environments
live in the repository folder ``envs/``, installed as the package ``behavioral_envs`` (a name
no user project uses: a generic top-level ``envs`` would shadow, or be shadowed by, the
user's own ``envs`` package).
"""

from __future__ import annotations

__all__ = ["ENV_IDS", "register_envs"]

#: id -> entry point of every env this project registers.
ENV_IDS: dict[str, str] = {
    "behavioral/RedDoors-v0": "behavioral_envs.red_doors:RedDoorsEnv",
    "behavioral/WaterPlants-v0": "behavioral_envs.water_plants:WaterPlantsEnv",
    "behavioral/MiniGridCorner-v0": "behavioral_envs.minigrid_corner:MiniGridCornerEnv",
}


def register_envs() -> None:
    """Register every id in :data:`ENV_IDS` with gymnasium (no-op if already registered)."""
    from gymnasium.envs.registration import register, registry

    for env_id, entry_point in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point)
