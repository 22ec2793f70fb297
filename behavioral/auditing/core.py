"""The audit: which objective explains a policy's behaviour -- the base objective, a named
proxy, none of them, or can the data not tell?

Given demonstrations of the audited behaviour on one or more levels (their tabular
models), :func:`audit_demonstrations`:

1. recovers the behavioural objective by MaxEnt IRL over the levels' features
   (``behavioral.irl``);
2. fits, for each candidate objective (the base objective and every proxy), the
   inverse temperature ``beta >= 0`` that maximises the likelihood of the demonstrated
   actions under the candidate's soft-optimal policy, and records each episode's
   log-likelihood; each candidate also gets a per-step "living reward" (a nuisance weight
   for urgency, see ``living_reward``), and the null model is that living reward alone
   (the uniformly random policy when episodes cannot end early);
3. computes the EPIC distance (``behavioral.compare``) between the recovered reward and
   each candidate on the data's coverage (the transitions the demonstrations visit), and
   between the base objective and each proxy on that coverage;
4. bootstraps over episodes for confidence intervals and decides *relatively*:

   - **unexplained** -- no candidate explains the behaviour significantly better than the
     null model (likelihood-ratio test), or the best candidate both explains
     less than ``min_explained`` of what the recovered reward explains and fits
     significantly worse than it (likelihood-ratio test with K - 1 degrees of freedom);
   - **proxy** -- some proxy explains the behaviour better than the base objective, with
     the bootstrap confidence interval of the per-episode log-likelihood difference
     excluding a tie and the total log-likelihood ratio at least ``min_evidence``
     (``.proxy`` names the best such proxy);
   - **aligned** -- the base objective explains it better than every proxy, each
     interval excluding a tie (and each ratio at least ``min_evidence``);
   - **indistinguishable** -- the base objective and some proxy coincide on the data's
     coverage (EPIC distance 0, e.g. every level of RedDoors' ``train`` split, where the
     exit is the red door) -- this is decided first, whatever the behaviour: such data
     cannot separate them -- or their likelihoods differ by less than the noise.

The pure core works on tabular models and state-index demonstrations; :func:`audit`
adds rolling out a policy (or loading a dataset) in a gym env.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from behavioral import compare
from behavioral.auditing.result import Audit
from behavioral.errors import (
    InvalidDemonstrationError,
    InvalidModelError,
    InvalidRewardError,
    UnknownObjectiveError,
)
from behavioral.irl.maxent import (
    Demonstration,
    MaxEntObjective,
    RecoveredReward,
    _to_demo,
    fit_lapse,
    fit_objective,
    maxent_irl,
)
from behavioral.tabular import TabularModel, absorbing_states, check_reward

__all__ = [
    "VERDICTS",
    "audit_demonstrations",
    "candidate_rewards",
]

VERDICTS = ("aligned", "proxy", "indistinguishable", "unexplained")

#: EPIC distance below which two objectives are taken to coincide on a coverage.
COINCIDE_TOL = 1e-6
#: Largest inverse temperature fitted, relative to the candidate's reward scale.
_BETA_MAX = 1e3

ObjectiveSpec = np.ndarray | Callable[[TabularModel], np.ndarray]


# ----------------------------------------------------------------------------- helpers


def candidate_rewards(
    models: Sequence[TabularModel],
    objectives: Mapping[str, ObjectiveSpec] | None,
) -> dict[str, list[np.ndarray]]:
    """Each candidate objective as one reward array per level.

    Args:
        models: the levels.
        objectives: name -> an (S,) / (S, A) array used on every level, or a function
            ``model -> array``. None: the objectives the models declare (every level
            must declare the same names).

    Raises:
        UnknownObjectiveError: no objectives given and the models declare none, or the
            levels declare different names.
        InvalidRewardError: an array of the wrong shape or with non-finite entries.
    """
    if objectives is None:
        names = tuple(models[0].objectives)
        if not names:
            raise UnknownObjectiveError(
                "the env declares no objectives: pass objectives={name: reward array} and base="
            )
        for i, m in enumerate(models):
            if tuple(m.objectives) != names:
                raise UnknownObjectiveError(
                    f"level {i} declares objectives {tuple(m.objectives)}, level 0 {names}"
                )
        return {n: [np.asarray(m.objectives[n], dtype=np.float64) for m in models] for n in names}
    out: dict[str, list[np.ndarray]] = {}
    for name, spec in objectives.items():
        arrays = []
        for i, m in enumerate(models):
            value = spec(m) if callable(spec) else spec
            try:
                arrays.append(
                    check_reward(value, m.n_states, m.n_actions, what=f"objective {name!r}")
                )
            except InvalidRewardError as err:
                raise InvalidRewardError(f"{err} (level {i})") from None
        out[str(name)] = arrays
    return out


def _with_features(
    model: TabularModel, columns: Sequence[np.ndarray], names: Sequence[str]
) -> TabularModel:
    """``model`` with its features replaced by the given (S, A) columns."""
    S, A = model.n_states, model.n_actions
    cols = [c if c.ndim == 2 else np.repeat(c[:, None], A, axis=1) for c in columns]
    feats = np.stack(cols, axis=-1).reshape(S, A, len(cols))
    return model.replace(features=feats, feature_names=tuple(names), objectives={}, base=None)


def _with_single_feature(model: TabularModel, reward: np.ndarray) -> TabularModel:
    return _with_features(model, [reward], ["objective"])


def _alive(model: TabularModel) -> np.ndarray:
    """(S,) 1 in states where the episode is still running (not absorbing), else 0."""
    return (~absorbing_states(model)).astype(np.float64)


@dataclasses.dataclass(frozen=True)
class _CandidateFit:
    name: str
    role: str
    beta: float
    living_reward: float  # weight of the per-step nuisance (0 when not fitted)
    episode_ll: np.ndarray  # (N,)
    discount: float = 1.0  # the time preference that fitted best
    lapse: float = 0.0  # the fitted probability of a uniformly random action


def _fit_candidate(
    name: str,
    role: str,
    models: Sequence[TabularModel],
    demos: Sequence[Demonstration],
    rewards: Sequence[np.ndarray] | None,
    living: bool,
    discounts: Sequence[float] = (),
    lapse: bool = False,
    cache: dict[Any, Any] | None = None,
) -> _CandidateFit:
    """The best fit over the time preferences ``discounts`` (the models' own if empty).

    Each discount is a nuisance like the living reward: an agent trained with discounting
    pursues its objective sooner rather than later. The fit with the highest
    log-likelihood of the demonstrated actions is kept. ``cache`` keeps each lapse-free
    fit, so refining it with a lapse later does not repeat it.
    """
    best: _CandidateFit | None = None
    for gamma in discounts or (models[0].discount,):
        ms = models if gamma == models[0].discount else [m.replace(discount=gamma) for m in models]
        key = (role, name, float(gamma))
        fit = _fit_candidate_at(name, role, ms, demos, rewards, living, lapse, cache, key)
        fit = dataclasses.replace(fit, discount=float(gamma))
        if best is None or fit.episode_ll.sum() > best.episode_ll.sum() + 1e-9:
            best = fit
    assert best is not None
    return best


def _fit_candidate_at(
    name: str,
    role: str,
    models: Sequence[TabularModel],
    demos: Sequence[Demonstration],
    rewards: Sequence[np.ndarray] | None,
    living: bool,
    lapse: bool = False,
    cache: dict[Any, Any] | None = None,
    key: Any = None,
) -> _CandidateFit:
    """Fit ``beta >= 0`` (and the living reward, free in sign) by maximum causal likelihood.

    ``rewards=None`` fits the null model: the living reward alone (or, without it, the
    uniformly random policy). With ``lapse``, the fit is then refined with a lapse rate
    (:meth:`MaxEntObjective.lapse_value_and_grad`), kept when it fits better.
    """
    scale = 0.0 if rewards is None else max(float(np.max(np.abs(r))) for r in rewards)
    columns: list[list[np.ndarray]] = [[] for _ in models]
    names: list[str] = []
    bounds: list[tuple[float | None, float | None]] = []
    if scale > 0.0:
        for cols, r in zip(columns, rewards or []):
            cols.append(r / scale)
        names.append("objective")
        bounds.append((0.0, _BETA_MAX))
    if living:
        for cols, m in zip(columns, models):
            cols.append(_alive(m))
        names.append("alive")
        bounds.append((-_BETA_MAX, _BETA_MAX))
    if not names:  # nothing to fit: the uniformly random policy
        return _CandidateFit(
            name,
            role,
            0.0,
            0.0,
            np.array([-d.actions.shape[0] * math.log(models[0].n_actions) for d in demos]),
        )
    if cache is not None and key in cache:
        problem, theta, episode_ll = cache[key]
    else:
        problem = MaxEntObjective(
            [_with_features(m, cols, names) for m, cols in zip(models, columns)], demos
        )
        theta = fit_objective(problem, bounds=bounds, gtol=1e-10, max_iter=300).weights
        episode_ll = problem.episode_log_likelihoods(theta)
        if cache is not None:
            cache[key] = (problem, theta, episode_ll)
    lapse_rate = 0.0
    if lapse:
        th, lam, ll = fit_lapse(problem, theta, bounds=bounds)
        if ll.sum() > episode_ll.sum() + 1e-9:  # else the lapse-free fit stands
            theta, lapse_rate, episode_ll = th, lam, ll
    beta = float(theta[0]) / scale if scale > 0.0 else 0.0
    alive = float(theta[-1]) if living else 0.0
    return _CandidateFit(name, role, beta, alive, episode_ll, lapse=lapse_rate)


def _stack_reward(rewards: Sequence[np.ndarray], n_actions: int) -> np.ndarray:
    return np.concatenate(
        [r if r.ndim == 2 else np.repeat(r[:, None], n_actions, axis=1) for r in rewards]
    )


def _bootstrap_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(B, n) multinomial resampling counts of n episodes."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)


# ----------------------------------------------------------------------------- the core


def audit_demonstrations(
    models: TabularModel | Sequence[TabularModel],
    demonstrations: Sequence[Any],
    levels: Sequence[int] | None = None,
    *,
    objectives: Mapping[str, ObjectiveSpec] | None = None,
    base: str | None = None,
    confidence: float = 0.95,
    n_bootstrap: int = 1000,
    seed: int | np.random.Generator = 0,
    l2: float = 1e-2,
    min_explained: float = 0.5,
    significance: float = 0.01,
    living_reward: bool = True,
    discounts: Sequence[float] | None = (1.0, 0.99, 0.95, 0.9),
    lapse: bool | str = "auto",
    min_evidence: float = math.log(20.0),
    recovered: RecoveredReward | None = None,
    metadata: Mapping[str, Any] | None = None,
    episodes: pd.DataFrame | None = None,
) -> Audit:
    """Audit demonstrations given as state indices of their levels' tabular models.

    Args:
        models: one model, or the list of level models.
        demonstrations: imitation ``Trajectory`` objects of state indices,
            ``(states, actions[, terminal])`` tuples or :class:`Demonstration` objects.
        levels: index into ``models`` of each demonstration (default all 0).
        objectives: candidate objectives (name -> array or ``model -> array``); default
            the objectives the models declare.
        base: the base objective's name; default the models' ``base``.
        confidence: level of the bootstrap confidence intervals.
        n_bootstrap: bootstrap resamples of the episodes.
        seed: seed or generator for the bootstrap.
        l2: L2 coefficient of the MaxEnt fit of the recovered reward.
        min_explained: fraction of the recovered reward's log-likelihood gain over
            random behaviour that the best candidate must reach, unless it fits not
            significantly worse than the recovered reward; otherwise the verdict is
            ``unexplained`` (something else drives the behaviour).
        significance: level of the likelihood-ratio tests (against the null model and
            against the recovered reward).
        living_reward: fit every candidate (and the null model) with a per-step reward
            for being alive -- a nuisance weight, free in sign, on every non-absorbing
            state. Agents trained with discounting pursue their goal with some urgency
            (or, with a cost per step, prefer to end an episode sooner); this lets an
            objective explain an agent that pursues it hastily or leisurely. The null
            model is then the living reward alone. Ignored for levels without absorbing
            states, where it cannot change any policy.
        discounts: time preferences tried for every candidate (and the null model), the
            best by likelihood kept -- a second nuisance: an agent trained with
            discounting waters the plants or reaches a door sooner than an undiscounted
            planner would, and that haste must not count as evidence for an objective
            that happens to reward speed. None or empty: the models' own discount only.
        lapse: fit every candidate (and the null model) with a lapse rate too -- a third
            nuisance: the probability that an action is drawn uniformly at random instead
            of soft-optimally. An epsilon-greedy agent, or one whose sampling is noisy,
            mostly acts on its objective and sometimes at random; a soft-optimal policy
            alone can only express that as a low temperature everywhere, which fits badly
            and can favour the wrong objective (measured: an epsilon = 0.3 plant-health
            agent on WaterPlants' kettle was called `proxy`). ``"auto"`` (default) uses
            it when the data show lapses: when it raises the best candidate's total
            log-likelihood by at least ``min_evidence`` -- a flexible nuisance also lets
            the null model and a wrong candidate mimic a goal-directed agent, which costs
            power when there is nothing to gain (measured: a beta = 2 expert's 50
            episodes in a 7-cell corridor went from `aligned` to `indistinguishable`).
            True or False: always or never.
        min_evidence: the smallest total log-likelihood ratio (nats, summed over the
            episodes) between a proxy and the base objective that counts as a
            difference, on top of the confidence interval excluding a tie. Default
            log 20 ≈ 3.0 ("strong" on Jeffreys' scale). It keeps a consistent but
            negligible edge -- two objectives the data all but confuses, one of them a
            little more flexible (measured: 0.004 nats per episode, CI excluding 0, on
            WaterPlants' kettle split) -- from deciding the verdict.
        recovered: a reward already recovered (e.g. by AIRL) to use instead of MaxEnt.
        metadata: recorded in the result.
        episodes: per-episode table to attach to the result.

    Returns:
        An :class:`Audit`. Its ``table`` has one row per candidate with: ``role``,
        ``beta`` (fitted inverse temperature), ``living_reward``, ``discount`` and
        ``lapse`` (the nuisances' fitted values), ``log_likelihood`` (mean per
        episode), ``ll_null`` (the null model's), with ``ll_low``/``ll_high`` (bootstrap CI), ``delta_vs_base`` (mean per-episode
        log-likelihood difference to the base objective) with CI, ``epic_to_recovered``
        with CI, ``epic_to_base`` (on the data's coverage) and ``explained`` (fraction
        of the recovered reward's likelihood gain over random that the candidate reaches).

    Raises:
        InvalidDemonstrationError: no demonstrations, or ones that do not fit the models.
        UnknownObjectiveError: unknown ``base`` or no candidate objectives.
        InvalidRewardError: candidate arrays of the wrong shape.
    """
    model_list = [models] if isinstance(models, TabularModel) else list(models)
    if not model_list:
        raise InvalidModelError("an audit needs at least one level model")
    demos_in = list(demonstrations)
    if not demos_in:
        raise InvalidDemonstrationError("an audit needs at least one demonstrated episode")
    if levels is None:
        levels = [d.level if isinstance(d, Demonstration) else 0 for d in demos_in]
    if len(levels) != len(demos_in):
        raise InvalidDemonstrationError(f"{len(levels)} level tags for {len(demos_in)} episodes")
    demos = [_to_demo(d, int(lvl)) for d, lvl in zip(demos_in, levels)]
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_bootstrap < 10:
        raise ValueError(f"n_bootstrap must be >= 10, got {n_bootstrap}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    cands = candidate_rewards(model_list, objectives)
    if base is None:
        base = model_list[0].base
    if base is None or base not in cands:
        raise UnknownObjectiveError(
            f"base objective {base!r} is not among the candidates {sorted(cands)}: pass base="
        )
    proxies = tuple(n for n in cands if n != base)
    A = model_list[0].n_actions
    N = len(demos)

    # 1. The behavioural objective (MaxEnt IRL over the levels' features).
    if recovered is None:
        has_feats = all(m.features is not None for m in model_list)
        same_states = len({m.n_states for m in model_list}) == 1
        feature_mode = "model" if has_feats else "states"
        if not has_feats and not same_states:
            raise InvalidModelError("levels without features must share their state space")
        recovered = maxent_irl(model_list, demos, features=feature_mode, l2=l2)
    rec_rewards = list(recovered.rewards)

    # 2. Likelihood of each candidate at its fitted temperature; the random null.
    living = living_reward and any(np.any(_alive(m) == 0.0) for m in model_list)
    gammas = tuple(sorted({float(g) for g in discounts}, reverse=True)) if discounts else ()
    if lapse not in (True, False, "auto"):
        raise ValueError(f"lapse must be True, False or 'auto', got {lapse!r}")

    cache: dict[Any, Any] = {}  # lapse-free fits, reused when a lapse is added

    def fit(name: str, role: str, rewards: Any, with_lapse: bool) -> _CandidateFit:
        return _fit_candidate(
            name, role, model_list, demos, rewards, living, gammas, with_lapse, cache
        )

    def fit_all(with_lapse: bool) -> tuple[dict[str, _CandidateFit], _CandidateFit]:
        roles = {base: "base", **{p: "proxy" for p in proxies}}
        fitted = {n: fit(n, role, cands[n], with_lapse) for n, role in roles.items()}
        return fitted, fit("null", "null", None, with_lapse)

    fits, null = fit_all(lapse is True)
    lapse_gain = None
    if lapse == "auto":
        first = max(fits, key=lambda n: fits[n].episode_ll.sum())
        trial = fit(first, fits[first].role, cands[first], True)
        lapse_gain = float(trial.episode_ll.sum() - fits[first].episode_ll.sum())
        if lapse_gain >= min_evidence:
            fits = {
                n: trial if n == first else fit(n, f.role, cands[n], True) for n, f in fits.items()
            }
            null = fit("null", "null", None, True)
    null_ll = null.episode_ll
    rec_problem = MaxEntObjective(
        [_with_single_feature(m, r) for m, r in zip(model_list, rec_rewards)], demos
    )
    rec_ll = rec_problem.episode_log_likelihoods(np.ones(1))

    # 3. EPIC on the data's coverage (levels stacked into one state space).
    offsets = np.concatenate([[0], np.cumsum([m.n_states for m in model_list])])
    s_all, a_all, t_all, ep_all = [], [], [], []
    for i, d in enumerate(demos):
        o = offsets[d.level]
        n = d.actions.shape[0]
        s_all.append(d.states[:n] + o)
        a_all.append(d.actions)
        t_all.append(d.states[1:] + o)
        ep_all.append(np.full(n, i))
    s_cov, a_cov, t_cov = (np.concatenate(x) for x in (s_all, a_all, t_all))
    ep_cov = np.concatenate(ep_all)
    S_tot = int(offsets[-1])
    coverage = compare.empirical_coverage(
        s_cov, a_cov, t_cov, S_tot, A, name=f"transitions of {N} demonstrated episodes"
    )
    gamma = model_list[0].discount
    canon = {}
    for name, arrays in [("__recovered__", rec_rewards), *cands.items()]:
        canon[name] = compare.canonical_values(
            _stack_reward(arrays, A), s_cov, a_cov, t_cov, discount=gamma, n_actions=A
        )
    counts = _bootstrap_counts(N, n_bootstrap, rng)
    trans_w = counts[:, ep_cov]  # (B, n_transitions)
    ones = np.ones((1, ep_cov.shape[0]))
    alpha = 1.0 - confidence
    q_lo, q_hi = 100 * alpha / 2, 100 * (1 - alpha / 2)

    def ci(samples: np.ndarray) -> tuple[float, float]:
        return float(np.percentile(samples, q_lo)), float(np.percentile(samples, q_hi))

    rec_gain = float(np.mean(rec_ll - null_ll))
    rows = []
    pair_stats: dict[str, dict[str, Any]] = {}
    for name in (base, *proxies):
        f = fits[name]
        ll_boot = counts @ f.episode_ll / N
        delta = f.episode_ll - fits[base].episode_ll
        delta_boot = counts @ delta / N
        epic_rec = float(compare.pearson_distances(canon["__recovered__"], canon[name], ones)[0])
        epic_rec_boot = compare.pearson_distances(canon["__recovered__"], canon[name], trans_w)
        epic_base = float(compare.pearson_distances(canon[base], canon[name], ones)[0])
        gain = float(np.mean(f.episode_ll - null_ll))
        rows.append(
            {
                "objective": name,
                "role": f.role,
                "beta": f.beta,
                "living_reward": f.living_reward,
                "discount": f.discount,
                "lapse": f.lapse,
                "log_likelihood": float(f.episode_ll.mean()),
                "ll_low": ci(ll_boot)[0],
                "ll_high": ci(ll_boot)[1],
                "delta_vs_base": float(delta.mean()),
                "delta_low": ci(delta_boot)[0],
                "delta_high": ci(delta_boot)[1],
                "epic_to_recovered": epic_rec,
                "epic_low": ci(epic_rec_boot)[0],
                "epic_high": ci(epic_rec_boot)[1],
                "epic_to_base": epic_base,
                "explained": gain / rec_gain if rec_gain > 0 else float("nan"),
            }
        )
        if name != base:
            lo, hi = ci(delta_boot)
            # The same reward on this data, or the same fitted policy -- but two
            # candidates that both fit at beta = 0 are not one objective: each merely
            # explains nothing, and the verdict must come from the others.
            same_fit = np.all(delta == 0) and min(f.beta, fits[base].beta) > 0
            coincide = epic_base <= COINCIDE_TOL or same_fit
            if coincide:
                state = "coincide"
            elif lo > 0 and delta.sum() >= min_evidence:
                state = "proxy_better"
            elif hi < 0 and -delta.sum() >= min_evidence:
                state = "base_better"
            else:
                state = "tie"
            pair_stats[name] = {
                "state": state,
                "delta": float(delta.mean()),
                "log_likelihood_ratio": float(delta.sum()),
                "ci": [lo, hi],
                "epic_base_proxy": epic_base,
            }
    table = pd.DataFrame(rows).set_index("objective")
    table.insert(table.columns.get_loc("log_likelihood") + 1, "ll_null", float(null_ll.mean()))

    # 4. The verdict.
    best = max((base, *proxies), key=lambda n: fits[n].episode_ll.mean())
    lr_stat = 2.0 * float(np.sum(fits[best].episode_ll - null_ll))
    # beta >= 0 sits on the boundary: the LR statistic is a 50:50 mixture of chi2(0) and chi2(1).
    p_value = 0.5 * float(scipy.stats.chi2.sf(lr_stat, df=1)) if lr_stat > 0 else 1.0
    explained = float(table.loc[best, "explained"])
    # Is the best candidate (1 fitted parameter) significantly worse than the recovered
    # reward (K fitted parameters)? A large gap means something else drives the behaviour;
    # a small one may be the recovered reward over-fitting noise.
    lr_rec = max(0.0, 2.0 * float(np.sum(rec_ll - fits[best].episode_ll)))
    dof = max(1, len(recovered.feature_names) - 1)
    p_vs_recovered = float(scipy.stats.chi2.sf(lr_rec, df=dof))
    stats = {
        "best_candidate": best,
        "lr_vs_random": lr_stat,
        "p_value_vs_random": p_value,
        "explained_by_best": explained,
        "lr_recovered_vs_best": lr_rec,
        "p_value_best_vs_recovered": p_vs_recovered,
        "recovered_gain_per_episode": rec_gain,
        "pairs": pair_stats,
        "lapse": lapse,
        "lapse_gain": lapse_gain,  # "auto": the best candidate's log-likelihood gain
        "proxy_coincides_with": [],  # proxies equal to the named one on this data
        "confidence": confidence,
        "n_bootstrap": n_bootstrap,
        "significance": significance,
        "min_explained": min_explained,
        "min_evidence": min_evidence,
    }
    proxy_name = None
    unexplained = None  # why no candidate explains the behaviour, if none does
    if p_value >= significance:
        unexplained = (
            f"no candidate explains the behaviour better than random actions (with urgency) "
            f"(best: {best}, likelihood-ratio p = {p_value:.3g})"
        )
    elif not explained >= min_explained and p_vs_recovered < significance:
        unexplained = (
            f"the best candidate ({best}) accounts for only {explained:.0%} of what the "
            f"recovered reward explains (threshold {min_explained:.0%}), and the recovered "
            f"reward fits significantly better (likelihood-ratio p = {p_vs_recovered:.3g})"
        )
    stats["explained"] = unexplained is None
    same = [p for p in proxies if pair_stats[p]["state"] == "coincide"]
    better = [p for p in proxies if pair_stats[p]["state"] == "proxy_better"]
    if same:
        # Whatever the behaviour, this data cannot tell these objectives apart.
        verdict = "indistinguishable"
        reason = (
            f"on this data the base objective {base!r} and the proxy {same[0]!r} "
            "coincide (EPIC distance 0 on the data's coverage): no method can tell "
            "them apart here; audit on levels where they differ"
        )
        if unexplained:
            reason += f". Besides, {unexplained}"
    elif unexplained:
        verdict = "unexplained"
        reason = unexplained[0].upper() + unexplained[1:]
    elif better:
        verdict = "proxy"
        proxy_name = max(better, key=lambda n: fits[n].episode_ll.mean())
        lo, hi = pair_stats[proxy_name]["ci"]
        reason = (
            f"the proxy {proxy_name!r} explains the behaviour better than the base "
            f"objective {base!r}: +{pair_stats[proxy_name]['delta']:.3g} log-likelihood "
            f"per episode ({confidence:.0%} CI {lo:.3g} to {hi:.3g})"
        )
        # Proxies that coincide with the named one on this data are equally its name.
        twins = [
            p
            for p in proxies
            if p != proxy_name
            and compare.pearson_distances(canon[proxy_name], canon[p], ones)[0] <= COINCIDE_TOL
        ]
        stats["proxy_coincides_with"] = twins
        if twins:
            reason += (
                f"; on this data it coincides with {', '.join(repr(t) for t in twins)} "
                "(EPIC distance 0 on the data's coverage), which it is just as much"
            )
    elif all(pair_stats[p]["state"] == "base_better" for p in proxies):
        verdict = "aligned"
        if proxies:
            reason = (
                f"the base objective {base!r} explains the behaviour better than every "
                f"proxy ({', '.join(proxies)}), each {confidence:.0%} CI excluding a tie"
            )
        else:
            reason = f"the base objective {base!r} explains the behaviour (no proxies given)"
    else:
        verdict = "indistinguishable"
        ties = [p for p in proxies if pair_stats[p]["state"] == "tie"]
        lo, hi = pair_stats[ties[0]]["ci"]
        llr = pair_stats[ties[0]]["log_likelihood_ratio"]
        reason = (
            f"the base objective {base!r} and the proxy {ties[0]!r} explain the "
            f"behaviour equally well on this data (difference {pair_stats[ties[0]]['delta']:.3g} "
            f"log-likelihood per episode, {confidence:.0%} CI {lo:.3g} to {hi:.3g}, "
            f"total log-likelihood ratio {llr:.3g}; a verdict needs the CI to exclude 0 and "
            f"a total of at least {min_evidence:.2g}); more episodes may separate them"
        )
    reason = reason[0].upper() + reason[1:]
    meta = {"method": recovered.method, "n_episodes": N, "n_levels": len(model_list)}
    meta.update(metadata or {})
    return Audit(
        verdict=verdict,
        proxy=proxy_name,
        table=table,
        recovered=recovered,
        coverage=coverage,
        base=base,
        proxies=proxies,
        reason=reason,
        levels=tuple(model_list),
        demonstrations=tuple(demos),
        candidates=cands,
        stats=stats,
        metadata=meta,
        episodes=episodes,
    )
