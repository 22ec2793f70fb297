"""Active audit design: find the levels that tell behavioural hypotheses apart.

* :mod:`behavioral.design.scoring` -- exact per-level evidence between hypotheses (KL
  divergence of trajectory distributions) and regret gaps, many levels per compiled call;
* :mod:`behavioral.design.sources` -- candidate levels from a generator, a split or
  seeds, and mutation search on envs with editable level specs;
* :mod:`behavioral.design.evidence` -- anytime-valid e-processes (universal inference) that
  stay calibrated under adaptive level choice and optional stopping;
* :mod:`behavioral.design.chooser` -- which levels to audit next.
"""

from __future__ import annotations

from behavioral.design.scoring import (
    Hypothesis,
    LevelScores,
    LevelStack,
    hypothesis_log_likelihoods,
    hypothesis_policy,
    score_levels,
    stack_levels,
)

__all__ = [
    "Hypothesis",
    "LevelScores",
    "LevelStack",
    "hypothesis_log_likelihoods",
    "hypothesis_policy",
    "score_levels",
    "stack_levels",
]
