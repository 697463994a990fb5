"""Runs the real OpenID Connect provider (panva's oidc-provider, tests/oidc/provider.mjs)
for the tests, on 127.0.0.1.

The clocks: every test runs at a pinned instant (time-machine, in this process only), while
node runs on the machine's clock. So the provider runs under libfaketime
(tests.conftest.at_test_time), started at the instant the pinned clock reads when it starts;
`Provider.now()` is the instant its clock reads now (the start plus the real time passed
since), and a test moves its own clock there, so that the ID token's iat/exp and the app's
check use one time line.

Without node, the provider module or libfaketime the tests skip, except under CI=true, where
they fail (.ci/run installs the provider with npm).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import at_test_time

HERE = Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PROVIDER_DIR = Path(os.environ.get("OIDC_PROVIDER_DIR", Path.home() / ".cache/tilavaraus-oidc"))
MODULE = PROVIDER_DIR / "node_modules" / "oidc-provider" / "lib" / "index.js"
SECRET = "tilavaraus-test-secret"
WEAK_ACR = "urn:tilavaraus:test:acr:password"
STRONG_ACR = "http://ftn.ficora.fi/2017/loa3"


def missing(message: str) -> None:
    if IN_CI:
        pytest.fail(message + " (CI=true: the OpenID Connect tests must not skip)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Provider:
    issuer: str
    process: subprocess.Popen[str]
    started_at: datetime  # the provider's clock when it started (whole seconds, UTC)
    started_monotonic: float

    def now(self) -> datetime:
        """What the provider's clock reads now."""
        return self.started_at + timedelta(seconds=time.monotonic() - self.started_monotonic)

    def stop(self) -> None:
        # SIGKILL and a blocking wait: wait(timeout=…) polls with time.sleep, which fails
        # (EINVAL) when the suite itself runs under libfaketime (make test-at).
        self.process.kill()
        self.process.wait()


def start(redirect_uri: str) -> Provider:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed (apt-get install nodejs)")
    if not MODULE.is_file():
        missing(f"oidc-provider not found in {PROVIDER_DIR} (npm install oidc-provider@9)")
    assert node is not None
    port = free_port()
    # libfaketime at the pinned now (whole seconds, as FAKETIME takes it); timers and the
    # event loop keep the real monotonic clock.
    started_at = datetime.now(UTC).replace(microsecond=0)
    env = at_test_time({**os.environ, "OIDC_PROVIDER_MODULE": str(MODULE)})
    env["FAKETIME"] = started_at.strftime("@%Y-%m-%d %H:%M:%S")
    process = subprocess.Popen(
        [node, str(HERE / "provider.mjs"), str(port), redirect_uri],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started_monotonic = time.monotonic()
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.strip() == "ready":
            break
    else:
        process.wait()
        pytest.fail("the OpenID Connect provider did not start:\n" + "".join(lines))
    # Keep reading what it says, so a full pipe never stalls it (and a failure shows).
    threading.Thread(target=_echo, args=(process,), daemon=True).start()
    return Provider(f"http://127.0.0.1:{port}", process, started_at, started_monotonic)


def _echo(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        print("oidc-provider:", line.rstrip())
