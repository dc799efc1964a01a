"""DKIM: notices sent through the real dispatcher verify with dkimpy against the DNS record that
``breachflow dkim keygen`` and ``breachflow dkim record`` print; a changed message does not."""

from __future__ import annotations

import email.parser
import email.policy
import json
import os
import re
import stat
from dataclasses import replace
from pathlib import Path

import dkim
import pytest
from conftest import add_school, confirmed
from notify_support import drain, smtp_context, with_notices
from pydantic import ValidationError
from smtp_server import free_port

from breachflow.notifications.mailer import SigningMailer, SmtpMailer, mailer_for
from breachflow.workflow import service
from breachflow.workflow.config import Settings
from breachflow.workflow.errors import SecretUnavailable

SELECTOR = "bf2026"
DOMAIN = "basisonline.example.nl"
MAIL_FROM = f"Privacy BasisOnline <privacy@{DOMAIN}>"


def keygen(cli, path: Path, kind: str) -> str:
    """A new key at ``path`` made by the CLI; the DNS record it printed."""
    code, out, err = cli("dkim", "keygen", "--selector", SELECTOR, "--out", str(path), "--type", kind, "--json")
    assert code == 0, err
    return json.loads(out)["record"]


def dns_of(record: str):
    """A dnsfunc for dkimpy that answers the one name ``record`` publishes, with its value."""
    name, _, value = record.partition(" IN TXT ")
    published = "".join(re.findall(r'"([^"]*)"', value)).encode()

    def dnsfunc(asked: bytes, timeout: int = 5) -> bytes | None:
        return published if asked.decode().rstrip(".") == name else None

    return dnsfunc


@pytest.fixture(params=["rsa", "ed25519"])
def signing(request, ctx, cli, tmp_path, monkeypatch):
    """(the mailing context with a fresh DKIM key of each type, the record ``dkim record`` prints for it)."""
    monkeypatch.setenv("BREACHFLOW_MAIL_FROM", MAIL_FROM)
    key = tmp_path / "dkim.pem"
    printed = keygen(cli, key, request.param)
    monkeypatch.setenv("BREACHFLOW_DKIM_SELECTOR", SELECTOR)
    monkeypatch.setenv("BREACHFLOW_DKIM_KEY_FILE", str(key))
    code, out, err = cli("dkim", "record")
    assert code == 0, err
    assert out.strip() == printed and printed.startswith(f"{SELECTOR}._domainkey.{DOMAIN} IN TXT \"v=DKIM1; "
                                                         f"k={request.param}; p=")
    add_school(ctx)
    return {"dkim_selector": SELECTOR, "dkim_key_file": key, "mail_from": MAIL_FROM}, printed


def test_notices_sent_over_smtp_verify_against_the_published_record(signing, ctx, smtp):
    configured, record = signing
    mail_ctx = smtp_context(ctx, smtp.port, **configured)
    reference = confirmed(mail_ctx)
    service.send_update(mail_ctx, reference=reference, actor="hanna", message="De oorzaak is gevonden")
    assert drain(mail_ctx)["sent"] == len(smtp.received) >= 2
    for received in smtp.received:
        assert dkim.verify(received.raw, dnsfunc=dns_of(record)), received.raw[:400]
        fields = dkim.util.parse_tag_value(received.message["DKIM-Signature"].encode())
        assert fields[b"d"] == DOMAIN.encode() and fields[b"s"] == SELECTOR.encode()
        signed = re.split(r"\s*:\s*", fields[b"h"].decode())
        assert signed.count("from") == 2 and signed.count("subject") == 2  # over-signed
        assert {"to", "date", "message-id", "mime-version", "content-type"} <= set(signed)
        header = received.raw.split(b"\r\n\r\n", 1)[0].split(b"\r\nFrom:", 1)[0]
        assert header.startswith(b"DKIM-Signature: ") and max(map(len, header.split(b"\r\n"))) <= 78
    update = smtp.received[-1]
    assert update.message["In-Reply-To"] is not None, "the update continues the school's thread"
    signed = re.split(r"\s*:\s*", dkim.util.parse_tag_value(update.message["DKIM-Signature"].encode())[b"h"].decode())
    assert {"in-reply-to", "references"} <= set(signed)
    rethreaded = re.sub(rb"(?m)^In-Reply-To:[^\r]*(\r\n [^\r]*)?", b"In-Reply-To: <other@evil.example>", update.raw)
    assert rethreaded != update.raw and not dkim.verify(rethreaded, dnsfunc=dns_of(record))
    parsed = email.parser.BytesParser(policy=email.policy.strict).parsebytes(update.raw)
    (sender,) = parsed["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Privacy BasisOnline", f"privacy@{DOMAIN}"), \
        "a sender that names itself in BREACHFLOW_MAIL_FROM keeps its name"
    assert update.sender == f"privacy@{DOMAIN}"


@pytest.fixture
def signed_notice(signing, ctx, smtp) -> tuple[bytes, str]:
    configured, record = signing
    mail_ctx = smtp_context(ctx, smtp.port, **configured)
    confirmed(mail_ctx)
    drain(mail_ctx)
    return smtp.received[0].raw, record


def other_letter(message: bytes, at: int) -> bytes:
    """``message`` with its byte at ``at`` (a letter of the text's base64) changed."""
    return message[:at] + (b"B" if message[at:at + 1] == b"A" else b"A") + message[at + 1:]


@pytest.mark.parametrize("change", [
    pytest.param(lambda m: other_letter(m, m.index(b"base64\r\n\r\n") + len(b"base64\r\n\r\n")), id="body"),
    pytest.param(lambda m: re.sub(rb"(?m)^Subject: [^\r]*", b"Subject: Alles in orde", m, count=1), id="subject"),
    pytest.param(lambda m: b"From: security@evil.example\r\n" + m, id="second-from"),
    pytest.param(lambda m: b"Subject: Alles in orde\r\n" + m, id="second-subject"),
])
def test_a_changed_notice_fails_verification(signed_notice, change):
    message, record = signed_notice
    assert dkim.verify(message, dnsfunc=dns_of(record))
    changed = change(message)
    assert changed != message
    assert not dkim.verify(changed, dnsfunc=dns_of(record))


def test_the_maildir_copy_verifies(signing, ctx):
    configured, record = signing
    mail_ctx = with_notices(replace(ctx, settings=Settings.model_validate(
        ctx.settings.model_dump(exclude_unset=True) | configured)))
    confirmed(mail_ctx)
    assert drain(mail_ctx)["sent"] >= 1
    copies = sorted((mail_ctx.settings.resolved_maildir / "new").iterdir())
    assert copies and all(dkim.verify(copy.read_bytes(), dnsfunc=dns_of(record)) for copy in copies)


def test_unsigned_when_not_configured(ctx, smtp):
    add_school(ctx)
    mail_ctx = smtp_context(ctx, smtp.port)
    assert isinstance(mailer_for(mail_ctx.settings), SmtpMailer)
    confirmed(mail_ctx)
    drain(mail_ctx)
    assert smtp.received and all(m.message["DKIM-Signature"] is None for m in smtp.received)


@pytest.mark.parametrize("given, missing", [({"dkim_selector": SELECTOR}, "BREACHFLOW_DKIM_KEY_FILE"),
                                            ({"dkim_key_file": "dkim.pem"}, "BREACHFLOW_DKIM_SELECTOR")])
def test_half_a_dkim_configuration_names_what_is_missing(given, missing, cli, monkeypatch):
    with pytest.raises(ValidationError, match=missing):
        Settings(**given)
    for name, value in given.items():
        monkeypatch.setenv(f"BREACHFLOW_{name.upper()}", value)
    code, _, err = cli("dkim", "record")
    assert code == 2 and f"configuration: {missing} is unset" in err


@pytest.mark.parametrize("content, mode, says", [
    (None, 0o600, "is missing"),
    (b"not a key\n", 0o600, "does not hold a PEM private key"),
    ("ecdsa", 0o600, "holds no RSA key"),
    ("rsa", 0o640, "is open to group or others (mode 640)"),
    ("fifo", 0o600, "is not a regular file"),  # opening a FIFO would wait for a writer for ever
    (b"-----BEGIN PRIVATE KEY-----\n" + b"A" * 20_000, 0o600, "is larger than a PEM private key"),
])
def test_an_unusable_key_file_is_refused_at_start_naming_it(content, mode, says, settings, cli, tmp_path,
                                                          monkeypatch):
    path = tmp_path / "dkim.pem"
    if content in ("rsa", "ecdsa"):
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if content == "rsa" \
            else ec.generate_private_key(ec.SECP256R1())
        content = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    if content == "fifo":
        os.mkfifo(path, mode)
    elif content is not None:
        path.write_bytes(content)
        path.chmod(mode)
    configured = settings.model_copy(update={"dkim_selector": SELECTOR, "dkim_key_file": path})
    with pytest.raises(SecretUnavailable, match=f"DKIM key file {re.escape(str(path))} .*{re.escape(says)}"):
        mailer_for(configured)
    monkeypatch.setenv("BREACHFLOW_DKIM_SELECTOR", SELECTOR)
    monkeypatch.setenv("BREACHFLOW_DKIM_KEY_FILE", str(path))
    code, _, err = cli("dkim", "record")
    assert code == 4 and str(path) in err and says in err


def test_serve_refuses_an_unusable_key_before_it_starts(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("BREACHFLOW_DKIM_SELECTOR", SELECTOR)
    monkeypatch.setenv("BREACHFLOW_DKIM_KEY_FILE", str(tmp_path / "missing.pem"))
    code, out, err = cli("serve", "--port", str(free_port()))
    assert code == 4 and f"DKIM key file {tmp_path / 'missing.pem'} " in err and out == ""


def test_keygen_writes_an_owner_only_key_and_never_overwrites_one(cli, tmp_path, settings):
    path = tmp_path / "keys" / "dkim.pem"
    record = keygen(cli, path, "rsa")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    code, _, err = cli("dkim", "keygen", "--selector", "bf2027", "--out", str(path))
    assert code == 2 and "exists and is kept" in err and path.read_bytes() == before
    strings = re.findall(r'"([^"]*)"', record)
    assert len(strings) > 1 and all(len(s) <= 255 for s in strings)  # a 2048-bit key's record needs two
    signer = mailer_for(settings.model_copy(update={"dkim_selector": SELECTOR, "dkim_key_file": path}))
    assert isinstance(signer, SigningMailer) and signer.signer.record() == record
