"""What the three case studies share: their command line, figure files, percentages.

Imported by ``analyses/case_*.py`` (which run from this folder, so it is importable as
``casekit``); not part of the library.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TypeVar

from matplotlib.figure import Figure

from behavioral import report

C = TypeVar("C")

#: Bootstrap resamples of a ``--fast`` run.
FAST_BOOTSTRAP = 200


def parse_config(config_cls: type[C], description: str, fast_episodes: int, argv: Any = None) -> C:
    """Command-line flags -> a case's config (``--fast``: few episodes, small bootstrap)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--fast",
        action="store_true",
        help=f"{fast_episodes} episodes, {FAST_BOOTSTRAP} bootstrap samples",
    )
    parser.add_argument("--out", default=config_cls.out, help="output directory")  # type: ignore[attr-defined]
    parser.add_argument("--seed", type=int, default=config_cls.seed)  # type: ignore[attr-defined]
    args, _ = parser.parse_known_args(argv)  # tolerate a notebook kernel's own flags
    fast = {"episodes": fast_episodes, "n_bootstrap": FAST_BOOTSTRAP} if args.fast else {}
    return config_cls(out=args.out, seed=args.seed, **fast)


def save_figure(fig: Figure, path: Path) -> str:
    """Save ``fig`` as a PNG at ``path`` (atomically); return the file name."""
    return report.save_png(fig, path, dpi=110)


def pct(x: float) -> str:
    """``x`` as a whole percentage (no "-0%" for tiny negative rounding noise)."""
    return f"{round(float(x), 4) + 0.0:.0%}"
