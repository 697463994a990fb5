"""The `booking` command (API.md): serve, migrate, accounts, demo data, projections, the log."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from flask import Flask

from booking import accounts
from booking.api import schemas
from booking.app import create_app
from booking.domain.accounts import OPERATOR
from booking.http import Runtime
from booking.migrate import upgrade
from booking.privacy import WrongSecret
from booking.progress import Progress
from booking.usecases import accounts as handlers
from events.sql import read_transaction, write_transaction
from events.store import Metadata, head_position
from projections import rebuilding, runner


def _app() -> Flask:
    app = create_app()
    url = app.config["BOOKING_DATABASE_URL"]
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return app


def _runtime(app: Flask) -> Runtime:
    found: Runtime = app.extensions["tilavaraus"]
    return found


@click.group()
def main() -> None:
    """Tilavaraus: room bookings and pop-up spaces for a city."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers", default=1, show_default=True, type=click.IntRange(1, 256), help="gunicorn workers"
)
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 1024),
    help="threads per worker",
)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Migrate the database if needed and serve the app with gunicorn."""
    from gunicorn.app.base import BaseApplication

    app = _app()
    upgrade(_runtime(app).engine)
    with read_transaction(_runtime(app).engine) as conn:
        try:
            _runtime(app).vault.check(conn)
        except WrongSecret as error:
            raise click.ClickException(str(error)) from None
    # gunicorn forks the workers from this process: pooled connections opened here would be
    # shared by every worker (one socket, several users: mixed-up answers on PostgreSQL).
    _runtime(app).engine.dispose()

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            # gthread, answering gunicorn's own refusals (414, 431, 400) as problem+json.
            self.cfg.set("worker_class", "booking.serving.ProblemWorker")
            self.cfg.set("accesslog", "-")
            if app.config.get("BOOKING_RUN_SCHEDULER", True):
                # The embedded default runs the jobs in the worker (started after the fork,
                # so no thread crosses it); production runs `booking scheduler` instead.
                self.cfg.set("post_worker_init", _start_scheduler)

        def load(self) -> Flask:
            return app

    click.echo(f"Serving Tilavaraus on http://{host}:{port}/", err=True)
    Server().run()


def _start_scheduler(worker: Any) -> None:
    from booking.scheduler import start_in_process

    start_in_process(worker.app.wsgi())


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations."""
    upgrade(_runtime(_app()).engine)
    click.echo("database is up to date")


@main.group()
def admin() -> None:
    """Accounts."""


@admin.command("create-user")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option(
    "--role", required=True, type=click.Choice(["resident", "booker", "staff", "analyst", "admin"])
)
@click.option("--organisation", "organisation_id", default=None)
@click.option("--password", default=None)
@click.option("--language", default="fi", type=click.Choice(["fi", "en", "sv"]))
def create_user(**options: Any) -> None:
    """Create a user; the last line printed is its API token."""
    _check(schemas.UserIn(), {k: v for k, v in options.items() if v is not None})
    rt = _runtime(_app())
    upgrade(rt.engine)
    given = handlers.NewAccount(**options)
    with write_transaction(rt.engine) as conn:
        created = _or_fail(
            lambda: handlers.create_user(
                conn, rt.vault, OPERATOR, given, rt.clock(), rt.ids(), Metadata(actor=None)
            )
        )
    click.echo(f"created user {created.user_id}", err=True)
    click.echo(created.token)


@admin.command("create-organisation")
@click.option("--name", required=True)
@click.option(
    "--type", "type_", default="association", type=click.Choice(accounts.ORGANISATION_TYPES)
)
@click.option("--business-id", default=None)
def create_organisation(name: str, type_: str, business_id: str | None) -> None:
    """Create an organisation; the last line printed is its id."""
    _check(schemas.OrganisationIn(), {"name": name, "type": type_, "business_id": business_id})
    rt = _runtime(_app())
    upgrade(rt.engine)
    given = handlers.NewOrganisation(name, type_, business_id)
    with write_transaction(rt.engine) as conn:
        created = _or_fail(
            lambda: handlers.create_organisation(
                conn, OPERATOR, given, rt.clock(), rt.ids(), Metadata(actor=None)
            )
        )
    click.echo(created.id)


def _check(schema: Any, values: dict[str, Any]) -> None:
    """Refuse what POST /api/v1/users or /organisations would refuse (a password shorter than
    8 characters, a business id that is no Y-tunnus…): the CLI and the API create alike."""
    problems = schema.validate(values)
    for field, messages in problems.items():
        click.echo(f"{field}: {' '.join(map(str, messages))}", err=True)
    if problems:
        sys.exit(2)


def _or_fail(action: Any) -> Any:
    from booking.domain.errors import DomainError, RuleBroken

    try:
        return action()
    except RuleBroken as error:
        for field, messages in error.problems.items():
            click.echo(f"{field}: {' '.join(messages)}", err=True)
        sys.exit(2)
    except DomainError as error:
        click.echo(str(error), err=True)
        sys.exit(2)


@main.group()
def demo() -> None:
    """Demo data."""


@demo.command("load")
@click.option("--bookings", "booking_count", default=20_000, show_default=True, type=int)
@click.option("--seed", default=2026, show_default=True, type=int)
@click.option("--if-empty", is_flag=True, help="do nothing when the catalogue has premises")
@click.option(
    "--anchor",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="the history's present is the Monday of this date's week (default: today); "
    "the same seed and week give the same data",
)
def demo_load(booking_count: int, seed: int, if_empty: bool, anchor: datetime | None) -> None:
    """Load the Mikkeli catalogue and a year of bookings (through the booking commands)."""
    from booking.demo import CatalogueNotEmpty, load
    from booking.domain.errors import DomainError

    app = _app()
    rt = _runtime(app)
    upgrade(rt.engine)
    try:
        summary = load(
            rt.engine,
            rt.premises,
            booking_count=booking_count,
            seed=seed,
            if_empty=if_empty,
            anchor=anchor.date() if anchor else None,
            clock=rt.clock,
            ids=rt.ids,
        )
    except CatalogueNotEmpty as error:
        raise click.ClickException(f"{error}: the demo loads into an empty database.") from None
    except DomainError as error:
        raise click.ClickException(str(error)) from None
    click.echo(summary)


@main.group()
def projections() -> None:
    """Read models built from the log."""


@projections.command("rebuild")
@click.argument("names", nargs=-1)
def projections_rebuild(names: tuple[str, ...]) -> None:
    """Rebuild projections (all when none is named) from the log."""
    rt = _runtime(_app())
    engine = rt.engine
    try:
        chosen = runner.by_name(names)
    except KeyError as error:
        raise click.BadParameter(f"unknown projection: {error.args[0]}") from None
    with read_transaction(engine) as conn:
        total = head_position(conn)
    with Progress("rebuild", total) as progress:
        count = rebuilding.rebuild(engine, chosen, progress=progress, clock=rt.clock, parallel=True)
    click.echo(f"rebuilt {', '.join(p.name for p in chosen)} from {count} events")


@projections.command("status")
def projections_status() -> None:
    """Position and lag of every projection."""
    with read_transaction(_runtime(_app()).engine) as conn:
        rows = runner.status(conn)
    for row in rows:
        mode = "inline" if row.inline else "async"
        click.echo(f"{row.name:<16} {mode:<7} position {row.position:>10}  lag {row.lag}")


@main.group()
def events() -> None:
    """The event log."""


@events.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
def events_export(file: str) -> None:
    """Write the log as JSON lines."""
    from booking.logio import export_events

    engine = _runtime(_app()).engine
    with read_transaction(engine) as conn:
        total = head_position(conn)
    try:
        out = open(file, "w", encoding="utf-8")  # noqa: SIM115 (the `with` below closes it)
    except OSError as error:  # a usage error (no such folder, no permission), not a crash
        raise click.ClickException(f"cannot write {file}: {error.strerror}") from None
    with out, Progress("export", total) as progress:
        count = export_events(engine, out, progress)
    click.echo(f"exported {count} events to {file}")


@events.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def events_import(file: str) -> None:
    """Restore a log exported as JSON lines into an empty database, then rebuild projections."""
    from booking.logio import NotEmpty, import_events

    rt = _runtime(_app())
    engine = rt.engine
    upgrade(engine)
    try:
        with open(file, encoding="utf-8") as lines, Progress("import") as progress:
            count = import_events(engine, lines, progress)
    except (NotEmpty, ValueError) as error:
        raise click.ClickException(str(error)) from None
    with Progress("rebuild", count) as progress:
        rebuilding.rebuild(engine, runner.ALL, progress=progress, clock=rt.clock, parallel=True)
    click.echo(f"imported {count} events from {file}")


@main.command()
def scheduler() -> None:
    """Run the scheduler as its own process."""
    from booking.scheduler import run_forever

    run_forever(_app())


@main.command()
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--poll-seconds", default=1.0, show_default=True, type=click.FloatRange(0.01, 60))
def projector(batch_size: int, poll_seconds: float) -> None:
    """Run the projection runner as its own process (until SIGTERM)."""
    from booking.scheduler import run_projector

    run_projector(_app(), poll_seconds=poll_seconds, batch_size=batch_size)


if __name__ == "__main__":
    main()
