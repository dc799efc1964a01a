"""The SMTP sink of bench/notify.py: accepts every message and keeps nothing but counts.

A sink must not be what bounds the sender it measures. aiosmtpd parses every command and header
and costs about 1.0-1.4 ms of CPU per message, twice the raw aiosmtplib client's 0.6-0.7 ms: one
aiosmtpd process was fully busy while the raw baseline sent, and on a two-core machine four of
them still took the CPU the sender needed. This answers the commands aiosmtplib sends
(EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) with the usual codes, takes the message up to
``CRLF.CRLF`` and answers ``250``, nothing more: about 0.3 ms a message.

Several processes share one port (``SO_REUSEPORT``; one port, because breachflow's mailer knows
one) and the kernel spreads the connections over them. Each prints ``ready`` once it listens and,
on SIGTERM, the number of messages it accepted, so the benchmark checks every message arrived.

    python bench/smtp_sink.py PORT
"""

from __future__ import annotations

import asyncio
import signal
import sys

EHLO = b"250-bench.localhost\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 HELP\r\n"
END = b"\r\n.\r\n"


class Sink(asyncio.Protocol):
    """One SMTP session: commands line by line, then a message up to ``CRLF.CRLF``."""

    accepted = 0  # messages, in all sessions

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport, self.buffer, self.in_data, self.scanned = transport, b"", False, 0
        transport.write(b"220 bench.localhost ESMTP sink\r\n")

    def data_received(self, chunk: bytes) -> None:
        self.buffer += chunk
        while self.buffer:
            if self.in_data:
                end = self.buffer.find(END, self.scanned)
                if end < 0:
                    self.scanned = max(0, len(self.buffer) - len(END) + 1)
                    return
                Sink.accepted += 1
                self.buffer, self.in_data = self.buffer[end + len(END):], False
                self.transport.write(b"250 OK: queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            verb, self.buffer = self.buffer[:4].upper(), self.buffer[end + 2:]
            if verb == b"EHLO":
                self.transport.write(EHLO)
            elif verb == b"DATA":
                # the CRLF ending DATA also starts the terminator of an empty message
                self.buffer, self.in_data, self.scanned = b"\r\n" + self.buffer, True, 0
                self.transport.write(b"354 End data with <CR><LF>.<CR><LF>\r\n")
            elif verb == b"QUIT":
                self.transport.write(b"221 Bye\r\n")
                self.transport.close()
                return
            else:
                self.transport.write(b"250 OK\r\n")


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    server = await loop.create_server(Sink, "127.0.0.1", port, reuse_port=True)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    print(Sink.accepted, flush=True)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
