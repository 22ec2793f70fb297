"""Fitting each candidate objective, and the null model, to the demonstrations.

A candidate explains the behaviour through its soft-optimal (Boltzmann-rational) policy at
an inverse temperature ``beta >= 0``, fitted by maximum causal likelihood, together with
nuisances that every candidate and the null model get alike:

- a per-step *living reward* (free in sign) on every non-absorbing state: urgency, or a
  preference for ending episodes sooner or later (only when episodes can end early);
- a *time preference*: the discount that fits best among ``discounts``;
- a *lapse rate*: the chance of a uniformly random action (``lapse=True``), or only when
  the data show lapses (``"auto"``: when it raises the best candidate's log-likelihood by
  at least ``min_evidence``).

The null model is the nuisances alone (the uniformly random policy without them).

All fits share one :class:`~behavioral.irl.maxent.LevelStack` (the levels and
demonstrations are validated and stacked once), and the fits across the discount grid
are warm-started from one another.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from behavioral.errors import InvalidArgumentError
from behavioral.irl.maxent import (
    Demonstration,
    LevelStack,
    MaxEntObjective,
    fit_lapse,
    fit_objective,
)
from behavioral.tabular import TabularModel, absorbing_states

__all__ = ["CandidateFit", "CandidateFitter", "Nuisances", "fit_threads"]

#: Largest inverse temperature fitted, relative to the candidate's reward scale.
BETA_MAX = 1e3
#: L-BFGS-B's tolerances for the fits: the gradient (per-episode feature expectations) and
#: the relative change of the mean per-episode log-likelihood. A verdict turns on
#: differences of 0.01 nats or more; these stop the fits within 1e-6 nats per episode of the optimum
#: (instead of wandering along the flat likelihood of a near-deterministic policy): the
#: mean log-likelihoods of the demo audits agree with 1e-15-tight fits to 1e-6 nats.
GTOL = 1e-6
FTOL = 1e-9


def fit_threads() -> int:
    """Threads for fitting candidates in parallel: ``BEHAVIORAL_FIT_THREADS`` if set (1 in
    the worker processes of a sweep, which are parallel already), else the CPUs this process
    may use, at most 4."""
    env = os.environ.get("BEHAVIORAL_FIT_THREADS")
    if env is not None and env.strip().isdigit() and int(env) >= 1:
        return int(env)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


@dataclasses.dataclass(frozen=True)
class Nuisances:
    """Which nuisances every candidate (and the null model) is fitted with.

    Attributes:
        living_reward: fit a per-step reward for being alive (ignored when no level has
            an absorbing state: it cannot change any policy there).
        discounts: time preferences tried, the best by likelihood kept; empty: the
            models' own discount only.
        lapse: True, False, or ``"auto"`` (used when it raises the best candidate's total
            log-likelihood by at least ``min_evidence``).
        min_evidence: the gain that makes ``"auto"`` use the lapse.
    """

    living_reward: bool = True
    discounts: tuple[float, ...] = (1.0, 0.99, 0.95, 0.9)
    lapse: bool | str = "auto"
    min_evidence: float = math.log(20.0)


@dataclasses.dataclass(frozen=True)
class CandidateFit:
    """A candidate's fit.

    Attributes:
        name, role: the candidate (``"null"`` for the null model) and its role
            (``"base"``, ``"proxy"``, ``"alias"``, ``"null"``).
        beta: fitted inverse temperature on the candidate's own reward scale.
        living_reward: fitted weight of the per-step nuisance (0 when not fitted).
        discount: the time preference that fitted best.
        lapse: fitted probability of a uniformly random action.
        episode_ll: (N,) log-likelihood of each episode's actions.
    """

    name: str
    role: str
    beta: float
    living_reward: float
    discount: float
    lapse: float
    episode_ll: np.ndarray

    @property
    def total(self) -> float:
        """The log-likelihood summed over episodes."""
        return float(self.episode_ll.sum())


def _as_state_action(reward: np.ndarray, n_actions: int) -> np.ndarray:
    return reward if reward.ndim == 2 else np.repeat(reward[:, None], n_actions, axis=1)


class CandidateFitter:
    """Fits candidates to one dataset; the stack and every lapse-free fit are kept.

    Args:
        models: the levels' tabular models.
        demonstrations: the episodes (``level`` indexes ``models``).
        nuisances: see :class:`Nuisances`.
        stack: a stack already built from them (another fitter's).
    """

    def __init__(
        self,
        models: Sequence[TabularModel],
        demonstrations: Sequence[Demonstration],
        nuisances: Nuisances,
        *,
        stack: LevelStack | None = None,
    ) -> None:
        self.models = list(models)
        self.stack = LevelStack(self.models, demonstrations) if stack is None else stack
        self.nuisances = nuisances
        self.alive = [(~absorbing_states(m)).astype(np.float64) for m in self.models]
        self.living = nuisances.living_reward and any(np.any(a == 0.0) for a in self.alive)
        own = self.models[0].discount
        self.discounts = tuple(sorted({float(g) for g in nuisances.discounts}, reverse=True))
        self.discounts = self.discounts or (own,)
        #: whether the last fit_all gave every candidate and the null model a lapse
        self.lapse_used = nuisances.lapse is True
        # lapse-free fits by (role, name, discount): (problem, theta, episode_ll)
        self._fits: dict[
            tuple[str, str, float], tuple[MaxEntObjective, np.ndarray, np.ndarray]
        ] = {}
        # lapse fits by (lapse-free key, starting weights' bytes, starting lapse): the
        # "auto" trial of the best candidate is repeated by its full lapse fit when it is
        # at the first discount of the grid
        self._lapse_fits: dict[tuple[Any, ...], tuple[np.ndarray, float, np.ndarray]] = {}

    # -- one candidate ------------------------------------------------------------------

    def _columns(
        self, rewards: Sequence[np.ndarray] | None, living: bool, costs: bool = True
    ) -> tuple[list[np.ndarray], tuple[str, ...], list[tuple[float | None, float | None]], float]:
        """Per-level (S, A, K) feature columns, their names, bounds and the reward scale
        (``costs=False``: the living reward bounded below by 0)."""
        A = self.stack.n_actions
        scale = 0.0 if rewards is None else max(float(np.max(np.abs(r))) for r in rewards)
        cols: list[list[np.ndarray]] = [[] for _ in self.models]
        names: list[str] = []
        bounds: list[tuple[float | None, float | None]] = []
        if scale > 0.0:
            for c, r in zip(cols, rewards or []):
                c.append(_as_state_action(r, A) / scale)
            names.append("objective")
            bounds.append((0.0, BETA_MAX))
        if living:
            for c, alive in zip(cols, self.alive):
                c.append(_as_state_action(alive, A))
            names.append("alive")
            bounds.append((-BETA_MAX if costs else 0.0, BETA_MAX))
        feats = [np.stack(c, axis=-1) for c in cols] if names else []
        return feats, tuple(names), bounds, scale

    def _uniform(self, name: str, role: str) -> CandidateFit:
        """Nothing to fit: the uniformly random policy."""
        A = self.stack.n_actions
        ll = np.array([-d.actions.shape[0] * math.log(A) for d in self.stack.demos])
        return CandidateFit(name, role, 0.0, 0.0, self.discounts[0], 0.0, ll)

    def fit(
        self,
        name: str,
        role: str,
        rewards: Sequence[np.ndarray] | None,
        *,
        lapse: bool = False,
        discounts: Sequence[float] | None = None,
        living: bool | None = None,
    ) -> CandidateFit:
        """The best fit over the discount grid (``rewards=None``: the null model), or over
        ``discounts`` when given; ``living=False`` leaves the living reward out even where
        it applies (default: the fitter's own setting).

        Each discount's lapse-free fit starts from the previous discount's solution and
        is kept, so that refining it with a lapse later does not repeat it.
        """
        living = self.living if living is None else (living and self.living)
        feats, names, bounds, scale = self._columns(rewards, living)
        if not names:
            return self._uniform(name, role)
        best: CandidateFit | None = None
        init: np.ndarray | None = None
        lapse_init: tuple[np.ndarray, float] | None = None
        for gamma in self.discounts if discounts is None else discounts:
            key = (role, name, gamma, living)
            if key not in self._fits:
                problem = MaxEntObjective.from_stack(self.stack, feats, names, discount=gamma)
                res = fit_objective(
                    problem, init=init, bounds=bounds, gtol=GTOL, ftol=FTOL, max_iter=300
                )
                self._fits[key] = (
                    problem,
                    res.weights,
                    problem.episode_log_likelihoods(res.weights),
                )
            problem, theta, ll = self._fits[key]
            init = theta
            rate = 0.0
            if lapse:
                # from the previous discount's lapse fit when there is one (the surfaces
                # are alike), else from this discount's lapse-free fit
                start_theta, start = lapse_init or (theta, None)
                lapse_key = (key, start_theta.tobytes(), start)
                if lapse_key not in self._lapse_fits:
                    self._lapse_fits[lapse_key] = fit_lapse(
                        problem, start_theta, bounds=bounds, start=start, gtol=GTOL, ftol=FTOL
                    )
                th, lam, ll_lapse = self._lapse_fits[lapse_key]
                lapse_init = (th, lam)
                if ll_lapse.sum() > ll.sum() + 1e-9:  # else the lapse-free fit stands
                    theta, rate, ll = th, lam, ll_lapse
            beta = float(theta[0]) / scale if scale > 0.0 else 0.0
            alive = float(theta[-1]) if living else 0.0
            fit = CandidateFit(name, role, beta, alive, gamma, rate, ll)
            if best is None or fit.total > best.total + 1e-9:
                best = fit
        assert best is not None
        return best

    # -- every candidate ------------------------------------------------------------------

    def fit_all(
        self, candidates: Mapping[str, Sequence[np.ndarray]], roles: Mapping[str, str]
    ) -> tuple[dict[str, CandidateFit], CandidateFit, float | None]:
        """Fit every candidate and the null model with the configured nuisances.

        The candidates' fits are independent: they run on up to :func:`fit_threads` threads
        (the compiled kernels release the GIL); the result does not depend on the number.

        Returns:
            ``(fits by name, null fit, lapse_gain)``: ``lapse_gain`` is the best
            candidate's log-likelihood gain from the lapse when ``lapse="auto"`` tried it
            (None otherwise).
        """
        mode = self.nuisances.lapse
        jobs = {n: (roles[n], candidates[n]) for n in candidates}
        jobs["\0null"] = ("null", None)  # (a name no candidate can have)

        def run(names: Sequence[str], lapse: bool) -> dict[str, CandidateFit]:
            def one(n: str) -> CandidateFit:
                role, rewards = jobs[n]
                return self.fit("null" if role == "null" else n, role, rewards, lapse=lapse)

            workers = min(fit_threads(), len(names))
            if workers <= 1:
                return {n: one(n) for n in names}
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                return dict(zip(names, pool.map(one, names)))

        self.lapse_used = mode is True
        fits = run(list(jobs), self.lapse_used)
        gain = None
        if mode == "auto" and len(fits) > 1:
            # Do the data show lapses? The best candidate, at the discount its lapse-free
            # fit chose, refitted with a lapse: if that raises its log-likelihood by
            # min_evidence, every candidate and the null model get the lapse.
            top = max((n for n in fits if n in candidates), key=lambda n: fits[n].total)
            trial = self.fit(
                top, roles[top], candidates[top], lapse=True, discounts=(fits[top].discount,)
            )
            gain = trial.total - fits[top].total
            if gain >= self.nuisances.min_evidence:
                fits = run(list(jobs), True)
                self.lapse_used = True
        null = fits.pop("\0null")
        return {n: fits[n] for n in candidates}, null, gain

    def without_living_reward(
        self, candidates: Mapping[str, Sequence[np.ndarray]], roles: Mapping[str, str]
    ) -> dict[str, CandidateFit]:
        """Each candidate fitted without the living reward (its objective, time preference
        and -- when :meth:`fit_all` gave the null model a lapse -- the lapse), on parallel
        threads; empty when no living reward is fitted. Compared with the null model, so
        fitted with the same lapse setting: a lapse-free candidate would lose to a null
        model with lapses by the lapse's gain, not by what it explains."""
        if not self.living:
            return {}
        names = list(candidates)
        lapse = self.lapse_used

        def one(n: str) -> CandidateFit:
            return self.fit(n, roles[n], candidates[n], living=False, lapse=lapse)

        workers = min(fit_threads(), len(names))
        if workers <= 1:
            return {n: one(n) for n in names}
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            return dict(zip(names, pool.map(one, names)))

    def uniform_log_likelihood(self) -> float:
        """The total log-likelihood of uniformly random actions."""
        return self._uniform("uniform", "null").total

    # -- for anytime-valid tests (behavioral.auditing.active) -----------------------------
    # A universal-inference e-value divides a predictable likelihood (a mixture over a
    # class's members, :meth:`member_log_likelihoods`) by the rival class's *maximum*
    # likelihood over all its members (:meth:`max_likelihood`): the true likelihood,
    # lapse included, not the MaxEnt dual the lapse-free fits maximise (the two differ
    # when the discount is below 1).

    def member_log_likelihoods(
        self,
        rewards: Sequence[np.ndarray] | None,
        members: Sequence[tuple[float, float, float, float]],
    ) -> np.ndarray:
        """(N, M) log-likelihood of each episode under each member of a class.

        Args:
            rewards: the class's objective, one array per level (None: the null model).
            members: M tuples ``(beta, living_reward, discount, lapse)``: ``beta`` on the
                rewards' own scale (ignored for the null model), ``living_reward`` per
                step while the episode runs, ``discount`` in (0, 1], ``lapse`` in [0, 1).
        """
        A = self.stack.n_actions
        cols = [[_as_state_action(alive, A)] for alive in self.alive]
        if rewards is not None:
            for c, r in zip(cols, rewards):
                c.insert(0, _as_state_action(r, A))
        feats = [np.stack(c, axis=-1) for c in cols]
        names = ("objective", "alive") if rewards is not None else ("alive",)
        out = np.empty((len(self.stack.demos), len(members)))
        problems: dict[float, MaxEntObjective] = {}
        for m, (beta, living, gamma, lapse) in enumerate(members):
            gamma = float(gamma)
            if gamma not in problems:
                problems[gamma] = MaxEntObjective.from_stack(
                    self.stack, feats, names, discount=gamma
                )
            theta = np.array([beta, living] if rewards is not None else [living], dtype=np.float64)
            out[:, m] = problems[gamma].lapse_episode_log_likelihoods(theta, float(lapse))
        return out

    def max_likelihood(
        self,
        name: str,
        role: str,
        rewards: Sequence[np.ndarray] | None,
        starts: Sequence[tuple[float, float, float, float]] = (),
        *,
        costs: bool = True,
    ) -> CandidateFit:
        """The class's maximum likelihood over its inverse temperature, living reward,
        the discount grid and a lapse rate (``costs=False``: non-negative living rewards
        only, as in :func:`~behavioral.auditing.sequential.member_grid`).

        The likelihood with a lapse is not concave: the weights and lapse are fitted
        (:func:`~behavioral.irl.maxent.fit_lapse`, the true likelihood) from each of
        ``starts`` -- members ``(beta, living_reward, discount, lapse)`` as in
        :meth:`member_log_likelihoods`, e.g. the best member of a grid at each discount
        and the previous maximum -- and the best is returned. Without starts: :meth:`fit`
        with ``lapse=True`` (a lapse-free fit and its lapse refinement at every discount).
        """
        feats, names, bounds, scale = self._columns(rewards, self.living, costs)
        if not names:
            return self._uniform(name, role)
        if not starts:
            if not costs:
                raise InvalidArgumentError("costs=False needs starts")
            return self.fit(name, role, rewards, lapse=True)
        problems: dict[float, MaxEntObjective] = {}
        best: CandidateFit | None = None
        for beta, living, gamma, lapse in starts:
            gamma = float(gamma)
            if gamma not in problems:
                problems[gamma] = MaxEntObjective.from_stack(
                    self.stack, feats, names, discount=gamma
                )
            theta0 = ([min(beta * scale, BETA_MAX)] if scale > 0.0 else []) + (
                [float(np.clip(living, -BETA_MAX if costs else 0.0, BETA_MAX))]
                if self.living
                else []
            )
            th, rate, ll = fit_lapse(
                problems[gamma],
                np.array(theta0),
                bounds=bounds,
                start=min(max(float(lapse), 1e-3), 0.99),
                gtol=GTOL,
                ftol=FTOL,
            )
            if best is None or ll.sum() > best.total + 1e-9:
                beta_fit = float(th[0]) / scale if scale > 0.0 else 0.0
                alive = float(th[-1]) if self.living else 0.0
                best = CandidateFit(name, role, beta_fit, alive, gamma, rate, ll)
        assert best is not None
        return best

    def likelihoods(self, rewards: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) episode log-likelihoods of the soft-optimal policy of ``rewards`` as given
        (temperature 1, the models' discount, no nuisance): e.g. a recovered reward."""
        A = self.stack.n_actions
        feats = [_as_state_action(r, A)[..., None] for r in rewards]
        problem = MaxEntObjective.from_stack(self.stack, feats, ("reward",))
        return problem.episode_log_likelihoods(np.ones(1))


def describe(fit: CandidateFit) -> dict[str, Any]:
    """The fitted values of a candidate as a plain dict (for tables)."""
    return {
        "beta": fit.beta,
        "living_reward": fit.living_reward,
        "discount": fit.discount,
        "lapse": fit.lapse,
    }
