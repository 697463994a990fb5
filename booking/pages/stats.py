"""Analysts' page: usage charts (server-side SVG with data tables) and CSV downloads."""

from __future__ import annotations

from flask import Blueprint, render_template

from booking.pages.common import signed_in_as

bp = Blueprint("stats", __name__)


@bp.route("/stats")
@signed_in_as("analyst", "staff", "admin")
def index() -> str:
    return render_template("stats/index.html")
