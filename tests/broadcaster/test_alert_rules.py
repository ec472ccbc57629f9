"""docker/prometheus/alerts.yml parses as Prometheus rule groups, and every metric it uses is one that
``broadcaster.observe.metrics`` exposes (a renamed metric would silently never fire)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from broadcaster.observe.metrics import METRIC_NAMES
from broadcaster.outbox.instruments import PROCESS_METRIC_NAMES

RULES = Path(__file__).resolve().parents[2] / "docker" / "prometheus" / "alerts.yml"
# Names in an expression that are not metrics: PromQL functions, keywords and Prometheus' own ``up``.
_NAME = re.compile(r"\b(broadcaster_[a-z_]+)\b")
_DURATION = re.compile(r"^\d+[smhd]$")
_HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def rules() -> list[dict[str, object]]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    groups = document["groups"]
    assert groups, "no rule group"
    return [rule for group in groups for rule in group["rules"]]


def test_every_rule_is_complete() -> None:
    names = []
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert isinstance(rule["expr"], str), rule
        assert rule["expr"].strip(), rule
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule  # type: ignore[index]
        assert rule["annotations"]["summary"], rule  # type: ignore[index]
        if "for" in rule:
            assert _DURATION.match(str(rule["for"])), rule
        names.append(rule["alert"])
    assert len(names) == len(set(names)), "two rules share a name"


def test_every_metric_used_exists() -> None:
    used = {name for rule in rules() for name in _NAME.findall(str(rule["expr"]))}
    assert used, "the rules use no Broadcaster metric"
    histograms = {_HISTOGRAM_SERIES.sub("", name) for name in used if _HISTOGRAM_SERIES.search(name)}
    assert histograms <= set(PROCESS_METRIC_NAMES), histograms - set(PROCESS_METRIC_NAMES)
    gauges = {name for name in used if not _HISTOGRAM_SERIES.search(name)}
    assert gauges <= set(METRIC_NAMES), gauges - set(METRIC_NAMES)
