"""What a request must get past before a handler runs: If-Match, NUL characters, unreadable JSON."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from booking.domain.errors import (
    RuleBroken,
    StaleVersion,
)
from booking.http.problems import problem

MAX_JSON_DEPTH = 32  # our bodies nest four deep; past this a body is an attack, not data


def expected_version() -> int | None:
    """The version named by If-Match (`"3"`, `W/"3"` or `3`), or None without one."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    text = raw.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise RuleBroken({"If-Match": ['Give the version as a number, e.g. "3".']})
    return int(text)


def check_if_match(expected: int | None, current: int) -> None:
    """412 unless If-Match, when sent, names `current`: for the writes the domain decides
    without a version (API.md: every resource that changes honours If-Match)."""
    if expected is not None and current != expected:
        raise StaleVersion(current)


def check_changed_once(expected: int | None, after: int) -> None:
    """After a command that changed the resource by one version: 412 unless it changed
    version `expected`, i.e. no other write came between the check above and the command
    (raising rolls the command back)."""
    if expected is not None and after != expected + 1:
        raise StaleVersion(after - 1)


def _nul_in(value: Any, where: str) -> str | None:
    """The name of the first field in a JSON value whose text holds a NUL character."""
    if isinstance(value, str):
        return where if "\x00" in value else None
    if not isinstance(value, dict | list):
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        name = str(key) if where == "_schema" else f"{where}.{key}"
        if "\x00" in str(key):
            return name
        if found := _nul_in(item, name):
            return found
    return None


_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def refuse_nul_characters() -> Response | None:
    """PostgreSQL text cannot hold NUL, so a NUL anywhere in a request is refused up front
    (on both databases, so that they answer alike) instead of failing in the database."""
    message = ["Must not contain NUL characters."]
    if "\x00" in request.path:
        return problem(404, "Not Found", "No such resource.")
    for key, value in request.args.items(multi=True):
        if "\x00" in key or "\x00" in value:
            return problem(422, "Unprocessable Entity", "NUL in the query.", errors={key: message})
    if request.mimetype in _FORMS:  # the pages' forms: a NUL reached PostgreSQL as a 500
        for key, value in request.form.items(multi=True):
            if "\x00" in key or "\x00" in value:
                return problem(
                    422, "Unprocessable Entity", "NUL in the form.", errors={key: message}
                )
    if request.is_json and request.content_length:
        field = _nul_in(json_body(), "_schema")
        if field is not None:
            return problem(422, "Unprocessable Entity", "NUL in the body.", errors={field: message})
    return None


def _unreadable(value: Any) -> str | None:
    """Why a parsed JSON body cannot be used: nested too deeply, or text with a lone
    surrogate (valid JSON, but not encodable as UTF-8 for either database)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"Nested deeper than {MAX_JSON_DEPTH} levels."
        texts: list[str] = []
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            texts.extend(item)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        if any(not text.isascii() and _has_surrogate(text) for text in texts):
            return "Text must be valid Unicode (no lone surrogates)."
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def refuse_unreadable_json() -> Response | None:
    """Read a JSON body once, safely, before anything else does: the json module raises
    RecursionError on deep nesting and ValueError on numbers of thousands of digits, which
    would otherwise surface as 500s from the first code that parses the body. What it read
    is the body every later reader gets (`json_body`, `utf8_json_body`): parsed once."""
    if not request.is_json or not request.content_length:
        return None
    data = request.get_data(cache=True)
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return problem(400, "Bad Request", "The body is not readable JSON.")
    reason = _unreadable(parsed)
    if reason is not None:
        return problem(400, "Bad Request", reason)
    # json.loads guesses the encoding of bytes (UTF-16, a UTF-8 signature); webargs reads
    # them as UTF-8 only, so it may reuse this value only where the guess was plain UTF-8.
    request.environ[_READ] = ReadBody(parsed, json.detect_encoding(data) == "utf-8")
    return None


_READ = "tilavaraus.json_body"  # in the request's environ: per request, never shared


class ReadBody:
    """A JSON body as refuse_unreadable_json read it, and whether its bytes were UTF-8."""

    __slots__ = ("utf8", "value")

    def __init__(self, value: Any, utf8: bool) -> None:
        self.value, self.utf8 = value, utf8


def json_body() -> Any:
    """The request's JSON body, as `request.get_json(silent=True)` gives it (None without
    one), read once: what refuse_unreadable_json read, when it read one."""
    read: ReadBody | None = request.environ.get(_READ)
    return request.get_json(silent=True) if read is None else read.value


def utf8_json_body() -> ReadBody | None:
    """The body read by refuse_unreadable_json when its bytes were plain UTF-8 (what webargs
    parses alike), else None: the caller reads the body itself."""
    read: ReadBody | None = request.environ.get(_READ)
    return read if read is not None and read.utf8 else None
