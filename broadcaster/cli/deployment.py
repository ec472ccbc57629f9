"""What sends a queued run in this installation, said the way its operator starts it (docs/architecture.md §3).

Embedded (an SQL broker, the default): ``broadcaster run`` starts the workers and the tick. Distributed (a
RabbitMQ or Redis broker): ``broadcaster worker`` processes and exactly one ``broadcaster beat``.
"""

from __future__ import annotations

from broadcaster.i18n import gettext as _
from broadcaster.settings import Settings

DISTRIBUTED_BROKERS = ("amqp", "pyamqp", "redis", "rediss")


def distributed(settings: Settings) -> bool:
    """Whether the broker is RabbitMQ or Redis, so workers and beat run as processes of their own."""
    return settings.broker_url.partition("://")[0].partition("+")[0] in DISTRIBUTED_BROKERS


def senders(settings: Settings) -> str:
    """Who sends what is queued, named by the commands that start them."""
    if distributed(settings):
        return _("the workers (`broadcaster worker`) and the beat (`broadcaster beat`)")
    return _("the engine's workers (`broadcaster run`)")


def queued_line(settings: Settings, run_id: int, *, window_closed: bool = False) -> str:
    """The line that tells a run was queued and who will send it (now, or when its send window opens)."""
    if window_closed:
        return _("Run %(run_id)s stays queued; %(senders)s send it when the window opens.") % {
            "run_id": run_id,
            "senders": senders(settings),
        }
    return _("Run %(run_id)s queued; %(senders)s will send it.") % {
        "run_id": run_id,
        "senders": senders(settings),
    }
