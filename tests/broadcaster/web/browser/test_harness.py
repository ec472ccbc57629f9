"""The harness the scenario tests build on: the embedded engine sends what the served working directory holds,
and ``wait_until_received`` sees it arrive at the sandbox peers."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from broadcaster.tasks import CeleryEnqueuer
from tests.broadcaster.delivery.workdir_files import citizens
from tests.broadcaster.web.browser.conftest import WebServer, sign_in


@pytest.mark.slow
def test_the_engine_sends_a_campaign_of_the_served_working_directory(server: WebServer, page: Page) -> None:
    pipeline = server.pipeline
    pipeline.add_contacts(citizens(2))
    run_id = pipeline.start_run(pipeline.approved_campaign())
    server.start_engine()
    CeleryEnqueuer().plan_run(run_id)
    server.wait_until_received(4)  # an e-mail and an SMS to each
    assert server.received() == 4
    assert sorted(r for mail in pipeline.smtp.received for r in mail.rcpt_tos) == sorted(
        person["email"] for person in citizens(2)
    )

    sign_in(page, server, "quan_tri")  # the server answers while the engine runs
    expect(page.get_by_role("heading", level=1)).to_have_text("Tổng quan")
