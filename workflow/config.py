"""Settings: one pydantic-settings class, read from ``BREACHFLOW_*`` environment variables.

Every deadline period and every list the process depends on lives here, so nothing in the
code carries a literal of its own. Tests build their own ``Settings`` and pass it in.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterator
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from breachflow.workflow.validation import EMAIL, NOT_AN_ADDRESS, kvk_number

# the sender's address: ASCII, a domain of one label or more (privacy@localhost for a local trial;
# production refuses local domains with a message of its own)
SENDER = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*$")

DEFAULT_SYSTEMS = ("parent_portal", "plaza", "cms", "website")
# each secret's setting → the setting naming its file, and that file's name in the data directory
SECRET_FILES = {
    "master_keys": ("key_file", "master.key"),
    "audit_key": ("audit_key_file", "audit.key"),
    "checkpoint_key": ("checkpoint_key_file", "checkpoint.key"),
}


DKIM_SELECTOR = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"  # DNS labels, as in <selector>._domainkey.<domain>
DATA_KEY_CACHE_BYTES = 36 * 2**20  # about 100,000 opened data keys


class Settings(BaseSettings):
    """Configuration of one breachflow process."""

    model_config = SettingsConfigDict(env_prefix="BREACHFLOW_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in data_dir"
    )
    master_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated Fernet keys, newest first; default: the key file",
    )
    key_file: Path | None = Field(default=None, description="default: data_dir/master.key")
    audit_key: SecretStr | None = Field(
        default=None, description="HMAC key of the timeline chain: 32 bytes, base64; default: the audit key file"
    )
    audit_key_file: Path | None = Field(default=None, description="default: data_dir/audit.key")
    checkpoint_key: SecretStr | None = Field(
        default=None, description="Ed25519 signing key: 32 raw bytes, base64; default: the checkpoint key file"
    )
    checkpoint_key_file: Path | None = Field(default=None, description="default: data_dir/checkpoint.key")

    database_pool_size: int = Field(
        default=5, ge=1, le=100, description="PostgreSQL: connections each process keeps open (and requests at once)")
    database_max_overflow: int = Field(
        default=10, ge=0, le=100, description="PostgreSQL: more connections each process opens while busy")

    data_key_cache_bytes: int = Field(
        default=DATA_KEY_CACHE_BYTES, ge=0, description="memory for opened data keys (about 360 bytes each); 0: none kept")

    school_notice_hours: float = Field(default=24, gt=0, description="processor → school")
    ap_notice_hours: float = Field(default=72, gt=0, description="discovery → AP (GDPR 33(1))")
    school_ap_notice_hours: float = Field(
        default=72, gt=0, description="school's own AP clock, from the processor's first notice"
    )
    due_soon_hours: float = Field(default=12, gt=0)
    affected_systems: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_SYSTEMS)
    )

    # the HTTP API's edges
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="larger request bodies get 413")
    auth_failures_per_minute: int = Field(
        default=10, ge=1, description="failed authentications per client address (per process) before 429"
    )

    # the pages (api/web)
    session_idle_minutes: int = Field(
        default=60, ge=1, le=24 * 60, description="a browser session unused this long ends")
    session_hours: int = Field(default=12, ge=1, le=24 * 7, description="a browser session ends this long after sign-in")
    link_days: int = Field(default=30, ge=1, le=365, description="how long the link in a notice opens its incident")
    reports_per_hour: int = Field(
        default=5, ge=1, description="public reports per client address (per process) in an hour before 429")

    # notifications
    mail_from: str = Field(default="privacy@breachflow.localhost", description="sender of every message")
    processor_contact: str = Field(
        default="privacy@basisonline.nl, +31 40 235 46 90 (kantooruren)",
        description="how schools reach the processor's incident handlers (seed section 6)",
    )
    staff_language: Literal["nl", "en"] = "nl"

    # the processor as the AP's form names it beside the school (the AP dossier); unset: "still to collect"
    processor_name: str | None = Field(default=None, max_length=200, description="the processor's legal name")
    processor_address: str | None = Field(default=None, max_length=300, description="the processor's address")
    processor_kvk: str | None = Field(default=None, description="the processor's KvK number: eight digits")
    processor_dpo_registration: str | None = Field(
        default=None, max_length=30, description="the number under which the AP registered the processor's DPO")
    public_url: str = Field(default="http://127.0.0.1:8000", description="where schools reach breachflow")
    smtp_host: str | None = Field(default=None, description="unset: mail goes to a local maildir")
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_ca_file: Path | None = Field(default=None, description="CA bundle to verify the server (default: system)")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_connections: int = Field(default=16, ge=1, le=100, description="reused connections at most")
    smtp_timeout_seconds: float = Field(default=30, gt=0)
    maildir: Path | None = Field(default=None, description="default: data_dir/maildir")
    dkim_selector: str | None = Field(
        default=None, pattern=DKIM_SELECTOR, max_length=63, description="DKIM: the selector the public key is published under (with the key file: sign)")
    dkim_key_file: Path | None = Field(
        default=None, description="DKIM: the private key, PEM (RSA or Ed25519), owner-only; read at start")
    dkim_domain: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9.-]+$", max_length=253,
        description="DKIM: the signing domain (d=); default: the domain of mail_from")
    bounce_address: str | None = Field(
        default=None, description="return path for bounces; set, each message's envelope sender is "
        "local+<token>@domain (VERP), so a bounce names its message")
    bounce_maildir: Path | None = Field(default=None, description="a local maildir the worker reads bounces from")
    bounce_imap_host: str | None = Field(default=None, description="an IMAP server the worker reads bounces from")
    bounce_imap_port: int = Field(default=993, gt=0, lt=65536)
    bounce_imap_security: Literal["none", "starttls", "tls"] = "tls"
    bounce_imap_ca_file: Path | None = Field(default=None, description="CA bundle to verify it (default: system)")
    bounce_imap_username: str | None = None
    bounce_imap_password: SecretStr | None = None
    bounce_imap_mailbox: str = "INBOX"
    bounce_poll_seconds: float = Field(default=300, gt=0, description="how often the worker reads bounces")
    dispatch_batch: int = Field(default=500, ge=1)
    dispatch_max_attempts: int = Field(default=8, ge=1)
    dispatch_retry_seconds: float = Field(
        default=30, gt=0, description="first retry; doubles each time (each wait drawn from [half, all] of it)")
    dispatch_retry_max_seconds: float = Field(default=3600, gt=0)
    dispatch_poll_seconds: float = Field(default=2, gt=0)
    dispatch_lease_seconds: float = Field(default=300, gt=0, description="a dead dispatcher's claims expire")
    reminder_offsets_hours: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [12.0, 2.0], description="remind this long before a deadline (and when overdue)"
    )
    reminder_scan_seconds: float = Field(default=60, gt=0)
    in_process_worker: bool = Field(default=True, description="serve also sends mail and scans deadlines")
    shutdown_grace_seconds: float = Field(
        default=20, ge=0, description="on SIGTERM, how long sends in flight may finish before their claims are "
        "given back to the outbox for another worker")
    checkpoint_dir: Path | None = Field(
        default=None, description="where the worker writes signed audit checkpoints; keep it off the database "
        "server, writable by breachflow only (default: data_dir/checkpoints)")
    checkpoint_interval_hours: float = Field(default=24, gt=0, description="how often the worker writes one")
    retention_hours: float = Field(default=24, gt=0, description="how often the worker runs retention (at start, "
                                   "then every so many hours)")

    # observability
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object per line")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_token: SecretStr | None = Field(
        default=None, description="opens /metrics and nothing else (a manager's or admin's token does too)")
    worker_stale_seconds: float = Field(
        default=0, ge=0, description="readyz: a worker beats at each deadline scan; silent this long, it counts as "
                                     "gone (0: three scans, at least 180 s)")
    outbox_stuck_seconds: float = Field(
        default=300, gt=0, description="readyz: a message due this long and still not sent means the outbox is stuck")

    @field_validator("reminder_offsets_hours", mode="before")
    @classmethod
    def _split_offsets(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("processor_kvk")
    @classmethod
    def _kvk_digits(cls, value: str | None) -> str | None:
        return kvk_number(value) if value else None

    @field_validator("mail_from")
    @classmethod
    def _one_sender(cls, value: str) -> str:
        found = getaddresses([value])
        if len(found) != 1 or not SENDER.match(found[0][1]):
            raise ValueError(f"'{value}' is not one sender: give one address, optionally named, e.g. privacy@example.nl "
                             "or \"Privacy, BasisOnline\" <privacy@example.nl> (a name with a comma in quotes; the "
                             "address in ASCII, an international domain in its xn-- form)")
        return value

    @field_validator("bounce_address")
    @classmethod
    def _bare_bounce_address(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.match(value):
            raise ValueError(f"'{value}' {NOT_AN_ADDRESS}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("metrics_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("at least 32 characters (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe())')")
        return value

    @field_validator("affected_systems", mode="before")
    @classmethod
    def _split_systems(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("affected_systems")
    @classmethod
    def _systems_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one system must be configured")
        return value

    @model_validator(mode="after")
    def _heartbeat_outlives_a_scan(self) -> Settings:
        if not self.worker_stale_seconds:
            self.worker_stale_seconds = max(180.0, 3 * self.reminder_scan_seconds)
        elif self.worker_stale_seconds <= self.reminder_scan_seconds:
            raise ValueError("BREACHFLOW_WORKER_STALE_SECONDS must be longer than BREACHFLOW_REMINDER_SCAN_SECONDS: "
                             "the worker beats once per scan")
        return self

    @model_validator(mode="after")
    def _dkim_selector_with_key(self) -> Settings:
        if (self.dkim_selector is None) != (self.dkim_key_file is None):
            given, missing = (("SELECTOR", "KEY_FILE") if self.dkim_key_file is None else ("KEY_FILE", "SELECTOR"))
            raise ValueError(f"BREACHFLOW_DKIM_{missing} is unset while BREACHFLOW_DKIM_{given} is set: DKIM signing "
                             "needs both (or neither, for no signing)")
        return self

    @model_validator(mode="after")
    def _safe_outside_development(self) -> Settings:
        if self.environment == "production":
            problems = list(_unsafe_in_production(self))
            if problems:
                raise ValueError("\n".join(problems))
        return self

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``data_dir/breachflow.db``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'breachflow.db'}"

    @property
    def sender(self) -> tuple[str, str]:
        """(display name, address) of every message: ``mail_from`` may name itself
        (``Privacy BasisOnline <privacy@…>``); else the processor's name, else "breachflow"."""
        name, address = parseaddr(self.mail_from)
        return name or self.processor_name or "breachflow", address or self.mail_from

    @property
    def resolved_maildir(self) -> Path:
        """Where mail goes when no SMTP server is configured."""
        return self.maildir or self.data_dir / "maildir"

    def secret_file(self, secret: str) -> Path:
        """Where the embedded default keeps ``secret`` (a key of ``SECRET_FILES``) when its variable is unset."""
        setting, default = SECRET_FILES[secret]
        return getattr(self, setting) or self.data_dir / default

    @property
    def resolved_checkpoint_dir(self) -> Path:
        """Where the worker writes audit checkpoints."""
        return self.checkpoint_dir or self.data_dir / "checkpoints"

    @property
    def resolved_key_file(self) -> Path:
        """Where the embedded default keeps its master keys."""
        return self.secret_file("master_keys")


def _is_local_host(host: str) -> bool:
    """Whether ``host`` names this machine only: loopback, unspecified, ``localhost`` or a
    ``.localhost`` name, in any spelling an address may take (``127.1``, ``0x7f000001``,
    ``::ffff:127.0.0.1``)."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # the shorthand and numeric forms the C resolver accepts for IPv4
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def _unsafe_in_production(s: Settings) -> Iterator[str]:
    """What production refuses, each naming the variable and what to set."""
    missing = [f"BREACHFLOW_{name.upper()}" for name in SECRET_FILES if getattr(s, name) is None]
    if missing:
        yield f"{', '.join(missing)} required in production: keep keys out of the data directory"
    if not s.smtp_host:
        yield (f"BREACHFLOW_SMTP_HOST is unset, so mail would go to the local maildir {s.resolved_maildir} that no "
               "school reads: set BREACHFLOW_SMTP_HOST to your mail server (with BREACHFLOW_SMTP_SECURITY)")
    elif s.smtp_security == "none":
        yield "BREACHFLOW_SMTP_SECURITY must be starttls or tls in production: notices carry personal data"
    if s.bounce_imap_host and s.bounce_imap_security == "none":
        yield "BREACHFLOW_BOUNCE_IMAP_SECURITY must be starttls or tls in production: bounces carry the notices"
    public = urlsplit(s.public_url)
    if public.hostname is None or _is_local_host(public.hostname):
        yield (f"BREACHFLOW_PUBLIC_URL is {s.public_url}, which schools cannot open: set it to the address they "
               "reach breachflow at, e.g. https://breachflow.example.nl")
    elif public.scheme != "https":
        yield (f"BREACHFLOW_PUBLIC_URL is {s.public_url}: the links in notices lead schools to their "
               "incidents, so they must use https, e.g. https://breachflow.example.nl")
    _, at, domain = s.sender[1].rpartition("@")
    if not (at and domain) or _is_local_host(domain):
        yield (f"BREACHFLOW_MAIL_FROM is {s.mail_from}, a sender no mail server accepts or answers to: set it "
               "to the processor's address, e.g. privacy@example.nl")
