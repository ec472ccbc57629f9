"""The words shown for stored codes (``broadcaster.web.labels``): every value of the vocabulary's enums and every
audit action the code writes has one, in both languages, and the pages show it with the code kept visible."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest

from broadcaster import i18n
from broadcaster.audit import deliveries
from broadcaster.campaigns.schema import OnUncertain, Priority
from broadcaster.contacts.importer import ImportReport
from broadcaster.contacts.records import Severity
from broadcaster.context import AppContext
from broadcaster.history.filters import PeriodOn
from broadcaster.history.query import ACCEPTED
from broadcaster.outbox.operator import Operation
from broadcaster.outbox.retry_failed import retry_trigger
from broadcaster.vocabulary import (
    ATTEMPT_FAILED,
    CampaignState,
    Decision,
    MessageKind,
    MessageStatus,
    Role,
    RunStatus,
    VersionStatus,
)
from broadcaster.web.labels import AUDIT_ACTION, KINDS, label
from channels.base import Channel, EventType
from consent import ledger
from tests.broadcaster.web.campaign_setup import CAMPAIGN, load_campaign
from tests.broadcaster.web.conftest import Browser

ROOT = Path(__file__).resolve().parents[3]

# Each kind of label and the values it must cover.
COVERED: dict[str, list[str]] = {
    "message_status": list(MessageStatus),
    "message_kind": list(MessageKind),
    "run_status": list(RunStatus),
    "campaign_state": list(CampaignState),
    "version_status": list(VersionStatus),
    "decision": list(Decision),
    "role": list(Role),
    "channel": list(Channel),
    "event_type": [*EventType, ATTEMPT_FAILED, ACCEPTED],
    "purpose": list(ledger.PURPOSES),
    "priority": list(Priority),
    "on_uncertain": list(OnUncertain),
    "period_on": list(PeriodOn),
    "run_trigger": ["schedule", "manual"],
    "severity": list(get_args(Severity)),
}


@pytest.mark.parametrize("kind", sorted(COVERED))
def test_every_value_of_each_enum_has_a_label_in_both_languages(kind: str) -> None:
    values = [str(value.value if isinstance(value, enum.Enum) else value) for value in COVERED[kind]]
    missing = [value for value in values if value not in KINDS[kind]]
    assert not missing, f"{kind}: no label for {missing}"
    for value in values:
        with i18n.using("en"):
            english = label(value, kind)
        with i18n.using("vi"):
            vietnamese = label(value, kind)
        assert english == KINDS[kind][value]
        # Every label is translated (the catalogue test checks the texts; here: they are the ones shown).
        assert vietnamese == i18n.translations("vi").gettext(english)
        assert vietnamese.strip()


# How the code names the actions it records: a literal `action="…"`, a constant `…ACTION = "…"`, or a
# campaign transition (`log_transition(action="submit")` records `campaign.submit`).
_LITERAL = re.compile(r'\baction="([a-z_]+(?:\.[a-z_]+)?)"')
_CONSTANT = re.compile(r'^\w*ACTION(?::\s*Final)?\s*=\s*"([a-z_.]+)"', re.MULTILINE)


def recorded_actions() -> set[str]:
    """Every audit action named in the sources of broadcaster/ (the CLI's filters and the web's forms are
    `action=<variable>` or HTML, so they do not match), plus the ones built at run time."""
    found: set[str] = set()
    for path in (ROOT / "broadcaster").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in _LITERAL.findall(text) + _CONSTANT.findall(text):
            found.add(name if "." in name else f"campaign.{name}")
    found |= {f"consent.{action}" for action in (ledger.GRANT, ledger.WITHDRAW)}
    found |= {f"messages.{operation.value}" for operation in Operation}
    found |= {deliveries.WINDOW, deliveries.RESULTS}
    return found


def test_every_audit_action_the_code_records_has_a_label() -> None:
    actions = recorded_actions()
    # The scan must find actions of every form, or this test would pass on nothing.
    assert {"user.add", "campaign.approve", "personal_data.unmasked", "settings.fingerprint"} <= actions
    missing = sorted(actions - set(AUDIT_ACTION))
    assert not missing, f"audit actions without a label in broadcaster/web/labels.py: {missing}"


_SUBJECT_LITERAL = re.compile(r'\b(?:subject_type|what)="([a-z_]+)"')
_SUBJECT_CONSTANT = re.compile(r'^AUDIT_SUBJECT_TYPE\s*=\s*"([a-z_]+)"', re.MULTILINE)


def test_every_audit_subject_type_the_code_records_has_a_label() -> None:
    """``subject_type="…"`` of ``audit.record``, ``what="…"`` of an unmasked listing, and the data-subject
    requests' constant."""
    found: set[str] = set()
    for path in (ROOT / "broadcaster").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found.update(_SUBJECT_LITERAL.findall(text) + _SUBJECT_CONSTANT.findall(text))
    found.add("chunk")  # audit/deliveries.py: a send window's entry, passed positionally
    assert {"campaign", "user", "messages", "data_subject"} <= found
    missing = sorted(found - set(KINDS["audit_subject"]))
    assert not missing, f"audit subject types without a label in broadcaster/web/labels.py: {missing}"
    with i18n.using("vi"):
        assert label("campaign", "audit_subject") == "chiến dịch"
        assert label("workdir", "audit_subject") == "thư mục làm việc"


def test_unknown_codes_are_shown_as_they_are_and_a_retry_names_its_run() -> None:
    with i18n.using("vi"):
        assert label("campaign.something_new", "audit_action") == "campaign.something_new"
        assert label(None, "message_status") == ""
        assert label(MessageStatus.PERMANENT_FAILURE, "message_status") == "lỗi vĩnh viễn"
        assert label(retry_trigger(42), "run_trigger") == "gửi lại lượt 42"
        assert label("retry:x", "run_trigger") == "retry:x"
    with i18n.using("en"):
        assert label(retry_trigger(42), "run_trigger") == "retry of run 42"
    with pytest.raises(KeyError):
        label("draft", "no_such_kind")


def test_pages_show_the_vietnamese_labels_and_keep_the_codes_visible(
    browser: Callable[[str | None], Browser], context: AppContext, workdir: Path, people: object,
    contacts: ImportReport,
) -> None:  # fmt: skip
    load_campaign(context, workdir)
    auditor = browser("kiem_toan")

    listing = auditor.get("/campaigns").text
    assert '<span title="draft">bản nháp</span>' in listing  # campaign state
    assert '<span title="draft">bản nháp</span>)' in listing  # the latest version's status

    campaign = auditor.get(f"/campaigns/{CAMPAIGN}").text
    assert '<th scope="row" title="sms">SMS</th>' in campaign
    assert '<th scope="row" title="email">Thư điện tử</th>' in campaign

    audit = auditor.get("/audit", params={"action": "campaign."}).text
    assert "nạp phiên bản chiến dịch<br><code>campaign.load</code>" in audit

    messages = auditor.get("/messages").text
    assert '<option value="permanent_failure" >lỗi vĩnh viễn</option>' in messages

    auditor.client.post("/language", data={"language": "en", "next": "/campaigns"})
    assert '<span title="draft">draft</span>' in auditor.get("/campaigns").text
