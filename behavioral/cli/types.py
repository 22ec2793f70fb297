"""argparse ``type`` functions shared by the ``behavioral`` command's subcommands (the CLI
parser, ``sweep`` and ``drift``): each gives argparse a one-line message for a bad value."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "env_kwarg",
    "fraction",
    "non_negative",
    "non_negative_int",
    "objective_spec",
    "positive_int",
    "seed_int",
]


def _number(
    convert: Callable[[str], Any], ok: Callable[[Any], bool], expected: str
) -> Callable[[str], Any]:
    """An argparse ``type``: ``convert(text)``, which must satisfy ``ok``."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "a non-negative integer")
seed_int = non_negative_int
fraction = _number(float, lambda v: 0.0 < v < 1.0, "a number in (0, 1)")
non_negative = _number(float, lambda v: math.isfinite(v) and v >= 0, "a non-negative number")


def objective_spec(text: str) -> tuple[str, Any]:
    """``NAME=PREDICATE`` -> (name, the Minigrid predicate named ``name``)."""
    import dataclasses

    from behavioral.errors import InvalidArgumentError
    from behavioral.minigrid import parse_predicate

    name, sep, predicate = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=PREDICATE, got {text!r}")
    try:
        return name, dataclasses.replace(parse_predicate(predicate), name=name)
    except InvalidArgumentError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def env_kwarg(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE parsed as JSON when it is (``size=7`` -> 7), else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed: Any = json.loads(value, parse_constant=lambda c: c)
    except json.JSONDecodeError:
        parsed = value
    return key, parsed
