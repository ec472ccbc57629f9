"""RFC 8058 end to end: the List-Unsubscribe URL of a mail received by the sandbox SMTP server, POSTed the way a
mail client does to a real ``broadcaster serve``, records the withdrawal; a tampered token gets a 4xx and the
ledger is unchanged."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import urlsplit

from sqlalchemy import func, select

from consent import ledger
from consent.models import ConsentEvent
from tests.broadcaster.delivery.pipeline import PipelineFactory
from tests.broadcaster.delivery.processes import Started, start_cli
from tests.broadcaster.delivery.test_email_opt_out import email_campaign, one_click_link, parts
from tests.broadcaster.delivery.workdir_files import EDITOR, citizens
from tests.conftest import free_port
from tests.peers.polling import wait_until

ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"


def _post_like_a_mail_client(url: str) -> int:
    """A POST without cookies or credentials, with the RFC 8058 body; the HTTP status it got."""
    request = urllib.request.Request(  # noqa: S310  a URL on 127.0.0.1 built by the test
        url,
        data=ONE_CLICK_BODY,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310  a GET changes nothing
            return True
    except urllib.error.HTTPError:
        return True  # the server is up, whatever it thought of the request
    except OSError:
        return False


def test_a_mail_clients_one_click_post_to_serve_records_the_withdrawal(
    make_pipeline: PipelineFactory, processes: Started
) -> None:
    pipeline = make_pipeline()  # links under https://skhcn.danang.gov.vn/huy-dang-ky
    pipeline.add_contacts(citizens(1))
    pipeline.send(email_campaign(pipeline, purpose="public_information"))
    assert pipeline.smtp.wait_for_count(1)
    mail = pipeline.smtp.received[0].message()
    link = one_click_link(mail)
    assert str(mail["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    text, html = parts(mail)
    assert link in text
    assert f'href="{link}"' in html
    address = str(mail["To"])
    # One-click needs https (RFC 8058 §3.1): a reverse proxy ends TLS and passes the path on to `serve`.
    port = free_port()
    path = urlsplit(link).path
    local = f"http://127.0.0.1:{port}{path}"

    with pipeline.config.open("a", encoding="utf-8") as config:  # serve listens where [web] says
        config.write(f'\n[web]\nhost = "127.0.0.1"\nport = {port}\n')
    server = start_cli(pipeline, processes, "serve", login=EDITOR, log="serve.log")
    wait_until(  # the whole web application imports in a few seconds, many more on a loaded machine
        lambda: server.poll() is not None or _answers(f"http://127.0.0.1:{port}/u/0.x"),
        timeout=90,
        what="broadcaster serve answering",
    )
    assert server.poll() is None, (pipeline.directory / "serve.log").read_text(encoding="utf-8")

    def events() -> int:
        with pipeline.context.readers() as session:
            return int(session.scalar(select(func.count()).select_from(ConsentEvent)) or 0)

    tampered = local[:-1] + ("A" if local[-1] != "A" else "B")
    assert _post_like_a_mail_client(tampered) == 404
    assert events() == 0

    assert _post_like_a_mail_client(local) == 200
    with pipeline.context.readers() as session:
        assert ledger.current(session, "email", address, "public_information") is False
        (event,) = ledger.history(session, "email", address)
        assert (event.source, event.evidence) == (
            "email_link",
            f"message {path.rsplit('/', 1)[1].split('.')[0]}",
        )
    assert _post_like_a_mail_client(local) == 200  # a client that retries changes nothing more
    assert _post_like_a_mail_client(tampered) == 404
    assert events() == 1
