"""A real SMTP server on loopback (aiosmtpd) that records what it accepts and can be told to fail."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)

    def part(self, subtype: str) -> str:
        """The text of one part as a mail client shows it (its CRLF line breaks as newlines)."""
        return self.message.get_body(preferencelist=(subtype,)).get_content().replace("\r\n", "\n")


@dataclass
class Handler:
    """Accepts mail; ``data_replies`` are answered to DATA first (e.g. '451 …'), ``refuse`` RCPTs,
    ``delay`` seconds pass before each DATA is answered (a slow server); ``data_begun`` counts the
    messages whose DATA arrived, answered or not."""

    received: list[Received] = field(default_factory=list)
    delay: float = 0
    data_begun: int = 0
    data_replies: list[str] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.data_begun += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            if self.data_replies:
                return self.data_replies.pop(0)
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made here (the test's own little CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class SmtpServer:
    """Start, stop and restart on one fixed port; optionally STARTTLS with a login required."""

    def __init__(self, *, tls: tuple[Path, Path] | None = None, login: tuple[str, str] | None = None,
                 busy_after_refused_login: float = 0) -> None:
        """``busy_after_refused_login``: seconds the server is busy right after refusing a login."""
        self.port = free_port()
        self.handler = Handler()
        self._controller: Controller | None = None
        self._options: dict = {}
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self._options |= {"tls_context": context, "require_starttls": True}
        if login:
            def check(server, session, envelope, mechanism, auth_data):
                given = (getattr(auth_data, "login", b"") or b"", getattr(auth_data, "password", b"") or b"")
                success = (given[0].decode(), given[1].decode()) == login
                if not success and busy_after_refused_login:  # busy once the 535 has gone out
                    asyncio.get_running_loop().call_soon(time.sleep, busy_after_refused_login)
                # handled=False: aiosmtpd answers the client itself (535 on failure)
                return AuthResult(success=success, handled=False)
            self._options |= {"authenticator": check, "auth_required": True}

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **self._options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received
