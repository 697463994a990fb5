"""The web pages for people (API.md "Pages"): blueprints split by audience — public pages,
sign-in, members' bookings, pop-up requests, staff and statistics — plus their error pages.

`init_app` sets up languages, browser security and the blueprints in one call.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from booking import i18n, security
from booking.domain.errors import DomainError
from booking.http import http_problem, outcome_of_error
from booking.pages import (
    common,
    feed_links,
    member,
    oidc,
    organisations,
    popup,
    public,
    rounds,
    signin,
    staff,
    staff_premises,
    staff_rounds,
    stats,
)
from booking.pages.messages import status_name, translate
from booking.service import Busy
from events.opening import WEEKDAYS

log = logging.getLogger(__name__)
BLUEPRINTS = (
    public.bp,
    signin.bp,
    oidc.bp,
    organisations.bp,
    member.bp,
    feed_links.bp,
    popup.bp,
    staff.bp,
    staff_premises.bp,
    stats.bp,
    rounds.bp,
    staff_rounds.bp,
)
# Paths answered by machines: they keep problem+json errors and need no session.
MACHINE_PREFIXES = ("/api/", "/healthz")
ERROR_TITLES = {
    400: lambda: _("The request could not be understood"),
    403: lambda: _("You may not do this"),
    404: lambda: _("Page not found"),
    405: lambda: _("That does not work here"),
    410: lambda: _("Gone"),
    413: lambda: _("Too much data"),
    429: lambda: _("Too many attempts"),
    500: lambda: _("Something went wrong"),
    503: lambda: _("The service is busy"),
}


def for_people() -> bool:
    return not request.path.startswith(MACHINE_PREFIXES) and not request.path.endswith(".ics")


def error_page(status: int, detail: str | None = None) -> Response:
    title = ERROR_TITLES.get(status, ERROR_TITLES[500])()
    body = render_template("error.html", status=status, title=title, detail=detail)
    return Response(body, status=status, mimetype="text/html")


def lang_url(code: str) -> str:
    """This page again in another language."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [code]
    return f"{request.path}?{urlencode(args, doseq=True)}"


def weekday_names() -> dict[str, str]:
    monday = date(2024, 1, 1)  # any Monday
    return {key: common.day_name(monday + timedelta(days=n)) for n, key in enumerate(WEEKDAYS)}


def init_app(app: Flask) -> None:
    i18n.init_app(app)
    security.init_app(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)

    @app.before_request
    def _who() -> None:
        if for_people():
            common.load_page_user()

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        return {
            "user": common.page_user(),
            "clock": common.clock_text,
            "date_text": common.date_text,
            "short_day": common.short_day,
            "day_name": common.day_name,
            "span_text": common.span_text,
            "zone_text": common.zone_text,
            "localised": common.localised,
            "feature_name": common.feature_name,
            "status_name": status_name,
            "translate": translate,
            "lang_url": lang_url,
            "weekday_names": weekday_names(),
        }

    app.jinja_env.filters.update(
        zone=ZoneInfo,
        feature_label=common.feature_name,
        feature_pair=lambda key: (key, common.feature_name(key)),
        district_pair=lambda name: (name, name.capitalize()),
        org_pair=lambda row: (row.id, row.name),
    )

    # Code-specific handlers take precedence over flask-smorest's catch-all for HTTPException;
    # machines still get problem+json from them.
    def _http_error(error: HTTPException) -> Response:
        if not for_people():
            return http_problem(error)
        if (error.code or 500) >= 500:
            log.error("server error on %s %s", request.method, request.path, exc_info=error)
        return error_page(error.code or 500)

    for code in (400, 403, 404, 405, 410, 413, 429, 500):
        app.register_error_handler(code, _http_error)

    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError) -> Response:
        if not for_people():
            return http_problem(error)
        return error_page(
            400, _("The form had expired or came from elsewhere. Go back, reload and try again.")
        )


def blueprint_errors(blueprint: Blueprint) -> None:
    def _domain(error: DomainError) -> Response:
        return error_page(outcome_of_error(error).status, translate(str(error)))

    def _busy(error: Busy) -> Response:
        return error_page(503, _("Many people are booking right now. Try again."))

    def _database(error: OperationalError) -> Response:
        log.warning("database unavailable: %s", error.orig)
        return error_page(503, _("The database did not answer. Try again soon."))

    blueprint.register_error_handler(DomainError, _domain)
    blueprint.register_error_handler(Busy, _busy)
    blueprint.register_error_handler(OperationalError, _database)


for _blueprint in BLUEPRINTS:
    # A refusal that a page did not turn into a form error still gets a page, not JSON.
    blueprint_errors(_blueprint)
