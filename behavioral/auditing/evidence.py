"""From fits to evidence: the candidate table, EPIC distances and bootstrap intervals.

:func:`gather` turns the candidates' fits, the null model's and the recovered reward's
per-episode log-likelihoods into

- the candidate table (one row per candidate: fitted temperature and nuisances, mean
  log-likelihood per episode with a bootstrap interval, the difference to the base
  objective with its interval, EPIC distance to the recovered reward on the data's coverage
  with its interval, EPIC distance to the base objective on the data's choice set, and the
  fraction of the recovered reward's gain over the null model each reaches), and
- the :class:`~behavioral.auditing.decision.Evidence` that :func:`decide` reads.

Bootstrap intervals resample whole episodes: each statistic is a per-episode (or
per-transition, grouped by episode) sum, so one matrix product of resampling counts with
the per-episode values gives every resample at once (rliable's approach).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from behavioral import compare
from behavioral.auditing.candidates import Transitions, distance, stack_reward
from behavioral.auditing.decision import Evidence, PairEvidence
from behavioral.auditing.fitting import CandidateFit
from behavioral.irl.maxent import Demonstration
from behavioral.tabular import TabularModel

__all__ = ["bootstrap_counts", "gather", "percentile_ci"]


def bootstrap_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(B, n) multinomial resampling counts of n episodes."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)


def percentile_ci(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of bootstrap samples at level ``confidence``."""
    alpha = 1.0 - confidence
    lo, hi = np.percentile(samples, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


@dataclasses.dataclass(frozen=True)
class _DataTransitions:
    """The demonstrated transitions (levels stacked), deduplicated.

    ``s, a, t``: (U,) the distinct transitions; ``by_episode``: (N, U) sparse counts of
    each one in each episode.
    """

    s: np.ndarray
    a: np.ndarray
    t: np.ndarray
    by_episode: sp.csr_array


def _data_transitions(
    models: Sequence[TabularModel], demos: Sequence[Demonstration]
) -> _DataTransitions:
    offsets = np.concatenate([[0], np.cumsum([m.n_states for m in models])]).astype(np.int64)
    A = models[0].n_actions
    S = int(offsets[-1])
    keys, eps = [], []
    for i, d in enumerate(demos):
        n = d.actions.shape[0]
        o = offsets[d.level]
        keys.append(((d.states[:n] + o) * A + d.actions) * S + (d.states[1:] + o))
        eps.append(np.full(n, i))
    key, ep = np.concatenate(keys), np.concatenate(eps)
    uniq, inverse = np.unique(key, return_inverse=True)
    counts = sp.csr_array((np.ones(key.shape[0]), (ep, inverse)), shape=(len(demos), uniq.shape[0]))
    counts.sum_duplicates()
    sa, t = np.divmod(uniq, S)
    s, a = np.divmod(sa, A)
    return _DataTransitions(s, a, t, counts)


def gather(
    *,
    models: Sequence[TabularModel],
    demos: Sequence[Demonstration],
    candidates: Mapping[str, Sequence[np.ndarray]],
    base: str,
    proxies: Sequence[str],
    aliases: Mapping[str, str],
    fits: Mapping[str, CandidateFit],
    null: CandidateFit,
    recovered_rewards: Sequence[np.ndarray],
    recovered_ll: np.ndarray,
    recovered_dof: int,
    choice: Transitions,
    confidence: float,
    counts: np.ndarray,
) -> tuple[pd.DataFrame, Evidence, compare.Coverage]:
    """The candidate table, the evidence for :func:`decide`, and the data's coverage.

    ``counts`` are the bootstrap's (B, N) resampling counts of the episodes
    (:func:`bootstrap_counts`)."""
    A = models[0].n_actions
    N = len(demos)
    gamma = models[0].discount
    dt = _data_transitions(models, demos)
    visits = np.asarray(dt.by_episode.sum(axis=0)).ravel()
    coverage = compare.Coverage(
        dt.s, dt.a, dt.t, visits, sum(m.n_states for m in models), A,
        name=f"transitions of {N} demonstrated episodes",
    )  # fmt: skip
    stacked = {n: stack_reward(r, A) for n, r in candidates.items()}
    rec = stack_reward(recovered_rewards, A)
    canon = {
        n: compare.canonical_values(r, dt.s, dt.a, dt.t, discount=gamma, n_actions=A)
        for n, r in [("__recovered__", rec), *stacked.items()]
    }
    ones = visits[None, :]
    null_ll = null.episode_ll
    rec_gain = float(np.mean(recovered_ll - null_ll))
    base_ll = fits[base].episode_ll
    rows, pairs, choice_epic = [], {}, {}
    for name in candidates:
        f = fits[name]
        delta = f.episode_ll - base_ll
        ll_lo, ll_hi = percentile_ci(counts @ f.episode_ll / N, confidence)
        d_lo, d_hi = percentile_ci(counts @ delta / N, confidence)
        e_lo, e_hi = percentile_ci(
            compare.bootstrap_pearson_distances(
                canon["__recovered__"], canon[name], dt.by_episode, counts
            ),
            confidence,
        )
        choice_epic[name] = (
            0.0 if name == base else distance(stacked[name], stacked[base], choice, gamma)
        )
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
                "ll_low": ll_lo,
                "ll_high": ll_hi,
                "delta_vs_base": float(delta.mean()),
                "delta_low": d_lo,
                "delta_high": d_hi,
                "epic_to_recovered": float(
                    compare.pearson_distances(canon["__recovered__"], canon[name], ones)[0]
                ),
                "epic_low": e_lo,
                "epic_high": e_hi,
                "epic_to_base": choice_epic[name],
                "explained": gain / rec_gain if rec_gain > 0 else float("nan"),
            }
        )
        if name in proxies:
            pairs[name] = PairEvidence(
                proxy=name,
                delta_mean=float(delta.mean()),
                delta_total=float(delta.sum()),
                ci=(d_lo, d_hi),
                max_abs_delta=float(np.max(np.abs(delta))),
                choice_epic=choice_epic[name],
            )
    table = pd.DataFrame(rows).set_index("objective")
    table.insert(table.columns.get_loc("log_likelihood") + 1, "ll_null", float(null_ll.mean()))
    proxy_epic = {
        tuple(sorted((p, q))): distance(stacked[p], stacked[q], choice, gamma)
        for i, p in enumerate(proxies)
        for q in proxies[i + 1 :]
    }
    evidence = Evidence(
        base=base,
        proxies=tuple(proxies),
        n_episodes=N,
        confidence=confidence,
        log_likelihood={n: fits[n].total for n in (base, *proxies)},
        null_log_likelihood=null.total,
        recovered_log_likelihood=float(recovered_ll.sum()),
        recovered_dof=recovered_dof,
        pairs=pairs,
        proxy_epic=proxy_epic,
        aliases=dict(aliases),
    )
    return table, evidence, coverage
