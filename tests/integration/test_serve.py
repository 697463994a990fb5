"""`booking serve` on the embedded default runs the jobs and the projection runner itself:
a premises registered over HTTP reaches the (asynchronous) free-premises registry without
any other process."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import at_test_time, premises_body
from tests.integration.test_faults import Server


def test_embedded_serve_keeps_the_registry_caught_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.sqlite'}"
    env = {
        **os.environ,
        "BOOKING_DATABASE_URL": url,
        "BOOKING_SECRET_KEY": "tests",
        "BOOKING_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "booking.cli",
            "admin",
            "create-user",
            "--email",
            "staff@example.fi",
            "--name",
            "Staff",
            "--role",
            "staff",
        ],
        env=at_test_time(env),
        capture_output=True,
        text=True,
        check=True,
    )
    token = created.stdout.strip().splitlines()[-1]
    server = Server(url, tmp_path)
    server.start_with(scheduler=True)
    try:
        status, _ = server.request(
            "POST",
            "/api/v1/premises",
            premises_body("kylatalo"),
            {"Authorization": f"Bearer {token}"},
        )
        assert status == 201
        deadline = time.monotonic() + 20
        while True:
            status, body = server.request("GET", "/api/v1/registry/free-premises")
            listed = [p["id"] for p in body.get("premises", [])] if status == 200 else []
            if "kylatalo" in listed:
                break
            assert time.monotonic() < deadline, (status, body)
            time.sleep(0.3)
    finally:
        server.stop()


def test_a_request_line_over_the_limit_is_414_problem_json(tmp_path: Path) -> None:
    """gunicorn refuses a request line over 4 KB before the app sees it; `booking serve`'s
    worker says so as application/problem+json like every other error (issue 14.6), where
    gunicorn alone answers text/html."""
    server = Server(f"sqlite:///{tmp_path / 'serve.sqlite'}", tmp_path).start()
    try:
        for path in ("/api/v1/premises?q=" + "a" * 5000, "/" + "x" * 9000):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
            finally:
                connection.close()
            assert response.status == 414, body[:200]
            assert response.getheader("Content-Type") == "application/problem+json"
            problem = json.loads(body)
            assert problem["status"] == 414 and problem["title"] == "URI Too Long"
        # Just under the limit, the app answers as usual.
        status, found = server.request("GET", "/api/v1/premises?q=" + "a" * 190)
        assert status == 200 and found["premises"] == []
    finally:
        server.stop()
