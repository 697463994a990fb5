"""OpenAPI `links`: how one answer leads to the next operation (issue 14.6).

A booking answer leads to its cancel, approve, reject and messages; a pop-up request to its
decision, withdrawal and messages; a feed token to its revocation; a premises to its page,
changes, closures, retirement and availability; a user to their data and erasure. Stateful
testing tools (schemathesis) and clients follow them to chain operations.

They are declared here, beside no view, and added as each path enters the document (an
apispec plugin), so the modules that document those responses stay as they are.
"""

from __future__ import annotations

from typing import Any

from apispec import BasePlugin

# (path, method, status) → link name → (target path, target method, parameter → expression)
Target = tuple[str, str, dict[str, str]]
BOOKING = {"booking_id": "$response.body#/id"}
POPUP = {"request_id": "$response.body#/id"}
PREMISES = {"premises_id": "$response.body#/id"}
TOKEN = {"token_id": "$response.body#/id"}
USER = {"user_id": "$response.body#/id"}

_BOOKING_LINKS: dict[str, Target] = {
    "GetBooking": ("/api/v1/bookings/{booking_id}", "get", BOOKING),
    "CancelBooking": ("/api/v1/bookings/{booking_id}/cancel", "post", BOOKING),
    "ApproveBooking": ("/api/v1/bookings/{booking_id}/approve", "post", BOOKING),
    "RejectBooking": ("/api/v1/bookings/{booking_id}/reject", "post", BOOKING),
    "ReadBookingMessages": ("/api/v1/bookings/{booking_id}/messages", "get", BOOKING),
    "PostBookingMessage": ("/api/v1/bookings/{booking_id}/messages", "post", BOOKING),
}
_POPUP_LINKS: dict[str, Target] = {
    "GetPopupRequest": ("/api/v1/popup-requests/{request_id}", "get", POPUP),
    "ApprovePopupRequest": ("/api/v1/popup-requests/{request_id}/approve", "post", POPUP),
    "RejectPopupRequest": ("/api/v1/popup-requests/{request_id}/reject", "post", POPUP),
    "WithdrawPopupRequest": ("/api/v1/popup-requests/{request_id}/withdraw", "post", POPUP),
    "ReadPopupMessages": ("/api/v1/popup-requests/{request_id}/messages", "get", POPUP),
    "PostPopupMessage": ("/api/v1/popup-requests/{request_id}/messages", "post", POPUP),
}
_PREMISES_LINKS: dict[str, Target] = {
    "GetPremises": ("/api/v1/premises/{premises_id}", "get", PREMISES),
    "UpdatePremises": ("/api/v1/premises/{premises_id}", "patch", PREMISES),
    "ClosePremises": ("/api/v1/premises/{premises_id}/closures", "post", PREMISES),
    "RetirePremises": ("/api/v1/premises/{premises_id}/retire", "post", PREMISES),
    "PremisesAvailability": ("/api/v1/premises/{premises_id}/availability", "get", PREMISES),
    "PremisesFeed": ("/api/v1/premises/{premises_id}/feed", "get", PREMISES),
}
LINKS: dict[tuple[str, str, str], dict[str, Target]] = {
    ("/api/v1/bookings", "post", "201"): _BOOKING_LINKS,
    ("/api/v1/bookings/{booking_id}", "get", "200"): _BOOKING_LINKS,
    ("/api/v1/booking-series", "post", "201"): {
        "CancelSeries": (
            "/api/v1/booking-series/{series_id}/cancel",
            "post",
            {"series_id": "$response.body#/series_id"},
        ),
    },
    ("/api/v1/popup-requests", "post", "201"): _POPUP_LINKS,
    ("/api/v1/popup-requests/{request_id}", "get", "200"): _POPUP_LINKS,
    ("/api/v1/feed-tokens", "post", "201"): {
        "RevokeFeedToken": ("/api/v1/feed-tokens/{token_id}", "delete", TOKEN),
    },
    ("/api/v1/premises", "post", "201"): _PREMISES_LINKS,
    ("/api/v1/users", "post", "201"): {
        "UserData": ("/api/v1/users/{user_id}/data", "get", USER),
        "EraseUser": ("/api/v1/users/{user_id}/erase", "post", USER),
    },
}


def operation_ref(path: str, method: str) -> str:
    """A JSON pointer to an operation of this document (RFC 6901: `~1` is `/`)."""
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


def link_object(target: Target) -> dict[str, Any]:
    path, method, parameters = target
    return {"operationRef": operation_ref(path, method), "parameters": dict(parameters)}


class LinksPlugin(BasePlugin):
    """Adds the links above to each operation's documented response as its path is added."""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if path is None or not operations:
            return
        for method, operation in operations.items():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if not isinstance(responses, dict):
                continue
            for status, response in responses.items():
                wanted = LINKS.get((_openapi_path(path), method, str(status)))
                if wanted and isinstance(response, dict):
                    found = response.setdefault("links", {})
                    found.update({name: link_object(t) for name, t in wanted.items()})


def _openapi_path(path: str) -> str:
    """flask-smorest hands the plugin Flask's rule (`<booking_id>`); links name OpenAPI's."""
    return path.replace("<", "{").replace(">", "}")
