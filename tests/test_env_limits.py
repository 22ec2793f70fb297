"""Bounded envs: documented size limits with clear errors, and models that compute each
state's observation on demand instead of holding all of them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import behavioral_envs  # noqa: F401  (registers the ids)
import gymnasium as gym
import numpy as np
import pytest

from behavioral.errors import BehavioralError, InvalidModelError
from behavioral.tabular import StateObservations, TabularModel

RED = "behavioral/RedDoors-v0"
WATER = "behavioral/WaterPlants-v0"


@pytest.mark.parametrize(
    ("env_id", "kwargs", "match"),
    [
        (RED, {"size": 53}, r"size must be <= 51, got 53 .*RedDoorsEnv\.MAX_SIZE"),
        (RED, {"size": 151}, "size must be <= 51"),
        (RED, {"size": 10**9}, "size must be"),
        (RED, {"size": 7.0}, "size must be an int"),
        (RED, {"size": True}, "size must be an int"),
        (RED, {"n_doors": 2.0}, "n_doors must be an int"),
        (RED, {"openness": "half"}, "openness must be a number"),
        (RED, {"max_steps": 1001}, r"max_steps must be in \[1, 1000\].*MAX_STEPS"),
        (WATER, {"max_steps": 10**7}, "max_steps must be in"),
        (WATER, {"max_steps": 0}, "max_steps must be in"),
        (RED, {"tile_size": 10**5}, "tile_size must be in"),
        (WATER, {"tile_size": 2}, "tile_size must be in"),
    ],
)
def test_size_arguments_have_documented_bounds(env_id, kwargs, match) -> None:
    with pytest.raises(BehavioralError, match=match):
        gym.make(env_id, **kwargs)


def test_the_limits_can_be_raised_in_a_subclass() -> None:
    from behavioral_envs.red_doors import RedDoorsEnv

    class Bigger(RedDoorsEnv):
        MAX_SIZE = 61

    env = Bigger(size=55)
    env.reset(seed=0)
    assert env.tabular_model().n_states > 51 * 51 // 2


def test_observations_are_computed_on_demand_and_exact() -> None:
    env = gym.make(RED, split="deploy", size=7)
    env.reset(seed=3)
    u = env.unwrapped
    model = u.tabular_model()
    obs = model.observations
    assert isinstance(obs, StateObservations)
    assert obs.shape == (model.n_states, *env.observation_space.shape)
    assert obs.dtype == env.observation_space.dtype and obs.ndim == 4 and len(obs) == model.n_states
    full = np.asarray(obs)
    assert full.shape == obs.shape
    states = list(u._index)  # every state of the level, in model order
    for s, state in enumerate(states):
        np.testing.assert_array_equal(obs[s], u._observe(state))
        np.testing.assert_array_equal(full[s], u._observe(state))
    np.testing.assert_array_equal(obs[[2, 0]], full[[2, 0]])
    np.testing.assert_array_equal(obs[1:4, 8], full[1:4, 8])
    np.testing.assert_array_equal(obs[-1], full[-1])
    with pytest.raises(IndexError):
        obs[model.n_states]
    # the model keeps its own level's observations after the env moves on
    env.reset(seed=4)
    np.testing.assert_array_equal(np.asarray(model.observations), full)
    assert model.replace(discount=0.9).observations is obs


def test_state_observations_validate_what_they_compute() -> None:
    bad = StateObservations(3, (2,), np.float32, lambda s: np.zeros(5))
    with pytest.raises(InvalidModelError, match="shape"):
        bad[0]
    with pytest.raises(InvalidModelError):
        StateObservations(3, (2,), np.float32, "not callable")
    model = TabularModel(
        transitions=np.eye(3).reshape(3, 1, 3),
        initial_state_dist=np.ones(3) / 3,
        horizon=2,
        observations=StateObservations(3, (2,), np.float32, lambda s: np.full(2, s)),
    )
    np.testing.assert_array_equal(np.asarray(model.observations), [[0, 0], [1, 1], [2, 2]])
    with pytest.raises(InvalidModelError, match="rows"):
        model.replace(observations=StateObservations(4, (2,), np.float32, lambda s: np.zeros(2)))


def test_a_large_level_model_does_not_hold_its_observations() -> None:
    """A 51 x 51 level: 1,800+ states whose observations would take ~170 MB."""
    code = textwrap.dedent(
        """
        import resource
        import gymnasium as gym
        import behavioral_envs
        env = gym.make("behavioral/RedDoors-v0", size=51)
        env.reset(seed=0)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        model = env.unwrapped.tabular_model()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(model.n_states, model.observations.nbytes >> 20, round(after - before, 1))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    _n_states, full_mb, grew_mb = proc.stdout.split()
    assert int(full_mb) > 150  # what an eager model would hold
    assert float(grew_mb) < 40, proc.stdout
