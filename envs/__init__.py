"""Gymnasium environments of ``behavioral``: RedDoors and WaterPlants.

Ids: ``behavioral/RedDoors-v0`` and ``behavioral/WaterPlants-v0``.

Both ids are registered on ``import gymnasium`` through the ``gymnasium.envs`` entry point
(see ``pyproject.toml``) once the project is installed, and again (idempotently) on
``import envs``. This module imports nothing heavy: gymnasium loads it while it is itself
being imported, and the env classes are only imported by ``gymnasium.make``.
"""

from __future__ import annotations

__all__ = ["ENV_IDS", "register_envs"]

#: id -> entry point of every env this package registers.
ENV_IDS: dict[str, str] = {
    "behavioral/RedDoors-v0": "envs.red_doors:RedDoorsEnv",
    "behavioral/WaterPlants-v0": "envs.water_plants:WaterPlantsEnv",
}


def register_envs() -> None:
    """Register every id in :data:`ENV_IDS` with gymnasium (no-op if already registered)."""
    # Imported here, not at the top: ``import envs`` before ``import gymnasium`` makes
    # gymnasium load this very module as a plugin while it is still initialising, and
    # ``register_envs`` must already exist by then.
    from gymnasium.envs.registration import register, registry

    for env_id, entry_point in ENV_IDS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry_point)


register_envs()
