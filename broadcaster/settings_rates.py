"""The ``[rate_limit]``, ``[routing]`` and ``[routes.NAME]`` sections: where the providers' shared rate
limits live, and how SMS traffic is shared out between SMSC accounts and moved off one that is down or slow
(docs/architecture.md §3, "Rate limits" and "Provider routing")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from broadcaster.i18n import gettext as _

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class RateLimitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Where a provider's ``tps`` bucket lives: "database" (a row, for the embedded engine), "redis" (one
    # Lua script per reservation, for many workers), or "auto": Redis when [broker] url is Redis.
    backend: Literal["auto", "database", "redis"] = "auto"
    # The Redis server of the buckets; empty: the broker's URL (when the broker is Redis).
    redis_url: str = ""
    # Redis buckets only: after throttling answers (ESME_RTHROTTLED, ESME_RMSGQFUL) the bucket's share of
    # ``tps`` is halved, never below this share, and regains ``recovery_per_second`` of ``tps`` each second.
    throttle_floor: float = Field(default=0.1, gt=0, le=1)
    recovery_per_second: float = Field(default=0.05, gt=0, le=1)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if value and not value.startswith(REDIS_SCHEMES):
            raise ValueError(
                _("rate_limit.redis_url: %(url)s is not a Redis URL (redis://host:port/db)") % {"url": value}
            )
        return value


class RoutingSettings(BaseModel):
    """When an SMSC account counts as down or slow: a rolling window of its send outcomes, like GOV.UK
    Notify's provider switching; a tripped account gets no traffic for ``probe_after_seconds``, then is
    tried again (half-open) and trips again at once if it is still bad."""

    model_config = ConfigDict(extra="forbid")

    window_seconds: float = Field(default=60.0, gt=0)
    # Fewer outcomes than this in the window: no judgement (an idle account is not "failing").
    min_outcomes: int = Field(default=20, ge=1)
    # Share of the window's messages that failed or ended unknown (connection lost, timed out) above which
    # the account trips.
    max_error_share: float = Field(default=0.3, gt=0, le=1)
    # The median time from a window's hand-over to its answers above which the account trips as slow.
    max_latency_seconds: float = Field(default=10.0, gt=0)
    # A link down this long: the queued messages of its chunks move to another account of their route.
    failover_after_seconds: float = Field(default=30.0, ge=0)
    probe_after_seconds: float = Field(default=60.0, gt=0)


# [routes.NAME]: for messages planned to provider NAME, allocated carrier (as phonenumbers names it, e.g.
# "Viettel") → [[account, weight], …]; "default" covers the carriers not listed (without it: NAME itself).
Route = dict[str, list[tuple[str, float]]]

# What ``Settings`` checks about routes (kept here with the sections): returns the first problem, or None.
Problem = str | None


def route_problem(name: str, route: Route, shapes: Mapping[str, tuple[str, bool]]) -> Problem:
    """Why the route of provider ``name`` cannot be used, naming the key; ``shapes``: provider → (channel,
    label_brackets). A message keeps the text planned for the route's provider, so its accounts must label
    advertising the same way."""
    channels = {provider: channel for provider, (channel, _) in shapes.items()}
    if name not in channels:
        return _("routes.%(name)s: no provider %(name)s to route for; name a [providers.NAME]") % {
            "name": name
        }
    for carrier, accounts in route.items():
        where = f"routes.{name}.{carrier}"
        if not accounts:
            return _("%(where)s: list at least one [account, weight]") % {"where": where}
        for account, weight in accounts:
            if account not in channels:
                return _("%(where)s: unknown provider %(account)s") % {"where": where, "account": account}
            if channels[account] != channels[name]:
                return _("%(where)s: %(account)s is not a %(channel)s provider like %(name)s") % {
                    "where": where,
                    "account": account,
                    "channel": channels[name],
                    "name": name,
                }
            if shapes[account][1] != shapes[name][1]:
                return _("%(where)s: %(account)s and %(name)s differ in label_brackets") % {
                    "where": where,
                    "account": account,
                    "name": name,
                }
            if weight <= 0:
                return _("%(where)s: the weight of %(account)s must be above 0") % {
                    "where": where,
                    "account": account,
                }
    return None
