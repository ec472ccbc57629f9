"""OAuth 2.0 for FCM: a Google service account's signed JWT assertion exchanged for an access token, which is
cached and refreshed before it expires (RFC 7523 §2.1, the JWT bearer grant; docs/push.md "FCM").

The assertion is RS256-signed with PyJWT over the account's ``private_key`` and says who asks (``iss``, the
account's ``client_email``), for what (``scope``: FCM messaging), to whom (``aud``: the token endpoint) and
for how long (``exp`` = ``iat`` + 1 h). Expiry is read on the adapter's clock (``channels/clock.py``), so a
test moves time instead of waiting an hour.

Thread safety: every request of an adapter runs on its one private loop (``channels.push.http2``), and the
refresh is serialised by an ``asyncio.Lock`` of that loop, so concurrent windows share one fetch. A message
whose token the server refused (401) asks for a new one *unless* another request already replaced it.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt

from channels.clock import Clock
from channels.errors import ChannelError, ConfigurationError, ConnectionLost, Throttled, TransientError
from channels.push.http2 import retry_after, transport_error

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = 3600  # seconds; Google refuses assertions valid for longer than an hour
# Refresh this long before the token's expiry (or at half its life, when it is shorter), so a request never
# carries a token that expires on the way.
REFRESH_MARGIN = 300.0
# Answers of the token endpoint that a person must fix (RFC 6749 §5.2): a wrong key, account or scope.
_REFUSALS = {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope", "access_denied"}


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """What the adapter needs of a Google service-account JSON file."""

    client_email: str
    private_key: str
    token_uri: str

    @classmethod
    def load(cls, path: str | Path, *, token_uri: str | None = None) -> ServiceAccount:
        """Read the file; ConfigurationError naming ``service_account_file`` and the missing key otherwise."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"service_account_file {path}: cannot read it as JSON", detail=str(exc)
            ) from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"service_account_file {path}: not a JSON object")
        values: dict[str, str] = {}
        for key in ("client_email", "private_key", "token_uri"):
            value = token_uri if key == "token_uri" and token_uri else data.get(key)
            if not isinstance(value, str) or not value:
                raise ConfigurationError(f"service_account_file {path}: {key!r} is missing or empty")
            values[key] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    refresh_at: float  # on the adapter's clock


class OAuthTokenSource:
    """The cached access token of one service account, fetched through the adapter's HTTP/2 client."""

    def __init__(self, account: ServiceAccount, *, clock: Clock) -> None:
        self._account = account
        self._clock = clock
        self._token: AccessToken | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self.fetches = 0  # how many tokens were fetched (for logs and tests)

    def assertion(self) -> str:
        """The signed JWT the token endpoint exchanges for an access token."""
        issued = int(time.time())  # JWT times are wall-clock (RFC 7519 §4.1.6)
        claims = {
            "iss": self._account.client_email,
            "scope": SCOPE,
            "aud": self._account.token_uri,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME,
        }
        try:
            return jwt.encode(claims, self._account.private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            raise ConfigurationError(
                "service_account_file: private_key is not an RSA private key in PEM", detail=str(exc)
            ) from exc

    async def token(self, client: httpx.AsyncClient, *, refused: str | None = None) -> str:
        """A token that is not near its expiry; ``refused`` names one the server just turned down."""
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:  # a reopened adapter runs a new loop
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            current = self._token
            if (
                current is not None
                and current.value != refused
                and self._clock.monotonic() < current.refresh_at
            ):
                return current.value
            self._token = await self._fetch(client)
            return self._token.value

    async def _fetch(self, client: httpx.AsyncClient) -> AccessToken:
        form = {"grant_type": GRANT_TYPE, "assertion": self.assertion()}
        asked = self._clock.monotonic()
        try:
            response = await client.post(self._account.token_uri, data=form)
        except httpx.HTTPError as exc:
            # Whatever happened to the token request, no message was written: safe to resend.
            failed = transport_error(exc, peer="OAuth token endpoint")
            raise ConnectionLost(str(failed), code=failed.code) from exc
        self.fetches += 1
        body = _json(response)
        if response.status_code == 200:
            value, lifetime = body.get("access_token"), body.get("expires_in", ASSERTION_LIFETIME)
            if not isinstance(value, str) or not value or not isinstance(lifetime, int | float):
                raise TransientError("the OAuth token endpoint answered without access_token/expires_in")
            margin = min(REFRESH_MARGIN, lifetime / 2)
            return AccessToken(value=value, refresh_at=asked + lifetime - margin)
        raise _refusal(response, body)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _refusal(response: httpx.Response, body: dict[str, Any]) -> ChannelError:
    code = str(body.get("error") or response.status_code)
    detail = str(body.get("error_description") or response.text[:200])
    if code in _REFUSALS or response.status_code in (400, 401, 403):
        return ConfigurationError(
            "the OAuth token endpoint refused the service account's grant", code=code, detail=detail
        )
    if response.status_code == 429:
        return Throttled(
            "the OAuth token endpoint asks to slow down",
            code=code,
            detail=detail,
            retry_after=retry_after(response.headers),
        )
    return TransientError(
        "the OAuth token endpoint failed", code=code, detail=detail, retry_after=retry_after(response.headers)
    )
