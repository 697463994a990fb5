"""The statistics page in a real Chromium at desktop and phone width: the week chart's axis
labels do not run into each other, the week table's title is not cut, and the page says
how small groups are suppressed. Screenshots: test-artifacts/screenshots/stats-*.png."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest

from tests.browser.conftest import Site, screenshot, sign_in

LABEL_BOXES = """() => [...document.querySelectorAll('#weeks-title ~ figure svg text.axis-label')]
  .map(t => { const b = t.getBoundingClientRect();
              return [b.left, b.right, b.top, b.bottom, t.textContent]; })"""


def _overlapping(boxes: list[list[Any]]) -> list[tuple[str, str]]:
    """Pairs of neighbouring labels whose boxes share area (rotated labels overlap as
    boxes only if their glyphs would: they are 45° apart along the axis)."""
    found = []
    for a, b in pairwise(boxes):
        boxes_meet = a[1] > b[0] + 0.5 and a[3] > b[2] + 0.5 and b[3] > a[2] + 0.5
        if boxes_meet and not _rotated_apart(a, b):
            found.append((a[4], b[4]))
    return found


def _rotated_apart(a: list[Any], b: list[Any]) -> bool:
    # Two labels turned 45° (their boxes are taller than a line of text) are parallel
    # strips: they clear each other when the axis step (distance of their right ends)
    # exceeds the text height times √2. Level labels get no such excuse.
    rotated = all(box[3] - box[2] > 24 for box in (a, b))
    return rotated and bool((b[1] - a[1]) > 12 * 1.42)


@pytest.mark.parametrize("weeks", [12, 26, 52])
def test_week_axis_labels_do_not_overlap_at_desktop_width(
    page: Any, site: Site, weeks: int
) -> None:
    sign_in(page, site, "analyst")
    first = site.day - timedelta(weeks=weeks) + timedelta(days=1)
    page.goto(f"{site.url}/stats?from={first}&to={site.day}&lang=fi")
    boxes = page.evaluate(LABEL_BOXES)
    assert len(boxes) >= min(weeks, 12) // 2
    assert _overlapping(boxes) == []
    if weeks == 12:
        screenshot(page, "stats-1280")


def test_week_table_caption_is_whole_on_a_phone(browser: Any, site: Site) -> None:
    context = browser.new_context(locale="fi-FI", viewport={"width": 375, "height": 800})
    page = context.new_page()
    try:
        sign_in(page, site, "analyst")
        first = site.day - timedelta(weeks=12) + timedelta(days=1)
        page.goto(f"{site.url}/stats?from={first}&to={site.day}")
        page.click("#weeks-title ~ details summary")
        caption = page.locator("#weeks-table-title")
        box = caption.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375
        # The caption wraps inside the screen rather than running off it.
        fits = page.evaluate(
            "() => { const c = document.querySelector('#weeks-table-title');"
            " return c.scrollWidth <= c.clientWidth + 1; }"
        )
        assert fits
        # The page itself does not scroll sideways; a wide table scrolls in its own box.
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
        screenshot(page, "stats-375")
    finally:
        context.close()


def test_the_page_explains_small_group_suppression(page: Any, site: Site) -> None:
    sign_in(page, site, "analyst")
    for lang, words in (
        ("fi", "alle kolmesta organisaatiosta"),
        ("sv", "färre än tre organisationer"),
        ("en", "fewer than three organisations"),
    ):
        page.goto(f"{site.url}/stats?lang={lang}")
        assert words in page.locator("#small-groups").inner_text()


def test_premises_week_view_title_is_whole_on_a_phone(browser: Any, site: Site) -> None:
    context = browser.new_context(locale="fi-FI", viewport={"width": 375, "height": 800})
    page = context.new_page()
    try:
        page.goto(site.week_url())
        title = page.locator("#week-caption")
        box = title.bounding_box()
        assert box is not None
        # The whole title is on the screen: it wraps at the screen's width, not the table's.
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
        screenshot(page, "premises-week-375")
    finally:
        context.close()
