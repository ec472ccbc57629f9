"""The social channel in the engine: a Facebook provider posts once per named Page (no contact), a Zalo ZNS
provider sends one approved template message per person, each told apart by its adapter's capabilities, and
validation refuses a Page without a token and a ZNS template that is not approved, changing nothing. Both run
against the local peers (channels/sandbox/graph.py, channels/sandbox/zalo.py) through the registry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broadcaster.campaigns.files import ProviderInfo, SendRules, load_campaign_file
from broadcaster.campaigns.preview import preview_version
from broadcaster.campaigns.store import get_version
from broadcaster.subjects.export import export
from broadcaster.subjects.held import keyed_hash, parse_subject
from broadcaster.vocabulary import MessageStatus
from channels.sandbox.graph import GraphBehaviour, GraphPeer, running_graph
from channels.sandbox.zalo import OA_ID, OA_SECRET, ZaloBehaviour, ZaloPeer, running_zalo
from tests.broadcaster.conftest import ADMIN_LOGIN, database_dump
from tests.broadcaster.delivery.pipeline import Pipeline, PipelineFactory
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens
from tests.broadcaster.test_cli import Cli, one_line

PAGES = {"104512345678901": "page-token-hai-chau", "104512345678902": "page-token-son-tra"}
ZALO_TOKEN = "zalo-oa-access-token"
POST_TEXT = "{{ org.short_name }}: từ {{ vars.ngay }}, thủ tục {{ vars.thu_tuc }} được nộp trực tuyến."
ZNS_TEXT = "Thủ tục {{ vars.thu_tuc }} nộp trực tuyến từ {{ vars.ngay }}."
VARIABLES = {"ngay": "01/12/2026", "thu_tuc": "đăng ký khai sinh"}


@pytest.fixture
def graph() -> Iterator[tuple[GraphPeer, str]]:
    with running_graph(GraphBehaviour(pages=dict(PAGES))) as running:
        yield running


@pytest.fixture
def zalo() -> Iterator[tuple[ZaloPeer, str]]:
    behaviour = ZaloBehaviour(templates={"231677": frozenset({"content", "ho_ten"})})
    with running_zalo(behaviour) as running:
        yield running


def facebook_provider(url: str, pages: dict[str, str] | None = None) -> dict[str, Any]:
    return {"channel": "social", "type": "facebook", "graph_url": url, "page_tokens": pages or dict(PAGES)}


def zalo_provider(url: str) -> dict[str, Any]:
    return {
        "channel": "social",
        "type": "zalo",
        "endpoint": url,
        "access_token": ZALO_TOKEN,
        "body_param": "content",
        "oa_id": OA_ID,
        "oa_secret": OA_SECRET,
        "approved_templates": ["231677"],
        "timeout": 2.0,
    }


def write_social_templates(pipeline: Pipeline, *, text: str, link: str | None = None) -> None:
    folder = pipeline.directory / "templates" / "social"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thu-nghiem.txt.j2").write_text(text, encoding="utf-8")
    if link is not None:
        (folder / "thu-nghiem.link.j2").write_text(link, encoding="utf-8")


def load_problems(pipeline: Pipeline, path: Path) -> list[Any]:
    settings = pipeline.context.settings
    bundle, problems = load_campaign_file(
        path,
        templates_dir=pipeline.context.templates_dir,
        providers=ProviderInfo.all_from(settings),
        rules=SendRules.from_settings(settings),
    )
    assert bundle is None
    return problems


def test_a_page_campaign_posts_once_per_page_with_no_contact(
    make_pipeline: PipelineFactory, graph: tuple[GraphPeer, str]
) -> None:
    peer, url = graph
    pipeline = make_pipeline(providers={"fanpage": facebook_provider(url)})
    pipeline.add_contacts(citizens(30))
    write_social_templates(pipeline, text=POST_TEXT, link="https://dichvucong.danang.gov.vn/khai-sinh")
    campaign_id = pipeline.approved_campaign(
        variables=VARIABLES,
        channels={"social": {"template": "social/thu-nghiem", "provider": "fanpage", "targets": list(PAGES)}},
    )
    with pipeline.context.readers() as session:
        preview = preview_version(
            session, get_version(session, campaign_id, 1), pipeline.context.settings, now=pipeline.clock.now()
        )
    [social] = preview.channels
    assert social.recipients == 2
    assert {s["to"] for s in social.samples} == set(PAGES)

    run_id = pipeline.send(campaign_id)

    messages = pipeline.messages(run_id, channel="social")
    assert len(messages) == 2  # one per Page, not one per citizen
    assert {m.status for m in messages} == {MessageStatus.SENT}
    assert {m.contact_id for m in messages} == {None}
    posts = peer.posts
    assert sorted(p.page_id for p in posts) == sorted(PAGES)
    [text] = {p.message for p in posts}
    assert text.endswith(": từ 01/12/2026, thủ tục đăng ký khai sinh được nộp trực tuyến.")
    assert {p.link for p in posts} == {"https://dichvucong.danang.gov.vn/khai-sinh"}
    assert {m.provider_ref for m in messages} == {p.id for p in posts}


def test_a_page_without_a_token_is_refused_naming_the_line_and_nothing_changes(
    make_pipeline: PipelineFactory, graph: tuple[GraphPeer, str]
) -> None:
    _peer, url = graph
    pipeline = make_pipeline(providers={"fanpage": facebook_provider(url)})
    write_social_templates(pipeline, text=POST_TEXT)
    path = pipeline.write_campaign(
        variables=VARIABLES,
        channels={
            "social": {
                "template": "social/thu-nghiem",
                "provider": "fanpage",
                "targets": ["104512345678901", "999999999999999"],
            }
        },
    )
    before = database_dump(pipeline.context.engine)
    problems = load_problems(pipeline, path)
    [problem] = problems
    assert problem.field == "channels.social.targets.1"
    assert "missing page token" in problem.message
    assert "999999999999999" in problem.message
    lines = path.read_text(encoding="utf-8").splitlines()
    assert "999999999999999" in lines[problem.line - 1]
    assert database_dump(pipeline.context.engine) == before


def test_zns_sends_one_approved_template_message_per_person_with_a_phone(
    make_pipeline: PipelineFactory, zalo: tuple[ZaloPeer, str]
) -> None:
    peer, url = zalo
    pipeline = make_pipeline(providers={"zalo_oa": zalo_provider(url)})
    people = citizens(12)
    people[0]["phone"] = ""
    pipeline.add_contacts(people)
    write_social_templates(pipeline, text=ZNS_TEXT)
    campaign_id = pipeline.approved_campaign(
        variables=VARIABLES,
        channels={
            "social": {
                "template": "social/thu-nghiem",
                "provider": "zalo_oa",
                "template_id": "231677",
                "template_data": {"ho_ten": "{{ contact.full_name }}"},
            }
        },
    )

    run_id = pipeline.send(campaign_id)

    messages = pipeline.messages(run_id, channel="social")
    assert Counter(m.status for m in messages) == {MessageStatus.SENT: 11}
    assert len(peer.sent) == 11
    by_phone = {s.phone: s for s in peer.sent}
    second = by_phone["84912000002"]
    assert second.template_id == "231677"
    assert second.template_data["content"] == "Thủ tục đăng ký khai sinh nộp trực tuyến từ 01/12/2026."
    assert second.template_data["ho_ten"] == people[1]["full_name"]
    assert {m.provider_ref for m in messages} == {s.msg_id for s in peer.sent}

    # The person's ZNS message is theirs in a subject request, found by their phone like an SMS.
    subject = parse_subject(people[1]["phone"])
    keyed = keyed_hash(pipeline.context.settings.security.erasure_key(), subject)
    with pipeline.context.sessions.begin() as session:
        document = export(session, subject, subject_hash=keyed, actor=ADMIN_LOGIN, now=pipeline.clock.now())
    assert [(m["channel"], m["address"]) for m in document["messages"]] == [("social", "+84912000002")]


def test_an_unapproved_zns_template_is_refused_naming_the_field_and_nothing_changes(
    make_pipeline: PipelineFactory, zalo: tuple[ZaloPeer, str]
) -> None:
    _peer, url = zalo
    pipeline = make_pipeline(providers={"zalo_oa": zalo_provider(url)})
    write_social_templates(pipeline, text=ZNS_TEXT)
    path = pipeline.write_campaign(
        variables=VARIABLES,
        channels={
            "social": {"template": "social/thu-nghiem", "provider": "zalo_oa", "template_id": "999001"}
        },
    )
    before = database_dump(pipeline.context.engine)
    [problem] = load_problems(pipeline, path)
    assert problem.field == "channels.social.template_id"
    assert "999001" in problem.message
    assert "approved_templates" in problem.message
    assert "template_id" in path.read_text(encoding="utf-8").splitlines()[problem.line - 1]
    assert database_dump(pipeline.context.engine) == before


def test_an_empty_post_is_refused(make_pipeline: PipelineFactory, graph: tuple[GraphPeer, str]) -> None:
    _peer, url = graph
    pipeline = make_pipeline(providers={"fanpage": facebook_provider(url)})
    write_social_templates(pipeline, text="{# nothing #}\n")
    path = pipeline.write_campaign(
        channels={
            "social": {"template": "social/thu-nghiem", "provider": "fanpage", "targets": list(PAGES)[:1]}
        },
    )
    [problem] = load_problems(pipeline, path)
    assert problem.field == "channels.social.template"
    assert "empty" in problem.message


def test_a_zns_text_past_its_limit_is_refused(
    make_pipeline: PipelineFactory, zalo: tuple[ZaloPeer, str]
) -> None:
    _peer, url = zalo
    pipeline = make_pipeline(providers={"zalo_oa": zalo_provider(url)})
    write_social_templates(pipeline, text="Thông báo " * 50)
    path = pipeline.write_campaign(
        channels={
            "social": {"template": "social/thu-nghiem", "provider": "zalo_oa", "template_id": "231677"}
        },
    )
    [problem] = load_problems(pipeline, path)
    assert "more than 400" in problem.message


def test_campaigns_preview_shows_the_pages_and_the_zns_template_on_the_command_line(
    make_pipeline: PipelineFactory,
    graph: tuple[GraphPeer, str],
    zalo: tuple[ZaloPeer, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _graph, graph_url = graph
    _zalo, zalo_url = zalo
    pipeline = make_pipeline(
        providers={"fanpage": facebook_provider(graph_url), "zalo_oa": zalo_provider(zalo_url)}
    )
    pipeline.add_contacts(citizens(3))
    write_social_templates(pipeline, text=POST_TEXT, link="https://dichvucong.danang.gov.vn")
    page_campaign = pipeline.write_campaign(
        id="bai-dang-thu-nghiem",
        variables=VARIABLES,
        channels={"social": {"template": "social/thu-nghiem", "provider": "fanpage", "targets": list(PAGES)}},
    )
    zns_campaign = pipeline.write_campaign(
        id="zns-thu-nghiem",
        variables=VARIABLES,
        channels={
            "social": {
                "template": "social/thu-nghiem",
                "provider": "zalo_oa",
                "template_id": "231677",
                "template_data": {"ho_ten": "{{ contact.full_name }}"},
            }
        },
    )
    monkeypatch.chdir(pipeline.directory)
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    cli = Cli(monkeypatch)
    cli("campaigns", "load", str(page_campaign), user=EDITOR)
    cli("campaigns", "load", str(zns_campaign), user=EDITOR)

    posts = one_line(cli("campaigns", "preview", "bai-dang-thu-nghiem").stdout)
    assert "Recipients: 2" in posts
    assert "One post per Page the campaign lists" in posts
    assert "→ 104512345678901" in posts
    assert "Link: https://dichvucong.danang.gov.vn" in posts

    zns = one_line(cli("campaigns", "preview", "zns-thu-nghiem").stdout)
    assert "Recipients: 3" in zns
    assert "→ +84912000001" in zns
    assert "ZNS template: 231677" in zns


def test_a_page_post_whose_answer_never_came_is_not_posted_twice_on_resend(
    make_pipeline: PipelineFactory,
) -> None:
    # The Graph peer creates the first post, then holds its answer: the adapter times out (OutcomeUnknown),
    # the campaign says resend, and the second attempt (options["resend"]) finds the post instead of posting.
    with running_graph(GraphBehaviour(pages=dict(PAGES), stall_posts=1)) as (peer, url):
        provider = {**facebook_provider(url), "timeout": 0.5}
        pipeline = make_pipeline(providers={"fanpage": provider})
        write_social_templates(pipeline, text=POST_TEXT)
        campaign_id = pipeline.approved_campaign(
            variables=VARIABLES,
            on_uncertain="resend",
            channels={
                "social": {"template": "social/thu-nghiem", "provider": "fanpage", "targets": list(PAGES)[:1]}
            },
        )
        run_id = pipeline.send(campaign_id)
        [first] = pipeline.messages(run_id, channel="social")
        assert first.status == MessageStatus.QUEUED  # unknown outcome: queued again for a resend
        pipeline.advance(seconds=31)
        pipeline.tick()
        pipeline.drain()
        [message] = pipeline.messages(run_id, channel="social")
        assert message.status == MessageStatus.SENT
        assert message.attempts == 2
        assert len(peer.posts) == 1  # one public post, found again rather than repeated
        assert message.provider_ref == peer.posts[0].id


def test_a_page_post_that_names_a_person_is_refused(
    make_pipeline: PipelineFactory, graph: tuple[GraphPeer, str]
) -> None:
    _peer, url = graph
    pipeline = make_pipeline(providers={"fanpage": facebook_provider(url)})
    write_social_templates(pipeline, text="Kính gửi {{ contact.full_name }}: thủ tục mới.")
    path = pipeline.write_campaign(
        channels={
            "social": {"template": "social/thu-nghiem", "provider": "fanpage", "targets": list(PAGES)[:1]}
        },
    )
    [problem] = load_problems(pipeline, path)
    assert problem.field == "channels.social.template"
    assert problem.file.name == "thu-nghiem.txt.j2"
    assert problem.line == 1
    assert "cannot use contact fields" in problem.message
