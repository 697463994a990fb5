"""Pop-up organisers: ask for a short slot, follow its status, talk with staff, withdraw.

TODO(popups): the pop-up request commands and their projection are built in the pop-up
issue. This page already takes and checks the request; sending it is wired up when
`POST /api/v1/popup-requests` and its domain command exist (then replace `_send`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request
from flask_babel import gettext as _
from sqlalchemy import select

from booking.http import runtime
from booking.pages.common import Form, signed_in_as
from events.sql import read_transaction
from projections.catalogue import premises_table

bp = Blueprint("popup", __name__, url_prefix="/popup")


def _choices(conn: Any) -> list[Any]:
    t = premises_table
    rows = conn.execute(select(t).where(t.c.retired.is_(False)).order_by(t.c.id)).all()
    return [r for r in rows if r.rules.get("popup_allowed")]


@bp.route("/new", methods=["GET", "POST"])
@signed_in_as()
def new() -> Any:
    posted = request.method == "POST"
    form = Form(request.form if posted else request.args, expected_attendees="1")
    with read_transaction(runtime().engine) as conn:
        choices = _choices(conn)
    if not posted:
        return render_template("popup/new.html", form=form, choices=choices)
    if form.get("premises_id") not in {r.id for r in choices}:
        form.error("premises_id", _("Choose premises that take pop-up requests."))
    form.date("date")
    form.clock("start")
    form.clock("end")
    form.text("title", 300, required=True)
    form.text("description", 5000)
    form.integer("expected_attendees", 1, 100_000)
    if form.ok:
        form.error("_form", _("Pop-up requests cannot be sent through this page yet."))
    return render_template("popup/new.html", form=form, choices=choices), 422
