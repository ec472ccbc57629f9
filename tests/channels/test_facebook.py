"""The Facebook Page adapter against the local Graph API peer (channels/sandbox/graph.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from channels.base import OutboundMessage, SendOutcome
from channels.errors import (
    ConfigurationError,
    ConnectionLost,
    OutcomeUnknown,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)
from channels.sandbox.graph import GraphBehaviour, GraphPeer, running_graph
from channels.social.facebook import FacebookPageAdapter
from channels.social.graph_errors import error_class, usage_delay
from tests.conftest import free_port

PAGES = {"1010": "EAAG-token-1010", "2020": "EAAG-token-2020"}
TEXT = "Thông báo: UBND phường tạm ngừng tiếp dân ngày 2/12."


@pytest.fixture
def graph() -> Iterator[tuple[GraphPeer, str]]:
    with running_graph(GraphBehaviour(pages=PAGES)) as running:
        yield running


def _adapter(url: str, **settings: Any) -> FacebookPageAdapter:
    settings.setdefault("page_tokens", PAGES)
    settings.setdefault("timeout", 2.0)
    return FacebookPageAdapter(graph_url=url, api_version="v21.0", **settings)


def _message(
    page_id: str = "1010", *, message_id: int = 1, body: str = TEXT, **options: Any
) -> OutboundMessage:
    return OutboundMessage(message_id=message_id, address=page_id, body=body, options=options)


def test_a_post_goes_to_the_page_feed_with_its_link(graph: tuple[GraphPeer, str]) -> None:
    peer, url = graph
    with _adapter(url) as adapter:
        [result] = adapter.send([_message(link="https://danang.gov.vn/tb/1")])
    assert result.outcome == SendOutcome.SENT
    [post] = peer.posts_of("1010")
    assert (post.message, post.link) == (TEXT, "https://danang.gov.vn/tb/1")
    assert result.provider_ids == (post.id,)
    assert post.id.startswith("1010_")
    [request] = peer.received
    assert (request.method, request.edge) == ("POST", "feed")
    assert "access_token" not in request.fields  # the peer strips what it checked


def test_an_image_makes_a_photo_post_with_the_text_as_caption(graph: tuple[GraphPeer, str]) -> None:
    peer, url = graph
    with _adapter(url) as adapter:
        [result] = adapter.send([_message("2020", image="https://danang.gov.vn/anh.jpg")])
    [post] = peer.posts_of("2020")
    assert (post.message, post.image) == (TEXT, "https://danang.gov.vn/anh.jpg")
    assert result.provider_ids == (post.id,)  # the post's id, not the photo's
    assert peer.received[0].edge == "photos"


def test_a_page_without_a_token_is_a_settings_problem_and_sends_nothing(graph: tuple[GraphPeer, str]) -> None:
    peer, url = graph
    with _adapter(url) as adapter:
        [result] = adapter.send([_message("3030")])
    assert isinstance(result.error, ConfigurationError)
    assert "3030" in str(result.error)
    assert peer.received == []


def test_a_resend_after_a_stalled_answer_finds_the_post_instead_of_posting_again() -> None:
    with running_graph(GraphBehaviour(pages=PAGES, stall_posts=1)) as (peer, url):
        with _adapter(url, timeout=0.3) as adapter:
            [first] = adapter.send([_message()])
        assert isinstance(first.error, OutcomeUnknown), first
        assert len(peer.posts_of("1010")) == 1  # the peer made the post before it stalled
        with _adapter(url, lookback_posts=5) as adapter:  # the engine's resend, with the usual timeout
            [again] = adapter.send([_message(resend=True)])
        [post] = peer.posts_of("1010")
        assert again.outcome == SendOutcome.SENT
        assert again.provider_ids == (post.id,)
        assert [r.method for r in peer.received] == ["POST", "GET"]
        assert peer.received[1].fields["limit"] == "5"


def test_a_photo_post_resent_after_a_stalled_answer_is_found_by_its_caption() -> None:
    image = "https://danang.gov.vn/anh.jpg"
    with running_graph(GraphBehaviour(pages=PAGES, stall_posts=1)) as (peer, url):
        with _adapter(url, timeout=0.3) as adapter:
            [first] = adapter.send([_message(image=image)])
        assert isinstance(first.error, OutcomeUnknown), first
        with _adapter(url) as adapter:
            [again] = adapter.send([_message(image=image, resend=True)])
        [post] = peer.posts_of("1010")
        assert again.provider_ids == (post.id,)


def test_a_resend_that_finds_no_post_posts_once(graph: tuple[GraphPeer, str]) -> None:
    peer, url = graph
    with _adapter(url) as adapter:
        adapter.send([_message(body="Bài khác")])
        [result] = adapter.send([_message(resend=True)])
    assert result.outcome == SendOutcome.SENT
    assert [p.message for p in peer.posts_of("1010")] == ["Bài khác", TEXT]


def test_a_resend_with_another_link_is_a_new_post(graph: tuple[GraphPeer, str]) -> None:
    peer, url = graph
    with _adapter(url) as adapter:
        adapter.send([_message(link="https://a.vn/1")])
        [result] = adapter.send([_message(link="https://a.vn/2", resend=True)])
    assert result.outcome == SendOutcome.SENT
    assert [p.link for p in peer.posts_of("1010")] == ["https://a.vn/1", "https://a.vn/2"]


def test_the_same_text_twice_in_a_row_is_a_duplicate_post(graph: tuple[GraphPeer, str]) -> None:
    peer, url = graph
    with _adapter(url) as adapter:
        first, second = adapter.send([_message(), _message(message_id=2)])
    assert first.outcome == SendOutcome.SENT
    assert type(second.error) is PermanentError
    assert second.error.code == "506"
    assert len(peer.posts_of("1010")) == 1


@pytest.mark.parametrize(
    ("behaviour", "retry_after"),
    [
        (GraphBehaviour(pages=PAGES, throttle_code=4, retry_after=30), 30.0),
        (GraphBehaviour(pages=PAGES, throttle_code=17, regain_minutes=2), 120.0),
        (GraphBehaviour(pages=PAGES, throttle_code=80001), None),
    ],
)
def test_rate_limits_are_throttled_with_the_provider_hint(
    behaviour: GraphBehaviour, retry_after: float
) -> None:
    with running_graph(behaviour) as (peer, url), _adapter(url) as adapter:
        [result] = adapter.send([_message()])
    assert isinstance(result.error, Throttled), result
    assert result.error.retry_after == retry_after
    assert peer.posts == []


def test_a_rate_limit_stops_the_rest_of_the_window() -> None:
    with running_graph(GraphBehaviour(pages=PAGES, throttle_code=4)) as (peer, url), _adapter(url) as adapter:
        results = adapter.send([_message(), _message("2020", message_id=2)])
    assert [type(r.error) for r in results] == [Throttled, Throttled]
    assert len(peer.received) == 1, "asking again while limited prolongs the block"


def test_a_refused_token_stops_that_page_only(graph: tuple[GraphPeer, str]) -> None:
    peer, url = graph
    with _adapter(url, page_tokens={**PAGES, "1010": "stale"}) as adapter:
        results = adapter.send(
            [_message(), _message(message_id=2, body="khác"), _message("2020", message_id=3)]
        )
    assert [type(r.error) for r in results] == [ConfigurationError, ConfigurationError, type(None)]
    assert [r.page_id for r in peer.received] == ["1010", "2020"]


def test_an_expired_token_is_a_settings_problem(graph: tuple[GraphPeer, str]) -> None:
    peer, url = graph
    peer.behaviour.expired_tokens = True
    with _adapter(url) as adapter:
        [result] = adapter.send([_message()])
    assert isinstance(result.error, ConfigurationError)
    assert result.error.code == "190/463"


def test_a_wrong_token_is_a_settings_problem(graph: tuple[GraphPeer, str]) -> None:
    _peer, url = graph
    with _adapter(url, page_tokens={"1010": "stale"}) as adapter:
        [result] = adapter.send([_message()])
    assert isinstance(result.error, ConfigurationError)
    assert result.error.code == "190"


def test_a_page_the_api_does_not_know_is_rejected_and_spares_the_rest(graph: tuple[GraphPeer, str]) -> None:
    peer, url = graph
    tokens = {**PAGES, "9999": "EAAG-token-9999"}
    with _adapter(url, page_tokens=tokens) as adapter:
        results = adapter.send([_message(), _message("9999", message_id=2), _message("2020", message_id=3)])
    assert [r.outcome for r in results] == [SendOutcome.SENT, SendOutcome.FAILED, SendOutcome.SENT]
    assert isinstance(results[1].error, RecipientRejected)
    assert results[1].error.code == "100/33"
    assert len(peer.posts) == 2


def test_an_unreachable_api_is_a_lost_connection() -> None:
    with _adapter(f"http://127.0.0.1:{free_port()}") as adapter:
        [result] = adapter.send([_message()])
    assert isinstance(result.error, ConnectionLost), result


@pytest.mark.parametrize(
    ("code", "subcode", "expected"),
    [
        (1, None, TransientError),
        (2, None, TransientError),
        (4, None, Throttled),
        (17, None, Throttled),
        (341, None, Throttled),
        (368, None, TransientError),
        (190, 460, ConfigurationError),
        (102, None, ConfigurationError),
        (10, None, ConfigurationError),
        (200, None, ConfigurationError),
        (299, None, ConfigurationError),
        (3, None, ConfigurationError),
        (506, None, PermanentError),
        (1609005, None, PermanentError),
        (100, 33, RecipientRejected),
        (100, None, PermanentError),
        (123456, None, PermanentError),
    ],
)
def test_graph_codes_map_to_the_documented_classes(code: int, subcode: int | None, expected: type) -> None:
    assert error_class(code, subcode, 400) is expected


def test_usage_header_gives_the_longest_wait() -> None:
    header = {"1": [{"estimated_time_to_regain_access": 1}], "2": [{"estimated_time_to_regain_access": 3}]}
    assert usage_delay({"X-Business-Use-Case-Usage": json.dumps(header)}) == 180.0
    assert usage_delay({"X-Business-Use-Case-Usage": "not json"}) is None
    assert usage_delay({}) is None


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"page_tokens": {}}, "page_tokens"),
        ({"page_tokens": {"1010": ""}}, "page_tokens"),
        ({"api_version": "21"}, "api_version"),
        ({"timeout": 0}, "timeout"),
        ({"lookback_posts": 0}, "lookback_posts"),
    ],
)
def test_bad_settings_name_the_field(settings: dict[str, Any], field: str) -> None:
    settings.setdefault("page_tokens", PAGES)
    with pytest.raises(ValueError, match=field):
        FacebookPageAdapter(**settings)


def test_the_tokens_stay_out_of_its_repr() -> None:
    assert "EAAG" not in repr(FacebookPageAdapter(page_tokens=PAGES))
