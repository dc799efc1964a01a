"""Informing the people affected (GDPR art. 34): when a breach is likely a high risk to them.

``high_risk`` is the one rule breachflow uses to decide that a school must tell the people whose
data was affected, and so gets a draft message for them with its notices. It reads only the
incident's facts, so it is decided the same way everywhere (notices, pages, the dossier):

- the severity of the consequences is considerable or very large (the incident's overall
  severity, or that of any group affected);
- special categories of personal data (art. 9) or criminal data (art. 10) were affected;
- a citizen service number (BSN), financial data, or access or identification data (passwords,
  login names) were affected.

Data that was encrypted or otherwise unreadable (``data_unreadable``) does not count for the kinds
of data (art. 34(3)(a)); the severity, a handler's own judgement of the consequences, counts
regardless. An unknown answer to ``data_unreadable`` counts as readable: the school rather hears
too soon than too late.
"""

from __future__ import annotations

from enum import StrEnum

from breachflow.workflow.disclosure import DataKind, Disclosure, Severity

HIGH_SEVERITIES = frozenset({Severity.considerable, Severity.very_large})


class RiskReason(StrEnum):
    """Why a breach is likely a high risk to the people affected."""

    severity = "severity"
    special_categories = "special_categories"
    citizen_service_number = "citizen_service_number"
    financial = "financial"
    access_identification = "access_identification"


_RISKY_KINDS = {  # kinds of data that make a breach a high risk when they could be read
    DataKind.special_categories: RiskReason.special_categories,
    DataKind.citizen_service_number: RiskReason.citizen_service_number,
    DataKind.financial: RiskReason.financial,
    DataKind.access_identification: RiskReason.access_identification,
}


def high_risk(disclosure: Disclosure) -> list[RiskReason]:
    """Why the breach is likely a high risk to the people affected; empty when it is not (see the
    module's docstring for the rule)."""
    reasons = []
    severities = {disclosure.severity} | {g.severity for g in disclosure.affected_groups or ()}
    if severities & HIGH_SEVERITIES:
        reasons.append(RiskReason.severity)
    if disclosure.data_unreadable is not True:
        kinds = set(disclosure.data_kinds or ())
        if disclosure.special_categories:
            kinds.add(DataKind.special_categories)
        reasons += [reason for kind, reason in _RISKY_KINDS.items() if kind in kinds]
    return reasons
