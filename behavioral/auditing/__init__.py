"""The audit: which objective explains a policy's behaviour -- the base objective, a named
proxy, none of them, or can the data not tell?

``behavioral.audit(policy_or_dataset, env, ...)`` is the entry point; see
:func:`behavioral.auditing.core.audit`.
"""

from behavioral.auditing.core import (
    VERDICTS,
    Audit,
    audit,
    audit_demonstrations,
    candidate_rewards,
    merge_levels,
)

__all__ = [
    "VERDICTS",
    "Audit",
    "audit",
    "audit_demonstrations",
    "candidate_rewards",
    "merge_levels",
]
