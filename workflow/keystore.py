"""The installation's secrets: the master keys, the audit key and the checkpoint signing key.

Each comes from its ``BREACHFLOW_*`` variable or, on the embedded default, from an owner-only file
(``master.key``, ``audit.key``, ``checkpoint.key`` in the data directory). ``read`` is the one way
to get one; a secret that is missing, malformed or open to group or others is refused with
``SecretUnavailable`` and a message that names the file or variable and what to do.

Key files are created by ``prepare(create=True)``, which ``initialise`` calls when there is no
database yet, and beside a database only when nothing in it depends on that key yet: a key is
never created beside data that may be sealed, chained or signed under a lost one.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from breachflow.workflow import files
from breachflow.workflow.config import Settings
from breachflow.workflow.errors import SecretUnavailable

_KEY_BYTES = 32

Stamp = tuple[int, int, int, int]  # device, inode, modification time (ns), size: which file was read


def split_master_keys(text: str) -> list[bytes]:
    """The keys in a comma- or newline-separated list, newest first."""
    return [k.strip().encode() for k in text.replace("\n", ",").split(",") if k.strip()]


def _master_keys(data: bytes) -> list[bytes]:
    keys = split_master_keys(data.decode("ascii"))
    if not keys:
        raise ValueError("it holds no key")
    for key in keys:
        Fernet(key)  # ValueError unless 32 url-safe base64-encoded bytes
    return keys


def _raw_key(data: bytes) -> bytes:
    raw = base64.b64decode(data.strip(), validate=True)
    if len(raw) != _KEY_BYTES:
        raise ValueError(f"it decodes to {len(raw)} bytes, not {_KEY_BYTES}")
    return raw


def _ed25519_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


@dataclass(frozen=True)
class Secret:
    """One kind of secret: where it is configured, what it looks like, how a new one is made."""

    setting: str  # the Settings field of its variable; its file is ``Settings.secret_file(setting)``
    what: str
    form: str
    parse: Callable[[bytes], Any]  # raises ValueError when malformed
    generate: Callable[[], bytes]  # the content of a new file

    @property
    def variable(self) -> str:
        return f"BREACHFLOW_{self.setting.upper()}"


MASTER = Secret("master_keys", "master keys", "Fernet keys, newest first", _master_keys,
                lambda: Fernet.generate_key() + b"\n")
AUDIT = Secret("audit_key", "audit key", "32 random bytes, base64", _raw_key,
               lambda: base64.b64encode(os.urandom(_KEY_BYTES)) + b"\n")
CHECKPOINT = Secret("checkpoint_key", "checkpoint signing key", "an Ed25519 private key: 32 raw bytes, base64",
                    lambda data: Ed25519PrivateKey.from_private_bytes(_raw_key(data)),
                    lambda: base64.b64encode(_ed25519_bytes(Ed25519PrivateKey.generate())) + b"\n")
SECRETS = (MASTER, AUDIT, CHECKPOINT)


@dataclass(frozen=True)
class Loaded:
    """A secret's value, and the file it came from (``None`` for a variable) as it was when read."""

    value: Any
    path: Path | None = None
    stamp: Stamp | None = None


def stamp_of(info: os.stat_result) -> Stamp:
    return info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size


def current_stamp(path: Path) -> Stamp | None:
    """Which file is at ``path`` now; ``None`` if none is."""
    try:
        return stamp_of(path.stat())
    except FileNotFoundError:
        return None


def read(settings: Settings, secret: Secret) -> Loaded:
    """``secret`` from its variable, else from its owner-only file; ``SecretUnavailable`` if unusable."""
    configured = getattr(settings, secret.setting)
    if configured is not None:
        return Loaded(_parse(secret, configured.get_secret_value().encode(), secret.variable, "correct it"))
    path = settings.secret_file(secret.setting)
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if info.st_mode & 0o077:
                raise SecretUnavailable(
                    f"{secret.what} file {path} is open to group or others (mode {info.st_mode & 0o777:o}): "
                    f"run 'chmod 600 {path}'"
                )
            data = handle.read()
    except FileNotFoundError:
        raise SecretUnavailable(
            f"{secret.what} file {path} is missing: restore it from your backup, or set {secret.variable}; "
            "a new key cannot open what was sealed under the lost one"
        ) from None
    except OSError as exc:
        raise SecretUnavailable(f"{secret.what} file {path} cannot be read: {exc.strerror}") from None
    return Loaded(_parse(secret, data, f"{secret.what} file {path}", "restore it from your backup"), path, stamp_of(info))


def _parse(secret: Secret, data: bytes, where: str, remedy: str) -> Any:
    try:
        return secret.parse(data)
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise SecretUnavailable(f"{where} does not hold {secret.form} ({exc}): {remedy}") from None


def prepare(settings: Settings, *, create: bool, unused: Collection[Secret] = ()) -> list[str]:
    """Check every secret, creating missing key files when ``create`` (and those in ``unused``,
    which nothing depends on yet); say what was found or done."""
    done = []
    for secret in SECRETS:
        path = settings.secret_file(secret.setting)
        configured = getattr(settings, secret.setting) is not None
        creatable = create or secret in unused
        if creatable and not configured and files.write_private(path, secret.generate(), replace=False):
            done.append(f"created {secret.what} file {path}" + ("" if create else " (nothing depended on one yet)"))
            continue
        read(settings, secret)
        done.append(f"{secret.what} from {secret.variable}" if configured else f"kept {secret.what} file {path}")
    return done


def add_master_key(settings: Settings) -> Path:
    """Put a new master key in front of the key file (rotation); the old ones stay for reading."""
    loaded = read(settings, MASTER)
    if loaded.path is None:
        raise SecretUnavailable(f"the master keys come from {MASTER.variable}: put the new key in front there")
    files.write_private(loaded.path, MASTER.generate() + b"".join(k + b"\n" for k in loaded.value), replace=True)
    return loaded.path
