"""A real SMTP server on loopback (aiosmtpd) that records what it accepts and can be told to fail."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


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
        return self.message.get_body(preferencelist=(subtype,)).get_content()


@dataclass
class Handler:
    """Accepts mail; ``data_replies`` are answered to DATA first (e.g. '451 …'), ``refuse`` RCPTs."""

    received: list[Received] = field(default_factory=list)
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
            if self.data_replies:
                return self.data_replies.pop(0)
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"


class SmtpServer:
    """Start, stop and restart on one fixed port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.handler = Handler()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received
