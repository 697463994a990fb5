"""Calendar feed links: every premises' public feed for anyone, and private feeds (an
organisation's own bookings; staff: premises with details) created and revoked here.

A private link's secret is shown once, in the page that answers its creation; only its
sha256 is kept (the same tables and checks as /api/v1/feed-tokens).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, flash, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import insert, select, update

from booking.accounts import token_hash
from booking.api.feed_tokens import checked_scope
from booking.domain.errors import DomainError, NotFound
from booking.feeds import Reach, reach_of_token
from booking.http import runtime
from booking.pages.common import BOOKERS, Form, page_user, redirect_to, run, signed_in_as
from booking.pages.messages import translate
from booking.tables import feed_token_keys, feed_tokens
from events.sql import read_transaction
from projections.catalogue import premises_table

bp = Blueprint("feed_links", __name__, url_prefix="/feeds")

# More premises than this in one feed earn a word about the 1 MB cap even while it fits.
MANY_PREMISES = 5


def feed_links(path: str) -> dict[str, str]:
    """The https:// and webcal:// addresses of one feed path on this site."""
    https = request.host_url.rstrip("/") + path
    return {"https": https, "webcal": "webcal://" + https.split("://", 1)[1]}


def _premises(conn: Any) -> list[Any]:
    t = premises_table
    return list(conn.execute(select(t).where(t.c.retired.is_(False)).order_by(t.c.id)).all())


def _tokens(conn: Any, user_id: str) -> list[dict[str, Any]]:
    t, k = feed_tokens, feed_token_keys
    rows = conn.execute(
        select(t.c.id, t.c.scope, t.c.created_at, k.c.key)
        .join(k, k.c.token_id == t.c.id)
        .where(t.c.user_id == user_id, t.c.revoked_at.is_(None))
        .order_by(t.c.created_at, t.c.id, k.c.ordinal)
    ).all()
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        token = found.setdefault(
            row.id, {"id": row.id, "scope": row.scope, "names": [], "created_at": row.created_at}
        )
        token["names"].append(row.key)
    return list(found.values())


def _render(
    form: Form | None = None,
    created: dict[str, str] | None = None,
    status: int = 200,
    reach: Reach | None = None,
    many: bool = False,
) -> Any:
    user = page_user()
    with read_transaction(runtime().engine) as conn:
        rows = _premises(conn)
        tokens = _tokens(conn, user.id) if user and user.role in BOOKERS else []
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
    token, token_id = secrets.token_urlsafe(32), str(uuid.uuid4())

    def handle(conn: Any) -> None:
        checked = checked_scope(conn, user, scope)
        kind = next(iter(checked))
        conn.execute(
            insert(feed_tokens).values(
                id=token_id,
                token_hash=token_hash(token),
                user_id=user.id,
                scope=kind,
                created_at=datetime.now(UTC),
            )
        )
        keys = checked["premises"] if kind == "premises" else [checked["organisation"]]
        conn.execute(
            insert(feed_token_keys),
            [{"token_id": token_id, "key": key, "ordinal": n} for n, key in enumerate(keys)],
        )

    try:
        run(handle)
    except DomainError as error:
        form.error("premises", translate(str(error)))
        return _render(form, status=422)
    created = feed_links(url_for("feeds.private_feed", token=token))
    # How far the new feed reaches (booking/feeds/cap.py): said at once, with a warning
    # when it is narrowed under 1 MB or spans so many premises that it may be soon.
    many = len(scope.get("premises", [])) > MANY_PREMISES
    return _render(created=created, status=201, reach=reach_of_token(token), many=many)


@bp.route("/private/<token_id>/revoke", methods=["POST"])
@signed_in_as(*BOOKERS)
def revoke(token_id: str) -> Any:
    user = page_user()
    assert user is not None

    def handle(conn: Any) -> None:
        t = feed_tokens
        done = conn.execute(
            update(t)
            .where(t.c.id == token_id, t.c.user_id == user.id, t.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
        if not done.rowcount:
            raise NotFound(f"No live feed token {token_id!r} of yours.")

    run(handle)
    flash(_("The feed link is revoked: calendars that use it get nothing more."), "success")
    return redirect_to("feed_links.index")
