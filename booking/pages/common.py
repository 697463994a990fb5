"""What every page blueprint shares: who is signed in, role checks, a small form helper,
times shown in the premises' own zone, and running domain commands from a form."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time, timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_skeleton
from flask import g, redirect, request, session, url_for
from flask_babel import get_translations
from flask_babel import gettext as _
from sqlalchemy.engine import Connection
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from booking import auth, vocabulary
from booking.accounts import User
from booking.domain.errors import DomainError, RuleBroken, SlotTaken
from booking.http import request_metadata, runtime
from booking.i18n import current_language
from booking.pages.messages import translate
from booking.service import Outcome, execute

F = TypeVar("F", bound=Callable[..., Any])
STAFF = ("staff", "admin")
BOOKERS = ("booker", "staff", "admin")


# --- who is signed in --------------------------------------------------------------------


def load_page_user() -> None:
    """Before each page request: the person of the browser's session (booking.auth), or None."""
    found = auth.identity()
    g.page_user = found.user if found is not None and found.session is not None else None


def page_user() -> User | None:
    user: User | None = g.get("page_user")
    return user


def sign_in(
    user: User, method: str = "password", strong: bool = False, acr: str | None = None
) -> None:
    """A new server-side session for `user` (booking.auth), and a fresh cookie session: only
    the chosen language carries over (the CSRF secret is new)."""
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    auth.begin_session(user, method, strong, acr)
    g.page_user = user


def sign_out() -> None:
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    auth.end_session()
    g.page_user = None


def safe_next(target: str | None, default: str) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if not target.isprintable():  # CR/LF would reach the Location header (a 500 there)
        return default
    return target


def signed_in_as(*roles: str) -> Callable[[F], F]:
    """Redirect to sign-in without a session; 403 page when the role may not do this."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = page_user()
            if user is None:
                return redirect(url_for("signin.login", next=request.full_path.rstrip("?")))
            if roles and user.role not in roles:
                raise Forbidden()
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


# --- forms ------------------------------------------------------------------------------


class Form:
    """What was typed (kept to show again) and the errors per field, in the reader's language."""

    def __init__(self, data: Mapping[str, Any] | None = None, **defaults: Any) -> None:
        self.data: dict[str, Any] = {k: v for k, v in defaults.items() if v is not None}
        if data is not None:
            self.data.update({k: data.get(k) for k in data})
            self.lists = {k: data.getlist(k) for k in data} if hasattr(data, "getlist") else {}
        else:
            self.lists = {}
        self.errors: dict[str, list[str]] = {}

    def get(self, name: str, default: str = "") -> str:
        value = self.data.get(name)
        return default if value is None else str(value).strip()

    def getlist(self, name: str) -> list[str]:
        return self.lists.get(name) or list(self.data.get(name) or [])

    def checked(self, name: str) -> bool:
        return self.get(name) in ("1", "on", "true", "yes")

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    @property
    def ok(self) -> bool:
        return not self.errors

    def required(self, name: str, message: str | None = None) -> str:
        value = self.get(name)
        if not value:
            self.error(name, message or _("Fill in this field."))
        return value

    def date(self, name: str, required: bool = True) -> date | None:
        value = self.get(name)
        if not value:
            if required:
                self.error(name, _("Give a date."))
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.error(name, _("Give the date as YYYY-MM-DD, for example 2027-03-02."))
            return None

    def clock(self, name: str, required: bool = True) -> time | None:
        value = self.get(name).replace(".", ":")
        if not value:
            if required:
                self.error(name, _("Give a time."))
            return None
        try:
            hours, minutes = value.split(":")
            if value == "24:00":
                return time(0, 0)
            return time(int(hours), int(minutes))
        except ValueError:
            self.error(name, _("Give the time as HH:MM, for example 18:30."))
            return None

    def integer(
        self, name: str, minimum: int = 0, maximum: int = 10**6, required: bool = True
    ) -> int | None:
        value = self.get(name)
        if not value:
            if required:
                self.error(name, _("Give a number."))
            return None
        try:
            number = int(value)
        except ValueError:
            self.error(name, _("Give a whole number."))
            return None
        if not minimum <= number <= maximum:
            self.error(
                name, _("Give a number from %(low)d to %(high)d.", low=minimum, high=maximum)
            )
            return None
        return number

    def text(self, name: str, maximum: int, required: bool = False) -> str:
        value = self.required(name) if required else self.get(name)
        if len(value) > maximum:
            self.error(name, _("At most %(n)d characters.", n=maximum))
        return value

    def take_domain_error(
        self, error: DomainError, fields: Mapping[str, str], zone: ZoneInfo | None = None
    ) -> None:
        """Show a refusal next to the form field it is about (`fields` maps domain → form)."""
        if isinstance(error, RuleBroken):
            for name, messages in error.problems.items():
                for message in messages:
                    self.error(fields.get(name, "_form"), translate(message))
        elif isinstance(error, SlotTaken):
            self.error(fields.get("start", "_form"), taken_message(error, zone))
        else:
            self.error("_form", translate(str(error)))


def taken_message(error: SlotTaken, zone: ZoneInfo | None) -> str:
    first = error.conflicts[0]
    zone = zone or ZoneInfo("Europe/Helsinki")
    local_start = first.slot.start.astimezone(zone)
    return str(
        _(
            "The time is taken: something else is booked from %(start)s to %(end)s.",
            start=f"{date_text(local_start)} {local_start:%H:%M}",
            end=clock_text(first.slot.end, zone),
        )
    )


def local_instant(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone)


def local_span(day: date, start: time, end: time, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A local start and end; an end at or before the start is on the next day."""
    first = local_instant(day, start, zone)
    end_day = day if end > start else day + timedelta(days=1)
    return first, local_instant(end_day, end, zone)


# --- showing times ----------------------------------------------------------------------


def clock_text(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%H:%M")


def date_text(day: date | datetime) -> str:
    if isinstance(day, datetime):
        day = day.date()
    return format_skeleton("yMMMEd", datetime.combine(day, time()), locale=current_language())


def day_name(day: date) -> str:
    return format_date(day, "cccc", locale=current_language())


def short_day(day: date) -> str:
    return format_skeleton("MMMEd", datetime.combine(day, time()), locale=current_language())


def span_text(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    """`pe 4.12.2026 18:00–20:00` in the premises' zone (the zone is named by zone_text)."""
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    text = f"{date_text(local_start)} {local_start:%H:%M}–"
    if local_end.date() != local_start.date():
        text += f"{date_text(local_end)} "
    return text + f"{local_end:%H:%M}"


def zone_text(zone: ZoneInfo, at: datetime) -> str:
    """`Europe/Helsinki (UTC+02:00)`: the zone's name and its offset at that time."""
    offset = at.astimezone(zone).strftime("%z")
    return f"{zone.key} (UTC{offset[:3]}:{offset[3:]})"


def localised(value: Mapping[str, Any] | None, fallback: str = "") -> str:
    """The text in the reader's language, else Finnish, English, Swedish."""
    value = value or {}
    for language in (current_language(), "fi", "en", "sv"):
        if value.get(language):
            return str(value[language])
    return fallback


def feature_names() -> dict[str, str]:
    """Every known feature key → its name in the page's language (booking/vocabulary.py)."""
    return vocabulary.names(list(vocabulary.TERMS), get_translations())


def feature_name(key: str) -> str:
    """A known key in the page's language; a key staff made up, as they wrote it."""
    return vocabulary.term(key, get_translations())


def all_features(rows: Iterable[Any]) -> tuple[list[str], list[str]]:
    """(accessibility features, equipment) named by any of the premises, sorted."""
    access: set[str] = set()
    equipment: set[str] = set()
    for row in rows:
        access |= set(row.accessibility)
        equipment |= set(row.equipment)
    return sorted(access), sorted(equipment)


# --- running commands -------------------------------------------------------------------


def run(handler: Callable[[Connection], Any]) -> Any:
    """Run a page's command in a retried write transaction; domain errors propagate."""
    result: list[Any] = []

    def wrapped(conn: Connection) -> Outcome:
        result.append(handler(conn))
        return Outcome(200, {})

    execute(runtime().engine, wrapped)
    return result[-1]


def metadata() -> Any:
    user = page_user()
    return request_metadata(user.id if user else None)


def redirect_to(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values), code=303)
