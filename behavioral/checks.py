"""Strict checks of arguments that the public functions share (seeds, counts, flags, levels).

Nothing is coerced: ``seed=1.5``, ``seed="3"``, ``seed=True`` and ``deterministic="no"`` are
refused with :class:`~behavioral.errors.InvalidArgumentError` instead of being turned into
some other value. NumPy integer scalars count as integers and ``numpy.bool_`` as a bool.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any

import numpy as np

from behavioral.errors import InvalidArgumentError

__all__ = ["check_bool", "check_choice", "check_fraction", "check_int", "check_seed"]


def check_int(
    value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) in ``[minimum, maximum]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__})"
        )
    v = int(value)
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        lo = "" if minimum is None else f">= {minimum}"
        hi = "" if maximum is None else f"<= {maximum}"
        raise InvalidArgumentError(
            f"{name} must be {' and '.join(x for x in (lo, hi) if x)}, got {v}"
        )
    return v


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed: a non-negative integer (not a bool, float or string)."""
    return check_int(value, name, minimum=0)


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a bool (``True``/``False``, or ``numpy.bool_``)."""
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(
            f"{name} must be True or False, got {value!r} ({type(value).__name__})"
        )
    return bool(value)


def check_fraction(value: Any, name: str) -> float:
    """A real number strictly between 0 and 1 (e.g. a confidence level)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise InvalidArgumentError(f"{name} must be a number in (0, 1), got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and 0.0 < v < 1.0):
        raise InvalidArgumentError(f"{name} must be in (0, 1), got {value!r}")
    return v


def check_choice(value: Any, name: str, choices: Collection[str]) -> str:
    """``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidArgumentError(
            f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}"
        )
    return value
