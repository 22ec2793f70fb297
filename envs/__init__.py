"""Gymnasium environments of ``behavioral``: RedDoors and WaterPlants.

This folder is installed as the package ``behavioral_envs``. Ids:
``behavioral/RedDoors-v0`` and ``behavioral/WaterPlants-v0``, registered on ``import
gymnasium`` through the ``gymnasium.envs`` entry point ``behavioral.registration`` (see
``pyproject.toml``) once the project is installed, and again (idempotently) on ``import
behavioral_envs``.
"""

from __future__ import annotations

from behavioral.registration import ENV_IDS, register_envs

__all__ = ["ENV_IDS", "register_envs"]

register_envs()
