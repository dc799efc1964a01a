"""Keys of another installation, and a data key no master key opens: refused before they do harm,
and never a reason for everyone else's lists to fail."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from api_support import build
from conftest import add_school, reported
from cryptography.fernet import Fernet
from reading import all_incidents, whole_timeline

from breachflow.notifications import reminders
from breachflow.workflow import crypto, schools, service
from breachflow.workflow.errors import SecretUnavailable
from breachflow.workflow.models import data_key_t, incident_t


def test_a_master_key_of_another_installation_seals_nothing_new(ctx):
    add_school(ctx)
    reported(ctx)
    foreign = replace(ctx, keys=crypto.KeyRing([Fernet.generate_key()]))
    with pytest.raises(SecretUnavailable, match="another installation"):
        service.report(foreign, actor="h", source="monitoring", schools={"12AB": 1})
    with pytest.raises(SecretUnavailable, match="another installation"):
        schools.add(foreign, brin="34CD", name="Het Anker", contacts=["info@anker.nl"])
    assert len(all_incidents(ctx)) == 1


def test_an_audit_key_of_another_installation_chains_nothing_new(ctx):
    add_school(ctx)
    ref = reported(ctx)
    foreign = replace(ctx, audit_key=os.urandom(32))
    with pytest.raises(SecretUnavailable, match="audit key"):
        service.add_note(foreign, reference=ref, actor="h", text="written under the wrong key")
    assert len(whole_timeline(ctx, ref)) == 1


@pytest.mark.tampers
def test_one_data_key_no_master_key_opens_breaks_no_one_elses_view(ctx, settings):
    api = build(ctx, settings)
    broken, healthy = api.report(), api.report(schools={"34CD": 3})
    with ctx.engine.begin() as conn:  # a forger swaps in a data key wrapped by a key nobody has
        key_id = conn.execute(sa.select(incident_t.c.data_key_id).where(incident_t.c.reference == broken)).scalar_one()
        conn.execute(sa.update(data_key_t).where(data_key_t.c.id == key_id)
                     .values(wrapped=Fernet(Fernet.generate_key()).encrypt(os.urandom(32))))
    listed = api.call("manager", "GET", "/incidents").json()
    assert [i["reference"] for i in listed["items"]] == [healthy] and listed["unreadable"] == [broken]
    assert api.call("school_b", "GET", "/incidents").status_code == 200
    assert api.call("manager", "GET", "/deadlines").status_code == 200
    register = api.call("manager", "GET", "/register")
    assert register.status_code == 200 and register.json()["unreadable"] == [broken]
    assert reminders.scan(ctx, datetime.now(UTC)) >= 0  # the scan runs through
