"""behavioral: what is a trained RL policy actually trying to do?"""

from behavioral.audit import Audit, audit_demonstrations
from behavioral.compare import Coverage, epic, epic_distance, model_epic, sampled_epic
from behavioral.errors import (
    BehavioralError,
    InvalidDemonstrationError,
    InvalidModelError,
    InvalidPolicyError,
    InvalidRewardError,
)
from behavioral.irl import Demonstration, RecoveredReward, maxent_irl
from behavioral.tabular import TabularModel, from_seals, occupancy, soft_bellman

__version__ = "0.1.0"

__all__ = [
    "Audit",
    "BehavioralError",
    "Coverage",
    "Demonstration",
    "InvalidDemonstrationError",
    "InvalidModelError",
    "InvalidPolicyError",
    "InvalidRewardError",
    "RecoveredReward",
    "TabularModel",
    "__version__",
    "audit_demonstrations",
    "epic",
    "epic_distance",
    "from_seals",
    "maxent_irl",
    "model_epic",
    "occupancy",
    "sampled_epic",
    "soft_bellman",
]
