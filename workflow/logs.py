"""The one logging configuration of ``serve``, ``worker`` and the command line.

Lines go to stderr, as plain text or, with ``BREACHFLOW_LOG_FORMAT=json``, one JSON object each;
``BREACHFLOW_LOG_LEVEL`` sets the level. A line logged while a request is handled carries its id
(``request_id``, set by the API's middleware and carried by ``contextvars`` into the service layer
and the threads it uses). Log calls never pass names, email addresses or the free text of an
incident; every line is passed through ``redaction.for_log`` besides, for what a third-party
message may echo. Libraries that print rows or message contents when verbose stay at WARNING (``QUIET``).
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from breachflow.workflow.config import Settings
from breachflow.workflow.redaction import for_log

request_id: ContextVar[str | None] = ContextVar("breachflow_request_id", default=None)
# kept at WARNING whatever the level: at DEBUG SQLAlchemy logs every row it fetches (names and addresses
# included) and the mail and form libraries what they carry; transitions narrates every trial of a trigger;
# alembic narrates each upgrade step, which the commands that upgrade already report
QUIET = ("sqlalchemy", "aiosmtplib", "python_multipart", "multipart", "transitions", "alembic")


class RequestIdFilter(logging.Filter):
    """Puts the id of the request being handled (or ``None``) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (a test's capture, a replaced stream)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message``, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        time = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        rid = getattr(record, "request_id", None)
        message = record.getMessage().replace("\r", "\\r").replace("\n", "\\n")  # one record, one line
        line = f"{time} {record.levelname} {record.name}{f' [{rid}]' if rid else ''} {message}"
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return for_log(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, the record's ``fields``
    (``extra={"fields": {...}}``) and the exception, if any, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": for_log(record.getMessage()),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            line["request_id"] = rid
        line |= getattr(record, "fields", {})
        if record.exc_info:
            line["exception"] = for_log("".join(traceback.format_exception(*record.exc_info)).rstrip())
        return json.dumps(line, ensure_ascii=False, default=str)


def config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` dictionary (also uvicorn's ``log_config``)."""
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"breachflow": {"()": formatter}},
        "handlers": {"stderr": {"()": StderrHandler, "formatter": "breachflow", "filters": ["request_id"]}},
        "root": {"level": settings.log_level, "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's own handlers go: its lines take ours. Its access log is off (api.middleware logs access).
            "uvicorn": {"level": settings.log_level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": settings.log_level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            **{name: {"level": "WARNING", "handlers": [], "propagate": True} for name in QUIET},
        },
    }


def configure(settings: Settings) -> None:
    """Configure logging of this process from ``settings``."""
    logging.config.dictConfig(config(settings))
