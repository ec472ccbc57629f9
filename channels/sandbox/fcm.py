"""A local FCM HTTP v1 peer: the OAuth token endpoint and ``messages:send``, over HTTP/2 (docs/push.md).

It answers as FCM documents: the token endpoint verifies the RS256 assertion against the test service
account's public key (issuer, audience, scope, lifetime) and issues ``access_token``/``expires_in``;
``messages:send`` checks the bearer token and project, the 4096-byte limit, refuses listed tokens
(``UNREGISTERED`` 404, ``INVALID_ARGUMENT`` naming ``message.token``), answers a switchable "429 storm" of
``QUOTA_EXCEEDED`` with ``Retry-After``, a ``THIRD_PARTY_AUTH_ERROR`` mode, a silent mode (never answers), and
records what it received and which HTTP version each request came in (it refuses anything but HTTP/2).

Test keys are made per run (:func:`service_account`), never committed.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from channels.sandbox.http_server import (
    Http2Server,
    Receive,
    Scope,
    Send,
    header,
    lifespan,
    read_body,
    respond,
    serving,
)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


@dataclass(frozen=True)
class TestServiceAccount:
    """A throw-away service account: its private key signs, the peer verifies with the public one."""

    client_email: str
    private_pem: str
    public_pem: bytes

    def write(self, path: Path, *, token_uri: str) -> Path:
        """The JSON file Google hands out, with the fields the adapter reads."""
        document = {
            "type": "service_account",
            "project_id": "danang-city-app",
            "private_key_id": secrets.token_hex(20),
            "private_key": self.private_pem,
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "token_uri": token_uri,
        }
        path.write_text(json.dumps(document), encoding="utf-8")
        return path


def service_account(
    client_email: str = "broadcaster@danang-city-app.iam.gserviceaccount.com",
) -> TestServiceAccount:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TestServiceAccount(client_email, private_pem, public_pem)


@dataclass
class FcmBehaviour:
    project_id: str = "danang-city-app"
    unregistered: frozenset[str] = frozenset()  # → 404 UNREGISTERED
    invalid_tokens: frozenset[str] = frozenset()  # → 400 INVALID_ARGUMENT naming message.token
    expires_in: int = 3600  # of the access tokens issued
    refuse_grant: bool = False  # → 400 invalid_grant at the token endpoint
    third_party_auth_error: bool = False  # → 401 THIRD_PARTY_AUTH_ERROR for every message
    silent: bool = False  # messages:send never answers


@dataclass
class Received:
    token: str
    payload: dict[str, Any]
    size: int


@dataclass
class FcmPeer:
    account: TestServiceAccount
    behaviour: FcmBehaviour = field(default_factory=FcmBehaviour)
    url: str = ""
    received: list[Received] = field(default_factory=list)
    http_versions: set[str] = field(default_factory=set)
    issued: list[str] = field(default_factory=list)  # access tokens, in order
    requests: int = 0  # messages:send requests, answered or not
    server: Http2Server | None = None
    _storm: int = 0
    _storm_retry_after: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1500415314455276))

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def storm(self, requests: int, *, retry_after: int = 7) -> None:
        """Answer the next ``requests`` sends with 429 QUOTA_EXCEEDED and ``Retry-After: retry_after``."""
        with self._lock:
            self._storm, self._storm_retry_after = requests, retry_after

    def tokens(self) -> list[str]:
        return [r.token for r in self.received]

    # -- ASGI ------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        self.http_versions.add(scope["http_version"])
        if scope["http_version"] != "2":  # the adapter must speak HTTP/2 (docs/push.md)
            await respond(send, 505, b"HTTP/2 only")
            return
        body = await read_body(receive)
        path = scope["path"]
        if scope["method"] == "POST" and path == "/token":
            await self._token(body, send)
        elif (
            scope["method"] == "POST" and path.startswith("/v1/projects/") and path.endswith("/messages:send")
        ):
            await self._send(
                scope, path.removeprefix("/v1/projects/").removesuffix("/messages:send"), body, send
            )
        else:
            await _error(send, 404, "NOT_FOUND", f"no route {path}")

    async def _token(self, body: bytes, send: Send) -> None:
        form = {key: values[0] for key, values in parse_qs(body.decode("ascii")).items()}
        if form.get("grant_type") != GRANT_TYPE:
            await _oauth_error(send, "unsupported_grant_type", f"grant_type {form.get('grant_type')!r}")
            return
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.account.public_pem,
                algorithms=["RS256"],
                audience=self.token_uri,
                issuer=self.account.client_email,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError as exc:
            await _oauth_error(send, "invalid_grant", f"Invalid JWT: {exc}")
            return
        if claims.get("scope") != SCOPE or claims["exp"] - claims["iat"] > 3600:
            await _oauth_error(send, "invalid_scope", "scope or lifetime refused")
            return
        if self.behaviour.refuse_grant:
            await _oauth_error(send, "invalid_grant", "Invalid JWT Signature.")
            return
        token = f"ya29.test-{secrets.token_urlsafe(24)}"
        self.issued.append(token)
        answer = {"access_token": token, "expires_in": self.behaviour.expires_in, "token_type": "Bearer"}
        await respond(send, 200, json.dumps(answer).encode(), [(b"content-type", b"application/json")])

    async def _send(self, scope: Scope, project: str, body: bytes, send: Send) -> None:
        with self._lock:
            self.requests += 1
        authorization = header(scope, b"authorization") or ""
        if authorization.removeprefix("Bearer ") not in self.issued:
            await _error(send, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
            return
        if project != self.behaviour.project_id:
            await _error(send, 403, "PERMISSION_DENIED", f"Permission denied on project {project}")
            return
        if self.behaviour.silent:
            assert self.server is not None
            await self.server.stopping.wait()
            return
        if self.behaviour.third_party_auth_error:
            await _error(
                send,
                401,
                "UNAUTHENTICATED",
                "Auth error from APNS or Web Push Service",
                "THIRD_PARTY_AUTH_ERROR",
            )
            return
        with self._lock:
            storming = self._storm > 0
            self._storm -= 1 if storming else 0
        if storming:
            headers = [(b"retry-after", str(self._storm_retry_after).encode())]
            await _error(send, 429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED", headers)
            return
        if len(body) > 4096:
            await _error(send, 400, "INVALID_ARGUMENT", "Message is too big", "INVALID_ARGUMENT")
            return
        try:
            message = json.loads(body)["message"]
            token = message["token"]
        except (ValueError, KeyError, TypeError):
            await _error(send, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.", "INVALID_ARGUMENT")
            return
        data = message.get("data", {})
        if not all(isinstance(value, str) for value in data.values()):
            await _error(send, 400, "INVALID_ARGUMENT", "data values must be strings", "INVALID_ARGUMENT")
            return
        if token in self.behaviour.unregistered:
            await _error(send, 404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
            return
        if token in self.behaviour.invalid_tokens:
            violation = {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}],
            }
            await _error(
                send,
                400,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                "INVALID_ARGUMENT",
                extra=[violation],
            )
            return
        with self._lock:
            self.received.append(Received(token, message, len(body)))
            name = f"projects/{project}/messages/0:{next(self._ids)}%31BD1C9631BD1C96"
        await respond(
            send, 200, json.dumps({"name": name}).encode(), [(b"content-type", b"application/json")]
        )


async def _error(
    send: Send,
    status: int,
    rpc_status: str,
    message: str,
    error_code: str | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    extra: list[dict[str, Any]] | None = None,
) -> None:
    details: list[dict[str, Any]] = [{"@type": FCM_ERROR, "errorCode": error_code}] if error_code else []
    details += extra or []
    body = {"error": {"code": status, "message": message, "status": rpc_status, "details": details}}
    await respond(
        send, status, json.dumps(body).encode(), [(b"content-type", b"application/json"), *(headers or [])]
    )


async def _oauth_error(send: Send, error: str, description: str) -> None:
    body = json.dumps({"error": error, "error_description": description}).encode()
    await respond(send, 400, body, [(b"content-type", b"application/json")])


@contextmanager
def running_fcm(
    tmp_path: Path,
    behaviour: FcmBehaviour | None = None,
    *,
    account: TestServiceAccount | None = None,
    tls: bool = False,
) -> Iterator[FcmPeer]:
    """A peer on a free port; its service-account file is ``tmp_path / "service-account.json"``.

    With ``tls``, over https (ALPN h2) with a throw-away CA whose certificate is ``peer.server.ca_file``."""
    peer = FcmPeer(account or service_account(), behaviour or FcmBehaviour())
    with serving(peer, name="fcm", tls_dir=tmp_path if tls else None) as server:
        peer.url, peer.server = server.url, server
        peer.account.write(tmp_path / "service-account.json", token_uri=peer.token_uri)
        yield peer


def adapter_settings(peer: FcmPeer, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """The keywords of an ``FcmAdapter`` against ``peer`` (as a provider section would give them)."""
    settings: dict[str, Any] = {
        "project_id": peer.behaviour.project_id,
        "service_account_file": str(tmp_path / "service-account.json"),
        "endpoint": peer.url,
        "concurrency": 50,
        "timeout": 5.0,
    }
    settings.update(overrides)
    return settings
