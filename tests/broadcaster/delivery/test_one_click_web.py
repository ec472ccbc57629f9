"""The web application's one-click unsubscribe (RFC 8058): a POST records the withdrawal once, a GET only shows
a confirmation page, and a link that is not ours gets a 4xx and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from broadcaster.db.models import AuditEntry
from broadcaster.web.app import create_app
from broadcaster.web.unsubscribe_routes import link_paths
from consent import ledger
from consent.models import ConsentEvent
from tests.broadcaster.delivery.pipeline import Pipeline
from tests.broadcaster.delivery.test_email_opt_out import email_campaign, one_click_link
from tests.broadcaster.delivery.workdir_files import citizens

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def sent(pipeline: Pipeline) -> Pipeline:
    pipeline.add_contacts(citizens(1))
    pipeline.send(email_campaign(pipeline, purpose="public_information"))
    assert pipeline.smtp.wait_for_count(1)
    return pipeline


@pytest.fixture
def client(sent: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(sent.context)) as client:
        yield client


def _path_and_address(pipeline: Pipeline) -> tuple[str, str]:
    mail = pipeline.smtp.received[0].message()
    return urlsplit(one_click_link(mail)).path, str(mail["To"])


def _rows(pipeline: Pipeline) -> tuple[int, int]:
    with pipeline.context.readers() as session:
        events = session.scalar(select(func.count()).select_from(ConsentEvent))
        audited = session.scalar(select(func.count()).where(AuditEntry.action == "consent.withdraw"))
    return int(events or 0), int(audited or 0)


def test_the_served_paths_follow_the_configured_link(sent: Pipeline) -> None:
    assert link_paths(sent.context.settings) == ["/u/{token}", "/huy-dang-ky/u/{token}"]


def test_a_one_click_post_records_the_withdrawal_once(sent: Pipeline, client: TestClient) -> None:
    path, address = _path_and_address(sent)

    first = client.post(path, data=ONE_CLICK)
    assert first.status_code == 200
    assert "Đã hủy đăng ký" in first.text
    with sent.context.readers() as session:
        assert ledger.current(session, "email", address, "public_information") is False
    assert _rows(sent) == (1, 1)

    again = client.post(path, data=ONE_CLICK)
    assert again.status_code == 200
    assert _rows(sent) == (1, 1)  # idempotent: no second ledger row, no second audit entry


def test_multipart_bodies_and_the_bare_path_are_accepted(sent: Pipeline, client: TestClient) -> None:
    path, _address = _path_and_address(sent)
    token = path.rsplit("/", 1)[1]

    response = client.post(f"/u/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert _rows(sent) == (1, 1)


def test_a_get_shows_a_confirmation_form_and_changes_nothing(sent: Pipeline, client: TestClient) -> None:
    path, _address = _path_and_address(sent)

    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'lang="vi"' in response.text
    assert '<form method="post">' in response.text
    assert 'name="List-Unsubscribe" value="One-Click"' in response.text
    assert _rows(sent) == (0, 0)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="tag"),
        pytest.param(lambda token: f"{int(token.split('.')[0]) + 1}.{token.split('.')[1]}", id="message"),
        pytest.param(lambda token: "1.x", id="malformed"),
        pytest.param(lambda token: "0" + token, id="leading-zero"),
    ],
)
def test_a_tampered_token_gets_404_and_changes_nothing(
    sent: Pipeline, client: TestClient, mangle: object
) -> None:
    path, _address = _path_and_address(sent)
    prefix, token = path.rsplit("/", 1)
    assert callable(mangle)
    tampered = f"{prefix}/{mangle(token)}"

    assert client.post(tampered, data=ONE_CLICK).status_code == 404
    assert client.get(tampered).status_code == 404
    assert _rows(sent) == (0, 0)


def test_a_post_without_the_one_click_body_gets_400(sent: Pipeline, client: TestClient) -> None:
    path, _address = _path_and_address(sent)

    assert client.post(path).status_code == 400
    assert client.post(path, data={"List-Unsubscribe": "yes"}).status_code == 400
    assert client.post(path, content=b"List-Unsubscribe=One-Click").status_code == 400  # no content type
    assert _rows(sent) == (0, 0)


def test_without_a_secret_no_token_is_accepted(sent: Pipeline) -> None:
    path, _address = _path_and_address(sent)
    sent.context.settings.security.unsubscribe_secret = ""
    with TestClient(create_app(sent.context)) as client:
        assert client.post(path, data=ONE_CLICK).status_code == 404
    assert _rows(sent) == (0, 0)
