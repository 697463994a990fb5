"""The gunicorn worker `booking serve` runs: gunicorn's gthread worker, except that the
errors gunicorn answers itself, before the app sees the request (a request line over its
4 KB limit, too many or too large headers, a malformed request line), are answered as
application/problem+json like every other error of the service (API.md; issue 14.6), not
as gunicorn's text/html page."""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util
from gunicorn.http.errors import (
    InvalidHeader,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidRequestLine,
    InvalidRequestMethod,
    LimitRequestHeaders,
    LimitRequestLine,
)
from gunicorn.workers.gthread import ThreadWorker

# Gunicorn's own refusals: (status, title, detail). Everything else is gunicorn's to answer.
_REFUSALS: list[tuple[type[Exception], int, str, str]] = [
    (LimitRequestLine, 414, "URI Too Long", "The request line is longer than 4094 bytes."),
    (LimitRequestHeaders, 431, "Request Header Fields Too Large", "Too many or too large headers."),
    (InvalidRequestLine, 400, "Bad Request", "The request line is not valid HTTP."),
    (InvalidRequestMethod, 400, "Bad Request", "The request method is not valid."),
    (InvalidHTTPVersion, 400, "Bad Request", "The HTTP version is not valid."),
    (InvalidHeader, 400, "Bad Request", "A header is not valid."),
    (InvalidHeaderName, 400, "Bad Request", "A header name is not valid."),
]


def problem_bytes(status: int, title: str, detail: str) -> bytes:
    """A whole HTTP/1.1 response carrying an RFC 9457 problem; the connection closes."""
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    head = (
        f"HTTP/1.1 {status} {title}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/problem+json\r\n"
        f"Content-Length: {len(body.encode())}\r\n\r\n"
    )
    return (head + body).encode("latin-1")


class ProblemWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn has no annotations
    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        for kind, status, title, detail in _REFUSALS:
            if isinstance(exc, kind):
                self.log.warning("Invalid request from %s: %s", (addr or ("",))[0], exc)
                try:
                    util.write_nonblock(client, problem_bytes(status, title, detail))
                except Exception:  # the client may be gone already
                    self.log.debug("Failed to send error message.")
                return
        super().handle_error(req, client, addr, exc)
