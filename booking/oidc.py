"""Signing in with OpenID Connect (API.md "Signing in with OpenID Connect"): the relying
party's side of the authorisation code flow with PKCE, done with Authlib.

`begin` finds the provider by discovery, keeps a pending sign-in (state, nonce, PKCE
verifier, bound to the browser by a cookie of its own) and gives the provider's URL.
`finish` takes that pending sign-in back exactly once, trades the code for tokens
(client_secret_basic) and verifies the ID token: signature against the provider's keys,
issuer, audience, nonce and expiry, the clock skew bounded by `SKEW`. The instant it checks
against is the app's clock (booking.clock), never the process's own.

A person is then known by (issuer, subject) only — booking.oidc_people keeps that pair and
booking.usecases.accounts.sign_in_through_provider seals the name and e-mail under the
person's key.

Roles: only where BOOKING_OIDC_ROLE_CLAIM and BOOKING_OIDC_ROLE_MAP are both set does a claim
of the provider's (`roles`, `groups`, or a dotted path such as `realm_access.roles`) map to a
role (`tilavaraus-staff=staff,tilavaraus-admin=admin`); otherwise an admin assigns roles.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import Column, String, Table, delete, insert, select
from sqlalchemy.engine import Connection

from booking.tables import metadata
from events.sql import UTCDateTime

SCOPE = "openid profile email"
SKEW = 60  # seconds of clock difference tolerated between the provider and us
PENDING_FOR = timedelta(minutes=10)  # a sign-in not finished by then starts again
DISCOVERY_FOR = timedelta(minutes=10)  # how long the provider's metadata and keys are kept
TIMEOUT = 5.0  # seconds for any request to the provider

oidc_transactions = Table(
    "oidc_transactions",
    metadata,
    # The state is a bearer secret of the pending sign-in: only its hash is kept.
    Column("state_hash", String(64), primary_key=True),
    # The cookie that binds it to the browser that began it (no login CSRF), hashed.
    Column("browser_hash", String(64), nullable=False),
    Column("nonce", String(100), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("next", String(500), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


class ProviderUnavailable(Exception):
    """The provider could not be reached or did not answer as a provider does (502)."""


class SignInRefused(Exception):
    """The provider's answer cannot sign anyone in (a bad state, code or ID token)."""


# The roles a provider's claim may grant, lowest first: the highest one mapped wins. A
# booker belongs to an organisation (joined by request) and everyone else is a resident.
MAPPABLE_ROLES = ("analyst", "staff", "admin")


def parse_role_map(text: str) -> dict[str, str]:
    """`value=role,value=role` (BOOKING_OIDC_ROLE_MAP) as {claim value: role}; ValueError
    for anything else, so that a mistyped setting stops the service instead of granting
    nothing (or too much) in silence."""
    found: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        value, sep, role = part.rpartition("=")
        value, role = value.strip(), role.strip()
        if not sep or not value or role not in MAPPABLE_ROLES:
            raise ValueError(
                f"BOOKING_OIDC_ROLE_MAP: {part.strip()!r} is not VALUE=ROLE with ROLE one of "
                + ", ".join(MAPPABLE_ROLES)
            )
        found[value] = role
    return found


@dataclass(frozen=True)
class Settings:
    issuer: str
    client_id: str
    client_secret: str
    strong_acr: frozenset[str]
    role_claim: str | None = None  # None: no claim maps to a role
    role_map: tuple[tuple[str, str], ...] = ()

    @staticmethod
    def of(config: Any) -> Settings | None:
        """From the app's configuration (BOOKING_OIDC_*), or None when not configured."""
        issuer = (config.get("BOOKING_OIDC_ISSUER") or "").strip()
        client_id = (config.get("BOOKING_OIDC_CLIENT_ID") or "").strip()
        if not issuer or not client_id:
            return None
        strong = config.get("BOOKING_OIDC_STRONG_ACR") or ""
        claim = (config.get("BOOKING_OIDC_ROLE_CLAIM") or "").strip()
        mapped = parse_role_map(config.get("BOOKING_OIDC_ROLE_MAP") or "")
        return Settings(
            issuer=issuer,
            client_id=client_id,
            client_secret=config.get("BOOKING_OIDC_CLIENT_SECRET") or "",
            strong_acr=frozenset(v.strip() for v in strong.split(",") if v.strip()),
            role_claim=claim if claim and mapped else None,
            role_map=tuple(sorted(mapped.items())) if claim else (),
        )

    @property
    def maps_roles(self) -> bool:
        return self.role_claim is not None

    def role_of(self, values: tuple[str, ...]) -> str | None:
        """The highest role the claim's values map to (None: none maps)."""
        mapped = {role for value, role in self.role_map if value in values}
        ranked = [role for role in MAPPABLE_ROLES if role in mapped]
        return ranked[-1] if ranked else None


@dataclass(frozen=True)
class Provider:
    """What discovery says about the provider, and its signing keys."""

    metadata: dict[str, Any]
    jwks: dict[str, Any]
    fetched_at: datetime


@dataclass(frozen=True)
class Verified:
    """Who the provider says signed in."""

    issuer: str
    subject: str
    acr: str | None
    name: str
    email: str
    next: str
    # The values of the role claim (BOOKING_OIDC_ROLE_CLAIM) as the provider said them;
    # empty when no claim is configured or the provider said none.
    role_values: tuple[str, ...] = ()


_providers: dict[str, Provider] = {}


def _get_json(url: str) -> dict[str, Any]:
    try:
        response = requests.get(url, timeout=TIMEOUT, headers={"Accept": "application/json"})
        response.raise_for_status()
        found = response.json()
    except (requests.RequestException, ValueError) as error:
        raise ProviderUnavailable(f"{url}: {error}") from None
    if not isinstance(found, dict):
        raise ProviderUnavailable(f"{url}: not a JSON object")
    return found


def provider(settings: Settings, now: datetime, refresh: bool = False) -> Provider:
    """The provider's metadata (OpenID Connect Discovery) and keys, kept a while."""
    known = _providers.get(settings.issuer)
    if known and not refresh and known.fetched_at <= now < known.fetched_at + DISCOVERY_FOR:
        return known
    found = _get_json(settings.issuer.rstrip("/") + "/.well-known/openid-configuration")
    # Discovery: the issuer in the document must be exactly the one configured.
    if found.get("issuer") != settings.issuer:
        raise ProviderUnavailable(f"discovery names issuer {found.get('issuer')!r}")
    for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(found.get(needed), str):
            raise ProviderUnavailable(f"discovery has no {needed}")
    made = Provider(found, _get_json(found["jwks_uri"]), now)
    _providers[settings.issuer] = made
    return made


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _client(settings: Settings, redirect_uri: str) -> OAuth2Session:
    return OAuth2Session(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        token_endpoint_auth_method="client_secret_basic",
        scope=SCOPE,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        default_timeout=TIMEOUT,
    )


@dataclass(frozen=True)
class Begun:
    url: str  # the provider's authorisation URL to send the browser to
    browser_secret: str  # for the cookie binding the pending sign-in to this browser


def begin(
    conn: Connection,
    settings: Settings,
    redirect_uri: str,
    next_path: str,
    now: datetime,
    strong: bool = False,
) -> Begun:
    """A pending sign-in and the provider's URL for it (ProviderUnavailable when unknown).
    With `strong`, the provider is asked for one of the strong `acr` values (acr_values)."""
    found = provider(settings, now)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier, browser = secrets.token_urlsafe(64), secrets.token_urlsafe(32)
    conn.execute(
        delete(oidc_transactions).where(oidc_transactions.c.created_at < now - PENDING_FOR)
    )
    conn.execute(
        insert(oidc_transactions).values(
            state_hash=_hash(state),
            browser_hash=_hash(browser),
            nonce=nonce,
            code_verifier=verifier,
            next=next_path[:500],
            created_at=now,
        )
    )
    with _client(settings, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            found.metadata["authorization_endpoint"],
            state=state,
            code_verifier=verifier,
            nonce=nonce,
            **({"acr_values": " ".join(sorted(settings.strong_acr))} if strong else {}),
        )
    return Begun(str(url), browser)


def take_pending(conn: Connection, state: str, browser_secret: str | None, now: datetime) -> Any:
    """The pending sign-in of `state`, used up (a state works once), or SignInRefused."""
    if not state or len(state) > 200:
        raise SignInRefused("no state")
    t = oidc_transactions
    row = conn.execute(select(t).where(t.c.state_hash == _hash(state))).first()
    if row is None:
        raise SignInRefused("unknown state")
    gone = conn.execute(delete(t).where(t.c.state_hash == row.state_hash)).rowcount
    if not gone:
        raise SignInRefused("state already used")
    if not browser_secret or not secrets.compare_digest(row.browser_hash, _hash(browser_secret)):
        raise SignInRefused("the sign-in began in another browser")
    if row.created_at <= now - PENDING_FOR:
        raise SignInRefused("the sign-in took too long")
    return row


def finish(
    settings: Settings, pending: Any, code: str, redirect_uri: str, now: datetime
) -> Verified:
    """Trade the code for tokens and verify the ID token (SignInRefused when any check fails,
    ProviderUnavailable when the provider cannot be reached)."""
    if not code or len(code) > 2000:
        raise SignInRefused("no code")
    found = provider(settings, now)
    try:
        with _client(settings, redirect_uri) as client:
            token = client.fetch_token(
                found.metadata["token_endpoint"],
                grant_type="authorization_code",
                code=code,
                code_verifier=pending.code_verifier,
            )
    except requests.RequestException as error:
        raise ProviderUnavailable(f"token endpoint: {error}") from None
    except AuthlibBaseError as error:  # invalid_grant: a used, expired or foreign code
        raise SignInRefused(f"token endpoint: {error.error}") from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SignInRefused("no ID token")
    claims = _verified_claims(settings, found, id_token, token, pending.nonce, now)
    endpoint = found.metadata.get("userinfo_endpoint")
    asked: list[dict[str, Any]] = []

    def userinfo() -> dict[str, Any]:  # asked at most once, and only when needed
        if not asked:
            asked.append(
                _userinfo(endpoint, token, claims["sub"]) if isinstance(endpoint, str) else {}
            )
        return asked[0]

    name, email = claims.get("name"), claims.get("email")
    if not name or not email:
        name, email = name or userinfo().get("name"), email or userinfo().get("email")
    role_values: tuple[str, ...] = ()
    if settings.role_claim is not None:
        role_values = claim_values(claims, settings.role_claim) or claim_values(
            userinfo(), settings.role_claim
        )
    acr = claims.get("acr")
    return Verified(
        issuer=settings.issuer,
        subject=str(claims["sub"]),
        acr=acr if isinstance(acr, str) else None,
        name=name if isinstance(name, str) else "",
        email=email if isinstance(email, str) else "",
        next=pending.next,
        role_values=role_values,
    )


def claim_values(claims: Any, path: str) -> tuple[str, ...]:
    """The text values of a claim, by name or dotted path (`realm_access.roles`, as Keycloak
    gives realm roles): a string is one value, a list gives its strings."""
    found: Any = claims
    for part in path.split("."):
        if not hasattr(found, "get"):
            return ()
        found = found.get(part)
    if isinstance(found, str):
        return (found,)
    if isinstance(found, list):
        return tuple(v for v in found if isinstance(v, str))
    return ()


def _keys(found: Provider) -> KeySet:
    return KeySet.import_key_set(found.jwks)  # type: ignore[arg-type]  # checked by joserfc


def _verified_claims(
    settings: Settings,
    found: Provider,
    id_token: str,
    token: dict[str, Any],
    nonce: str,
    now: datetime,
) -> CodeIDToken:
    algorithms = found.metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    registry = JWSRegistry(algorithms=[a for a in algorithms if a != "none"])
    try:
        try:
            decoded = jwt.decode(id_token, _keys(found), registry=registry)
        except JoseError:  # perhaps the provider rotated its keys: fetch them once more
            fresh = provider(settings, now, refresh=True)
            decoded = jwt.decode(id_token, _keys(fresh), registry=registry)
        claims = CodeIDToken(
            decoded.claims,
            decoded.header,
            {
                "iss": {"essential": True, "value": settings.issuer},
                "aud": {"essential": True, "value": settings.client_id},
                "sub": {"essential": True},
            },
            {
                "nonce": nonce,
                "client_id": settings.client_id,
                "access_token": token.get("access_token"),
            },
        )
        # Against the app's clock: the one instant every check in the service uses.
        claims.validate(now=int(now.timestamp()), leeway=SKEW)
    except (JoseError, ValueError) as error:
        raise SignInRefused(f"ID token: {error}") from None
    return claims


def _userinfo(url: str, token: dict[str, Any], subject: str) -> dict[str, Any]:
    try:
        response = requests.get(
            url,
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {token.get('access_token', '')}"},
        )
        response.raise_for_status()
        info = response.json()
    except (requests.RequestException, ValueError):
        return {}  # the name and e-mail are a courtesy; the ID token already said who
    # OpenID Connect Core 5.3.2: a userinfo answer about someone else is not used.
    if not isinstance(info, dict) or info.get("sub") != subject:
        return {}
    return info
