"""Exceptions raised by ``behavioral``.

Every error the library raises on bad input is a subclass of :class:`BehavioralError`
and of the closest built-in category (``ValueError``, ``KeyError``, ...), so callers can
catch either the specific class, the library's base class, or the built-in one.
"""

from __future__ import annotations


class BehavioralError(Exception):
    """Base class of every error ``behavioral`` raises on bad input."""


class InvalidModelError(BehavioralError, ValueError):
    """A tabular model is malformed (shapes, probabilities, NaNs, unknown base, ...)."""


class InvalidRewardError(BehavioralError, ValueError):
    """A reward or objective array has the wrong shape or non-finite entries."""


class InvalidPolicyError(BehavioralError, ValueError):
    """A tabular policy array is malformed (shape, negative entries, rows not summing to 1)."""


class InvalidDemonstrationError(BehavioralError, ValueError):
    """Demonstrations do not fit the model they are paired with."""


class InvalidDistributionError(BehavioralError, ValueError):
    """A probability distribution is malformed or does not fit the rewards or dynamics.

    Raised for EPIC coverage distributions over transitions (s, a, s') and for the
    canonicalisation distributions over states and actions: wrong shape, negative or
    non-finite entries, not summing to 1, or mass on transitions the dynamics forbid.
    """
