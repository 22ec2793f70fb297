"""behavioral: what is a trained RL policy actually trying to do?

The public API. ``behavioral.audit(policy_or_dataset, env, ...)`` is the entry point (see
:func:`behavioral.auditing.audit`); the numerical core, IRL and EPIC are importable from here
too. Every name is loaded on first use, so ``import behavioral`` costs nothing: gymnasium
imports this package (its ``gymnasium.envs`` entry point registers our env ids) while it is
itself being imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it.
_EXPORTS = {
    "Audit": "behavioral.auditing",
    "audit": "behavioral.auditing",
    "audit_demonstrations": "behavioral.auditing",
    "Coverage": "behavioral.compare",
    "epic": "behavioral.compare",
    "epic_distance": "behavioral.compare",
    "model_epic": "behavioral.compare",
    "sampled_epic": "behavioral.compare",
    "BehavioralError": "behavioral.errors",
    "ExtractedLevel": "behavioral.extract",
    "extract_level": "behavioral.extract",
    "extract_model": "behavioral.extract",
    "state_function": "behavioral.extract",
    "InvalidDemonstrationError": "behavioral.errors",
    "InvalidModelError": "behavioral.errors",
    "InvalidPolicyError": "behavioral.errors",
    "InvalidRewardError": "behavioral.errors",
    "Demonstration": "behavioral.irl",
    "RecoveredReward": "behavioral.irl",
    "maxent_irl": "behavioral.irl",
    "TabularModel": "behavioral.tabular",
    "from_seals": "behavioral.tabular",
    "occupancy": "behavioral.tabular",
    "soft_bellman": "behavioral.tabular",
    "Dataset": "behavioral.rollout",
    "load_dataset": "behavioral.rollout",
    "save_dataset": "behavioral.rollout",
    "as_policy": "behavioral.policies",
    "SoftOptimalPolicy": "behavioral.policies",
    "EpsilonGreedyPolicy": "behavioral.policies",
    "train_ppo": "behavioral.policies",
    "load_zoo": "behavioral.zoo",
    "sweep": "behavioral.sweeping",
}

__all__ = [
    "Audit",
    "BehavioralError",
    "Coverage",
    "Dataset",
    "Demonstration",
    "EpsilonGreedyPolicy",
    "ExtractedLevel",
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
    "extract_level",
    "extract_model",
    "from_seals",
    "load_dataset",
    "load_zoo",
    "maxent_irl",
    "model_epic",
    "occupancy",
    "sampled_epic",
    "save_dataset",
    "soft_bellman",
    "state_function",
    "sweep",
    "train_ppo",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from behavioral.auditing import Audit, audit, audit_demonstrations
    from behavioral.compare import Coverage, epic, epic_distance, model_epic, sampled_epic
    from behavioral.errors import (
        BehavioralError,
        InvalidDemonstrationError,
        InvalidModelError,
        InvalidPolicyError,
        InvalidRewardError,
    )
    from behavioral.extract import ExtractedLevel, extract_level, extract_model, state_function
    from behavioral.irl import Demonstration, RecoveredReward, maxent_irl
    from behavioral.policies import (
        EpsilonGreedyPolicy,
        SoftOptimalPolicy,
        as_policy,
        train_ppo,
    )
    from behavioral.rollout import Dataset, load_dataset, save_dataset
    from behavioral.sweeping import sweep
    from behavioral.tabular import TabularModel, from_seals, occupancy, soft_bellman
    from behavioral.zoo import load_zoo


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'behavioral' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
