"""The words people read for the codes the database stores: message, run and version statuses, campaign states,
decisions, roles, channels, run triggers, delivery events, consent purposes and the audit log's action names and
subject types.

The codes stay the data (exports, the API and the CLI's ``--json`` keep them); pages show ``label(code, kind)``,
the Jinja filter ``{{ message.status|label("message_status") }}``. The texts are English message ids marked
with ``N_`` and translated when shown, so a person who switches language sees the labels switch too. A code a
kind does not know (an audit action added later, a value written by a newer version) is shown as it is:
never an empty cell, never a server error.
"""

from __future__ import annotations

from collections.abc import Mapping

from broadcaster.i18n import N_
from broadcaster.i18n import gettext as _
from broadcaster.outbox.retry_failed import retried_run
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

MESSAGE_STATUS: Mapping[str, str] = {
    MessageStatus.QUEUED: N_("queued"),
    MessageStatus.SENDING: N_("sending"),
    MessageStatus.SENT: N_("sent"),
    MessageStatus.DELIVERED: N_("delivered"),
    MessageStatus.TEMPORARY_FAILURE: N_("temporary failure"),
    MessageStatus.PERMANENT_FAILURE: N_("permanent failure"),
    MessageStatus.TECHNICAL_FAILURE: N_("technical failure"),
    MessageStatus.UNKNOWN: N_("unknown"),
    MessageStatus.SUPPRESSED: N_("suppressed"),
    MessageStatus.CANCELLED: N_("cancelled"),
}

MESSAGE_KIND: Mapping[str, str] = {
    MessageKind.CAMPAIGN: N_("campaign message"),
    MessageKind.TEST: N_("test message"),
    MessageKind.SYSTEM: N_("system message"),
    MessageKind.FALLBACK: N_("fallback message"),
    MessageKind.POST: N_("letter by post"),
}

RUN_STATUS: Mapping[str, str] = {
    RunStatus.PLANNING: N_("planning"),
    RunStatus.SENDING: N_("sending"),
    RunStatus.COMPLETED: N_("completed"),
    RunStatus.COMPLETED_WITH_HELD: N_("completed, some held"),
    RunStatus.CANCELLED: N_("cancelled"),
}

CAMPAIGN_STATE: Mapping[str, str] = {
    CampaignState.DRAFT: N_("draft"),
    CampaignState.APPROVED: N_("approved"),
    CampaignState.SCHEDULED: N_("scheduled"),
    CampaignState.PAUSED: N_("paused"),
    CampaignState.CANCELLED: N_("cancelled"),
    CampaignState.COMPLETED: N_("completed"),
}

VERSION_STATUS: Mapping[str, str] = {
    VersionStatus.DRAFT: N_("draft"),
    VersionStatus.SUBMITTED: N_("submitted"),
    VersionStatus.APPROVED: N_("approved"),
    VersionStatus.REJECTED: N_("rejected"),
    VersionStatus.SUPERSEDED: N_("superseded"),
}

DECISION: Mapping[str, str] = {Decision.APPROVE: N_("approve"), Decision.REJECT: N_("reject")}

ROLE: Mapping[str, str] = {
    Role.ADMIN: N_("Administrator"),
    Role.EDITOR: N_("Editor"),
    Role.APPROVER: N_("Approver"),
    Role.AUDITOR: N_("Auditor"),
}

# channels.base.Channel: the two the engine sends today and the two it names for later.
CHANNEL: Mapping[str, str] = {
    "sms": N_("SMS"),
    "email": N_("E-mail"),
    "push": N_("app notification"),
    "social": N_("social network message"),
}

# campaign_runs.trigger: the scheduler's "schedule", `send`'s "manual", `retry-failed`'s "retry:<run id>".
RUN_TRIGGER: Mapping[str, str] = {
    "schedule": N_("on schedule"),
    "manual": N_("sent by hand"),
}

# A message's history events: channels.base.EventType, the recorder's failed attempts, the derived acceptance.
EVENT_TYPE: Mapping[str, str] = {
    "delivered": N_("delivered"),
    "failed": N_("failed"),
    "expired": N_("expired at the provider"),
    "accepted": N_("accepted by the provider"),
    "unknown": N_("unknown"),
    "inbound": N_("reply from the person"),
    ATTEMPT_FAILED: N_("attempt failed"),
}

# consent.ledger's purposes (a campaign's purpose too).
PURPOSE: Mapping[str, str] = {
    "official_duty": N_("Official duty"),
    "public_information": N_("Public information"),
    "advertising": N_("Advertising"),
}

PRIORITY: Mapping[str, str] = {"normal": N_("normal"), "urgent": N_("urgent")}
ON_UNCERTAIN: Mapping[str, str] = {
    "hold": N_("hold it until an operator decides"),
    "resend": N_("send it again"),
}

# contacts.records.Severity: a contacts file's row problem.
SEVERITY: Mapping[str, str] = {"error": N_("error"), "warning": N_("warning")}

# What a file did between two versions (campaigns.diff).
DIFF_CHANGE: Mapping[str, str] = {"changed": N_("changed"), "added": N_("added"), "removed": N_("removed")}

# history.filters.PeriodOn: which moment of a message a period bounds.
PERIOD_ON: Mapping[str, str] = {
    "created": N_("when it was planned"),
    "sent": N_("when the provider accepted it"),
    "final": N_("when it was settled"),
}

# Every action the code writes to the audit log (tests/broadcaster/web/test_labels.py reads the sources for
# them): campaign transitions are ``campaign.<action>`` (campaigns.transition_log), consent ledger events
# ``consent.<grant|withdraw>``, operator moves ``messages.<operation>``.
AUDIT_ACTION: Mapping[str, str] = {
    "activity.recorded": N_("activity recorded"),
    "api_key.create": N_("API key created"),
    "api_key.revoke": N_("API key revoked"),
    "campaign.load": N_("campaign version loaded"),
    "campaign.submit": N_("version submitted for approval"),
    "campaign.approve": N_("version approved"),
    "campaign.reject": N_("version rejected"),
    "campaign.schedule": N_("campaign scheduled"),
    "campaign.pause": N_("campaign paused"),
    "campaign.resume": N_("campaign resumed"),
    "campaign.cancel": N_("campaign cancelled"),
    "campaign.completed": N_("campaign completed"),
    "campaign.send": N_("campaign sent by hand"),
    "campaign.send_single": N_("single message sent through the API"),
    "campaign.test_send": N_("test message sent"),
    "campaign.run_created": N_("scheduled run created"),
    "campaign.occurrence_missed": N_("scheduled occurrence missed"),
    "campaign.retry_failed": N_("failed messages sent again"),
    "campaign.older_runs_kept": N_("older runs left to finish"),
    "campaign.older_runs_stopped": N_("older runs stopped"),
    "campaign.exclusions_added": N_("campaign exclusion list imported"),
    "consent.grant": N_("consent recorded"),
    "consent.withdraw": N_("consent withdrawn"),
    "consent.dnc_import": N_("do-not-call register imported"),
    "contacts.import": N_("contacts imported"),
    "delivery.window": N_("messages handed to a provider"),
    "device.register": N_("push device registered"),
    "device.remove": N_("push device removed"),
    "delivery.results": N_("provider results recorded"),
    "inbox.done": N_("reply handled"),
    "messages.release": N_("held messages released"),
    "messages.retry": N_("failed messages queued again"),
    "messages.drop": N_("messages dropped"),
    "personal_data.unmasked": N_("full personal data shown or exported"),
    "policy.set": N_("policy changed"),
    "retention.run": N_("retention applied"),
    "backup.run": N_("database backed up"),
    "retention.inbound_purge": N_("old raw receipts and bounces deleted"),
    "rollup.refrozen": N_("report figures rebuilt"),
    "settings.fingerprint": N_("settings changed"),
    "subject.erase": N_("person's data erased"),
    "subject.export": N_("person's data exported"),
    "suppression.added": N_("address suppressed"),
    "user.add": N_("user added"),
    "user.deactivate": N_("user deactivated"),
    "user.password_set": N_("password set"),
    "user.set_role": N_("role changed"),
    "web.locked_out": N_("account locked after failed sign-ins"),
    "web.sign_in": N_("signed in"),
    "web.sign_in_refused": N_("sign-in refused"),
    "web.sign_out": N_("signed out"),
    "workdir.restore_defaults": N_("default files restored"),
}

# audit_log.subject_type: what an entry is about (``audit.record``'s callers; masking's unmasked listings).
AUDIT_SUBJECT: Mapping[str, str] = {
    "activity": N_("activity"),
    "address": N_("address"),
    "api_key": N_("API key"),
    "bounces": N_("bounces"),
    "campaign": N_("campaign"),
    "campaign_exclusions": N_("campaign exclusion list"),
    "chunk": N_("chunk of messages"),
    "consent_event": N_("consent event"),
    "contact": N_("contact"),
    "contact_import": N_("contacts import"),
    "contacts": N_("contacts"),
    "data_subject": N_("data subject"),
    "database": N_("database"),
    "do_not_call_import": N_("do-not-call register import"),
    "hand_back": N_("hand-back"),
    "inbox_reply": N_("inbox reply"),
    "message": N_("message"),
    "messages": N_("messages"),
    "policy": N_("rule"),
    "provider": N_("provider"),
    "retention": N_("retention"),
    "rollup": N_("report rollup"),
    "settings": N_("settings"),
    "user": N_("user"),
    "workdir": N_("working directory"),
}

KINDS: Mapping[str, Mapping[str, str]] = {
    "message_status": MESSAGE_STATUS,
    "message_kind": MESSAGE_KIND,
    "run_status": RUN_STATUS,
    "run_trigger": RUN_TRIGGER,
    "campaign_state": CAMPAIGN_STATE,
    "version_status": VERSION_STATUS,
    "decision": DECISION,
    "role": ROLE,
    "channel": CHANNEL,
    "event_type": EVENT_TYPE,
    "purpose": PURPOSE,
    "priority": PRIORITY,
    "on_uncertain": ON_UNCERTAIN,
    "diff_change": DIFF_CHANGE,
    "severity": SEVERITY,
    "period_on": PERIOD_ON,
    "audit_action": AUDIT_ACTION,
    "audit_subject": AUDIT_SUBJECT,
}


def label(code: object, kind: str) -> str:
    """``code`` (a stored value or its enum) in words of the current language; an unknown code as it is, None
    as nothing. An unknown ``kind`` is a mistake in a template and raises ``KeyError``."""
    labels = KINDS[kind]
    if code is None:
        return ""
    text = str(code)
    retried = retried_run(text) if kind == "run_trigger" else None
    if retried is not None:
        return _("retry of run %(run)s") % {"run": retried}
    return _(labels[text]) if text in labels else text
