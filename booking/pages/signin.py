"""Signing in and out: e-mail and password, or (for residents) an e-mailed sign-in link.

The link carries a signed, expiring token (itsdangerous, which Flask ships) and is sent
through the outbox. Opening it shows a button; only pressing it signs in, so a mail scanner
that follows links signs nobody in.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from booking import accounts, i18n, outbox, sessions
from booking.domain.accounts import SELF_SIGNUP
from booking.http import new_id, now, request_metadata, runtime
from booking.i18n import current_language
from booking.limits import FAILURES_PER_CLIENT, FAILURES_PER_EMAIL, LINKS_PER_CLIENT, Limit
from booking.pages.common import Form, redirect_to, run, safe_next, sign_in, sign_out
from booking.public_url import public_url
from booking.usecases.accounts import NewAccount, create_user
from events.sql import read_transaction, write_transaction

bp = Blueprint("signin", __name__)
log = logging.getLogger(__name__)
LINK_MAX_AGE = 30 * 60  # seconds a sign-in link stays valid


def _wait(*limits: tuple[Limit, str]) -> float:
    """Seconds until every limit allows another attempt (kept in the database: all workers)."""
    with read_transaction(runtime().engine) as conn:
        return max(limit.blocked(conn, runtime().vault, key, now()) for limit, key in limits)


def _hit(*limits: tuple[Limit, str]) -> None:
    with write_transaction(runtime().engine) as conn:
        for limit, key in limits:
            limit.hit(conn, runtime().vault, key, now())


def _client() -> str:
    return request.remote_addr or "unknown"


def _wait_message(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return str(_("Too many attempts. Try again in %(n)d minutes.", n=minutes))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = Form(request.form if request.method == "POST" else None, next=request.args.get("next"))
    target = safe_next(form.get("next"), url_for("public.search"))
    if request.method != "POST":
        return render_template("signin/login.html", form=form)
    email = form.required("email", _("Give your e-mail address.")).lower()
    password = form.required("password", _("Give your password."))
    if not form.ok:
        return render_template("signin/login.html", form=form), 422
    wait = _wait((FAILURES_PER_EMAIL, email), (FAILURES_PER_CLIENT, _client()))
    if wait:
        form.error("_form", _wait_message(wait))
        page = render_template("signin/login.html", form=form)
        return page, 429, {"Retry-After": str(int(wait))}
    with read_transaction(runtime().engine) as conn:
        user = accounts.user_by_password(conn, email, password)
    if user is None:
        _hit((FAILURES_PER_EMAIL, email), (FAILURES_PER_CLIENT, _client()))
        form.data["password"] = ""
        form.error("email", _("The e-mail address or the password is wrong."))
        return render_template("signin/login.html", form=form), 422
    with write_transaction(runtime().engine) as conn:
        FAILURES_PER_EMAIL.reset(conn, runtime().vault, email)
    try:
        sign_in(user, "password")
    except sessions.Disabled:
        form.error("_form", _("This account has been disabled."))
        return render_template("signin/login.html", form=form), 403
    return redirect(target, code=303)


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Any:
    # Flask answers HEAD with the GET branch's view: only a POST (CSRF-checked) acts, here
    # and in every GET-and-POST page, so a HEAD never signs anyone in or out.
    if request.method != "POST":
        return render_template("signin/logout.html")
    sign_out()
    return redirect_to("public.search")


# --- residents: sign up and sign in with a link -----------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt="tilavaraus-sign-in-link")


def sign_in_link(user_id: str) -> str:
    token = _serializer().dumps({"user": user_id})
    return public_url(url_for("signin.link", token=token))


def link_mail(user_id: str, language: str, link: str) -> outbox.Mail:
    catalogue = i18n.translations(language)  # the recipient's language, not the page's
    subject = catalogue.gettext("Your sign-in link – Tilavaraus")
    body = catalogue.gettext(
        "Sign in to Tilavaraus with this link (valid for 30 minutes):\n\n%(link)s\n\n"
        "If you did not ask for it, you can ignore this message."
    ) % {"link": link}
    key = hashlib.sha256(link.encode()).hexdigest()[:32]
    return outbox.Mail(f"sign-in-link:{key}", user_id, language, subject, body)


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> Any:
    form = Form(request.form if request.method == "POST" else None)
    if request.method != "POST":
        return render_template("signin/signup.html", form=form, sent=False)
    email = form.required("email", _("Give your e-mail address.")).lower()
    if email and ("@" not in email or len(email) > 320 or " " in email):
        form.error("email", _("This is not an e-mail address."))
    name = form.text("name", 300)
    if not form.ok:
        return render_template("signin/signup.html", form=form, sent=False), 422
    wait = _wait((LINKS_PER_CLIENT, _client()))
    if wait:
        form.error("_form", _wait_message(wait))
        return render_template("signin/signup.html", form=form, sent=False), 429
    _hit((LINKS_PER_CLIENT, _client()))
    language = current_language()

    at, new_user_id = now(), new_id()
    resident = NewAccount(email=email, name=name, role="resident", language=language)

    def find_or_create(conn: Any) -> str:
        found = accounts.user_id_by_email(conn, email)
        if found:
            user_id = found
        else:
            vault, metadata = runtime().vault, request_metadata(None)
            user_id = create_user(
                conn, vault, SELF_SIGNUP, resident, at, new_user_id, metadata
            ).user_id
        link = sign_in_link(user_id)
        # The link goes out through the outbox, in the transaction that made the account.
        outbox.enqueue(conn, [link_mail(user_id, language, link)], at)
        log.info("sign-in link queued for user %s", user_id)
        return user_id

    run(find_or_create)
    # The same answer whether or not the address was known: no one learns who has an account.
    return render_template("signin/signup.html", form=Form(), sent=True, email=email)


@bp.route("/login/link/<token>", methods=["GET", "POST"])
def link(token: str) -> Any:
    try:
        data = _serializer().loads(token, max_age=LINK_MAX_AGE)
    except SignatureExpired:
        return render_template("signin/link.html", problem=_("The link has expired.")), 410
    except BadSignature:
        return render_template("signin/link.html", problem=_("The link is not valid.")), 404
    try:
        with read_transaction(runtime().engine) as conn:
            user = accounts.user_by_id(conn, str(data.get("user")))
    except Exception:  # NotFound or a malformed payload: the same answer
        return render_template("signin/link.html", problem=_("The link is not valid.")), 404
    if request.method != "POST":
        return render_template("signin/link.html", problem=None, token=token)
    try:
        sign_in(user, "link")
    except sessions.Disabled:
        return render_template(
            "signin/link.html", problem=_("This account has been disabled.")
        ), 403
    return redirect_to("member.home")
