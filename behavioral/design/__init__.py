"""Active audit design: find the levels that tell behavioural hypotheses apart.

* :mod:`behavioral.design.scoring` -- exact per-level evidence between hypotheses (the KL
  divergence of their trajectory distributions) and regret gaps, many levels per
  compiled call;
* :mod:`behavioral.design.sources` -- candidate levels from a generator, a split or
  seeds, and mutation search on envs with editable level specs, with each level's
  distance from the training distribution;
* :mod:`behavioral.design.evidence` -- anytime-valid e-processes (universal inference)
  that stay calibrated under adaptive level choice and optional stopping;
* :mod:`behavioral.design.chooser` -- which levels to audit next.
"""

from __future__ import annotations

from behavioral.design.chooser import (
    Choice,
    Evidence,
    choose_levels,
    design_table,
    expected_evidence,
    rival_variant,
)
from behavioral.design.evidence import (
    EProcess,
    SequentialDecision,
    first_rejection,
    mixture_predictive_ll,
    sequential_decision,
    universal_log_evalues,
)
from behavioral.design.scoring import (
    Hypothesis,
    LevelScores,
    LevelStack,
    hypothesis_log_likelihoods,
    hypothesis_policy,
    score_levels,
    stack_levels,
)
from behavioral.design.sources import (
    CandidateLevel,
    LevelPool,
    edit_distance,
    is_editable,
    level_pool,
    mutate_levels,
    search_levels,
)

__all__ = [
    "CandidateLevel",
    "Choice",
    "EProcess",
    "Evidence",
    "Hypothesis",
    "LevelPool",
    "LevelScores",
    "LevelStack",
    "SequentialDecision",
    "choose_levels",
    "design_table",
    "edit_distance",
    "expected_evidence",
    "first_rejection",
    "hypothesis_log_likelihoods",
    "hypothesis_policy",
    "is_editable",
    "level_pool",
    "mixture_predictive_ll",
    "mutate_levels",
    "rival_variant",
    "score_levels",
    "search_levels",
    "sequential_decision",
    "stack_levels",
    "universal_log_evalues",
]
