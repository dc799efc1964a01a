"""Who is looking at a page: a signed-in user (session cookie) or an anonymous visitor, the
language they read, and the CSRF token every form must return.

Cookies: ``bf_session`` (the session's secret), ``bf_pre`` (a random nonce that binds the forms of
someone not signed in: sign-in, the public report form, a link's acknowledgement), ``bf_lang``
(the language of someone not signed in). All are HttpOnly and SameSite=Lax, and Secure when
breachflow is reached over https.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from breachflow.api.deps import brief
from breachflow.api.errors import Forbidden, Unauthenticated
from breachflow.api.web.render import LANGUAGES, in_language, page
from breachflow.workflow import links, sessions
from breachflow.workflow.accounts import Account, Role
from breachflow.workflow.context import Context

SESSION_COOKIE, NONCE_COOKIE, LANGUAGE_COOKIE = "bf_session", "bf_pre", "bf_lang"
CSRF_FIELD = "csrf"
MAX_FORM_FIELDS = 200


class SignInNeeded(Unauthenticated):
    """A page that needs a signed-in user was asked for without one: the visitor is sent to sign in."""

    code = "sign_in_needed"


class FormRefused(Forbidden):
    """A form came back without the token of this browser's session (CSRF)."""

    code = "form_refused"


@dataclass
class Visitor:
    """The person behind a page request."""

    session: sessions.Session | None
    language: str
    form_token: str
    bound_to: str
    cookies: list[tuple[str, str, int | None]] = field(default_factory=list)  # to set on the response

    @property
    def account(self) -> Account | None:
        return self.session.account if self.session else None

    def words(self, nl: str, en: str) -> str:
        """``nl`` or ``en``, as this visitor reads."""
        return in_language(self.language, nl, en)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.app.state.ctx.settings.public_url.startswith("https://")


def set_cookies(request: Request, response: Response) -> Response:
    """Put the visitor's pending cookies on ``response``."""
    visitor: Visitor | None = getattr(request.state, "visitor", None)
    for name, value, max_age in visitor.cookies if visitor else ():
        if value:
            response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", secure=_secure(request))
        else:
            response.delete_cookie(name, httponly=True, samesite="lax", secure=_secure(request))
    return response


def redirect(request: Request, to: str) -> Response:
    """303 See Other to ``to`` (a path of this site), with the visitor's cookies."""
    return set_cookies(request, RedirectResponse(to, status_code=303))


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site, else ``default``: no open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


async def visitor(request: Request) -> Visitor:
    """The visitor of every page (a router dependency): kept on ``request.state.visitor``."""
    ctx: Context = request.app.state.ctx
    secret = request.cookies.get(SESSION_COOKIE, "")
    session = await brief(request, sessions.session_of, ctx, secret) if secret else None
    cookies: list[tuple[str, str, int | None]] = []
    if secret and session is None:
        cookies.append((SESSION_COOKIE, "", None))  # ended or expired: forget it
    if session is not None:
        bound_to, language = f"s:{session.id}", session.language
    else:
        nonce = request.cookies.get(NONCE_COOKIE, "")
        if not (16 <= len(nonce) <= 64 and nonce.replace("-", "").replace("_", "").isalnum()):
            nonce = secrets.token_urlsafe(24)
            cookies.append((NONCE_COOKIE, nonce, None))
        bound_to = f"p:{nonce}"
        language = request.cookies.get(LANGUAGE_COOKIE, "nl")
        language = language if language in LANGUAGES else "nl"
    found = Visitor(session, language, links.form_token(ctx.audit_key, bound_to), bound_to, cookies)
    request.state.visitor = found
    if session is not None:
        request.state.account = session.account  # for the access log
    return found


VisitorDep = Annotated[Visitor, Depends(visitor)]


def signed_in(*roles: Role) -> Callable[..., Any]:
    """A dependency that admits a signed-in user with one of ``roles``; anyone else is sent to sign in."""

    async def check(request: Request, seen: VisitorDep) -> sessions.Session:
        if seen.session is None:
            raise SignInNeeded(seen.words("Meld u aan om deze pagina te zien.", "Sign in to see this page."))
        if seen.session.account.role not in roles:
            raise Forbidden(seen.words("Uw rol geeft geen toegang tot deze pagina.",
                                       "Your role gives no access to this page."))
        return seen.session

    return check


async def posted(request: Request, seen: Visitor) -> FormData:
    """The submitted form, once its CSRF token is this visitor's; ``FormRefused`` otherwise."""
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    given = form.get(CSRF_FIELD)
    ctx: Context = request.app.state.ctx
    if not isinstance(given, str) or not links.form_token_matches(ctx.audit_key, seen.bound_to, given):
        raise FormRefused(seen.words(
            "Het formulier is verlopen of komt niet van deze pagina. Laad de pagina opnieuw en probeer het nog eens.",
            "The form has expired or did not come from this page. Reload the page and try again."))
    return form


def home_of(account: Account) -> str:
    """Where a user lands after signing in."""
    return {Role.school: "/portal", Role.admin: "/account"}.get(account.role, "/dashboard")


router = APIRouter(include_in_schema=False)


@router.get("/signin")
async def signin_form(request: Request, seen: VisitorDep, next: str | None = None) -> Response:
    if seen.session is not None:
        return redirect(request, local_path(next, home_of(seen.session.account)))
    return set_cookies(request, page(request, "signin.html.j2", {"next": local_path(next, ""), "username": "",
                                                                   "failed": False}))


@router.post("/signin")
async def signin(request: Request, seen: VisitorDep) -> Response:
    form = await posted(request, seen)
    failures, client = request.app.state.auth_failures, request.client.host if request.client else ""
    wait = failures.retry_after(client)
    username, password = str(form.get("username", ""))[:80], str(form.get("password", ""))[:sessions.MAX_PASSWORD]
    target = local_path(str(form.get("next", "")), "")
    if wait is None:
        secret = await brief(request, sessions.sign_in, request.app.state.ctx, username=username, password=password)
        if secret is not None:
            seen.cookies.append((SESSION_COOKIE, secret, None))
            seen.cookies.append((NONCE_COOKIE, "", None))
            session = await brief(request, sessions.session_of, request.app.state.ctx, secret)
            if session is not None:  # None only if the account was removed in the meantime
                return redirect(request, target or home_of(session.account))
        failures.add(client)
    return set_cookies(request, page(request, "signin.html.j2", {
        "next": target, "username": username, "failed": True, "wait": wait}, status=429 if wait else 401,
        headers={"Retry-After": str(wait)} if wait else None))


@router.post("/signout")
async def signout(request: Request, seen: VisitorDep) -> Response:
    await posted(request, seen)
    secret = request.cookies.get(SESSION_COOKIE, "")
    if secret:
        await brief(request, sessions.sign_out, request.app.state.ctx, secret)
    seen.cookies.append((SESSION_COOKIE, "", None))
    return redirect(request, "/signin")


@router.post("/language")
async def choose_language(request: Request, seen: VisitorDep) -> Response:
    form = await posted(request, seen)
    language = str(form.get("language", ""))
    back = local_path(str(form.get("next", "")), "/")
    if language not in LANGUAGES:
        return redirect(request, back)
    if seen.session is not None:
        await brief(request, sessions.set_language, request.app.state.ctx, user_id=seen.session.account.id,
                    language=language)
    else:
        seen.cookies.append((LANGUAGE_COOKIE, language, 365 * 24 * 3600))
    return redirect(request, back)


@router.get("/")
async def home(request: Request, seen: VisitorDep) -> Response:
    if seen.session is None:
        return redirect(request, "/signin")
    return redirect(request, home_of(seen.session.account))


@router.get("/account")
async def account_page(request: Request, session: Annotated[sessions.Session, Depends(signed_in(*Role))]) -> Response:
    return set_cookies(request, page(request, "account.html.j2", {"account": session.account}))


def sign_in_target(request: Request) -> str:
    """Where an anonymous visitor of ``request`` is sent: the sign-in page, coming back here after."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/signin?next={quote(back, safe='')}"
