"""Errors of the incident engine.

BreachflowError                 base of every error the engine raises on purpose
├── NotFound                    the incident or school does not exist (or is not yours to see)
├── InvalidInput                input failed validation; ``fields`` names each bad field
├── Conflict                    the request is valid but the incident's state does not allow it
│   ├── TriggerNotAllowed       the trigger is not valid in the incident's current state
│   ├── GuardFailed             the trigger is valid, but fields it needs are missing
│   ├── StaleVersion            another command changed the incident first
│   └── SchoolDestroyed         retention destroyed the school's data: no accounts, passwords or tokens for it
├── KeyUnavailable              personal data cannot be opened (``except KeyUnavailable`` catches all three)
│   ├── DataDestroyed           its data key was destroyed when the retention period ended: gone for good
│   ├── SecretUnavailable       a key is missing, malformed or readable by others, or no configured master
│   │                           key opens a data key: a configuration problem, fixed by restoring the key
│   └── DataDamaged             a sealed value does not match its data key (altered or corrupt)
├── NotInitialised              nothing is installed here yet: run ``breachflow init``
└── SchemaMismatch              the database's schema is not this breachflow's: behind (run ``breachflow db
                                upgrade``), at a revision only a newer breachflow knows, or not adoptable

The API maps these classes to HTTP statuses in one place; the CLI maps them to exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class FieldProblem:
    """One field and what is wrong with it, in words a handler understands."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


class BreachflowError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "error"

    def __init__(self, message: str, fields: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = list(fields or [])

    def __str__(self) -> str:
        if not self.fields:
            return self.message
        return f"{self.message}: " + "; ".join(str(f) for f in self.fields)


class NotFound(BreachflowError):
    code = "not_found"


class InvalidInput(BreachflowError):
    code = "invalid_input"

    @classmethod
    def from_validation(cls, exc: ValidationError, prefix: str = "") -> InvalidInput:
        """Every problem pydantic found, each with the field it concerns."""
        problems = [
            FieldProblem(
                prefix + ".".join(str(part) for part in err["loc"]) or "input",
                "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, "),
            )
            for err in exc.errors()
        ]
        return cls("invalid input", problems)


class Conflict(BreachflowError):
    code = "conflict"


class TriggerNotAllowed(Conflict):
    code = "trigger_not_allowed"

    def __init__(self, trigger: str, state: str, valid: Sequence[str]) -> None:
        valid_text = ", ".join(valid) if valid else "none"
        super().__init__(
            f"'{trigger}' cannot be fired in state '{state}'; valid there: {valid_text}"
        )
        self.trigger, self.state, self.valid = trigger, state, valid


class GuardFailed(Conflict):
    code = "guard_failed"

    def __init__(self, trigger: str, missing: list[FieldProblem]) -> None:
        super().__init__(f"'{trigger}' needs {len(missing)} more field(s)", missing)
        self.trigger = trigger


class StaleVersion(Conflict):
    code = "stale_version"


class SchoolDestroyed(Conflict):
    """Retention destroyed the school's data key: its users get no account, password, address or token."""

    code = "school_destroyed"


class KeyUnavailable(BreachflowError):
    code = "key_unavailable"


class DataDestroyed(KeyUnavailable):
    code = "data_destroyed"


class SecretUnavailable(KeyUnavailable):
    """A key of the installation cannot be used as configured; the message says which and what to do."""


class DataDamaged(KeyUnavailable):
    code = "data_damaged"


class NotInitialised(BreachflowError):
    code = "not_initialised"


class SchemaMismatch(BreachflowError):
    code = "schema_mismatch"


class PeriodsMismatch(SchemaMismatch):
    """This process's deadline periods are not those the installation's stored deadlines follow."""

    code = "periods_mismatch"


class DatabaseFailure(BreachflowError):
    """The database refused or failed a statement this breachflow expects to work (a schema changed
    by hand, a disk full, a server gone): the command line names it instead of a traceback."""

    code = "database_failure"
