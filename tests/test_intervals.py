"""Tests of the MaxEnt weight intervals (``behavioral.irl.intervals``)."""

from __future__ import annotations

import numpy as np
import pytest
from doors_model import doors

from behavioral.errors import InvalidArgumentError
from behavioral.irl.intervals import fisher_information, maxent_weight_intervals
from behavioral.irl.maxent import MaxEntObjective, maxent_irl
from behavioral.sampling import sample_demonstrations
from behavioral.tabular import soft_bellman


def expert(model, reward, n, seed):
    _, _, pi = soft_bellman(model, reward)
    return sample_demonstrations(model, pi, n, np.random.default_rng(seed))


def test_weight_intervals_shrink_with_more_data_as_one_over_sqrt_n() -> None:
    m = doors()
    demos = expert(m, 3 * m.objectives["exit"], 30, seed=3)
    rec = maxent_irl(m, demos, l2=1e-2)
    ci = maxent_weight_intervals([m], demos, rec)
    assert list(ci.index) == list(m.feature_names)
    assert np.all(ci["low"] <= ci["weight"]) and np.all(ci["weight"] <= ci["high"])
    assert np.all(ci["se"] > 0)
    # Four copies of the same episodes: same mean objective, same fit, 4x the information.
    rec4 = maxent_irl(m, demos * 4, l2=1e-2)
    np.testing.assert_allclose(rec4.weights, rec.weights, atol=1e-6)
    ci4 = maxent_weight_intervals([m], demos * 4, rec4)
    np.testing.assert_allclose(ci4["se"].to_numpy(), ci["se"].to_numpy() / 2, rtol=1e-3)
    # A 99% interval is wider than a 95% one.
    wide = maxent_weight_intervals([m], demos, rec, confidence=0.99)
    assert np.all(wide["high"] - wide["low"] > ci["high"] - ci["low"])
    with pytest.raises(InvalidArgumentError, match="confidence"):
        maxent_weight_intervals([m], demos, rec, confidence=1.0)


def test_fisher_information_is_the_l2_penalty_plus_a_covariance() -> None:
    """The Hessian of the regularised dual is symmetric, and l2 * I above the
    unregularised one (a covariance of feature counts: positive semi-definite)."""
    m = doors()
    demos = expert(m, 3 * m.objectives["exit"], 20, seed=5)
    theta = maxent_irl(m, demos, l2=1e-2).weights
    plain = fisher_information(MaxEntObjective([m], demos, l2=0.0), theta)
    penalised = fisher_information(MaxEntObjective([m], demos, l2=0.5), theta)
    np.testing.assert_allclose(plain, plain.T, atol=1e-12)
    np.testing.assert_allclose(penalised - plain, 0.5 * np.eye(len(theta)), atol=1e-5)
    assert np.linalg.eigvalsh(plain).min() > -1e-6


def test_weight_intervals_only_for_named_maxent_features() -> None:
    m = doors()
    demos = expert(m, 3 * m.objectives["exit"], 10, seed=4)
    one_hot = maxent_irl(m, demos, features="states", l2=1e-2)
    assert maxent_weight_intervals([m], demos, one_hot) is None
