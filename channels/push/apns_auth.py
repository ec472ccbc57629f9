"""APNs token-based authentication: the ES256 provider token (a JWT) every request carries, reused and renewed
on the adapter's clock (docs/push.md "APNs").

The token says which team signs (``iss``, the team id) and when (``iat``); its header names the key (``kid``).
APNs refuses a token older than an hour (ExpiredProviderToken) and one renewed more often than every twenty
minutes (TooManyProviderTokenUpdates), so it is renewed after ``RENEW_AFTER`` (50 minutes), between the two.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from channels.clock import Clock
from channels.errors import ConfigurationError

RENEW_AFTER = 50 * 60.0  # seconds on the adapter's clock
MIN_RENEWAL_INTERVAL = 20 * 60.0  # APNs' floor between two renewals


def load_signing_key(path: str | Path) -> ec.EllipticCurvePrivateKey:
    """The team's .p8 key (PKCS#8 PEM, EC P-256); ConfigurationError naming ``private_key_file`` otherwise."""
    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"private_key_file {path}: cannot read a PEM private key", detail=str(exc)
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigurationError(f"private_key_file {path}: not an EC P-256 key (APNs signs with ES256)")
    return key


class ProviderToken:
    """The current provider token, shared by every request of the adapter (any thread)."""

    def __init__(self, *, team_id: str, key_id: str, key: ec.EllipticCurvePrivateKey, clock: Clock) -> None:
        self._team_id = team_id
        self._key_id = key_id
        self._key = key
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._made_at = 0.0
        self.renewals = 0  # tokens made so far (for logs and tests)

    def current(self) -> str:
        with self._lock:
            if self._token is None or self._clock.monotonic() - self._made_at >= RENEW_AFTER:
                self._token = jwt.encode(
                    {"iss": self._team_id, "iat": int(time.time())},  # JWT times are wall-clock
                    self._key,
                    algorithm="ES256",
                    headers={"kid": self._key_id},
                )
                self._made_at = self._clock.monotonic()
                self.renewals += 1
            return self._token
