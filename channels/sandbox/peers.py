"""The HTTP peers ``broadcaster sandbox`` starts for the configured push and social providers.

A provider gets a peer when its type has one here and its endpoint setting is a plain ``http://`` URL on
this machine (``127.0.0.1`` or ``localhost``): the peer listens on that URL's port. A provider pointing at
the real service gets none. The engine asks by type name (``peer_for``) and never learns which protocol a
type speaks; the peers are the ones the adapters are tested against (docs/peers.md).

Credentials a peer must agree with are taken from the provider's settings: the Page tokens and the ZNS
access token as configured; the FCM service-account file and the APNs key file as found, or made here (a
throw-away key) when the file does not exist yet, as a rehearsal working directory has none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

LOCAL_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class RunningPeer:
    """A started peer: where it listens, and how many messages it has taken so far."""

    url: str
    received: Callable[[], int]


Starter = Callable[[Mapping[str, Any]], AbstractContextManager[RunningPeer]]


def local_port(url: object) -> int | None:
    """The port of a plain-HTTP URL on this machine (a sandbox endpoint), else None."""
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOCAL_HOSTS or parts.port is None:
        return None
    return parts.port


@contextmanager
def _fcm(options: Mapping[str, Any]) -> Iterator[RunningPeer]:
    from channels.sandbox.fcm import FcmPeer, TestServiceAccount, service_account
    from channels.sandbox.http_server import serving

    path = Path(str(options["service_account_file"]))
    if path.exists():
        document = json.loads(path.read_text(encoding="utf-8"))
        key = serialization.load_pem_private_key(document["private_key"].encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        account = TestServiceAccount(document["client_email"], document["private_key"], public)
    else:
        account = service_account()
    peer = FcmPeer(account)
    with serving(peer, name="fcm", port=local_port(options.get("endpoint")) or 0) as server:
        peer.url, peer.server = server.url, server
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            account.write(path, token_uri=peer.token_uri)
        yield RunningPeer(server.url, lambda: len(peer.received))


@contextmanager
def _apns(options: Mapping[str, Any]) -> Iterator[RunningPeer]:
    from channels.sandbox.apns import ApnsBehaviour, ApnsPeer, TestSigningKey, signing_key
    from channels.sandbox.http_server import serving

    path = Path(str(options["private_key_file"]))
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signing = TestSigningKey(str(options["key_id"]), path.read_bytes(), public)
    else:
        signing = signing_key(str(options["key_id"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        signing.write(path)
    behaviour = ApnsBehaviour(team_id=str(options["team_id"]), topic=str(options["topic"]))
    peer = ApnsPeer(signing, behaviour)
    with serving(peer, name="apns", port=local_port(options.get("endpoint")) or 0) as server:
        peer.url, peer.server = server.url, server
        yield RunningPeer(server.url, lambda: len(peer.received))


@contextmanager
def _graph(options: Mapping[str, Any]) -> Iterator[RunningPeer]:
    from channels.sandbox.graph import GraphBehaviour, GraphPeer
    from channels.sandbox.http_server import serving

    pages = {str(page): str(token) for page, token in dict(options.get("page_tokens") or {}).items()}
    peer = GraphPeer(GraphBehaviour(pages=pages))
    port = local_port(options.get("graph_url")) or 0
    with serving(peer.app, name="graph", port=port, on_stop=peer.release) as server:
        yield RunningPeer(server.url, lambda: len(peer.posts))


@contextmanager
def _zalo(options: Mapping[str, Any]) -> Iterator[RunningPeer]:
    from channels.sandbox.http_server import serving
    from channels.sandbox.zalo import ZaloBehaviour, ZaloPeer

    approved = {str(t): frozenset({str(options.get("body_param") or "content")}) for t in _templates(options)}
    behaviour = ZaloBehaviour(access_token=str(options["access_token"]), templates=approved)
    peer = ZaloPeer(behaviour)
    port = local_port(options.get("endpoint")) or 0
    with serving(peer.app, name="zalo", port=port, on_stop=peer.release) as server:
        yield RunningPeer(server.url, lambda: len(peer.sent))


def _templates(options: Mapping[str, Any]) -> list[str]:
    listed = options.get("approved_templates") or []
    single = options.get("template_id")
    return [*(str(t) for t in listed), *([str(single)] if single else [])]


# Provider type → its peer, and the setting that holds the URL the adapter sends to.
PEERS: Mapping[str, tuple[Starter, str]] = {
    "fcm": (_fcm, "endpoint"),
    "apns": (_apns, "endpoint"),
    "facebook": (_graph, "graph_url"),
    "zalo": (_zalo, "endpoint"),
}


def peer_for(type_name: str, options: Mapping[str, Any]) -> Starter | None:
    """How to start the sandbox peer of a provider of ``type_name`` with ``options``, or None when its type
    has no peer or its endpoint is not a local ``http://`` URL (it sends to the real service)."""
    found = PEERS.get(type_name)
    if found is None:
        return None
    starter, setting = found
    return starter if local_port(options.get(setting)) is not None else None
