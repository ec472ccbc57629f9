"""Routing SMS between SMSC accounts ([routes.NAME]): by allocated carrier and weight, stable per address,
leaving out accounts that are down or tripped; the outcome window that trips a failing or slow account and
lets it back after its probe; the settings' checks."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broadcaster.context import AppContext
from broadcaster.db.models import ProviderHealth
from broadcaster.outbox.health import UNREACHABLE, UP
from broadcaster.outbox.outcomes import OutcomeWindow
from broadcaster.outbox.routing import DEGRADED, Router, unhealthy_providers
from broadcaster.settings import Settings
from broadcaster.settings_rates import RoutingSettings

NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def smpp(**extra: Any) -> dict[str, Any]:
    return {"channel": "sms", "type": "smpp", "host": "127.0.0.1", "port": 2775, **extra}


def routed(**routing: Any) -> Settings:
    return Settings(
        providers={"sms_main": smpp(), "viettel_direct": smpp(), "vnpt": smpp()},
        routes={
            "sms_main": {
                "Viettel": [("viettel_direct", 3), ("sms_main", 1)],
                "default": [("sms_main", 1), ("vnpt", 1)],
            }
        },
        routing=routing,
    )


def numbers(count: int) -> list[str]:
    return [f"+8498{i:07d}" for i in range(count)]


def test_messages_are_shared_by_carrier_and_weight_and_stay_put_for_an_address() -> None:
    router = Router(routed())
    viettel = Counter(router.pick("sms_main", carrier="Viettel", key=n) for n in numbers(4000))
    assert set(viettel) == {"viettel_direct", "sms_main"}
    assert 0.70 < viettel["viettel_direct"] / 4000 < 0.80  # weights 3:1
    others = Counter(router.pick("sms_main", carrier="MobiFone", key=n) for n in numbers(4000))
    assert set(others) == {"sms_main", "vnpt"}  # the route's default
    assert router.pick("sms_main", carrier="Viettel", key="+84981234567") == router.pick(
        "sms_main", carrier="Viettel", key="+84981234567"
    )
    assert router.pick("email_main", carrier=None, key="a@b.vn") == "email_main"  # no route: itself


def test_unhealthy_accounts_are_left_out_and_a_carrier_with_none_left_borrows_the_routes_others() -> None:
    router = Router(routed())
    picks = {
        router.pick("sms_main", carrier="Viettel", key=n, unhealthy={"viettel_direct"}) for n in numbers(500)
    }
    assert picks == {"sms_main"}
    picks = {
        router.pick("sms_main", carrier="Viettel", key=n, unhealthy={"viettel_direct", "sms_main"})
        for n in numbers(500)
    }
    assert picks == {"vnpt"}
    # Where a down account's queued message goes instead: never back to it.
    assert (
        router.alternative("viettel_direct", carrier="Viettel", key="+84981", unhealthy=set()) == "sms_main"
    )
    assert (
        router.alternative("vnpt", carrier=None, key="+84981", unhealthy={"sms_main", "viettel_direct"})
        is None
    )


def test_an_account_is_unhealthy_after_failover_after_seconds_down_or_while_tripped(
    context: AppContext,
) -> None:
    settings = routed(failover_after_seconds=30, probe_after_seconds=60)
    rows = {
        "sms_main": (UNREACHABLE, NOW - timedelta(seconds=31)),
        "vnpt": (UNREACHABLE, NOW - timedelta(seconds=5)),  # a blip: not yet
        "viettel_direct": (DEGRADED, NOW - timedelta(seconds=59)),
        "old_trip": (DEGRADED, NOW - timedelta(seconds=61)),  # probe time: tried again
        "fine": (UP, NOW - timedelta(hours=1)),
    }
    with context.sessions.begin() as session:
        for provider, (state, since) in rows.items():
            session.add(ProviderHealth(provider=provider, state=state, since=since, updated_at=since))
    with context.readers() as session:
        assert unhealthy_providers(session, settings, now=NOW) == {"sms_main", "viettel_direct"}


def test_the_outcome_window_trips_on_errors_or_latency_and_lets_the_account_back_after_a_good_probe() -> None:
    changes: list[tuple[str, str]] = []
    window = OutcomeWindow(
        RoutingSettings(
            window_seconds=10,
            min_outcomes=10,
            max_error_share=0.3,
            max_latency_seconds=2,
            probe_after_seconds=5,
        ),
        on_change=lambda provider, state, _detail: changes.append((provider, state)),
    )
    assert window.add("a", good=5, bad=0, latency=0.1, now=0) is None  # too few to judge
    assert window.add("a", good=4, bad=4, latency=0.1, now=1) == DEGRADED  # 4 of 13
    assert window.add("a", good=0, bad=10, latency=0.1, now=2) is None  # windows sent before the trip
    assert window.add("a", good=20, bad=0, latency=0.1, now=7) == UP  # the probe after 5 s went well
    assert window.add("b", good=20, bad=0, latency=3.0, now=0) == DEGRADED  # slow
    assert window.add("c", good=20, bad=0, latency=0.1, now=0) is None
    # Outcomes older than the window do not count.
    assert window.add("c", good=0, bad=5, latency=0.1, now=20) is None
    assert changes == [("a", DEGRADED), ("a", UP), ("b", DEGRADED)]


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"Viettel": [("nobody", 1)]}, "routes.sms_main.Viettel: unknown provider nobody"),
        ({"default": [("mail", 1)]}, "routes.sms_main.default: mail is not a sms provider"),
        ({"default": [("vnpt", 0)]}, "routes.sms_main.default: the weight of vnpt must be above 0"),
        ({"default": []}, "routes.sms_main.default: list at least one"),
        ({"default": [("plain", 1)]}, "routes.sms_main.default: plain and sms_main differ in label_brackets"),
    ],
)
def test_a_route_naming_what_cannot_carry_its_messages_is_refused(
    route: dict[str, Any], message: str
) -> None:
    providers = {
        "sms_main": smpp(),
        "vnpt": smpp(),
        "plain": smpp(label_brackets=False),
        "mail": {"channel": "email", "type": "smtp", "host": "127.0.0.1", "port": 25},
    }
    with pytest.raises(ValueError, match=message):
        Settings(providers=providers, routes={"sms_main": route})
