"""DKIM signatures (RFC 6376) on outgoing mail: RSA (rsa-sha256) or Ed25519 (RFC 8463), relaxed/relaxed.

The private key is a PEM file named by ``BREACHFLOW_DKIM_KEY_FILE``, read once when the mailer is
made (``signer_for``) and refused, naming the file, when it is missing, unreadable, open to group or
others, encrypted, or no RSA (1024 bits or more) or Ed25519 key. The receiving server finds the
public key in DNS at ``<selector>._domainkey.<domain>``: ``record`` writes that TXT record.

Messages are signed when sent, not when queued, so a confirm that queues a notice for every school
stays one quick transaction. From and Subject are signed once more than they occur (over-signed), so
a second From or Subject added on the way breaks the signature.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import time
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)
from dkim.canonicalization import CanonicalizationPolicy

from breachflow.workflow.config import Settings
from breachflow.workflow.errors import SecretUnavailable

HEADER = b"DKIM-Signature"
CANONICAL = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
SIGNED = (b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
          b"in-reply-to", b"references")
OVERSIGNED = (b"from", b"subject")
MIN_RSA_BITS = 1024  # RFC 8301; 2048 is what keygen makes
MAX_KEY_FILE = 16_384  # bytes: a PEM RSA key of 4096 bits is about 3,300
TXT_STRING = 255  # one character-string of a TXT record holds at most this many bytes

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class Signer:
    """Signs messages for ``domain`` with ``key``, whose public half is published under ``selector``.

    dkimpy parses, canonicalizes (relaxed/relaxed) and hashes; the digest is signed here with
    OpenSSL (``cryptography``): dkimpy's own RSA is pure Python, about 7 ms a message against
    under 1 ms (``bench/notify.py --dkim``).
    """

    def __init__(self, selector: str, domain: str, key: PrivateKey) -> None:
        self.selector, self.domain, self.key = selector, domain, key
        self.kind = "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ed25519"

    def sign(self, message: bytes) -> bytes:
        """``message`` (CRLF line endings) with a DKIM-Signature header in front."""
        headers, body = dkim.rfc822_parse(message)
        present = {name.lower() for name, _ in headers}
        signed = [name for name in SIGNED if name in present] + list(OVERSIGNED)
        fields = [(b"v", b"1"), (b"a", f"{self.kind}-sha256".encode()), (b"c", CANONICAL.to_c_value()),
                  (b"d", self.domain.encode()), (b"s", self.selector.encode()), (b"t", b"%d" % time.time()),
                  (b"h", b" : ".join(signed)),  # spaces where it may fold
                  (b"bh", base64.b64encode(hashlib.sha256(CANONICAL.canonicalize_body(body)).digest())), (b"b", b"")]
        value = b" " + dkim.fold(b"; ".join(b"=".join(field) for field in fields), namelen=len(HEADER))
        hasher = hashlib.sha256()  # the signed headers, then this one with b= empty (RFC 6376 3.7)
        dkim.hash_headers(hasher, CANONICAL, CANONICAL.canonicalize_headers(headers), signed, (HEADER, value), {})
        digest = hasher.digest()
        if isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        else:  # RFC 8463: Ed25519 signs the SHA-256 digest
            signature = self.key.sign(digest)
        b = base64.b64encode(signature)
        folded = b"\r\n ".join(b[i:i + 72] for i in range(0, len(b), 72))
        return HEADER + b":" + value + b"\r\n " + folded + b"\r\n" + message

    def record(self) -> str:
        """The DNS TXT record that publishes the public key, its value split into quoted strings."""
        public = self.key.public_key()
        if self.kind == "rsa":
            der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        else:
            der = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        value = f"v=DKIM1; k={self.kind}; p={base64.b64encode(der).decode()}"
        strings = " ".join(f'"{value[i:i + TXT_STRING]}"' for i in range(0, len(value), TXT_STRING))
        return f"{self.selector}._domainkey.{self.domain} IN TXT {strings}"


def domain_of(settings: Settings) -> str:
    """The signing domain: ``BREACHFLOW_DKIM_DOMAIN``, else the domain of ``BREACHFLOW_MAIL_FROM``."""
    return settings.dkim_domain or settings.sender[1].rpartition("@")[2]


def signer_for(settings: Settings) -> Signer | None:
    """The configured signer, its key read now; ``None`` when DKIM is not configured."""
    if settings.dkim_selector is None or settings.dkim_key_file is None:
        return None
    return Signer(settings.dkim_selector, domain_of(settings), read_key(settings.dkim_key_file))


def read_key(path: Path) -> PrivateKey:
    """The private key in the owner-only PEM file ``path``; ``SecretUnavailable`` naming it if unusable."""
    where = f"DKIM key file {path} (BREACHFLOW_DKIM_KEY_FILE)"
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:  # a FIFO must not hang the start
            found = os.fstat(handle.fileno())
            if not stat.S_ISREG(found.st_mode):
                raise SecretUnavailable(f"{where} is not a regular file")
            if found.st_mode & 0o077:
                raise SecretUnavailable(f"{where} is open to group or others (mode {found.st_mode & 0o777:o}): "
                                        f"run 'chmod 600 {path}'")
            data = handle.read(MAX_KEY_FILE + 1)
            if len(data) > MAX_KEY_FILE:
                raise SecretUnavailable(f"{where} is larger than a PEM private key ({MAX_KEY_FILE} bytes at most)")
    except FileNotFoundError:
        raise SecretUnavailable(f"{where} is missing: make one with 'breachflow dkim keygen'") from None
    except OSError as exc:
        raise SecretUnavailable(f"{where} cannot be read: {exc.strerror}") from None
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError:
        raise SecretUnavailable(f"{where} is encrypted: store it without a passphrase, owner-only") from None
    except ValueError as exc:
        raise SecretUnavailable(f"{where} does not hold a PEM private key ({exc})") from None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= MIN_RSA_BITS or isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise SecretUnavailable(f"{where} holds no RSA key of {MIN_RSA_BITS} bits or more and no Ed25519 key: make one "
                            "with 'breachflow dkim keygen'")


def generate(kind: str) -> tuple[PrivateKey, bytes]:
    """A new private key of ``kind`` (``rsa``: 2048 bits, or ``ed25519``) and its PEM (PKCS#8)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" \
        else ed25519.Ed25519PrivateKey.generate()
    return key, key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
