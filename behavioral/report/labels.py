"""Names in the env's own words: outcomes, outcome values and landmarks on the maps.

An env may declare them with a classmethod ``display_names(split) -> Mapping[str, str]``
on its class, keyed by

* an episode-table column: ``outcome.flooded_cells`` -> "flooded cells";
* ``column=value`` for one value of a categorical outcome: ``outcome=other_door`` ->
  "another door", ``outcome.door_color=red`` -> "red decoy" (on ``deploy``);
* a feature name, for the landmark drawn where that feature fires: ``exit`` -> "exit",
  ``poured_on_dry_plant`` -> "pot".

Anything the env does not name is read plainly (:func:`plain_label`). The env class is
found through gymnasium's registry by the audit's env id, and only for ids already
registered by installed packages: an id read from a dataset or report file never makes
this module import anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["env_display_names", "label", "plain_label"]


def env_display_names(env_id: str | None, split: str | None = None) -> dict[str, str]:
    """The display names the registered env ``env_id`` declares for ``split`` (or {})."""
    if not env_id:
        return {}
    import gymnasium as gym

    spec = gym.registry.get(env_id)
    if spec is None:
        return {}
    entry: Any = spec.entry_point
    try:
        if isinstance(entry, str):
            from gymnasium.envs.registration import load_env_creator

            entry = load_env_creator(entry)
        declare = getattr(entry, "display_names", None)
        names = declare(split) if callable(declare) else None
    except (ImportError, AttributeError, TypeError, ValueError):  # a broken plugin
        return {}
    if not isinstance(names, Mapping):
        return {}
    return {str(k): str(v) for k, v in names.items()}


def plain_label(key: str) -> str:
    """A readable form of a column, ``column=value`` or feature key.

    ``return.exit`` -> "return of exit"; ``outcome.flooded_cells`` -> "flooded cells";
    ``outcome=other_door`` -> "outcome: other door"; ``outcome.door_color=red`` ->
    "door color: red"; ``red_door`` -> "red door".
    """
    column, _, value = key.partition("=")
    if column.startswith("return."):
        return f"return of {column[len('return.') :]}"
    name = column[len("outcome.") :] if column.startswith("outcome.") else column
    name = name.replace("_", " ")
    return f"{name}: {value.replace('_', ' ')}" if value else name


def label(key: str, names: Mapping[str, str]) -> str:
    """The env's name for ``key``, else :func:`plain_label`."""
    return names.get(key) or plain_label(key)
