"""Where messages go: a small protocol, an SMTP implementation (aiosmtplib) and a local maildir,
either wrapped by a DKIM signer when one is configured (``notifications.dkim``).

``send`` returns the recipients the server refused (address → reason) when others were accepted,
and raises ``DeliveryError`` when nothing was delivered: ``permanent`` for 5xx answers, otherwise
temporary (4xx, refused or lost connections, timeouts), which the dispatcher retries.
"""

from __future__ import annotations

import asyncio
import mailbox
import os
from pathlib import Path
from typing import Protocol, cast

import aiosmtplib

from breachflow.notifications.dkim import Signer, domain_of, signer_for
from breachflow.workflow import files
from breachflow.workflow.config import Settings


class DeliveryError(Exception):
    """Nothing was delivered; ``permanent`` means retrying cannot help.

    The message carries no addresses (it is stored plain); ``refused`` maps the refused
    addresses to the server's answers, for the (sealed) timeline.
    """

    def __init__(self, message: str, *, permanent: bool, refused: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.refused = refused or {}


class Mailer(Protocol):
    async def send(self, sender: str, recipients: list[str], message: bytes) -> dict[str, str]: ...

    async def close(self) -> None: ...


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


class _PromptSMTP(aiosmtplib.SMTP):
    """aiosmtplib's client, closing its socket at once. Closing TLS gracefully waits for the
    server's close_notify, which can outlive the event loop (an open socket left behind); after
    QUIT or a failure (aiosmtplib closes on those itself) nothing is left to say."""

    def close(self) -> None:
        if self.transport is not None:
            cast(asyncio.Transport, self.transport).abort()  # aiosmtplib types it as any transport
        super().close()


class SmtpMailer:
    """Up to ``settings.smtp_connections`` connections, each reused for many messages."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(settings.smtp_connections)

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return _PromptSMTP(
            hostname=s.smtp_host, port=s.smtp_port, timeout=s.smtp_timeout_seconds,
            use_tls=s.smtp_security == "tls", start_tls=s.smtp_security == "starttls",
            username=s.smtp_username, password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            cert_bundle=str(s.smtp_ca_file) if s.smtp_ca_file else None,
        )

    async def send(self, sender: str, recipients: list[str], message: bytes) -> dict[str, str]:
        async with self._slots:
            smtp = self._idle.get_nowait() if not self._idle.empty() else self._client()
            delivered = False
            try:
                if not smtp.is_connected:
                    await smtp.connect()
                errors, _ = await smtp.sendmail(sender, recipients, message)
                delivered = True
            except aiosmtplib.SMTPRecipientsRefused as exc:
                raise DeliveryError(
                    "every recipient refused: " + "; ".join(sorted({f"{e.code} {e.message}" for e in exc.recipients})),
                    permanent=all(_is_permanent(e.code) for e in exc.recipients),
                    refused={e.recipient: f"{e.code} {e.message}" for e in exc.recipients},
                ) from None
            except aiosmtplib.SMTPAuthenticationError as exc:  # our configuration: keep the mail for after the fix
                raise DeliveryError(f"SMTP login refused ({exc.code} {exc.message}); check "
                                    "BREACHFLOW_SMTP_USERNAME and BREACHFLOW_SMTP_PASSWORD", permanent=False) from None
            except aiosmtplib.SMTPResponseException as exc:
                raise DeliveryError(f"{exc.code} {exc.message}", permanent=_is_permanent(exc.code)) from None
            except UnicodeError:  # an address not in ASCII: this server would need SMTPUTF8, and no retry helps
                raise DeliveryError("an address of this message is not ASCII", permanent=True) from None
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False) from None
            finally:
                if delivered:
                    self._idle.put_nowait(smtp)
                else:  # after any failure the next message starts on a fresh connection
                    smtp.close()
            return {address: f"{r.code} {r.message}" for address, r in errors.items()}

    async def close(self) -> None:
        while not self._idle.empty():
            smtp = self._idle.get_nowait()
            if smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    pass
                finally:
                    smtp.close()


class MaildirMailer:
    """The embedded default: every message becomes a file in a local maildir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: mailbox.Maildir | None = None

    async def send(self, sender: str, recipients: list[str], message: bytes) -> dict[str, str]:
        if self._box is None:  # made on first use, not by merely configuring it
            files.private_dir(self.path.parent)  # mailbox makes the maildir itself, 0700
            self._box = mailbox.Maildir(self.path, create=True)
        key = self._box.add(message)
        os.chmod(self.path / "new" / key, files.PRIVATE_FILE)  # a notice holds personal data; created 0666 & umask
        return {}

    async def close(self) -> None:
        return None


class SigningMailer:
    """Signs each message as it goes out, then hands it to ``inner``."""

    def __init__(self, inner: Mailer, signer: Signer) -> None:
        self.inner = inner
        self.signer = signer

    async def send(self, sender: str, recipients: list[str], message: bytes) -> dict[str, str]:
        return await self.inner.send(sender, recipients, self.signer.sign(message))

    async def close(self) -> None:
        await self.inner.close()


def destination(settings: Settings) -> str:
    """Where mail goes, in words for the operator."""
    signed = f", DKIM-signed for {domain_of(settings)} (selector {settings.dkim_selector})" \
        if settings.dkim_selector else ""
    if settings.smtp_host:
        return f"SMTP {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_security}){signed}"
    return f"maildir {settings.resolved_maildir} (no SMTP server configured){signed}"


def mailer_for(settings: Settings) -> Mailer:
    """SMTP when ``BREACHFLOW_SMTP_HOST`` is set, else the local maildir; signing with DKIM when
    configured (the key is read now: ``SecretUnavailable`` if it is unusable)."""
    mailer: Mailer = SmtpMailer(settings) if settings.smtp_host else MaildirMailer(settings.resolved_maildir)
    signer = signer_for(settings)
    return SigningMailer(mailer, signer) if signer else mailer
