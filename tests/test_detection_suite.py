"""A fast subset of analyses/detection_suite.py: known policies get the right verdict."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def suite():
    spec = importlib.util.spec_from_file_location(
        "detection_suite", ROOT / "analyses" / "detection_suite.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


CASES = [
    ("reddoors", "train", "soft(exit, β=5)"),
    ("reddoors", "train", "soft(red_door, β=5)"),
    ("reddoors", "deploy", "soft(exit, β=5)"),
    ("reddoors", "deploy", "soft(red_door, β=5)"),
    ("reddoors", "deploy", "ε-greedy(exit, ε=0.1)"),
    ("reddoors", "deploy", "soft(shaped base, β=5)"),
    ("reddoors", "deploy", "uniform random"),
    # with the kettle water_pots is water_stuff: naming either is right
    ("waterplants", "train", "soft(water_pots, β=5)"),
    ("waterplants", "deploy", "soft(water_pots, β=5)"),
]


def run(suite, env: str, split: str, name: str, beta: float = 5.0) -> tuple[object, dict]:
    config = dataclasses.replace(
        suite.Config(),
        sample_sizes=(40,),
        main_size=40,
        betas=(beta,),
        epsilons=(0.1,),
        envs=(env,),
        splits=(split,),
        zoo=False,
        n_bootstrap=300,
    )
    case = next(c for c in suite.make_cases(config) if c.name == name)
    return case, suite.run_case(case, config)


@pytest.mark.parametrize(("env", "split", "name"), CASES)
def test_verdicts(suite, env: str, split: str, name: str) -> None:
    case, row = run(suite, env, split, name)
    assert row["correct@40"], (case.expected, row["verdict@40"])


def test_oracle_margin_separates_experts_from_near_random_ones(suite) -> None:
    """The evidence an oracle holds: ample for a β = 5 red-door expert, below the audit's
    log 20 for a β = 0.5 one (whose behaviour is close to a random walk's)."""
    _, sharp = run(suite, "reddoors", "deploy", "soft(red_door, β=5)")
    _, vague = run(suite, "reddoors", "deploy", "soft(red_door, β=0.5)", beta=0.5)
    assert sharp["oracle_margin@40"] > 10 * math.log(20.0)
    assert vague["oracle_margin@40"] < math.log(20.0)
    _, train = run(suite, "reddoors", "train", "soft(red_door, β=5)")
    assert math.isnan(train["oracle_margin@40"])  # nothing to name on train
