"""Local times typed into a form, checked across the DST changes (booking.usecases.times):
a time that does not exist is an error on its field; a time that occurs twice is an error
with a choice of the two (`<field>_fold`: 0 the earlier, 1 the later)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from booking.pages.common import Form
from booking.usecases.times import LocalTimeProblem, MissingTime, TwiceTime, local_span

Choices = dict[str, list[tuple[str, str]]]


def _offset(text: str) -> str:
    return f"UTC{text[:3]}:{text[3:]}"


def form_span(
    form: Form, day: date, start: time, end: time, zone: ZoneInfo
) -> tuple[tuple[datetime, datetime] | None, Choices]:
    """((start, end) instants, or None with the form's errors set), and the choices to
    offer for times that occur twice."""
    folds: dict[str, int | None] = {}
    for name in ("start", "end"):
        chosen = form.get(f"{name}_fold")
        folds[name] = int(chosen) if chosen in ("0", "1") else None
    try:
        return local_span(day, start, end, zone, folds), {}
    except LocalTimeProblem as problem:
        choices: Choices = {}
        for name, cause in problem.causes.items():
            if isinstance(cause, MissingTime):
                form.error(
                    name,
                    _(
                        "%(time)s does not exist on %(date)s: the clocks move forward "
                        "from %(gap_start)s to %(gap_end)s. Choose another time.",
                        time=f"{cause.wall:%H:%M}",
                        date=f"{cause.wall:%Y-%m-%d}",
                        gap_start=f"{cause.gap_start:%H:%M}",
                        gap_end=f"{cause.gap_end:%H:%M}",
                    ),
                )
            elif isinstance(cause, TwiceTime):
                form.error(
                    name,
                    _(
                        "%(time)s occurs twice on %(date)s: the clocks move back. "
                        "Choose which one you mean.",
                        time=f"{cause.wall:%H:%M}",
                        date=f"{cause.wall:%Y-%m-%d}",
                    ),
                )
                wall = f"{cause.wall:%H:%M}"
                choices[name] = [
                    (
                        "0",
                        _(
                            "The first %(time)s (%(offset)s)",
                            time=wall,
                            offset=_offset(cause.earlier.strftime("%z")),
                        ),
                    ),
                    (
                        "1",
                        _(
                            "The second %(time)s (%(offset)s)",
                            time=wall,
                            offset=_offset(cause.later.strftime("%z")),
                        ),
                    ),
                ]
        return None, choices
