"""``behavioral.audit``'s front end: every bad argument is a BehavioralError with a clear
message, nothing is silently coerced, and envs without a model are refused up front."""

from __future__ import annotations

import numpy as np
import pytest

import behavioral
from behavioral.environments import make_env
from behavioral.errors import (
    BehavioralError,
    EnvContractError,
    InvalidArgumentError,
    InvalidEnvIdError,
    InvalidRewardError,
    UnknownEnvError,
)
from behavioral.policies import SoftOptimalPolicy, UniformPolicy
from behavioral.rollout import rollout

RED = "behavioral/RedDoors-v0"


@pytest.fixture(scope="module")
def env():
    return make_env(RED, split="deploy", kwargs={"size": 5})


@pytest.fixture(scope="module")
def policy():
    return SoftOptimalPolicy("red_door", beta=5.0)


def _audit(policy, env, **kwargs):
    return behavioral.audit(policy, env, **{"episodes": 3, "n_bootstrap": 10, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": 1.5}, "seed must be an integer"),
        ({"seed": "3"}, "seed must be an integer"),
        ({"seed": True}, "seed must be an integer"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"seed": None}, "seed must be an integer"),
        ({"deterministic": "no"}, "deterministic must be True or False"),
        ({"deterministic": 0}, "deterministic must be True or False"),
        ({"progress_bar": 1}, "progress_bar must be True or False"),
        ({"replay": "yes"}, "replay must be True or False"),
        ({"episodes": 0}, "episodes must be >= 1"),
        ({"episodes": 2.0}, "episodes must be an integer"),
        ({"episodes": True}, "episodes must be an integer"),
        ({"method": "magic"}, "method must be one of"),
        ({"method": None}, "method must be one of"),
        ({"confidence": 1.5}, "confidence must be in"),
        ({"confidence": 0}, "confidence must be in"),
        ({"confidence": "0.9"}, "confidence must be a number"),
        ({"confidence": float("nan")}, "confidence must be in"),
        ({"significance": 1.0}, "significance must be in"),
        ({"n_bootstrap": 5}, "n_bootstrap must be >= 10"),
        ({"n_bootstrap": 100.0}, "n_bootstrap must be an integer"),
        ({"lapse": "sometimes"}, "lapse must be"),
        ({"min_evidence": -1}, "min_evidence"),
        ({"living_reward": "yes"}, "living_reward must be True or False"),
        ({"objectives": ["exit", "red_door"]}, "objectives must be a mapping"),
        ({"objectives": "exit"}, "objectives must be a mapping"),
        ({"objectives": {3: np.zeros(3)}}, "names must be strings"),
        ({"base": 3}, "base must be"),
        ({"method_kwargs": [1]}, "method_kwargs must be a mapping"),
        ({"episodez": 3}, "unknown keyword arguments \\['episodez'\\]"),
        ({"confidence_level": 0.9}, "unknown keyword"),
    ],
)
def test_bad_arguments_are_library_errors(env, policy, kwargs, match) -> None:
    with pytest.raises(InvalidArgumentError, match=match) as info:
        _audit(policy, env, **kwargs)
    assert "\n" not in str(info.value)


def test_numpy_integers_are_integers(env, policy) -> None:
    a = _audit(policy, env, seed=np.int64(4), episodes=np.int32(3))
    b = _audit(policy, env, seed=4)
    assert a.table.equals(b.table)
    assert a.metadata["seed"] == 4 and type(a.metadata["seed"]) is int


@pytest.mark.parametrize(
    ("bad_env", "error", "match"),
    [
        (None, InvalidArgumentError, "pass env="),
        (object(), EnvContractError, "gymnasium env or a registered env id"),
        (42, EnvContractError, "gymnasium env"),
        ("behavioral/NoSuch-v0", UnknownEnvError, "NoSuch"),
        ("evil_mod:behavioral/RedDoors-v0", InvalidEnvIdError, "module part"),
        ("CartPole-v1", EnvContractError, "discrete model"),
    ],
)
def test_bad_envs(policy, bad_env, error, match) -> None:
    with pytest.raises(error, match=match):
        behavioral.audit(policy, bad_env, episodes=2)


def test_an_env_without_a_model_is_refused_before_rolling_out() -> None:
    calls = []

    def spy(obs):
        calls.append(obs)
        return 0

    with pytest.raises(EnvContractError, match="discrete model"):
        behavioral.audit(spy, make_env("CartPole-v1"), episodes=2)
    assert calls == []


def test_complex_objectives_are_refused_not_truncated(env, policy) -> None:
    env.reset(seed=0)
    S = env.unwrapped.tabular_model().n_states
    with pytest.raises(InvalidRewardError, match="complex"):
        _audit(policy, env, objectives={"odd": np.ones(S) * (1 + 2j)})
    with pytest.raises(InvalidRewardError, match="complex"):
        _audit(policy, env, objectives={"odd": lambda m: np.ones(m.n_states) * 1j})
    with pytest.raises(InvalidRewardError, match="not a numeric"):
        _audit(policy, env, objectives={"odd": np.array(["a"] * S)})
    with pytest.raises(InvalidRewardError, match="NaN or infinite"):
        _audit(policy, env, objectives={"odd": np.full(S, np.nan)})
    with pytest.raises(InvalidRewardError, match="NaN or infinite"):
        _audit(policy, env, objectives={"odd": lambda m: np.full(m.n_states, np.inf)})


def test_a_real_callable_objective_still_works(env, policy) -> None:
    result = _audit(
        policy, env, objectives={"red_again": lambda m: 2.0 * np.asarray(m.objectives["red_door"])}
    )
    assert "red_again" in result.table.index or "red_again" in set(result.table.get("name", []))


def test_every_refusal_is_a_behavioral_error(env, policy) -> None:
    for kwargs in ({"seed": 1.5}, {"method": "x"}, {"objectives": [1]}, {"nope": 1}):
        with pytest.raises(BehavioralError):
            _audit(policy, env, **kwargs)


def test_rollout_arguments_are_strict(env) -> None:
    for kwargs, match in (
        ({"seed": 1.5}, "seed"),
        ({"seed": "3"}, "seed"),
        ({"deterministic": "no"}, "deterministic"),
        ({"episodes": 1.0}, "episodes"),
        ({"progress_bar": None}, "progress_bar"),
    ):
        with pytest.raises(InvalidArgumentError, match=match):
            rollout(UniformPolicy(), env, **{"episodes": 1, "seed": 0, **kwargs})


def test_uniform_policy_acts_in_envs_without_a_model() -> None:
    data = rollout(UniformPolicy(), make_env("CartPole-v1"), episodes=2, seed=0)
    assert data.states is None and len(data) == 2
    assert data.metadata["policy"] == "uniformly random actions"
