"""The application factory."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from booking import auth, feeds, pages
from booking import config as configuration
from booking.api import allocation as allocation_api
from booking.api import (
    allocation_result,
    bookings,
    consistency,
    feed_tokens,
    log,
    messages,
    people,
    popups,
    premises,
    schemas,
    stats_allocation,
)
from booking.api import memberships as memberships_api
from booking.api import registry as registry_api
from booking.api import sessions as sessions_api
from booking.api import stats as stats_api
from booking.api.links import LinksPlugin
from booking.clock import random_ids, system_clock
from booking.http import (
    PROBLEM,
    ProblemSchema,
    Runtime,
    http_problem,
    register_error_handlers,
)
from booking.oidc import parse_role_map
from booking.privacy import Vault, use_by_default
from booking.service import PremisesRepository
from events.sql import make_engine

API_TITLE = "Tilavaraus"


class ProblemApi(Api):  # type: ignore[misc]
    """flask-smorest's Api, answering every HTTP error with problem+json (RFC 9457)."""

    def handle_http_exception(self, error: HTTPException) -> Any:
        return http_problem(error)

    def _register_responses(self) -> None:
        # Document error responses as what they are: application/problem+json bodies.
        problem = {"content": {PROBLEM: {"schema": ProblemSchema}}}
        for status in HTTPStatus:
            if status >= 400:
                response = {"description": status.phrase, **problem}
                self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "An error (problem+json)", **problem}
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(configuration.from_environment() if config is None else {})
    app.config.update(config or {})
    app.config.setdefault("BOOKING_TIMEZONE", "Europe/Helsinki")
    app.config.setdefault("SECRET_KEY", "test-only-secret")
    # A mistyped BOOKING_OIDC_ROLE_MAP stops the service here rather than grant in silence.
    parse_role_map(app.config.get("BOOKING_OIDC_ROLE_MAP") or "")
    if proxies := int(app.config.get("BOOKING_TRUSTED_PROXIES", 0)):
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)  # type: ignore[method-assign]
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=256 * 1024,
        JSON_SORT_KEYS=False,
    )
    engine = config.get("ENGINE") if config else None
    if engine is None:
        engine = make_engine(app.config["BOOKING_DATABASE_URL"])
    clock = app.config.get("CLOCK") or system_clock
    app.extensions["tilavaraus"] = Runtime(
        engine,
        PremisesRepository(),
        Vault(app.config["SECRET_KEY"], clock),
        clock=clock,
        ids=app.config.get("IDS") or random_ids,
    )
    # Code outside a request (CLI, demo loader, test helpers) seals with this app's secret.
    use_by_default(app.extensions["tilavaraus"].vault)

    api = ProblemApi(
        app,
        spec_kwargs={
            "info": {"description": (Path(__file__).parent / "api" / "README.api.md").read_text()},
            "extra_plugins": [LinksPlugin()],
        },
    )
    api.ma_plugin.converter.add_attribute_function(schemas.opening_hours_properties)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearer": []}, {}]
    for blueprint in (
        premises.blp,
        bookings.blp,
        popups.blp,
        messages.blp,
        people.blp,
        log.blp,
        feed_tokens.blp,
        allocation_api.blp,
        allocation_result.blp,
        sessions_api.blp,
        memberships_api.blp,
    ):
        api.register_blueprint(blueprint)
    for blueprint in (registry_api.blp, stats_api.blp, stats_allocation.blp):  # read side
        api.register_blueprint(blueprint)
    app.register_blueprint(log.health)
    app.register_blueprint(feeds.blp)
    register_error_handlers(app)
    pages.init_app(app)
    auth.init_app(app)

    waits_itself = {registry_api.blp.name, stats_api.blp.name}  # reflected_position

    @app.before_request
    def _min_position() -> None:
        if request.path.startswith("/api/") and request.blueprint not in waits_itself:
            consistency.refuse_unreached_position()

    return app
