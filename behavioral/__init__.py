"""behavioral: what is a trained RL policy actually trying to do?

The public API. ``behavioral.audit(policy_or_dataset, env, ...)`` is the entry point (see
``behavioral.audit.audit``); the numerical core, IRL and EPIC are importable from here too.
Names that need stable-baselines3/torch (policies, datasets, the zoo) are loaded lazily on
first use, so ``import behavioral`` stays light.
"""

from typing import Any

__version__ = "0.1.0"

from behavioral.audit import Audit, audit_demonstrations
from behavioral.audit import audit as audit
from behavioral.compare import (
    Coverage,
    epic,
    epic_distance,
    model_epic,
    sampled_epic,
)
from behavioral.errors import (
    BehavioralError,
    InvalidDemonstrationError,
    InvalidModelError,
    InvalidPolicyError,
    InvalidRewardError,
)
from behavioral.irl import Demonstration, RecoveredReward, maxent_irl
from behavioral.tabular import TabularModel, from_seals, occupancy, soft_bellman

_LAZY = {
    "Dataset": "behavioral.rollout",
    "load_dataset": "behavioral.rollout",
    "save_dataset": "behavioral.rollout",
    "as_policy": "behavioral.policies",
    "SoftOptimalPolicy": "behavioral.policies",
    "EpsilonGreedyPolicy": "behavioral.policies",
    "train_ppo": "behavioral.policies",
    "load_zoo": "behavioral.zoo",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'behavioral' has no attribute {name!r}")


__all__ = [
    "Audit",
    "BehavioralError",
    "Coverage",
    "Dataset",
    "Demonstration",
    "EpsilonGreedyPolicy",
    "InvalidDemonstrationError",
    "InvalidModelError",
    "InvalidPolicyError",
    "InvalidRewardError",
    "RecoveredReward",
    "SoftOptimalPolicy",
    "TabularModel",
    "__version__",
    "as_policy",
    "audit",
    "audit_demonstrations",
    "epic",
    "epic_distance",
    "from_seals",
    "load_dataset",
    "load_zoo",
    "maxent_irl",
    "model_epic",
    "occupancy",
    "sampled_epic",
    "save_dataset",
    "soft_bellman",
    "train_ppo",
]
