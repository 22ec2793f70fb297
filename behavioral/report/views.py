"""The report's view of an audit: every statistic, column and name it shows, read in one place.

The rest of the report never reads ``audit.evidence``, ``audit.decision``, ``audit.table`` columns or
``audit.metadata``: it reads the frozen dataclasses built here. When the audit's
representation changes, this is the one module to adapt.

* :func:`run_view` -- who was audited where: the policy's short name, env, split, seed.
* :func:`candidate_views` -- one row per candidate objective (fitted nuisances, likelihoods,
  EPIC distances, with intervals).
* :func:`evidence_view` -- the tests behind the verdict (null model, recovered reward).
* :func:`coverage_view` -- the transitions EPIC compared rewards on.
* :func:`outcome_views` -- what the episodes achieved (returns and the env's outcomes).
* :func:`design_view` -- an active audit's chosen levels, the random levels of the same
  source, and its e-values against episodes.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from behavioral.auditing import Audit

__all__ = [
    "CandidateView",
    "CoverageView",
    "DesignLevel",
    "DesignView",
    "EvidenceView",
    "OutcomeView",
    "RunView",
    "candidate_views",
    "coverage_view",
    "design_view",
    "evidence_view",
    "level_spec",
    "outcome_views",
    "policy_name",
    "policy_slug",
    "reset_seed",
    "run_view",
]


# ----------------------------------------------------------------------------- the run


@dataclasses.dataclass(frozen=True)
class RunView:
    """Who was audited, where, and how.

    Attributes:
        policy_name: a short name for titles (zoo name, planner spec, file name; see
            :func:`policy_name`).
        policy_description: the policy's full description as recorded, or None.
        env_id: the gymnasium id, or None (tabular levels given directly).
        env_kwargs: the env's keyword arguments (``split`` included when recorded).
        split: the split, or None.
        method: the IRL method of the recovered reward.
        seed: the audit's seed, or None.
        version: the library version that ran the audit, or None.
        n_episodes: episodes in the audit.
        n_levels: distinct levels.
        label_split: the split whose words describe the levels played (the env's names
            for outcomes and doors): ``split``, or the split an active audit drew its
            levels from; None when they came from elsewhere (edited or generated levels:
            on an edited RedDoors ``train`` level the red door is no longer the exit).
        observation_wrappers: the observation wrappers the policy saw the env through
            (names, innermost first), as recorded.
    """

    policy_name: str
    policy_description: str | None
    env_id: str | None
    env_kwargs: Mapping[str, Any]
    split: str | None
    method: str | None
    seed: int | None
    version: str | None
    n_episodes: int
    n_levels: int
    label_split: str | None = None
    observation_wrappers: tuple[str, ...] = ()

    @property
    def env_name(self) -> str:
        """The env id without its namespace (``RedDoors-v0``), or "tabular levels"."""
        if not self.env_id:
            return "tabular levels"
        return self.env_id.rsplit("/", 1)[-1]

    @property
    def where(self) -> str:
        """``RedDoors-v0, split deploy`` (or the env alone)."""
        return f"{self.env_name}, split {self.split}" if self.split else self.env_name


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def run_view(audit: Audit) -> RunView:
    """The :class:`RunView` of an audit (from its metadata)."""
    m = audit.metadata
    seed = m.get("seed")
    return RunView(
        policy_name=policy_name(m),
        policy_description=_text(m.get("policy")),
        env_id=_text(m.get("env_id")),
        env_kwargs=dict(m.get("env_kwargs") or {}),
        split=_text(m.get("split")),
        method=_text(m.get("method")) or audit.recovered.method,
        seed=int(seed) if isinstance(seed, (int, np.integer)) else None,
        version=_text(m.get("behavioral_version")),
        n_episodes=len(audit.demonstrations),
        n_levels=len(audit.levels),
        label_split=_label_split(audit, _text(m.get("split"))),
        observation_wrappers=tuple(
            w for w in (m.get("observation_wrappers") or ()) if isinstance(w, str)
        ),
    )


def _label_split(audit: Audit, split: str | None) -> str | None:
    """The split whose words fit the levels played (see :class:`RunView`)."""
    eps = audit.episodes
    if audit.sequential is None or eps is None or "origin" not in eps.columns:
        return split
    origins = set(eps["origin"].astype(str))
    if origins == {"seeds"}:
        return split
    if len(origins) == 1 and next(iter(origins)).startswith("split:"):
        return next(iter(origins)).split(":", 1)[1]
    return None


# Descriptions written by behavioral.policies: the planners' reprs and SB3's
# "PPO(ActorCriticPolicy) [env_id='...', split='train', total_timesteps=..., seed=0]".
_PLANNER = re.compile(
    r"^(SoftOptimalPolicy|EpsilonGreedyPolicy)\((?:objective=)?'?([^',()]+)'?, "
    r"(?:beta|epsilon)=([^,()]+)(?:, discount=[^()]*)?\)$"
)
_SB3 = re.compile(r"^(\w+)\(\w+\)(?: \[(.*)\])?$")
_ITEM = re.compile(r"(\w+)=('[^']*'|[^,]+)")
_MAX_NAME = 60


def policy_name(metadata: Mapping[str, Any]) -> str:
    """A short name of the audited policy, for titles.

    In order: ``metadata["policy_name"]`` when it is set (the zoo name, the CLI's policy
    spec, a file name); else a short form of the recorded description: a planner's spec
    (``planner:red_door:5``, ``epsilon-greedy:exit:0.1``), an SB3 model's algorithm and
    where it was trained (``PPO trained on RedDoors-v0 train, seed 0``), or the description
    cut to 60 characters; "demonstrations" when nothing names the policy.
    """
    given = _text(metadata.get("policy_name"))
    if given:
        return _cut(given)
    desc = _text(metadata.get("policy"))
    if desc is None:
        return "demonstrations"
    match = _PLANNER.match(desc)
    if match:
        kind = "planner" if match.group(1) == "SoftOptimalPolicy" else "epsilon-greedy"
        return _cut(f"{kind}:{match.group(2)}:{_short_number(match.group(3))}")
    match = _SB3.match(desc)
    if match:
        items = {k: v.strip("'") for k, v in _ITEM.findall(match.group(2) or "")}
        where = " ".join(
            x for x in (items.get("env_id", "").rsplit("/", 1)[-1], items.get("split")) if x
        )
        name = match.group(1) + (f" trained on {where}" if where else "")
        if "seed" in items:
            name += f", seed {items['seed']}"
        return _cut(name)
    return _cut(desc)


def _short_number(text: str) -> str:
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_NAME else text[: _MAX_NAME - 1] + "…"


def policy_slug(name: str) -> str:
    """``name`` as a safe file-name component: letters, digits, ``.``, ``_``, ``-``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80]
    return slug or "policy"


# ----------------------------------------------------------------------------- candidates


def _beta_bound(audit: Audit) -> float | None:
    """The fit's largest inverse temperature relative to a candidate's reward scale
    (``beta <= bound / max|reward|``), as the audit recorded it; None when unknown."""
    bound = audit.fit_options.get("beta_max")
    return float(bound) if isinstance(bound, (int, float)) else None


@dataclasses.dataclass(frozen=True)
class CandidateView:
    """One candidate objective's fit and evidence.

    Attributes:
        name, role: the objective and ``"base"`` / ``"proxy"``.
        beta: fitted inverse temperature; ``beta_max`` the largest the fit allowed (None
            when unknown).
        living_reward, discount, lapse: the fitted nuisances (None: not in the audit).
        log_likelihood, log_likelihood_ci: mean log-likelihood per episode and its CI.
        delta, delta_ci: log-likelihood per episode minus the base objective's, and CI.
        epic, epic_ci: EPIC distance to the recovered reward on the data's coverage, CI.
        epic_to_base: EPIC distance to the base objective on the data's choice set (every
            transition available from the visited states).
        explained: fraction of the recovered reward's likelihood gain over the null model
            that this candidate reaches.
    """

    name: str
    role: str
    beta: float
    beta_max: float | None
    living_reward: float | None
    discount: float | None
    lapse: float | None
    log_likelihood: float
    log_likelihood_ci: tuple[float, float]
    delta: float
    delta_ci: tuple[float, float]
    epic: float
    epic_ci: tuple[float, float]
    epic_to_base: float
    explained: float

    @property
    def beta_at_bound(self) -> bool:
        return self.beta_max is not None and self.beta >= 0.999 * self.beta_max


def _get(row: pd.Series, column: str) -> float | None:
    if column not in row.index:
        return None
    value = row[column]
    return float(value) if value is not None else None


def candidate_views(audit: Audit) -> tuple[CandidateView, ...]:
    """One :class:`CandidateView` per row of the audit's candidate table, in its order."""
    bound = _beta_bound(audit)
    out = []
    for name, row in audit.table.iterrows():
        scale = max(
            (float(np.max(np.abs(r))) for r in audit.candidates.get(name, ()) if np.size(r)),
            default=0.0,
        )
        out.append(
            CandidateView(
                name=str(name),
                role=str(row["role"]),
                beta=float(row["beta"]),
                beta_max=bound / scale if bound is not None and scale > 0 else None,
                living_reward=_get(row, "living_reward"),
                discount=_get(row, "discount"),
                lapse=_get(row, "lapse"),
                log_likelihood=float(row["log_likelihood"]),
                log_likelihood_ci=(float(row["ll_low"]), float(row["ll_high"])),
                delta=float(row["delta_vs_base"]),
                delta_ci=(float(row["delta_low"]), float(row["delta_high"])),
                epic=float(row["epic_to_recovered"]),
                epic_ci=(float(row["epic_low"]), float(row["epic_high"])),
                epic_to_base=float(row["epic_to_base"]),
                explained=float(row["explained"]),
            )
        )
    return tuple(out)


# ----------------------------------------------------------------------------- evidence


@dataclasses.dataclass(frozen=True)
class EvidenceView:
    """The tests behind the verdict.

    Attributes:
        best: the candidate with the highest likelihood.
        lr_vs_null, p_vs_null: likelihood-ratio statistic of the best candidate against the
            null model, and its p-value.
        lr_recovered_vs_best, p_recovered_vs_best: the recovered reward against the best
            candidate.
        explained_by_best: the best candidate's ``explained``.
        confidence: level of every interval.
        null_log_likelihood: the null model's mean log-likelihood per episode, or None.
        recovered_log_likelihood: the recovered reward's.
        coincides_with: proxies that are the named proxy's reward on this data.
        lapse_mode: how lapses were fitted (``"auto"``, True, False), or None.
    """

    best: str | None
    lr_vs_null: float
    p_vs_null: float
    lr_recovered_vs_best: float
    p_recovered_vs_best: float
    explained_by_best: float
    confidence: float
    null_log_likelihood: float | None
    recovered_log_likelihood: float
    coincides_with: tuple[str, ...]
    lapse_mode: Any


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def evidence_view(audit: Audit) -> EvidenceView:
    """The :class:`EvidenceView` of an audit (from its typed evidence and decision)."""
    d, ev = audit.decision, audit.evidence
    n = ev.n_episodes
    return EvidenceView(
        best=d.best,
        lr_vs_null=d.lr_vs_null,
        p_vs_null=d.p_vs_null,
        lr_recovered_vs_best=d.lr_vs_recovered,
        p_recovered_vs_best=d.p_vs_recovered,
        explained_by_best=d.explained_fraction,
        confidence=ev.confidence,
        null_log_likelihood=ev.null_log_likelihood / n,
        recovered_log_likelihood=ev.recovered_log_likelihood / n,
        coincides_with=tuple(d.twins),
        lapse_mode=audit.fit_options.get("lapse"),
    )


# ----------------------------------------------------------------------------- coverage


@dataclasses.dataclass(frozen=True)
class CoverageView:
    """The transitions EPIC compared rewards on."""

    name: str
    n_transitions: int
    n_states: int
    n_states_covered: int
    n_state_actions_covered: int
    effective_transitions: float


def coverage_view(audit: Audit) -> CoverageView:
    """The :class:`CoverageView` of an audit."""
    c = audit.coverage.summary()
    return CoverageView(
        name=str(c["name"]),
        n_transitions=int(c["n_transitions"]),
        n_states=int(c["n_states"]),
        n_states_covered=int(c["n_states_covered"]),
        n_state_actions_covered=int(c["n_state_actions_covered"]),
        effective_transitions=float(c["effective_transitions"]),
    )


def reset_seed(audit: Audit, episode: int) -> int | None:
    """The recorded ``reset_seed`` of episode ``episode`` (rebuilds its level), or None."""
    eps = audit.episodes
    if eps is None or "reset_seed" not in eps.columns or not 0 <= episode < len(eps):
        return None
    value = eps["reset_seed"].tolist()[episode]
    return int(value) if isinstance(value, (int, np.integer)) else None


def level_spec(audit: Audit, episode: int) -> str | None:
    """The recorded level spec (canonical JSON) episode ``episode`` was played on, or None
    (levels drawn from their reset seed)."""
    eps = audit.episodes
    if eps is None or "level" not in eps.columns or not 0 <= episode < len(eps):
        return None
    value = eps["level"].tolist()[episode]
    return value if isinstance(value, str) else None


# ----------------------------------------------------------------------------- active design


@dataclasses.dataclass(frozen=True)
class DesignLevel:
    """A candidate level of an active audit, as the report shows it.

    Attributes:
        key: its identity (an editable env's level spec as canonical JSON).
        spec: the level spec to re-create it from (canonical JSON), or None.
        reset_seed: the reset seed that re-creates it (levels drawn by seed), or None.
        split: the split whose env draws it from ``reset_seed`` (``split:<name>`` sources).
        origin: ``generator``, ``split:<name>``, ``seeds`` or ``mutation``.
        distance: edits from the training distribution (None: unknown).
        expected: expected evidence of one episode there (nats, under the final fits).
        episodes: episodes the audit played there.
        model: index of its model in ``audit.levels`` when played, else None.
    """

    key: str
    spec: str | None
    reset_seed: int | None
    split: str | None
    origin: str
    distance: float | None
    expected: float
    episodes: int
    model: int | None


@dataclasses.dataclass(frozen=True)
class DesignView:
    """An active (or sequential) audit's design and its anytime-valid test.

    Attributes:
        design: ``"active"`` or ``"sequential"``.
        source: where the candidate levels came from, in words.
        n_candidates: candidate levels scored.
        alpha, threshold: the test's level and the log e-value a test had to reach.
        tests: the tests' labels (``"a>b"``); ``deciding``: those the verdict rule reads
            for the named objective (the proxy's, or the base objective's).
        episodes: (B,) episodes after each batch; log_e: (B, T) log e-values then.
        expected_chosen, expected_source: (B,) expected evidence per episode of the
            levels played and of random levels of the source, under the fits of the time.
        chosen: the levels played, most episodes first; ``random``: levels of the source
            (as a random design would draw them), for comparison.
        decisive, stopped, budget, reason: how the test ended.
    """

    design: str
    source: str
    n_candidates: int
    alpha: float
    threshold: float
    tests: tuple[str, ...]
    deciding: tuple[str, ...]
    episodes: np.ndarray
    log_e: np.ndarray
    expected_chosen: np.ndarray
    expected_source: np.ndarray
    chosen: tuple[DesignLevel, ...]
    random: tuple[DesignLevel, ...]
    decisive: bool
    stopped: str
    budget: int
    reason: str


def _design_level(row: pd.Series, key_to_model: Mapping[str, int]) -> DesignLevel:
    key = str(row["key"])
    origin = str(row["origin"])
    seed = row.get("reset_seed")
    distance = row.get("distance")
    return DesignLevel(
        key=key,
        spec=key if key.startswith("{") else None,
        reset_seed=int(seed) if isinstance(seed, (int, np.integer)) or (
            isinstance(seed, float) and math.isfinite(seed)
        ) else None,
        split=origin.split(":", 1)[1] if origin.startswith("split:") else None,
        origin=origin,
        distance=float(distance) if distance is not None and np.isfinite(distance) else None,
        expected=float(row["expected"]),
        episodes=int(row["episodes"]),
        model=key_to_model.get(key),
    )  # fmt: skip


def _deciding(tests: Sequence[str], base: str, proxy: str | None) -> tuple[str, ...]:
    if proxy is not None:
        return tuple(t for t in tests if t.startswith(f"{proxy}>"))
    return tuple(t for t in tests if t.startswith(f"{base}>"))


def design_view(audit: Audit, *, max_levels: int = 4) -> DesignView | None:
    """The :class:`DesignView` of an audit that chose its levels (None for others).

    ``chosen`` holds up to ``max_levels`` levels played (most episodes first), ``random``
    up to ``max_levels`` levels of the source itself (not mutated), in the order the
    source drew them.
    """
    seq, table = audit.sequential, audit.design
    if seq is None or table is None or not len(table):
        return None
    key_to_model: dict[str, int] = {}
    eps = audit.episodes
    if eps is not None and "key" in eps.columns:
        for key, demo in zip(eps["key"].tolist(), audit.demonstrations, strict=False):
            key_to_model.setdefault(str(key), int(demo.level))
    played = table[table["episodes"] > 0].sort_values(
        ["episodes", "expected"], ascending=False, kind="stable"
    )
    source = table[table["origin"] != "mutation"]
    return DesignView(
        design=seq.design,
        source=_text(audit.metadata.get("level_source")) or "the env's levels",
        n_candidates=len(table),
        alpha=seq.alpha,
        threshold=seq.threshold,
        tests=tuple(seq.tests),
        deciding=_deciding(seq.tests, audit.base, seq.proxy),
        episodes=np.asarray(seq.episodes),
        log_e=np.asarray(seq.log_e),
        expected_chosen=np.asarray(seq.expected_chosen),
        expected_source=np.asarray(seq.expected_source),
        chosen=tuple(_design_level(r, key_to_model) for _, r in played.head(max_levels).iterrows()),
        random=tuple(_design_level(r, key_to_model) for _, r in source.head(max_levels).iterrows()),
        decisive=seq.decisive,
        stopped=seq.stopped,
        budget=seq.budget,
        reason=seq.reason,
    )


# ----------------------------------------------------------------------------- outcomes

RETURN_PREFIX = "return."
OUTCOME = "outcome"


@dataclasses.dataclass(frozen=True)
class OutcomeView:
    """One quantity the episodes achieved: mean per episode with a normal 95% interval.

    Attributes:
        key: what it is, as the env's display names are keyed: the column
            (``return.exit``, ``outcome.flooded_cells``) or ``column=value`` for the share
            of a categorical outcome (``outcome=other_door``).
        kind: ``"return"`` (an objective's return), ``"count"`` (a numeric outcome) or
            ``"share"`` (the share of episodes with a categorical outcome).
        objective: the objective of a return, else None.
        mean, low, high: the mean per episode and its interval.
        n: episodes.
    """

    key: str
    kind: str
    objective: str | None
    mean: float
    low: float
    high: float
    n: int


def _numeric_outcome(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def outcome_views(
    episodes: pd.DataFrame | None,
    objectives: Sequence[str] = (),
    categories: Mapping[str, Sequence[str]] | None = None,
) -> tuple[OutcomeView, ...]:
    """What the episodes achieved, from the per-episode table of a rollout.

    Returns of ``objectives`` first (in that order, then any other ``return.*`` column),
    then numeric outcomes (``outcome.*``), then the share of each value of every
    categorical outcome (``outcome`` and string ``outcome.*`` columns; bools count as
    categories) among all episodes (a missing value, e.g. no door entered, is no
    category). Intervals: mean ± 1.96 standard errors (Wald for shares).

    Args:
        episodes: the per-episode table (``return.<objective>``, ``outcome``,
            ``outcome.<key>`` columns), or None.
        objectives: objective names whose returns come first, in this order.
        categories: column -> values of a categorical column listed even when no
            episode has them (a share of 0 is a result: "left by the exit: 0").
    """
    if episodes is None or not len(episodes):
        return ()
    cols = list(episodes.columns)
    returns = [f"{RETURN_PREFIX}{o}" for o in objectives if f"{RETURN_PREFIX}{o}" in cols]
    returns += [c for c in cols if c.startswith(RETURN_PREFIX) and c not in returns]
    outcomes = [c for c in cols if c == OUTCOME or c.startswith(OUTCOME + ".")]
    out = []
    for c in returns + [c for c in outcomes if _numeric_outcome(episodes[c])]:
        x = episodes[c].to_numpy(dtype=np.float64)
        x = x[np.isfinite(x)]
        if not x.size:
            continue
        m = float(x.mean())
        half = 1.96 * float(x.std(ddof=1)) / math.sqrt(x.size) if x.size > 1 else 0.0
        is_return = c.startswith(RETURN_PREFIX)
        out.append(
            OutcomeView(
                key=c,
                kind="return" if is_return else "count",
                objective=c[len(RETURN_PREFIX) :] if is_return else None,
                mean=m,
                low=m - half,
                high=m + half,
                n=int(x.size),
            )
        )
    for c in outcomes:
        if _numeric_outcome(episodes[c]):
            continue
        n = len(episodes)
        counts = {
            str(k): int(v) for k, v in episodes[c].dropna().astype(str).value_counts().items()
        }
        for val in (categories or {}).get(c, ()):
            counts.setdefault(str(val), 0)
        for val, count in sorted(counts.items()):
            p = count / n
            half = 1.96 * math.sqrt(p * (1 - p) / n)
            out.append(OutcomeView(f"{c}={val}", "share", None, float(p), p - half, p + half, n))
    return tuple(out)
