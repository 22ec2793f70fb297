"""Which levels to audit next: expected evidence against the current best rival.

Given the current fits of the base objective, the proxies and the null model (each a
:class:`~behavioral.design.scoring.Hypothesis`), a level's value for the audit is the
evidence one episode there is expected to add to the test the audit still needs:

.. math::

    \\mathrm{ev}_l(h) = \\min_{g \\ne h} \\; \\min_{v \\in R(g, h)} KL_l(P_h \\| P_v),
    \\qquad
    \\mathrm{score}_l = \\sum_h w_h \\, \\mathrm{ev}_l(h).

If the agent is ``h`` (base or a proxy), a verdict for ``h`` needs ``h`` to beat every
rival ``g`` (the other candidates and the null model), so the slowest of those tests --
the smallest expected log-likelihood ratio per episode -- is what a level must speed up.
Each rival is a *class* (its inverse temperature and nuisances are refitted as data
come in), so ``R(g, h)`` holds two members of ``g``'s class: its current fit, and ``g``
with ``h``'s nuisances (``h``'s living reward, discount and lapse, and ``h``'s inverse
temperature rescaled by the two objectives' magnitudes) -- "the same agent, pursuing ``g``
instead". The minimum over them bounds the class's closest approximation from above; on
a level where the two objectives coincide (RedDoors ``train``) the second member *is*
``h`` and the level scores exactly 0, however the fits differ. The weights ``w_h`` are the
candidates' posterior probabilities from their current log-likelihoods (tempered, and
floored so that no candidate is ignored): evidence matters most for the hypotheses still
in the running. Tests already decided (their e-process crossed) are left out.

:func:`choose_levels` then picks a batch: the best levels by score, each level's score
discounted by ``repeat_discount`` per episode already spent there (so a level is chosen
again only while it stays that much better than the rest: the audit never settles on
one level for good, which guards against a policy that behaves oddly on one level and
against a misspecified model), and with probability ``explore`` a uniformly random level
instead. It is pure: the same inputs and seed give the same choice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from behavioral.design.scoring import (
    Hypothesis,
    LevelScores,
    LevelStack,
    ObjectiveSpec,
    score_levels,
    stack_levels,
)
from behavioral.design.sources import LevelPool
from behavioral.errors import InvalidArgumentError

__all__ = [
    "Choice",
    "Evidence",
    "choose_levels",
    "design_table",
    "expected_evidence",
    "rival_variant",
]


@dataclasses.dataclass(frozen=True, eq=False)
class Evidence:
    """Expected evidence per episode of every candidate level.

    Attributes:
        candidates: labels of the candidate hypotheses (base first, then proxies).
        weights: (n_cand,) their weights.
        per_candidate: (L, n_cand) ``ev_l(h)``: expected log-likelihood ratio per episode
            of ``h``'s slowest open test, if the agent is ``h``.
        rival: (L, n_cand) label of the rival (class member) that binds that minimum.
        expected: (L,) the weighted score.
        scores: the underlying :class:`LevelScores` (every hypothesis and variant).
        base: the base objective's label.
    """

    candidates: tuple[str, ...]
    weights: np.ndarray
    per_candidate: np.ndarray
    rival: np.ndarray
    expected: np.ndarray
    scores: LevelScores
    base: str

    def table(self) -> pd.DataFrame:
        """One row per level: ``expected``, ``ev[h]`` and ``rival[h]`` per candidate, and
        for the base objective and each proxy ``p``: ``kl[base||p]``, ``kl[p||base]``
        (fitted hypotheses) and the regret gaps ``regret[base,p]``, ``regret[p,base]``."""
        cols: dict[str, object] = {"expected": self.expected}
        for j, h in enumerate(self.candidates):
            cols[f"ev[{h}]"] = self.per_candidate[:, j]
            cols[f"rival[{h}]"] = self.rival[:, j]
        b = self.base
        for p in self.candidates:
            if p != b:
                cols[f"kl[{b}||{p}]"] = self.scores.divergence(b, p)
                cols[f"kl[{p}||{b}]"] = self.scores.divergence(p, b)
                cols[f"regret[{b},{p}]"] = self.scores.regret(b, p)
                cols[f"regret[{p},{b}]"] = self.scores.regret(p, b)
        return pd.DataFrame(cols).rename_axis("level")


def _scales(stack: LevelStack) -> dict[str, float]:
    """Largest |reward| of each objective over the stack (the audit's fitting scale)."""
    flat = stack.objectives.reshape(len(stack.objective_names), -1)
    return {
        n: float(np.max(np.abs(flat[k]), initial=0.0)) for k, n in enumerate(stack.objective_names)
    }


def rival_variant(rival: Hypothesis, like: Hypothesis, scales: Mapping[str, float]) -> Hypothesis:
    """``rival``'s objective pursued with ``like``'s nuisances: ``like``'s living reward,
    discount and lapse, and ``like``'s inverse temperature rescaled so that
    ``beta * max|r|`` is the same for both objectives (the null model keeps beta 0)."""
    beta = 0.0
    if rival.objective is not None:
        s_like = scales.get(like.objective, 0.0) if like.objective is not None else 0.0
        s_rival = scales.get(rival.objective, 0.0)
        beta = like.beta * s_like / s_rival if s_rival > 0 and s_like > 0 else rival.beta
    return Hypothesis(
        rival.objective,
        beta=beta,
        living_reward=like.living_reward,
        discount=like.discount,
        lapse=like.lapse,
        name=f"{rival.label}~{like.label}",
    )


def _weights(
    labels: Sequence[str],
    log_likelihoods: Mapping[str, float] | None,
    temperature: float,
    min_weight: float,
) -> np.ndarray:
    n = len(labels)
    if log_likelihoods is None:
        return np.full(n, 1.0 / n)
    missing = [h for h in labels if h not in log_likelihoods]
    if missing:
        raise InvalidArgumentError(f"log_likelihoods has no entry for {missing}")
    ll = np.array([float(log_likelihoods[h]) for h in labels])
    if not np.all(np.isfinite(ll)):
        raise InvalidArgumentError("log_likelihoods must be finite")
    z = (ll - ll.max()) / temperature
    w = np.exp(z)
    w /= w.sum()
    w = np.maximum(w, min_weight)
    return w / w.sum()


def expected_evidence(
    levels: LevelStack | Sequence,
    base: Hypothesis,
    proxies: Sequence[Hypothesis],
    null: Hypothesis | None = None,
    *,
    log_likelihoods: Mapping[str, float] | None = None,
    done: Collection[tuple[str, str]] = (),
    temperature: float = 1.0,
    min_weight: float = 0.05,
    objectives: Mapping[str, ObjectiveSpec] | None = None,
) -> Evidence:
    """Score candidate levels by the evidence one episode there is expected to add.

    Args:
        levels: a :class:`LevelStack` or the levels' models.
        base: the base objective's current fit.
        proxies: each proxy's current fit (at least one).
        null: the null model's current fit (None: no null rival).
        log_likelihoods: label -> total log-likelihood of the data so far, for the
            weights (default: equal weights).
        done: ``(h, g)`` tests already decided ("h explains better than g").
        temperature: divides the log-likelihood differences before the softmax.
        min_weight: floor of each candidate's weight (before renormalising), in [0, 1/n].
        objectives: passed to :func:`stack_levels` when ``levels`` are models.

    Raises:
        InvalidArgumentError: no proxies, duplicate labels, bad weights' parameters.
    """
    stack = levels if isinstance(levels, LevelStack) else stack_levels(levels, objectives)
    cands = (base, *proxies)
    if not proxies:
        raise InvalidArgumentError("expected_evidence needs at least one proxy hypothesis")
    labels = tuple(h.label for h in cands)
    if len(set(labels)) < len(labels) or (null is not None and null.label in labels):
        raise InvalidArgumentError(f"hypothesis labels must be distinct, got {labels}")
    if not (temperature > 0 and 0 <= min_weight <= 1.0 / len(cands)):
        raise InvalidArgumentError("temperature must be > 0 and min_weight in [0, 1/candidates]")
    scales = _scales(stack)
    rivals = [*cands, *([null] if null is not None else [])]
    hyps: list[Hypothesis] = list(rivals)
    members: dict[tuple[str, str], list[int]] = {}
    for h in cands:
        for g in rivals:
            if g is h:
                continue
            variant = rival_variant(g, h, scales)
            members[(h.label, g.label)] = [rivals.index(g), len(hyps)]
            hyps.append(variant)
    scores = score_levels(stack, hyps, rows=range(len(cands)))  # only the candidates' rows
    L = stack.n_levels
    per = np.zeros((L, len(cands)))
    rival = np.full((L, len(cands)), "", dtype=object)
    hyp_labels = np.array(scores.labels, dtype=object)
    done_set = {tuple(x) for x in done}
    for j, h in enumerate(cands):
        open_members = [
            m
            for (a, g), ms in members.items()
            if a == h.label and (a, g) not in done_set
            for m in ms
        ]
        if not open_members:
            continue
        kl = scores.kl[:, j, open_members]  # (L, members)
        arg = np.argmin(kl, axis=1)
        per[:, j] = kl[np.arange(L), arg]
        rival[:, j] = hyp_labels[np.asarray(open_members)[arg]]
    w = _weights(labels, log_likelihoods, temperature, min_weight)
    return Evidence(labels, w, per, rival, per @ w, scores, base.label)


@dataclasses.dataclass(frozen=True)
class Choice:
    """The levels picked for the next episodes.

    Attributes:
        levels: (k,) indices into the pool, in the order picked (distinct).
        explored: (k,) whether each was a random exploration pick.
        effective: (L,) the scores after the repeat discount.
    """

    levels: np.ndarray
    explored: np.ndarray
    effective: np.ndarray


def choose_levels(
    expected: np.ndarray,
    *,
    k: int = 1,
    counts: np.ndarray | None = None,
    rng: int | np.random.Generator = 0,
    repeat_discount: float = 0.5,
    explore: float = 0.1,
) -> Choice:
    """Pick ``k`` distinct levels by expected evidence, with a diversity rule.

    Args:
        expected: (L,) expected evidence per episode of each level (non-negative).
        k: how many levels (at most L).
        counts: (L,) episodes already spent on each level (default zeros).
        rng: seed or generator (tie-breaking and exploration).
        repeat_discount: in (0, 1]: a level's score is multiplied by this per episode
            already spent there.
        explore: in [0, 1]: chance that a pick is uniform over the levels not yet picked.

    Raises:
        InvalidArgumentError: shapes or parameters out of range.
    """
    ev = np.asarray(expected, dtype=np.float64)
    L = ev.shape[0] if ev.ndim == 1 else 0
    if ev.ndim != 1 or L == 0 or np.any(~np.isfinite(ev)) or np.any(ev < 0):
        raise InvalidArgumentError("expected must be a non-empty 1-D array of finite values >= 0")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= L:
        raise InvalidArgumentError(f"k must be an int in [1, {L}], got {k!r}")
    n_used = np.zeros(L) if counts is None else np.asarray(counts, dtype=np.float64)
    if n_used.shape != (L,) or np.any(n_used < 0):
        raise InvalidArgumentError(f"counts must be ({L},) non-negative, got shape {n_used.shape}")
    if not (0 < repeat_discount <= 1 and 0 <= explore <= 1):
        raise InvalidArgumentError("repeat_discount must be in (0, 1] and explore in [0, 1]")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    effective = ev * repeat_discount**n_used
    order = gen.permutation(L)  # random tie-breaking
    ranked = order[np.argsort(-effective[order], kind="stable")]
    picked: list[int] = []
    explored: list[bool] = []
    taken = np.zeros(L, dtype=bool)
    pos = 0
    for _ in range(k):
        if gen.random() < explore:
            free = np.flatnonzero(~taken)
            i = int(free[gen.integers(free.size)])
            explored.append(True)
        else:
            while taken[ranked[pos]]:
                pos += 1
            i = int(ranked[pos])
            explored.append(False)
        taken[i] = True
        picked.append(i)
    return Choice(np.array(picked, dtype=np.int64), np.array(explored), effective)


def design_table(
    pool: LevelPool, evidence: Evidence, counts: np.ndarray | None = None
) -> pd.DataFrame:
    """The scored candidate levels, one row each (``result.design`` of an active audit):
    the pool's provenance columns (:meth:`LevelPool.table`: origin, seeds, edits,
    ``distance`` from the training distribution, broken invariants), the evidence columns
    (:meth:`Evidence.table`) and ``episodes`` spent on each level.

    Raises:
        InvalidArgumentError: ``evidence`` or ``counts`` not of the pool's length.
    """
    n = len(pool)
    if evidence.expected.shape != (n,):
        raise InvalidArgumentError(
            f"evidence scores {evidence.expected.shape[0]} levels, the pool has {n}"
        )
    used = np.zeros(n, dtype=np.int64) if counts is None else np.asarray(counts)
    if used.shape != (n,):
        raise InvalidArgumentError(f"counts must have shape ({n},), got {used.shape}")
    table = pool.table().join(evidence.table())
    table["episodes"] = used.astype(np.int64)
    return table
