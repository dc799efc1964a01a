"""Who must notify the AP, derived from the cause category (seed 6d). Never entered by hand."""

from __future__ import annotations

from enum import StrEnum

from breachflow.workflow.disclosure import CauseCategory


class Responsibility(StrEnum):
    processor = "processor"
    school = "school"
    unknown = "unknown"


_BY_CAUSE = {
    CauseCategory.system_technical: Responsibility.processor,
    CauseCategory.processor_internal: Responsibility.processor,
    CauseCategory.user_error_admin: Responsibility.school,
    CauseCategory.user_error_employee: Responsibility.school,
    CauseCategory.negligence_parent: Responsibility.school,
    CauseCategory.unknown: Responsibility.unknown,
}


def responsibility_for(cause: CauseCategory | None) -> Responsibility:
    """The party that notifies the AP for a cause; ``unknown`` until the cause is known."""
    return Responsibility.unknown if cause is None else _BY_CAUSE[cause]
