"""What ``serve`` and ``worker`` check before they start. Each failure is ``CannotStart`` (exit 5),
one line that says what is wrong and what to change, before anything is written or served."""

from __future__ import annotations

import errno
import socket

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context, initialise
from breachflow.workflow.errors import BreachflowError, InvalidInput


class CannotStart(BreachflowError):
    """The process cannot start here (port, host, directory, database); the message says what to change."""

    code = "cannot_start"


def check_workers(settings: Settings, workers: int) -> None:
    """Several server processes want PostgreSQL: SQLite takes one writing process at a time."""
    if workers > 1 and make_url(settings.resolved_database_url).get_backend_name() == "sqlite":
        raise InvalidInput(
            f"--workers {workers} needs PostgreSQL (set BREACHFLOW_DATABASE_URL=postgresql+psycopg://…); "
            "on SQLite run one 'breachflow serve', or 'breachflow serve --no-worker' and one 'breachflow worker'")


def check_listen(host: str, port: int, options: tuple[str, str] = ("--host", "--port")) -> None:
    """Bind ``host:port`` as the server will (every address the host resolves to, with address reuse)
    and let go again: a port in use or a host that is not this machine's is said before starting,
    naming the command line's ``options`` for the host and the port."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CannotStart(f"{options[0]} {host} is not a name or address this machine knows ({exc.strerror}): "
                          "use an address of this machine, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (all)"
                          ) from None
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise CannotStart(_why_not(exc, host, port, options)) from None


def _why_not(exc: OSError, host: str, port: int, options: tuple[str, str]) -> str:
    host_option, port_option = options
    if exc.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is in use (another breachflow or another program listens there): "
                f"stop that one, or choose another port with {port_option}")
    if exc.errno == errno.EACCES:
        return (f"port {port} on {host} needs privileges this user lacks: choose a port above 1023 with {port_option} "
                "(and put a reverse proxy on 80 or 443)")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"{host_option} {host} is not an address of this machine: use one of its addresses, e.g. 127.0.0.1 "
                "(this machine only) or 0.0.0.0 (all)")
    return f"cannot listen on {host} port {port}: {exc.strerror}"


def open_installation(settings: Settings, *, create: bool) -> tuple[Context, list[str]]:
    """The installation, and what was found or done; with ``create`` it is set up first if missing
    (``serve``). A file that cannot be written or a database that cannot be reached is ``CannotStart``."""
    try:
        done = initialise(settings) if create else []
        return Context.open(settings, adopt_periods=True), done
    except OSError as exc:
        raise CannotStart(f"cannot write {exc.filename or settings.data_dir}: {exc.strerror}; make it writable "
                          "for this user, or set BREACHFLOW_DATA_DIR to a directory that is") from None
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        url = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        raise CannotStart(f"cannot open the database {url} ({reason}): check BREACHFLOW_DATABASE_URL "
                          "and that the database server runs") from None
