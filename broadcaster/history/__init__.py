"""One event history of the outbox: every message with its attempts and delivery events, filtered and masked
in one place, for ``broadcaster messages``, the exports, the reports and the auditor's export."""
