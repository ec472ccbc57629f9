"""The city app's signed consent endpoint: a request signed by the app's backend withdraws consent and stops the
address's queued messages; anything unsigned, forged, stale, replayed or trying to grant gets a 4xx problem
detail and changes nothing (the whole database compared before and after)."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from broadcaster.db.models import AuditEntry
from broadcaster.vocabulary import MessageStatus
from broadcaster.web.app import create_app
from broadcaster.web.app_consent_routes import WITHDRAW_PATH
from broadcaster.web.signed_requests import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from consent import ledger
from consent.models import AppRequestNonce, ConsentEvent
from tests.broadcaster.conftest import database_dump
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.processes import Started, start_cli
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens
from tests.conftest import free_port
from tests.peers.polling import wait_until

KEY = "khoa-chung-ung-dung-thanh-pho-thu-nghiem"
WINDOW = 300
PHONE = "0912 000 001"  # citizens(2)[0], as the app may spell it
E164 = "+84912000001"
OTHER_E164 = "+84912000002"
EMAIL = "cong.dan1@example.vn"
ARCHITECTURE = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"
SMS_ONLY = {"sms": {"template": "sms/thu-nghiem", "provider": "sms_main", "unaccented": True}}


@pytest.fixture
def app_pipeline(pipeline: Pipeline) -> Pipeline:
    pipeline.context.settings.security.city_app_key = KEY
    pipeline.add_contacts(citizens(2))
    return pipeline


@pytest.fixture
def client(app_pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(app_pipeline.context)) as client:
        yield client


def body(nonce: str = "nonce-0000000000000001", **fields: Any) -> dict[str, Any]:
    return {"nonce": nonce, "channel": "sms", "address": PHONE, **fields}


def signed(
    pipeline: Pipeline | None, payload: dict[str, Any] | bytes, *, key: str = KEY, skew: int = 0
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers the app's backend sends, signed ``skew`` seconds off the pipeline's clock
    (None: the real time, for a real server)."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
    now = pipeline.clock.now() if pipeline is not None else datetime.now(UTC)
    timestamp = str(int(now.timestamp()) + skew)
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(key, timestamp, raw),
    }
    return raw, headers


def post(client: TestClient, raw: bytes, headers: dict[str, str]) -> Response:
    response: Response = client.post(WITHDRAW_PATH, content=raw, headers=headers)
    return response


def queued_sms(pipeline: Pipeline, **campaign: Any) -> int:
    """Plan an SMS campaign to both citizens without dispatching it; the run id."""
    campaign_id = pipeline.approved_campaign(channels=SMS_ONLY, **campaign)
    run_id = pipeline.start_run(campaign_id)
    pipeline.plan(run_id)
    assert {m.status for m in pipeline.messages(run_id)} == {MessageStatus.QUEUED}
    return run_id


def status_of(pipeline: Pipeline, run_id: int, address: str) -> MessageStatus:
    (message,) = [m for m in pipeline.messages(run_id) if m.address == address]
    return message.status


def counts(pipeline: Pipeline) -> tuple[int, int, int]:
    """Rows of consent_events, consent audit entries and app_request_nonces."""
    with pipeline.context.readers() as session:
        events = session.scalar(select(func.count()).select_from(ConsentEvent))
        audited = session.scalar(select(func.count()).where(AuditEntry.action == "consent.withdraw"))
        nonces = session.scalar(select(func.count()).select_from(AppRequestNonce))
    return int(events or 0), int(audited or 0), int(nonces or 0)


def assert_problem(response: Response, status: int, code: str, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"urn:broadcaster:problem:{code}"
    assert problem["status"] == status
    assert problem["detail"].strip()
    assert problem.get("field") == field


def test_a_signed_request_withdraws_and_stops_the_queued_message(
    app_pipeline: Pipeline, client: TestClient
) -> None:
    run_id = queued_sms(app_pipeline)

    response = post(client, *signed(app_pipeline, body(evidence="app-settings-4711")))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "withdrawn",
        "purposes": {"public_information": "withdrawn", "advertising": "withdrawn"},
        "stopped_messages": 1,
    }
    with app_pipeline.context.readers() as session:
        assert ledger.current(session, "sms", E164, "public_information") is False
        assert ledger.current(session, "sms", E164, "advertising") is False
        assert ledger.current(session, "sms", E164, "official_duty") is None
        events = ledger.history(session, "sms", E164)
    assert {(e.source, e.recorded_by) for e in events} == {("city_app", "city app")}
    assert {e.evidence for e in events} == {"app-settings-4711 (nonce nonce-0000000000000001)"}
    assert counts(app_pipeline) == (2, 2, 1)
    assert status_of(app_pipeline, run_id, E164) is MessageStatus.SUPPRESSED
    assert status_of(app_pipeline, run_id, OTHER_E164) is MessageStatus.QUEUED

    app_pipeline.drain()
    destinations = {submit.destination.lstrip("+") for submit in app_pipeline.smsc.submits}
    assert destinations == {OTHER_E164.lstrip("+")}  # the other citizen's message went; ours did not


def test_withdrawing_again_answers_200_and_writes_no_second_event(
    app_pipeline: Pipeline, client: TestClient
) -> None:
    assert post(client, *signed(app_pipeline, body(purposes=["advertising"]))).status_code == 200

    again = post(client, *signed(app_pipeline, body("nonce-0000000000000002")))

    assert again.status_code == 200
    assert again.json()["purposes"] == {"public_information": "withdrawn", "advertising": "already_withdrawn"}
    assert counts(app_pipeline) == (2, 2, 2)


def test_only_the_named_purposes_are_withdrawn_and_stopped(
    app_pipeline: Pipeline, client: TestClient
) -> None:
    run_id = queued_sms(app_pipeline)  # a public_information campaign

    response = post(client, *signed(app_pipeline, body(purposes=["advertising", "advertising"])))

    assert response.json()["purposes"] == {"advertising": "withdrawn"}
    assert response.json()["stopped_messages"] == 0
    assert status_of(app_pipeline, run_id, E164) is MessageStatus.QUEUED
    with app_pipeline.context.readers() as session:
        assert ledger.current(session, "sms", E164, "public_information") is None


def test_an_email_address_is_normalised_like_a_contacts_address(
    app_pipeline: Pipeline, client: TestClient
) -> None:
    payload = body(channel="email", address=" Cong.Dan1@EXAMPLE.vn ")

    assert post(client, *signed(app_pipeline, payload)).status_code == 200

    with app_pipeline.context.readers() as session:
        assert ledger.current(session, "email", EMAIL, "public_information") is False


@pytest.mark.parametrize("skew", [-WINDOW, WINDOW])
def test_the_edges_of_the_replay_window_are_accepted(
    app_pipeline: Pipeline, client: TestClient, skew: int
) -> None:
    assert post(client, *signed(app_pipeline, body(), skew=skew)).status_code == 200


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in headers.items() if key != name}


REFUSALS = [
    # (id, how the request is made from the signed body and headers, status, problem code, field)
    ("unsigned", lambda raw, h: (raw, {"Content-Type": "application/json"}), 401, "unsigned", None),
    ("no-timestamp", lambda raw, h: (raw, _without(h, TIMESTAMP_HEADER)), 401, "unsigned", None),
    ("no-signature", lambda raw, h: (raw, _without(h, SIGNATURE_HEADER)), 401, "unsigned", None),
    (
        "wrong-signature",
        lambda raw, h: (raw, {**h, SIGNATURE_HEADER: "v1=" + "0" * 64}),
        401,
        "bad-signature",
        None,
    ),
    (
        "body-changed-after-signing",
        lambda raw, h: (raw.replace(b"0912 000 001", b"0912 000 002"), h),
        401,
        "bad-signature",
        None,
    ),
    (
        "timestamp-changed-after-signing",
        lambda raw, h: (raw, {**h, TIMESTAMP_HEADER: str(int(h[TIMESTAMP_HEADER]) - 1)}),
        401,
        "bad-signature",
        None,
    ),
    (
        "other-scheme",
        lambda raw, h: (raw, {**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER].replace("v1=", "v0=")}),
        401,
        "bad-signature",
        None,
    ),
    (
        "bad-timestamp",
        lambda raw, h: (raw, {**h, TIMESTAMP_HEADER: "1748826000.5"}),
        401,
        "bad-timestamp",
        None,
    ),
]


@pytest.mark.parametrize(
    ("make", "status", "code", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSALS],
)
def test_a_request_not_signed_as_agreed_is_refused_and_changes_nothing(
    app_pipeline: Pipeline, client: TestClient, make: Any, status: int, code: str, field: str | None
) -> None:
    queued_sms(app_pipeline)
    before = database_dump(app_pipeline.context.engine)

    response = post(client, *make(*signed(app_pipeline, body())))

    assert_problem(response, status, code, field)
    assert database_dump(app_pipeline.context.engine) == before


@pytest.mark.parametrize(
    ("payload", "signing", "status", "code", "field"),
    [
        pytest.param(body(), {"key": "khoa-khac"}, 401, "bad-signature", None, id="wrong-key"),
        pytest.param(body(), {"skew": -WINDOW - 1}, 401, "stale-timestamp", None, id="stale"),
        pytest.param(body(), {"skew": WINDOW + 1}, 401, "stale-timestamp", None, id="future"),
        pytest.param(body(action="grant"), {}, 422, "grant-refused", "action", id="grant-action"),
        pytest.param(body(grant=True), {}, 422, "unknown-field", "grant", id="unknown-field"),
        pytest.param(
            body(notice_version="v1"), {}, 422, "unknown-field", "notice_version", id="notice-field"
        ),
        pytest.param(body(address="0912 00"), {}, 422, "bad-address", "address", id="bad-phone"),
        pytest.param(body(channel="email", address="an@"), {}, 422, "bad-address", "address", id="bad-email"),
        pytest.param(body(channel="zalo"), {}, 422, "bad-channel", "channel", id="bad-channel"),
        pytest.param(body(nonce="ngắn"), {}, 422, "bad-nonce", "nonce", id="bad-nonce"),
        pytest.param(
            {"nonce": "nonce-0000000000000001", "channel": "sms"},
            {},
            422,
            "missing-field",
            "address",
            id="no-address",
        ),
        pytest.param(body(purposes=["khuyen_mai"]), {}, 422, "bad-purpose", "purposes", id="unknown-purpose"),
        pytest.param(
            body(purposes=["official_duty"]), {}, 422, "bad-purpose", "purposes", id="purpose-without-opt-out"
        ),
        pytest.param(body(purposes=[]), {}, 422, "bad-field", "purposes", id="no-purpose"),
        pytest.param(b'{"nonce": ', {}, 400, "bad-json", None, id="not-json"),
        pytest.param(b"[1, 2]", {}, 422, "bad-body", None, id="not-an-object"),
        pytest.param(b"x" * (16 * 1024 + 1), {}, 413, "too-large", None, id="too-large"),
    ],
)
def test_bad_input_is_refused_with_a_problem_and_changes_nothing(
    app_pipeline: Pipeline,
    client: TestClient,
    payload: dict[str, Any] | bytes,
    signing: dict[str, Any],
    status: int,
    code: str,
    field: str | None,
) -> None:
    queued_sms(app_pipeline)
    before = database_dump(app_pipeline.context.engine)

    response = post(client, *signed(app_pipeline, payload, **signing))

    assert_problem(response, status, code, field)
    assert database_dump(app_pipeline.context.engine) == before


def test_the_details_are_vietnamese_and_name_the_field(app_pipeline: Pipeline, client: TestClient) -> None:
    grant = post(client, *signed(app_pipeline, body(action="grant"))).json()
    phone = post(client, *signed(app_pipeline, body(address="0912 00"))).json()
    stale = post(client, *signed(app_pipeline, body(), skew=-WINDOW - 60)).json()

    assert "không thể cấp" in grant["detail"]
    assert "“address” không phải số điện thoại hợp lệ" in phone["detail"]
    assert "lệch 360 giây" in stale["detail"]


def test_with_no_key_configured_every_request_is_refused(app_pipeline: Pipeline) -> None:
    app_pipeline.context.settings.security.city_app_key = ""
    before = database_dump(app_pipeline.context.engine)
    with TestClient(create_app(app_pipeline.context)) as client:
        for key in ("", KEY):  # signed with an empty key, or with the one the app still has
            response = post(client, *signed(app_pipeline, body(), key=key))
            assert_problem(response, 403, "not-configured")
            assert "city_app_key" in response.json()["detail"]
    assert database_dump(app_pipeline.context.engine) == before


def test_a_replayed_request_gets_409_and_changes_nothing(
    app_pipeline: Pipeline, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    queued_sms(app_pipeline)
    raw, headers = signed(app_pipeline, body(purposes=["public_information"]))
    assert post(client, raw, headers).status_code == 200
    before = database_dump(app_pipeline.context.engine)

    app_pipeline.advance(seconds=WINDOW)  # still inside the window: only the nonce catches it
    replay = post(client, raw, headers)
    resigned = post(client, *signed(app_pipeline, body(purposes=["advertising"])))  # same nonce, new body

    assert_problem(replay, 409, "replayed", "nonce")
    assert_problem(resigned, 409, "replayed", "nonce")
    assert database_dump(app_pipeline.context.engine) == before
    refusals = [r.getMessage() for r in caplog.records if r.name == "broadcaster.web.app_consent_routes"]
    assert refusals == ["city-app request refused: replayed (HTTP 409)"] * 2
    assert not any(E164 in line or PHONE in line for line in refusals)


def test_a_captured_request_is_refused_after_the_window(app_pipeline: Pipeline, client: TestClient) -> None:
    raw, headers = signed(app_pipeline, body())
    assert post(client, raw, headers).status_code == 200

    app_pipeline.advance(seconds=WINDOW + 1)

    assert_problem(post(client, raw, headers), 401, "stale-timestamp")


def test_nonces_are_kept_two_windows_then_pruned(app_pipeline: Pipeline, client: TestClient) -> None:
    assert post(client, *signed(app_pipeline, body("nonce-first-000000001"))).status_code == 200
    app_pipeline.advance(seconds=2 * WINDOW)
    assert post(client, *signed(app_pipeline, body("nonce-second-00000001"))).status_code == 200
    assert counts(app_pipeline)[2] == 2  # the first may still be replayed with a timestamp signed ahead

    app_pipeline.advance(seconds=1)
    assert post(client, *signed(app_pipeline, body("nonce-third-000000001"))).status_code == 200

    with app_pipeline.context.readers() as session:
        kept = set(session.scalars(select(AppRequestNonce.nonce)))
    assert kept == {"nonce-second-00000001", "nonce-third-000000001"}


def _concurrent_copies(pipeline: Pipeline, copies: int) -> list[int]:
    """The same signed request sent ``copies`` times at once; the statuses."""
    raw, headers = signed(pipeline, body())
    start = threading.Barrier(copies)
    statuses: list[int] = []
    with TestClient(create_app(pipeline.context)) as client:

        def send() -> None:
            start.wait()
            statuses.append(post(client, raw, headers).status_code)

        threads = [threading.Thread(target=send) for _ in range(copies)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return statuses


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def test_concurrent_copies_of_one_request_pass_once(
    make_pipeline: PipelineFactory, request: pytest.FixtureRequest, database: str
) -> None:
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    pipeline = make_pipeline(database_url=url)
    pipeline.context.settings.security.city_app_key = KEY

    statuses = _concurrent_copies(pipeline, 8)

    assert sorted(statuses) == [200] + [409] * 7
    assert counts(pipeline) == (2, 2, 1)


def documented_example() -> Callable[..., tuple[bytes, dict[str, str]]]:
    """The Python block of the city-app section of docs/architecture.md, as an app developer copies it."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("### City-app consent endpoint", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"^```python\n(.*?)^```", section, re.MULTILINE | re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(block, namespace)  # noqa: S102  the project's own documentation
    return cast(Callable[..., tuple[bytes, dict[str, str]]], namespace["signed_withdrawal"])


def test_the_documented_example_signs_a_request_the_server_accepts(
    app_pipeline: Pipeline, client: TestClient
) -> None:
    signed_withdrawal = documented_example()
    app_pipeline.clock.set(datetime.now(UTC))  # the example signs with the real time, as the app does

    raw, headers = signed_withdrawal(KEY, "sms", PHONE)

    assert post(client, raw, headers).status_code == 200
    with app_pipeline.context.readers() as session:
        assert ledger.current(session, "sms", E164, "advertising") is False


def _post_over_http(url: str, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """The status and content type ``broadcaster serve`` answered with."""
    request = urllib.request.Request(url, data=raw, method="POST", headers=headers)  # noqa: S310  127.0.0.1
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), str(response.headers["Content-Type"])
    except urllib.error.HTTPError as error:
        return int(error.code), str(error.headers["Content-Type"])


def test_broadcaster_serve_takes_a_signed_withdrawal_once(app_pipeline: Pipeline, processes: Started) -> None:
    config = app_pipeline.config.read_text(encoding="utf-8")
    assert "[security]\n" in config
    config = config.replace("[security]\n", f'[security]\ncity_app_key = "{KEY}"\n', 1)
    port = free_port()
    app_pipeline.config.write_text(config + f'\n[web]\nhost = "127.0.0.1"\nport = {port}\n', encoding="utf-8")
    server = start_cli(app_pipeline, processes, "serve", login=EDITOR, log="serve.log")
    url = f"http://127.0.0.1:{port}{WITHDRAW_PATH}"
    raw, headers = signed(None, body())  # `serve` runs on the real clock
    unsigned = {"Content-Type": "application/json"}
    wait_until(  # the whole web application imports in a few seconds, many more on a loaded machine
        lambda: server.poll() is not None or _answers(url),
        timeout=90,
        what="broadcaster serve answering",
    )
    assert server.poll() is None, (app_pipeline.directory / "serve.log").read_text(encoding="utf-8")

    assert _post_over_http(url, raw, unsigned) == (401, "application/problem+json")
    assert counts(app_pipeline) == (0, 0, 0)
    assert _post_over_http(url, raw, headers) == (200, "application/json")
    assert _post_over_http(url, raw, headers) == (409, "application/problem+json")
    assert counts(app_pipeline) == (2, 2, 1)
    with app_pipeline.context.readers() as session:
        assert ledger.current(session, "sms", E164, "public_information") is False


def _answers(url: str) -> bool:
    try:
        return _post_over_http(url, b"", {})[0] > 0
    except OSError:
        return False
