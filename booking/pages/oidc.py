"""Pages for signing in with OpenID Connect: `/auth/oidc/login` sends the browser to the
provider, `/auth/oidc/callback` signs it in on its return (booking.oidc does the protocol),
and `/auth/strong` says how to sign in strongly when a premises asks for it.

Whatever goes wrong, the person gets a page that says what happened and that the password
sign-in still works; a client asking for JSON gets problem+json (502 for a provider that
cannot be reached). A refused sign-in stores nothing but the use of its pending state.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from booking import oidc, sessions
from booking.accounts import user_by_id
from booking.http import new_id, now, problem, runtime
from booking.i18n import current_language
from booking.limits import OIDC_STARTS_PER_CLIENT
from booking.pages.common import safe_next, sign_in
from booking.public_url import public_url
from booking.usecases.accounts import ProviderPerson, sign_in_through_provider
from events.sql import write_transaction

bp = Blueprint("oidc", __name__)
log = logging.getLogger(__name__)
BROWSER_COOKIE = "tilavaraus_oidc"


def settings() -> oidc.Settings | None:
    return oidc.Settings.of(current_app.config)


@bp.app_context_processor
def _offer() -> dict[str, Any]:
    return {"oidc_enabled": settings() is not None}


def _redirect_uri() -> str:
    return public_url(url_for("oidc.callback"))


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _unavailable(error: oidc.ProviderUnavailable) -> Any:
    log.warning("OpenID Connect provider unavailable: %s", error)
    if _wants_json():
        return problem(
            502,
            "Bad Gateway",
            "The identity provider could not be reached. Sign in with a password meanwhile.",
            type_="urn:tilavaraus:problem:identity-provider-unavailable",
        )
    detail = _(
        "The identification service could not be reached. Try again later, or sign in "
        "with your e-mail address and password."
    )
    return render_template("signin/oidc_problem.html", detail=detail), 502


def _refused(error: oidc.SignInRefused | sessions.Disabled) -> Any:
    log.info("OpenID Connect sign-in refused: %s", error)
    if isinstance(error, sessions.Disabled):
        detail, status = _("This account has been disabled."), 403
    else:
        detail, status = (
            _(
                "The sign-in could not be completed: the answer from the identification "
                "service was not valid, had expired or was already used. Nothing was saved. "
                "Start the sign-in again."
            ),
            400,
        )
    if _wants_json():
        return problem(status, "Sign-in refused", str(detail))
    return render_template("signin/oidc_problem.html", detail=detail), status


def _secure() -> bool:
    return bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


@bp.route("/auth/oidc/login")
def login() -> Any:
    found = settings()
    if found is None:
        raise NotFound()
    target = safe_next(request.args.get("next"), url_for("member.home"))
    client = request.remote_addr or "unknown"
    engine, vault = runtime().engine, runtime().vault
    with write_transaction(engine) as conn:
        wait = OIDC_STARTS_PER_CLIENT.blocked(conn, vault, client, now())
        if wait:
            page = render_template(
                "signin/oidc_problem.html", detail=_("Too many attempts. Try again later.")
            )
            return page, 429, {"Retry-After": str(int(wait))}
        OIDC_STARTS_PER_CLIENT.hit(conn, vault, client, now())
    try:
        with write_transaction(engine) as conn:
            asked = request.args.get("strong") == "1" and bool(found.strong_acr)
            begun = oidc.begin(conn, found, _redirect_uri(), target, now(), strong=asked)
    except oidc.ProviderUnavailable as error:
        return _unavailable(error)
    response = redirect(begun.url, code=302)
    response.set_cookie(
        BROWSER_COOKIE,
        begun.browser_secret,
        max_age=int(oidc.PENDING_FOR.total_seconds()),
        httponly=True,
        secure=_secure(),
        samesite="Lax",  # sent on the provider's top-level redirect back to us
        path=url_for("oidc.callback"),
    )
    return response


@bp.route("/auth/oidc/callback")
def callback() -> Any:
    found = settings()
    if found is None:
        raise NotFound()
    args = request.args
    try:
        with write_transaction(runtime().engine) as conn:
            # Used up at once: a second answer with the same state finds nothing.
            pending = oidc.take_pending(
                conn, args.get("state", ""), request.cookies.get(BROWSER_COOKIE), now()
            )
        if args.get("error"):
            raise oidc.SignInRefused(f"provider said {args.get('error')!r}")
        verified = oidc.finish(found, pending, args.get("code", ""), _redirect_uri(), now())
        who = ProviderPerson(
            issuer=verified.issuer,
            subject=verified.subject,
            name=verified.name,
            email=verified.email,
            language=current_language(),
            maps_roles=found.maps_roles,
            mapped_role=found.role_of(verified.role_values),
        )
        with write_transaction(runtime().engine) as conn:
            person = sign_in_through_provider(conn, runtime().vault, who, now(), new_id())
            user = user_by_id(conn, person.user_id)
        strong = verified.acr is not None and verified.acr in found.strong_acr
        sign_in(user, "oidc", strong=strong, acr=verified.acr)
    except oidc.ProviderUnavailable as error:
        return _unavailable(error)
    except (oidc.SignInRefused, sessions.Disabled) as error:
        return _forget(_refused(error))
    return _forget(redirect(safe_next(verified.next, url_for("member.home")), code=303))


def _forget(answer: Any) -> Response:
    response = current_app.make_response(answer)
    response.delete_cookie(BROWSER_COOKIE, path=url_for("oidc.callback"))
    return response


@bp.route("/auth/strong")
def strong() -> Any:
    """What to do when a premises takes bookings only from people signed in strongly."""
    target = safe_next(request.args.get("next"), url_for("member.home"))
    return render_template("signin/strong.html", next=target)


def strong_identity_page() -> tuple[str, int]:
    """The 403 page for a form refused for want of strong identification: how to get it,
    and back to the same form afterwards."""
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    if target is None and request.referrer:
        parts = urlsplit(request.referrer)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    page = render_template("signin/strong.html", next=safe_next(target, url_for("member.home")))
    return page, 403
