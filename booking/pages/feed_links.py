"""Calendar feed links: every premises' public feed for anyone, and private feeds (an
organisation's own bookings; staff: premises with details) created and revoked here.

A private link's secret is shown once, in the page that answers its creation; only its
sha256 is kept (the same tables and checks as /api/v1/feed-tokens).
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Blueprint, flash, render_template, request, url_for
from flask_babel import gettext as _

from booking.domain.errors import DomainError
from booking.feeds import Reach, reach_of_token
from booking.http import new_id, now, runtime
from booking.pages.common import BOOKERS, Form, page_user, redirect_to, run, signed_in_as
from booking.pages.messages import translate
from booking.public_url import public_url, with_scheme
from booking.queries.feed_tokens import feed_token_rows
from booking.queries.premises import premises_in_use
from booking.usecases import feed_tokens as handlers
from events.sql import read_transaction

bp = Blueprint("feed_links", __name__, url_prefix="/feeds")

# More premises than this in one feed earn a word about the 1 MB cap even while it fits.
MANY_PREMISES = 5


def feed_links(path: str) -> dict[str, str]:
    """The https:// and webcal:// addresses of one feed path on this site, under
    BOOKING_PUBLIC_URL when set (booking.public_url)."""
    https = public_url(path)
    return {"https": https, "webcal": with_scheme(https, "webcal")}


def _render(
    form: Form | None = None,
    created: dict[str, str] | None = None,
    status: int = 200,
    reach: Reach | None = None,
    many: bool = False,
) -> Any:
    user = page_user()
    with read_transaction(runtime().engine) as conn:
        rows = premises_in_use(conn)
        tokens = feed_token_rows(conn, user.id) if user and user.role in BOOKERS else []
    public = [(row, feed_links(url_for("feeds.premises_feed", premises_id=row.id))) for row in rows]
    page = render_template(
        "member/feeds.html",
        public=public,
        premises=rows,
        tokens=tokens,
        form=form or Form(),
        created=created,
        reach=reach,
        many=many,
    )
    return page if status == 200 else (page, status)


@bp.route("")
def index() -> Any:
    return _render()


@bp.route("/private", methods=["POST"])
@signed_in_as(*BOOKERS)
def create() -> Any:
    user = page_user()
    assert user is not None
    form = Form(request.form)
    if user.role == "booker":
        scope: dict[str, Any] = {"organisation": user.organisation_id}
    else:
        chosen = form.getlist("premises")
        if not chosen:
            form.error("premises", _("Choose at least one premises."))
            return _render(form, status=422)
        scope = {"premises": chosen}
    secret, token_id, at = secrets.token_urlsafe(32), new_id(), now()

    def handle(conn: Any) -> None:
        handlers.create_feed_token(conn, user, scope, at, token_id, secret)

    try:
        run(handle)
    except DomainError as error:
        form.error("premises", translate(str(error)))
        return _render(form, status=422)
    created = feed_links(url_for("feeds.private_feed", token=secret))
    # How far the new feed reaches (booking/feeds/cap.py): said at once, with a warning
    # when it is narrowed under 1 MB or spans so many premises that it may be soon.
    many = len(scope.get("premises", [])) > MANY_PREMISES
    return _render(created=created, status=201, reach=reach_of_token(secret), many=many)


@bp.route("/private/<token_id>/revoke", methods=["POST"])
@signed_in_as(*BOOKERS)
def revoke(token_id: str) -> Any:
    user = page_user()
    assert user is not None

    at = now()
    run(lambda conn: handlers.revoke_feed_token(conn, user, token_id, at))
    flash(_("The feed link is revoked: calendars that use it get nothing more."), "success")
    return redirect_to("feed_links.index")
