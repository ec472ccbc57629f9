"""A local APNs peer: ``POST /3/device/{token}`` over HTTP/2 with token-based auth (docs/push.md).

It answers as Apple documents: the provider token must be an ES256 JWT signed by the test key named in its
``kid``, issued by the team and less than an hour old (403 MissingProviderToken / InvalidProviderToken /
ExpiredProviderToken); ``apns-topic`` must be the app's bundle id (400 TopicDisallowed) and
``apns-push-type`` given; a payload over 4096 bytes is 413 PayloadTooLarge; listed tokens answer 410
Unregistered or 400 BadDeviceToken; ``storm(n)`` answers the next n requests 429 TooManyRequests; a silent
mode never answers. A success is 200 with the ``apns-id`` header. It records what it received, the provider
tokens it saw and the HTTP version of each request (it refuses anything but HTTP/2).

The test key is made per run (:func:`signing_key`), never committed.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

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


@dataclass(frozen=True)
class TestSigningKey:
    """A throw-away APNs auth key (.p8): the adapter signs with the private half, the peer verifies."""

    key_id: str
    private_pem: bytes
    public_pem: bytes

    def write(self, path: Path) -> Path:
        path.write_bytes(self.private_pem)
        return path


def signing_key(key_id: str = "ABC123DEFG") -> TestSigningKey:
    key = ec.generate_private_key(ec.SECP256R1())
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TestSigningKey(key_id, private_pem, public_pem)


@dataclass
class ApnsBehaviour:
    team_id: str = "DEF123GHIJ"
    topic: str = "vn.gov.danang.citizen"
    unregistered: frozenset[str] = frozenset()  # → 410 Unregistered
    bad_tokens: frozenset[str] = frozenset()  # → 400 BadDeviceToken
    silent: bool = False  # never answers


@dataclass
class Received:
    token: str
    payload: dict[str, Any]
    headers: dict[str, str]


@dataclass
class ApnsPeer:
    key: TestSigningKey
    behaviour: ApnsBehaviour = field(default_factory=ApnsBehaviour)
    url: str = ""
    received: list[Received] = field(default_factory=list)
    http_versions: set[str] = field(default_factory=set)
    provider_tokens: set[str] = field(default_factory=set)  # distinct valid JWTs seen
    requests: int = 0
    server: Http2Server | None = None
    _storm: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def storm(self, requests: int) -> None:
        """Answer the next ``requests`` notifications with 429 TooManyRequests."""
        with self._lock:
            self._storm = requests

    def tokens(self) -> list[str]:
        return [r.token for r in self.received]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        self.http_versions.add(scope["http_version"])
        if scope["http_version"] != "2":  # APNs speaks HTTP/2 only
            await respond(send, 505, b"HTTP/2 only")
            return
        body = await read_body(receive)
        with self._lock:
            self.requests += 1
        if scope["method"] != "POST":
            await _reason(send, 405, "MethodNotAllowed")
            return
        if not scope["path"].startswith("/3/device/"):
            await _reason(send, 404, "BadPath")
            return
        token = unquote(scope["path"].removeprefix("/3/device/"))
        refusal = self._check_auth(scope)
        if refusal:
            await _reason(send, 403, refusal)
            return
        if header(scope, b"apns-topic") != self.behaviour.topic:
            await _reason(send, 400, "TopicDisallowed")
            return
        if header(scope, b"apns-push-type") not in ("alert", "background"):
            await _reason(send, 400, "InvalidPushType")
            return
        if self.behaviour.silent:
            assert self.server is not None
            await self.server.stopping.wait()
            return
        with self._lock:
            storming = self._storm > 0
            self._storm -= 1 if storming else 0
        if storming:
            await _reason(send, 429, "TooManyRequests")
            return
        if len(body) > 4096:
            await _reason(send, 413, "PayloadTooLarge")
            return
        try:
            payload = json.loads(body)
            assert isinstance(payload.get("aps"), dict)
        except (ValueError, AssertionError):
            await _reason(send, 400, "BadPayload")
            return
        if token in self.behaviour.unregistered:
            await _reason(send, 410, "Unregistered", timestamp=int(time.time() * 1000))
            return
        if token in self.behaviour.bad_tokens:
            await _reason(send, 400, "BadDeviceToken")
            return
        apns_id = header(scope, b"apns-id") or str(uuid.uuid4())
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            self.received.append(Received(token, payload, headers))
        await respond(send, 200, b"", [(b"apns-id", apns_id.upper().encode())])

    def _check_auth(self, scope: Scope) -> str | None:
        authorization = header(scope, b"authorization") or ""
        if not authorization.startswith("bearer "):
            return "MissingProviderToken"
        provider_token = authorization.removeprefix("bearer ")
        try:
            if jwt.get_unverified_header(provider_token).get("kid") != self.key.key_id:
                return "InvalidProviderToken"
            claims = jwt.decode(
                provider_token, self.key.public_pem, algorithms=["ES256"], options={"require": ["iss", "iat"]}
            )
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        if claims["iss"] != self.behaviour.team_id:
            return "InvalidProviderToken"
        if time.time() - claims["iat"] > 3600:
            return "ExpiredProviderToken"
        self.provider_tokens.add(provider_token)
        return None


async def _reason(send: Send, status: int, reason: str, **extra: Any) -> None:
    body = json.dumps({"reason": reason, **extra}).encode()
    await respond(
        send, status, body, [(b"content-type", b"application/json"), (b"apns-id", str(uuid.uuid4()).encode())]
    )


@contextmanager
def running_apns(
    tmp_path: Path,
    behaviour: ApnsBehaviour | None = None,
    *,
    key: TestSigningKey | None = None,
    tls: bool = False,
) -> Iterator[ApnsPeer]:
    """A peer on a free port; the adapter's key file is ``tmp_path / "AuthKey.p8"``.

    With ``tls``, over https (ALPN h2) with a throw-away CA whose certificate is ``peer.server.ca_file``."""
    peer = ApnsPeer(key or signing_key(), behaviour or ApnsBehaviour())
    with serving(peer, name="apns", tls_dir=tmp_path if tls else None) as server:
        peer.url, peer.server = server.url, server
        peer.key.write(tmp_path / "AuthKey.p8")
        yield peer


def adapter_settings(peer: ApnsPeer, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """The keywords of an ``ApnsAdapter`` against ``peer`` (as a provider section would give them)."""
    settings: dict[str, Any] = {
        "team_id": peer.behaviour.team_id,
        "key_id": peer.key.key_id,
        "private_key_file": str(tmp_path / "AuthKey.p8"),
        "topic": peer.behaviour.topic,
        "endpoint": peer.url,
        "concurrency": 50,
        "timeout": 5.0,
    }
    settings.update(overrides)
    return settings
