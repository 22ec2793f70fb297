"""The audit: which objective explains a policy's behaviour -- the base objective, a named
proxy, none of them, or can the data not tell?

``behavioral.audit(policy_or_dataset, env, ...)`` is the entry point (:func:`audit`, in
:mod:`.api`); :func:`audit_demonstrations` (:mod:`.core`) audits state-index demonstrations
on tabular models; :class:`Audit` (:mod:`.result`) is what both return. The verdict is a
pure function of the evidence: :func:`decide` (:mod:`.decision`).
"""

from behavioral.auditing.api import audit, merge_levels
from behavioral.auditing.candidates import candidate_rewards
from behavioral.auditing.core import audit_demonstrations
from behavioral.auditing.decision import (
    VERDICTS,
    DecisionConfig,
    Evidence,
    PairEvidence,
    Verdict,
    decide,
)
from behavioral.auditing.result import Audit

__all__ = [
    "VERDICTS",
    "Audit",
    "DecisionConfig",
    "Evidence",
    "PairEvidence",
    "Verdict",
    "audit",
    "audit_demonstrations",
    "candidate_rewards",
    "decide",
    "merge_levels",
]
