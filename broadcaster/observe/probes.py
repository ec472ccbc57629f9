"""Short probes of the services the engine needs: the broker (connect) and a mail relay (connect, EHLO, NOOP).

Each gives up after ``timeout`` seconds and returns what went wrong as text (None: it answered), so a health
check in a container never hangs on a peer that does not answer."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from typing import Any

from broadcaster.settings import Settings


def probe_broker(settings: Settings, *, timeout: float) -> str | None:
    """Connect to the broker and open a channel (Redis: and PING it)."""
    from kombu.connection import Connection

    try:
        with Connection(settings.broker_url, connect_timeout=timeout) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            channel = connection.default_channel
            client = getattr(channel, "client", None)
            if client is not None and hasattr(client, "ping"):  # kombu's Redis channel
                client.ping()
    except Exception as exc:  # whatever kombu or the client raise, the answer is that it is not reachable
        return f"{type(exc).__name__}: {exc}"
    return None


def probe_relay(options: Mapping[str, Any], *, timeout: float) -> str | None:
    """Connect to the relay of an SMTP provider (its ``host``, ``port``, ``tls``), say EHLO and NOOP, quit."""
    host, port = str(options.get("host", "127.0.0.1")), int(options.get("port", 25))
    try:
        client: smtplib.SMTP
        if options.get("tls") == "tls":
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            code, answer = client.ehlo()
            if code != 250:
                return f"{host}:{port} EHLO: {code} {answer.decode(errors='replace')}"
            code, answer = client.noop()
            if code != 250:
                return f"{host}:{port} NOOP: {code} {answer.decode(errors='replace')}"
    except (OSError, smtplib.SMTPException) as exc:
        return f"{host}:{port}: {type(exc).__name__}: {exc}"
    return None
