"""The layers of the booking side, checked from the source: the pages do not reach into
the API's modules, the use cases and queries know nothing of Flask, and no view, page,
job, handler or the demo's history reads the wall clock or mints ids itself (the time and
ids come from booking.clock through the runtime, or are handed in)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "booking"
PAGES = ["member", "popup", "staff", "threads", "messages", "week", "localtime"]
SEALED = [
    *(f"pages/{name}.py" for name in PAGES),
    "api/bookings.py",
    "api/popups.py",
    "api/messages.py",
    "api/paging.py",
    "jobs.py",
    "demo/history.py",
    "demo/steps.py",
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "usecases").glob("*.py"))),
    *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "queries").glob("*.py"))),
]


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("name", PAGES)
def test_a_booking_page_imports_no_module_of_the_api(name: str) -> None:
    modules = imported(ROOT / "pages" / f"{name}.py")
    assert not [m for m in modules if m == "booking.api" or m.startswith("booking.api.")]


@pytest.mark.parametrize("package", ["usecases", "queries"])
def test_use_cases_and_queries_know_nothing_of_flask(package: str) -> None:
    for path in (ROOT / package).glob("*.py"):
        assert not [m for m in imported(path) if m.split(".")[0] in ("flask", "flask_smorest")]


@pytest.mark.parametrize("module", SEALED)
def test_no_wall_clock_and_no_ids_of_their_own(module: str) -> None:
    source = (ROOT / module).read_text()
    for call in ("datetime.now(", "date.today(", "uuid4(", "time.time("):
        assert call not in source, f"{module} calls {call}…)"
