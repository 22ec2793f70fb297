"""Confidence intervals of MaxEnt feature weights (Laplace approximation).

Next to :mod:`behavioral.irl.maxent`, whose objective it differentiates: the report's
weight plot and ``behavioral irl`` both use :func:`maxent_weight_intervals`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.stats

from behavioral.errors import InvalidArgumentError
from behavioral.irl.maxent import Demonstration, MaxEntObjective, RecoveredReward
from behavioral.tabular import TabularModel

__all__ = ["MAX_INTERVAL_FEATURES", "fisher_information", "maxent_weight_intervals"]

#: Above this many features (e.g. one-hot states) intervals are not computed: 2K gradient
#: evaluations and a K x K matrix, for weights nobody reads one by one.
MAX_INTERVAL_FEATURES = 64


def fisher_information(problem: MaxEntObjective, theta: np.ndarray) -> np.ndarray:
    """(K, K) Hessian of the regularised MaxEnt dual ``-g`` at ``theta``.

    It is the mean over episodes of the covariance of discounted feature counts under the
    policy of ``theta``, plus ``l2 * I``: the expected Fisher information per episode. It is
    taken by central finite differences of the exact gradient (2K gradient evaluations,
    step ``1e-4 * max(1, |theta_k|)``) and symmetrised.

    Args:
        problem: the MaxEnt objective the weights were fitted on.
        theta: (K,) weights.
    """
    theta = np.asarray(theta, dtype=np.float64)
    K = theta.shape[0]
    hess = np.zeros((K, K))
    for k in range(K):
        h = 1e-4 * max(1.0, abs(theta[k]))
        e = np.zeros(K)
        e[k] = h
        g_plus = problem.value_and_grad(theta + e)[1]
        g_minus = problem.value_and_grad(theta - e)[1]
        hess[:, k] = (g_plus - g_minus) / (2 * h)
    return 0.5 * (hess + hess.T)


def maxent_weight_intervals(
    models: Sequence[TabularModel],
    demonstrations: Sequence[Demonstration],
    recovered: RecoveredReward,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame | None:
    """Confidence intervals of MaxEnt feature weights from the Fisher information.

    With ``H`` from :func:`fisher_information` and ``N`` episodes, the Laplace
    approximation ``theta ~ N(theta_hat, (N H)^-1)`` (pseudo-inverse for flat directions)
    gives each weight's standard error and a normal interval. It is asymptotic: it assumes
    the model class is right and does not resample episodes (a refitting bootstrap would,
    at B times the cost of the fit).

    Args:
        models: the levels the reward was fitted on.
        demonstrations: the fitted demonstrations (``level`` indexes ``models``).
        recovered: the MaxEnt fit.
        confidence: level of the intervals, in (0, 1).

    Returns:
        DataFrame indexed by feature name with ``weight``, ``se``, ``low``, ``high``;
        None when the reward was not fitted by MaxEnt on at most
        :data:`MAX_INTERVAL_FEATURES` named model features.
    """
    if not 0.0 < confidence < 1.0:
        raise InvalidArgumentError(f"confidence must be in (0, 1), got {confidence!r}")
    if recovered.method != "maxent" or recovered.feature_mode != "model":
        return None
    if len(recovered.feature_names) > MAX_INTERVAL_FEATURES:
        return None
    problem = MaxEntObjective(list(models), list(demonstrations), features="model", l2=recovered.l2)
    theta = np.asarray(recovered.weights, dtype=np.float64)
    cov = np.linalg.pinv(problem.n_demos * fisher_information(problem, theta), hermitian=True)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    zq = float(scipy.stats.norm.ppf(0.5 + confidence / 2))
    return pd.DataFrame(
        {"weight": theta, "se": se, "low": theta - zq * se, "high": theta + zq * se},
        index=pd.Index(recovered.feature_names, name="feature"),
    )
