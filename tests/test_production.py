"""Production mode (``BREACHFLOW_ENVIRONMENT=production``) refuses, at every start, settings that
would lose notices or send schools somewhere they cannot go: each refusal names the variable and
what to set it to."""

from __future__ import annotations

import pytest
from cli_process import breachflow
from conftest import CONFIGURED_KEYS, add_school, confirmed
from notify_support import drain, smtp_context
from pydantic import ValidationError
from smtp_server import SmtpServer

from breachflow.notifications import outbox
from breachflow.workflow.config import Settings

PRODUCTION = {
    "environment": "production", **CONFIGURED_KEYS,
    "smtp_host": "mail.example.nl", "smtp_security": "starttls",
    "public_url": "https://breachflow.example.nl", "mail_from": "privacy@example.nl",
}


def refusal(**changes: object) -> str:
    """The message production gives for ``PRODUCTION`` with ``changes``."""
    with pytest.raises(ValidationError) as raised:
        Settings(**{**PRODUCTION, **changes})
    return str(raised.value)


def test_a_complete_production_configuration_is_accepted():
    assert Settings(**PRODUCTION).environment == "production"


@pytest.mark.parametrize("key", sorted(CONFIGURED_KEYS))
def test_every_key_comes_from_the_environment(key):
    assert f"BREACHFLOW_{key.upper()} required in production" in refusal(**{key: None})


def test_mail_to_a_local_maildir_is_refused():
    """Without an SMTP server mail would lie in a directory on this machine, unread by any school."""
    message = refusal(smtp_host=None)
    assert "BREACHFLOW_SMTP_HOST is unset" in message and "maildir" in message
    assert "set BREACHFLOW_SMTP_HOST" in message


def test_smtp_without_tls_is_refused():
    assert "BREACHFLOW_SMTP_SECURITY must be starttls or tls" in refusal(smtp_security="none")


def test_a_server_that_offers_no_starttls_gets_no_notice_in_plain_text(ctx):
    """The other half of the rule: with STARTTLS configured, a server (or a man in the middle) that
    does not offer it is refused; the notice waits, never sent unencrypted."""
    add_school(ctx)
    server = SmtpServer()  # no TLS on offer
    server.start()
    try:
        mail = smtp_context(ctx, server.port, smtp_security="starttls")
        confirmed(mail)
        assert drain(mail) == {"sent": 0, "retry": 1, "dead": 0}
        assert server.received == []
        (waiting,) = outbox.list_messages(mail, status="pending").items
        assert "STARTTLS" in waiting.last_error
    finally:
        server.stop()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:8000", "https://LOCALHOST./",
                                 "http://127.1.2.3", "http://[::1]:8000", "http://0.0.0.0:8000",
                                 "https://breachflow.localhost", "breachflow.example.nl",
                                 "https://127.1", "https://0x7f000001", "https://2130706433",
                                 "https://[::ffff:127.0.0.1]", "https://0"])
def test_a_public_url_schools_cannot_open_is_refused(url):
    message = refusal(public_url=url)
    assert f"BREACHFLOW_PUBLIC_URL is {url}" in message and "set it to the address" in message


def test_a_public_url_without_https_is_refused():
    message = refusal(public_url="http://breachflow.example.nl")
    assert "BREACHFLOW_PUBLIC_URL is http://breachflow.example.nl" in message and "must use https" in message


@pytest.mark.parametrize("sender", ["privacy@breachflow.localhost", "privacy@localhost",
                                    "Privacy desk <privacy@desk.LOCALHOST>"])
def test_a_sender_on_a_localhost_domain_is_refused(sender):
    message = refusal(mail_from=sender)
    assert f"BREACHFLOW_MAIL_FROM is {sender}" in message and "set it to the processor's address" in message


@pytest.mark.parametrize("changes", [{"public_url": "https://10.0.0.5"}, {"mail_from": "Privacy <privacy@example.nl>"},
                                     {"smtp_security": "tls"}])
def test_addresses_schools_can_reach_are_accepted(changes):
    Settings(**{**PRODUCTION, **changes})


def test_development_accepts_the_embedded_defaults():
    settings = Settings()
    assert (settings.smtp_host, settings.public_url, settings.mail_from) == (
        None, "http://127.0.0.1:8000", "privacy@breachflow.localhost")


@pytest.mark.slow
@pytest.mark.parametrize("command", [["serve"], ["worker"], ["incident", "list"]])
def test_every_command_refuses_with_one_line_per_problem_and_writes_nothing(tmp_path, command):
    keys = {f"BREACHFLOW_{name.upper()}": value for name, value in CONFIGURED_KEYS.items()}
    done = breachflow(tmp_path, *command, BREACHFLOW_ENVIRONMENT="production", **keys)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert [line.split(": ")[3].split(" ")[0] for line in lines] == [
        "BREACHFLOW_SMTP_HOST", "BREACHFLOW_PUBLIC_URL", "BREACHFLOW_MAIL_FROM"]
    assert all(line.startswith("breachflow: error: configuration: ") for line in lines)
    assert not (tmp_path / "var").exists()
