"""behavioral: what is a trained RL policy actually trying to do?"""

from behavioral.errors import (
    BehavioralError,
    InvalidDemonstrationError,
    InvalidModelError,
    InvalidPolicyError,
    InvalidRewardError,
)
from behavioral.tabular import TabularModel, from_seals, occupancy, soft_bellman

__version__ = "0.1.0"

__all__ = [
    "BehavioralError",
    "InvalidDemonstrationError",
    "InvalidModelError",
    "InvalidPolicyError",
    "InvalidRewardError",
    "TabularModel",
    "from_seals",
    "occupancy",
    "soft_bellman",
    "__version__",
]
