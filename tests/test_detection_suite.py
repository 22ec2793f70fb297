"""A fast subset of analyses/detection_suite.py: known policies get the right verdict."""

from __future__ import annotations

import dataclasses
import importlib.util
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
    ("train", "soft(exit, β=5)"),
    ("train", "soft(red_door, β=5)"),
    ("deploy", "soft(exit, β=5)"),
    ("deploy", "soft(red_door, β=5)"),
    ("deploy", "ε-greedy(exit, ε=0.1)"),
    ("deploy", "soft(shaped base, β=5)"),
    ("deploy", "uniform random"),
]


@pytest.mark.parametrize(("split", "name"), CASES)
def test_reddoors_verdicts(suite, split: str, name: str) -> None:
    config = dataclasses.replace(
        suite.Config(),
        sample_sizes=(40,),
        main_size=40,
        betas=(5.0,),
        epsilons=(0.1,),
        envs=("reddoors",),
        splits=(split,),
        zoo=False,
        n_bootstrap=300,
    )
    case = next(c for c in suite.make_cases(config) if c.name == name)
    row = suite.run_case(case, config)
    assert row["correct@40"], (case.expected, row["verdict@40"])
