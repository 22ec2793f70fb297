"""What a command line names -- policies and envs -- comes from :mod:`behavioral.specs` (the
grammar a sweep's jobs share); here only the command line's own error class and message
helper."""

from __future__ import annotations

from typing import Any

from behavioral.errors import BehavioralError
from behavioral.specs import (
    ENV_ALIASES,
    PLANNER_BETA,
    PolicySpec,
    SpecError,
    env_id,
    load_policy,
    make_env,
    policy_and_env,
    zoo_env_kwargs,
)

__all__ = [
    "ENV_ALIASES",
    "PLANNER_BETA",
    "CLIError",
    "PolicySpec",
    "SpecError",
    "env_id",
    "load_policy",
    "make_env",
    "one_line",
    "policy_and_env",
    "zoo_env_kwargs",
]


def one_line(message: Any) -> str:
    """``message`` on one line (whitespace runs collapsed)."""
    return " ".join(str(message).split())


class CLIError(BehavioralError, ValueError):
    """Bad command-line input found after parsing (reported as one line, exit 1)."""
