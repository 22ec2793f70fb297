"""behavioral: what is a trained RL policy actually trying to do?"""

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
    "BehavioralError",
    "Demonstration",
    "InvalidDemonstrationError",
    "InvalidModelError",
    "InvalidPolicyError",
    "InvalidRewardError",
    "RecoveredReward",
    "TabularModel",
    "__version__",
    "from_seals",
    "maxent_irl",
    "occupancy",
    "soft_bellman",
]
