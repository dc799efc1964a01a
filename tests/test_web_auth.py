"""Signing in to the pages: passwords, sessions that end, CSRF on every form, no open redirects."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError
from conftest import CHEAP_HASHER, PRODUCT_HASHER
from freezegun import freeze_time
from web_support import PASSWORD, browser, csrf_of, installation

from breachflow.workflow import sessions
from breachflow.workflow.models import user_t


@pytest.fixture
def app(ctx, settings):
    return installation(ctx, settings)


def test_a_handler_signs_in_lands_on_the_dashboard_and_signs_out(app):
    me = browser(app)
    assert me.get("/account").headers["location"] == "/signin?next=%2Faccount"
    signed = me.sign_in("handler")
    assert signed.status_code == 303 and signed.headers["location"] == "/dashboard"
    cookie = signed.headers["set-cookie"]
    assert "bf_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert me.get("/account").status_code == 200
    assert me.submit("/account", "/signout", {}).headers["location"] == "/signin"
    assert me.get("/account").status_code == 303


def test_a_wrong_password_or_unknown_user_is_refused_alike(app):
    me = browser(app)
    wrong = me.sign_in("handler", "not the password at all")
    unknown = me.sign_in("nobody", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "bf_session" not in wrong.headers.get("set-cookie", "")


def test_passwords_are_hashed_at_argon2s_recommended_cost_and_an_unknown_name_costs_the_same():
    """breachflow hashes with argon2id at its library's defaults (RFC 9106's second recommended
    setting: 64 MiB, 3 passes, 4 lanes). The hash an unknown name is checked against has the same
    parameters (a cheaper one would tell which names exist by the answer's speed), and opens for no
    password. (The other tests hash at the lowest cost: ``conftest.CHEAP_HASHER``.)"""
    assert (PRODUCT_HASHER.memory_cost, PRODUCT_HASHER.time_cost, PRODUCT_HASHER.parallelism) == (65536, 3, 4)
    assert not PRODUCT_HASHER.check_needs_rehash(sessions.NOBODY)
    with pytest.raises(VerifyMismatchError):
        PRODUCT_HASHER.verify(sessions.NOBODY, PASSWORD)


def test_a_password_set_is_stored_at_the_products_cost(ctx, monkeypatch):
    from breachflow.workflow import accounts
    monkeypatch.setattr(sessions, "_hasher", PRODUCT_HASHER)
    accounts.add_user(ctx, username="ria", role="handler")
    sessions.set_password(ctx, username="ria", password="a long enough password")
    assert not PRODUCT_HASHER.check_needs_rehash(stored_hash(ctx, "ria"))


def test_an_unknown_name_is_checked_against_a_hash_as_a_known_one_is(app, monkeypatch):
    """Refused alike, and after the same work: one argon2 verification each."""
    checked = []

    class Counting(PasswordHasher):
        def verify(self, hash, password):  # noqa: A002  (argon2's own parameter name)
            checked.append(hash)
            return super().verify(hash, password)

    monkeypatch.setattr(sessions, "_hasher", Counting(time_cost=CHEAP_HASHER.time_cost,
                                                         memory_cost=CHEAP_HASHER.memory_cost, parallelism=1))
    assert browser(app).sign_in("nobody-here").status_code == 401
    assert browser(app).sign_in("handler", "not the password at all").status_code == 401
    assert checked == [sessions.NOBODY, stored_hash(app.state.ctx, "handler")]


def stored_hash(ctx, username: str) -> str:
    with ctx.engine.connect() as conn:
        return conn.execute(sa.select(user_t.c.password_hash).where(user_t.c.username == username)).scalar_one()


def test_a_password_stored_at_other_parameters_is_rehashed_at_the_next_sign_in(app, ctx):
    older = PasswordHasher(time_cost=2, memory_cost=8, parallelism=1).hash(PASSWORD)
    with ctx.engine.begin() as conn:
        conn.execute(sa.update(user_t).where(user_t.c.username == "handler").values(password_hash=older))

    assert browser(app).sign_in("handler").status_code == 303

    stored = stored_hash(ctx, "handler")
    assert stored != older and not sessions._hasher.check_needs_rehash(stored)
    assert sessions._hasher.verify(stored, PASSWORD)
    assert browser(app).sign_in("handler").status_code == 303
    assert stored_hash(ctx, "handler") == stored, "a hash at the current parameters is kept"


def test_a_user_without_a_password_cannot_sign_in(app, ctx):
    from breachflow.workflow import accounts
    accounts.add_user(ctx, username="tokenonly", role="handler")
    assert browser(app).sign_in("tokenonly", "").status_code == 401


def test_a_form_without_this_browsers_token_is_refused(app):
    me, other = browser(app), browser(app)
    foreign = csrf_of(other.get("/signin").text)
    me.get("/signin")
    response = me.client.post("/signin", data={"csrf": foreign, "username": "handler", "password": PASSWORD},
                              follow_redirects=False)
    assert response.status_code == 403 and "bf_session=" not in response.headers.get("set-cookie", "")
    me.sign_in("handler")
    stale = me.client.post("/signout", data={"csrf": foreign}, follow_redirects=False)
    assert stale.status_code == 403
    assert me.get("/account").status_code == 200  # still signed in


def test_sign_in_goes_back_to_a_page_of_this_site_only(app):
    me = browser(app)
    page = me.get("/signin?next=//evil.example/x")
    assert me.client.post("/signin", data={"csrf": csrf_of(page.text), "username": "handler", "password": PASSWORD,
                                           "next": "https://evil.example/"},
                          follow_redirects=False).headers["location"] == "/dashboard"
    other = browser(app)
    page = other.get("/signin")
    assert other.client.post("/signin", data={"csrf": csrf_of(page.text), "username": "handler",
                                              "password": PASSWORD, "next": "/register?state=closed"},
                             follow_redirects=False).headers["location"] == "/register?state=closed"


def test_a_session_ends_when_idle_and_after_its_hours(app, settings):
    me = browser(app)
    with freeze_time(tick=True) as clock:
        me.sign_in("handler")
        clock.tick(timedelta(minutes=settings.session_idle_minutes - 1))
        assert me.get("/account").status_code == 200
        clock.tick(timedelta(minutes=settings.session_idle_minutes + 1))
        assert me.get("/account").status_code == 303
    other = browser(app)
    with freeze_time(tick=True) as clock:
        other.sign_in("handler")
        for _ in range(settings.session_hours * 60 // (settings.session_idle_minutes - 5) + 1):
            clock.tick(timedelta(minutes=settings.session_idle_minutes - 5))
            if other.get("/account").status_code != 200:
                break
        else:
            pytest.fail("the session outlived its hours")


def test_a_password_reset_ends_every_session_of_that_user(app, ctx):
    me = browser(app)
    me.sign_in("handler")
    sessions.set_password(ctx, username="handler", password="another long password")
    assert me.get("/account").status_code == 303


def test_a_short_password_is_refused_naming_the_field(ctx):
    from breachflow.workflow.errors import InvalidInput
    with pytest.raises(InvalidInput) as refused:
        sessions.set_password(ctx, username="nobody", password="short")
    assert refused.value.fields[0].field == "password"


def test_pages_forbid_everything_not_served_by_the_app(app):
    response = browser(app).get("/signin")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "form-action 'self'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp


def test_an_unknown_page_is_a_page_and_an_unknown_api_path_is_data(app):
    me = browser(app)
    page = me.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    data = me.get("/api/v1/no-such-thing")
    assert data.status_code == 404 and data.headers["content-type"].startswith("application/json")


def test_only_the_argon2_hash_of_a_password_is_stored(ctx):
    import sqlalchemy as sa

    from breachflow.workflow import accounts
    from breachflow.workflow.models import user_t
    accounts.add_user(ctx, username="ria", role="manager")
    sessions.set_password(ctx, username="ria", password="first long password")
    with ctx.engine.connect() as conn:
        stored = conn.execute(sa.select(user_t.c.password_hash).where(user_t.c.username == "ria")).scalar()
    assert stored.startswith("$argon2id$") and "first long password" not in stored


def test_the_session_cookie_is_secure_when_breachflow_is_reached_over_https(ctx, settings):
    app = installation(ctx, settings.model_copy(update={"public_url": "https://breachflow.example.nl"}))
    cookies = browser(app, "https://breachflow.example.nl").sign_in("handler").headers.get_list("set-cookie")
    (session,) = [c for c in cookies if c.startswith("bf_session=")]
    assert "Secure" in session and "HttpOnly" in session


def test_sign_in_failures_count_towards_the_per_address_limit(ctx, settings):
    app = installation(ctx, settings.model_copy(update={"auth_failures_per_minute": 3}))
    me = browser(app)
    for _ in range(3):
        assert me.sign_in("handler", "not the password at all").status_code == 401
    blocked = me.sign_in("handler")  # the right password, too late
    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert "bf_session=" not in blocked.headers.get("set-cookie", "")


def test_sessions_that_ended_are_forgotten_when_the_user_signs_in_again(app, ctx):
    import sqlalchemy as sa

    from breachflow.workflow.models import session_t
    for _ in range(3):
        me = browser(app)
        me.sign_in("handler")
        me.submit("/account", "/signout", {})
    browser(app).sign_in("handler")
    with ctx.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(session_t)
                            .where(session_t.c.ended_at.is_not(None))).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(session_t)).scalar() == 1


def test_no_redirect_takes_the_host_a_client_sent(app):
    me = browser(app)
    me.sign_in("handler")
    response = me.get("/account/", headers={"host": "evil.example"})
    assert response.status_code == 404 and "evil.example" not in response.headers.get("location", "")
