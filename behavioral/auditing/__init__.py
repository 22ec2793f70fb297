"""The audit: which objective explains a policy's behaviour -- the base objective, a named
proxy, none of them, or can the data not tell?

``behavioral.audit(policy_or_dataset, env, ...)`` is the entry point (:func:`audit`, in
:mod:`behavioral.auditing.api`); :func:`audit_demonstrations` (:mod:`.core`) audits state-index
demonstrations on tabular models; :class:`Audit` (:mod:`.result`) is what both return.
"""

from behavioral.auditing.api import audit, merge_levels
from behavioral.auditing.core import VERDICTS, audit_demonstrations, candidate_rewards
from behavioral.auditing.result import Audit

__all__ = [
    "VERDICTS",
    "Audit",
    "audit",
    "audit_demonstrations",
    "candidate_rewards",
    "merge_levels",
]
