"""Keys and files: a key is never replaced beside the data sealed under it, an unusable key stops
every command with what to do (exit 4), a running process follows a rotation, a key missing from
the configuration is 503 (only destroyed data is 410), and nothing written is open to others."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_support import build
from cli_process import breachflow
from conftest import add_school, reported
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from pydantic import SecretStr
from test_api import assert_error

from breachflow.api.main import create_app
from breachflow.workflow import checkpoints, queries, schools
from breachflow.workflow.config import Settings
from breachflow.workflow.context import Context, initialise
from breachflow.workflow.models import data_key_t, incident_t

KEY_FILES = {"master.key": "BREACHFLOW_MASTER_KEYS", "audit.key": "BREACHFLOW_AUDIT_KEY",
             "checkpoint.key": "BREACHFLOW_CHECKPOINT_KEY"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask():
    """The umask most machines have (022): modes below come from breachflow, not from the umask."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.fixture
def installed(tmp_path, usual_umask) -> Path:
    """A data directory ``var`` set up by a real ``breachflow init``; the directory it ran in."""
    result = breachflow(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    return tmp_path


def key_contents(directory: Path) -> dict[str, bytes]:
    return {name: (directory / "var" / name).read_bytes() for name in KEY_FILES}


def assert_refused(result, *words: str) -> None:
    """Exit 4 with one line on stderr naming ``words``, and no traceback."""
    assert result.returncode == 4, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("breachflow: error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


# --- init creates keys only where there is nothing ----------------------------------------------


@pytest.mark.slow  # real processes
def test_init_on_an_empty_data_dir_creates_every_key_owner_only(installed):
    var = installed / "var"
    assert mode(var) == 0o700
    assert {name: mode(var / name) for name in KEY_FILES} == dict.fromkeys(KEY_FILES, 0o600)
    assert mode(var / "breachflow.db") == 0o600


@pytest.mark.slow  # real processes
def test_init_on_an_existing_installation_keeps_every_key(installed):
    before = key_contents(installed)
    result = breachflow(installed, "init")
    assert result.returncode == 0, result.stderr
    assert key_contents(installed) == before
    assert "created" not in result.stdout and result.stdout.count("kept") == len(KEY_FILES) + 1


@pytest.mark.slow  # real processes
@pytest.mark.parametrize("command", [["init"], ["serve", "--port", "0"], ["worker"], ["incident", "list"],
                                     ["keys", "rotate"]], ids=lambda c: " ".join(c))
def test_a_missing_master_key_beside_the_database_stops_every_command(installed, command):
    key_file = installed / "var" / "master.key"
    key_file.unlink()
    assert_refused(breachflow(installed, *command), "master keys file var/master.key is missing",
                   "restore it from your backup", "BREACHFLOW_MASTER_KEYS")
    assert not key_file.exists()


@pytest.fixture
def in_use(installed) -> Path:
    """An installation whose timeline depends on its audit key and whose checkpoint on its checkpoint key."""
    ctx = Context.open(Settings(data_dir=installed / "var"))
    add_school(ctx)
    reported(ctx)
    checkpoints.write(ctx, ctx.settings.resolved_checkpoint_dir)
    return installed


@pytest.mark.slow  # real processes
@pytest.mark.parametrize("name", ["audit.key", "checkpoint.key"])
def test_a_missing_audit_or_checkpoint_key_that_data_depends_on_is_not_created_either(in_use, name):
    key_file = in_use / "var" / name
    key_file.unlink()
    for command in (["init"], ["db", "upgrade"], ["incident", "list"]):
        assert_refused(breachflow(in_use, *command), f"file var/{name} is missing", "restore it from your backup",
                       KEY_FILES[name])
    assert not key_file.exists()


@pytest.mark.slow  # real processes
@pytest.mark.parametrize("name", ["audit.key", "checkpoint.key"])
def test_a_missing_audit_or_checkpoint_key_nothing_depends_on_yet_is_created_and_said(installed, name):
    """An installation from before these keys existed: no event chained, no checkpoint signed yet."""
    key_file = installed / "var" / name
    key_file.unlink()
    result = breachflow(installed, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert f"created {'audit key' if name == 'audit.key' else 'checkpoint signing key'} file var/{name} " \
           "(nothing depended on one yet)" in result.stdout
    assert mode(key_file) == 0o600
    assert breachflow(installed, "incident", "list").returncode == 0


def test_keys_created_before_a_crash_are_kept_and_the_database_completed(tmp_path, usual_umask):
    settings = Settings(data_dir=tmp_path / "var")
    (tmp_path / "var").mkdir(mode=0o700)
    key_file = settings.resolved_key_file
    key_file.write_bytes(Fernet.generate_key() + b"\n")
    key_file.chmod(0o600)
    kept = key_file.read_bytes()
    assert any(line.startswith("kept master keys") for line in initialise(settings))
    assert key_file.read_bytes() == kept
    assert Context.open(settings).keys.keys == [kept.strip()]


# --- malformed and exposed keys ---------------------------------------------------------------


MALFORMED = {
    "master.key": b"not-a-fernet-key\n",
    "audit.key": base64.b64encode(os.urandom(16)) + b"\n",  # too short
    "checkpoint.key": b"%%% not base64 %%%\n",
}


@pytest.mark.slow  # real processes
@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_key_file_is_exit_4_never_a_traceback(installed, name):
    (installed / "var" / name).write_bytes(MALFORMED[name])
    assert_refused(breachflow(installed, "incident", "list"), name, "restore it from your backup")


@pytest.mark.slow  # real processes
@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_key_variable_is_exit_4_never_a_traceback(installed, name):
    variable = KEY_FILES[name]
    result = breachflow(installed, "incident", "list", **{variable: MALFORMED[name].decode().strip()})
    assert_refused(result, variable, "correct it")


@pytest.mark.slow  # real processes
@pytest.mark.parametrize("name", list(KEY_FILES))
@pytest.mark.parametrize("loose", [0o640, 0o604], ids=["group", "others"])
def test_a_key_file_open_to_others_is_refused_on_every_start(installed, name, loose):
    key_file = installed / "var" / name
    key_file.chmod(loose)
    assert_refused(breachflow(installed, "incident", "list"), f"chmod 600 var/{name}")
    assert_refused(breachflow(installed, "init"), f"chmod 600 var/{name}")


# --- file modes -------------------------------------------------------------------------------


def test_the_database_and_its_wal_files_are_owner_only(tmp_path, usual_umask):
    settings = Settings(data_dir=tmp_path / "var")
    initialise(settings)
    ctx = Context.open(settings)
    add_school(ctx)  # a write: SQLite has its -wal and -shm files open now
    stored = sorted(p.name for p in settings.data_dir.glob("breachflow.db*"))
    assert stored == ["breachflow.db", "breachflow.db-shm", "breachflow.db-wal"]
    assert {name: mode(settings.data_dir / name) for name in stored} == dict.fromkeys(stored, 0o600)
    assert mode(settings.data_dir) == 0o700


# --- the audit key and the checkpoint key -------------------------------------------------------


def test_the_context_holds_the_audit_and_checkpoint_keys_of_the_files(tmp_path):
    settings = Settings(data_dir=tmp_path / "var")
    initialise(settings)
    ctx = Context.open(settings)
    assert ctx.audit_key == base64.b64decode((settings.data_dir / "audit.key").read_bytes())
    assert len(ctx.audit_key) == 32
    raw = base64.b64decode((settings.data_dir / "checkpoint.key").read_bytes())
    signature = ctx.checkpoint_key.sign(b"head")
    Ed25519PrivateKey.from_private_bytes(raw).public_key().verify(signature, b"head")
    assert repr(ctx.audit_key) not in repr(ctx)  # no key in logs or tracebacks


def test_keys_from_the_environment_need_no_file(tmp_path):
    audit, signing = os.urandom(32), Ed25519PrivateKey.generate()
    raw = signing.private_bytes_raw()
    settings = Settings(data_dir=tmp_path / "var", master_keys=Fernet.generate_key().decode(),
                        audit_key=base64.b64encode(audit).decode(), checkpoint_key=base64.b64encode(raw).decode())
    initialise(settings)
    assert not any(name in KEY_FILES for name in os.listdir(settings.data_dir))
    ctx = Context.open(settings)
    assert ctx.audit_key == audit
    assert ctx.checkpoint_key.private_bytes_raw() == raw


def test_production_needs_every_key_from_the_environment():
    with pytest.raises(ValueError, match="BREACHFLOW_AUDIT_KEY, BREACHFLOW_CHECKPOINT_KEY required in production"):
        Settings(environment="production", master_keys=Fernet.generate_key().decode())
    Settings(environment="production", master_keys=Fernet.generate_key().decode(),
             audit_key=base64.b64encode(os.urandom(32)).decode(),
             checkpoint_key=base64.b64encode(os.urandom(32)).decode(),
             smtp_host="mail.example.nl", smtp_security="tls", public_url="https://breachflow.example.nl",
             mail_from="privacy@example.nl")  # what else production refuses: test_production.py


# --- a running process follows the key file ------------------------------------------------------


def wrapped_key(ctx: Context, reference: str) -> bytes:
    with ctx.engine.connect() as conn:
        return conn.execute(
            sa.select(data_key_t.c.wrapped).join(incident_t, incident_t.c.data_key_id == data_key_t.c.id)
            .where(incident_t.c.reference == reference)
        ).scalar_one()


@pytest.mark.slow  # real processes
def test_a_running_context_follows_a_rotation_by_another_process(tmp_path):
    settings = Settings(data_dir=tmp_path / "var")
    initialise(settings)
    ctx = Context.open(settings)
    add_school(ctx)
    before = reported(ctx)
    old_key = ctx.keys.keys[0]
    result = breachflow(tmp_path, "keys", "rotate")
    assert (result.returncode, result.stdout.strip()) == (0, "rewrapped 2 data keys under the newest master key")
    newest = settings.resolved_key_file.read_bytes().split()[0]
    with ctx.engine.connect() as conn:
        for wrapped in conn.execute(sa.select(data_key_t.c.wrapped)).scalars():
            Fernet(newest).decrypt(wrapped)  # the rotation rewrapped every data key under the new key
    # first thing after the rotation: a read (test_serve.py checks a report first)
    assert queries.get(ctx, before).schools[0].brin == "12AB"
    assert schools.page(ctx).items[0].contacts == ["directie@12ab.example.nl"]
    after = reported(ctx)
    Fernet(newest).decrypt(wrapped_key(ctx, after))
    with pytest.raises(InvalidToken):
        Fernet(old_key).decrypt(wrapped_key(ctx, after))


# --- a key unavailable through configuration is 503, destroyed data 410 ---------------------------


def test_a_key_file_removed_while_serving_refuses_new_data_keys(tmp_path):
    settings = Settings(data_dir=tmp_path / "var")
    initialise(settings)
    ctx = Context.open(settings)
    api = build(ctx, settings)
    ref = api.report()
    settings.resolved_key_file.unlink()
    error = assert_error(api.call("handler", "POST", "/incidents", json={"source": "monitoring", "schools": {"12AB": 1}}),
                         503, "key_unavailable")
    assert str(settings.resolved_key_file) in error["message"] and "restore it" in error["message"]
    assert api.call("handler", "GET", f"/incidents/{ref}").status_code == 200  # nothing is lost by reading


def test_a_master_key_missing_from_the_configuration_is_503_and_destroyed_data_410(ctx, settings):
    api = build(ctx, settings)
    ref = api.report()
    other_key = SecretStr(Fernet.generate_key().decode())
    wrong = settings.model_copy(update={"master_keys": other_key, "in_process_worker": False})
    misconfigured = TestClient(create_app(wrong), raise_server_exceptions=False)
    for user, path in [("handler", f"/incidents/{ref}"), ("handler", "/incidents"), ("admin", "/schools")]:
        error = assert_error(misconfigured.get("/api/v1" + path, headers=api.headers(user)), 503, "key_unavailable")
        assert "no master key in the configured master keys opens this data key" in error["message"]
    assert api.call("handler", "GET", f"/incidents/{ref}").status_code == 200
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(data_key_t).values(wrapped=None))
    assert_error(api.call("handler", "GET", f"/incidents/{ref}"), 410, "data_destroyed")


@pytest.mark.slow  # real processes
def test_the_cli_says_which_key_is_missing_with_exit_4(installed):
    ctx = Context.open(Settings(data_dir=installed / "var"))
    add_school(ctx)
    ref = reported(ctx)
    result = breachflow(installed, "incident", "show", ref, BREACHFLOW_MASTER_KEYS=Fernet.generate_key().decode())
    assert_refused(result, "no master key in the configured master keys opens this data key")
    other = installed / "var" / "other.key"
    other.write_bytes(Fernet.generate_key())
    other.chmod(0o600)
    assert_refused(breachflow(installed, "incident", "show", ref, BREACHFLOW_KEY_FILE=str(other)),
                   f"no master key in the key file {other} opens this data key")
