"""Inverse RL: recover a behavioural objective from demonstrations."""

from behavioral.irl.maxent import (
    Demonstration,
    MaxEntObjective,
    RecoveredReward,
    fit_objective,
    maxent_irl,
)

__all__ = ["Demonstration", "MaxEntObjective", "RecoveredReward", "fit_objective", "maxent_irl"]
