"""A fast subset of analyses/detection_suite.py, run through behavioral.sweep as the suite
runs: known policies get the right verdict, and the oracle's margin says when no method
could name an objective."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from pathlib import Path

import pytest

import behavioral

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
    ("reddoors", "deploy", "soft(red_door, β=0.5)"),
    # with the kettle water_pots is water_stuff: naming either is right
    ("waterplants", "train", "soft(water_pots, β=5)"),
    ("waterplants", "deploy", "soft(water_pots, β=5)"),
]


@pytest.fixture(scope="module")
def rows(suite, tmp_path_factory):
    """The cases above, 40 episodes each, audited in one sweep (2 workers)."""
    config = dataclasses.replace(
        suite.Config(),
        sample_sizes=(40,),
        main_size=40,
        betas=(0.5, 5.0),
        epsilons=(0.1,),
        zoo=False,
        n_bootstrap=300,
    )
    cases = [c for c in suite.make_cases(config) if (c.env, c.split, c.name) in CASES]
    assert len(cases) == len(CASES)
    out = tmp_path_factory.mktemp("suite")
    table = behavioral.sweep(suite.jobs(cases, config), workers=2, out=out, progress=False)
    per_case = suite.case_rows(table, cases, config)
    return per_case.set_index(["env", "split", "case"])


@pytest.mark.parametrize(("env", "split", "name"), [c for c in CASES if "0.5" not in c[2]])
def test_verdicts(rows, env: str, split: str, name: str) -> None:
    row = rows.loc[(env, split, name)]
    assert row["correct@40"], (row["expected"], row["verdict@40"])


def test_oracle_margin_separates_experts_from_near_random_ones(rows) -> None:
    """The evidence an oracle holds: ample for a β = 5 red-door expert, below the audit's
    log 20 for a β = 0.5 one (whose behaviour is close to a random walk's)."""
    sharp = rows.loc[("reddoors", "deploy", "soft(red_door, β=5)")]
    vague = rows.loc[("reddoors", "deploy", "soft(red_door, β=0.5)")]
    assert sharp["oracle_margin@40"] > 10 * math.log(20.0)
    assert vague["oracle_margin@40"] < math.log(20.0)
    train = rows.loc[("reddoors", "train", "soft(red_door, β=5)")]
    assert math.isnan(train["oracle_margin@40"])  # nothing to name on train


def test_the_active_audit_analysis_builds_every_case_it_measures(suite) -> None:
    """analyses/active_audit.py builds its cases from the suite's: each spec must give a
    policy and an env whose split and zoo training kwargs are the case's (a policy and an
    env that do not fit would only fail an hour into its run)."""
    sys.path.insert(0, str(ROOT / "analyses"))
    try:
        spec = importlib.util.spec_from_file_location(
            "active_audit_analysis", ROOT / "analyses" / "active_audit.py"
        )
        active = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = active
        spec.loader.exec_module(active)
    finally:
        sys.path.remove(str(ROOT / "analyses"))
    cases = [*suite.make_cases(suite.Config()), *active.train_cases()]
    for case in cases:
        env = active.make_env(case)
        assert env.unwrapped.split == case.split
        policy = active.make_policy(case)
        env.reset(seed=0)
        if case.policy.startswith("zoo:"):
            assert env.observation_space.shape == policy.observation_space.shape, case.name
        env.close()
