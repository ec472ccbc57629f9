"""The signature scheme of signed requests, pinned: the app's backend implements it from the docs, so it must
not drift (a vector computed with ``openssl dgst -sha256 -hmac``), and each check refuses on its own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from broadcaster.web.problems import Problem
from broadcaster.web.signed_requests import signature, verify

KEY = "khoa"
BODY = b'{"nonce":"x"}'
STAMP = "1748826000"  # 2 June 2025 01:00 UTC
NOW = datetime(2025, 6, 2, 1, 0, tzinfo=UTC)
# printf '%s' '1748826000.{"nonce":"x"}' | openssl dgst -sha256 -hmac khoa
VECTOR = "v1=c5fd762d9122115334316afb980ff63ac1cde545494ad94570ce8d73b9db1d84"


def check(
    *,
    key: str = KEY,
    timestamp: str | None = STAMP,
    signed: str | None = VECTOR,
    body: bytes = BODY,
    now: datetime = NOW,
) -> None:
    verify(key=key, timestamp=timestamp, signed=signed, body=body, now=now, window_seconds=300)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    assert signature(KEY, STAMP, BODY) == VECTOR


def test_a_matching_signature_passes_in_either_hex_case() -> None:
    check()
    check(signed=VECTOR.upper().replace("V1=", "v1="))


@pytest.mark.parametrize(
    ("arguments", "status", "code"),
    [
        pytest.param({"key": ""}, 403, "not-configured", id="no-key"),
        pytest.param({"timestamp": None}, 401, "unsigned", id="no-timestamp"),
        pytest.param({"signed": ""}, 401, "unsigned", id="no-signature"),
        pytest.param({"timestamp": "-1748826000"}, 401, "bad-timestamp", id="negative"),
        pytest.param({"signed": VECTOR[3:]}, 401, "bad-signature", id="no-scheme"),
        pytest.param({"signed": VECTOR[:-1]}, 401, "bad-signature", id="short"),
        pytest.param({"key": "khoa2"}, 401, "bad-signature", id="other-key"),
        pytest.param({"body": BODY + b" "}, 401, "bad-signature", id="other-body"),
        pytest.param(
            {"now": datetime(2025, 6, 2, 1, 5, 1, tzinfo=UTC)}, 401, "stale-timestamp", id="301s-late"
        ),
        pytest.param(
            {"now": datetime(2025, 6, 2, 0, 54, 59, tzinfo=UTC)}, 401, "stale-timestamp", id="301s-early"
        ),
    ],
)
def test_each_check_refuses_on_its_own(arguments: dict[str, Any], status: int, code: str) -> None:
    with pytest.raises(Problem) as refused:
        check(**arguments)
    assert (refused.value.status, refused.value.code) == (status, code)
