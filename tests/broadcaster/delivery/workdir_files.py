"""What a delivery test's working directory is made of: the people, contacts rows and files, and the
broadcaster.toml sections that point the providers at the test's own sandbox peers."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from broadcaster.contacts.reader import FIELDS

EDITOR = "bien_tap"
APPROVER = "phe_duyet"
CONTACT_COLUMNS = FIELDS
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Võ", "Đặng", "Bùi")
GIVEN = ("Văn An", "Thị Bích", "Minh Hoàng", "Thu Hà", "Quốc Bảo", "Ngọc Ánh", "Đức Thắng", "Thị Hương")

# Test-friendly engine settings: real protocols, short waits. Back-offs are measured on the frozen clock.
DELIVERY = {
    "chunk_size": 200,
    "retry_backoff": [30.0, 120.0],
    "stuck_after_seconds": 600.0,
    "auto_pause_failure_share": 0.5,
    "auto_pause_min_window": 10,
    "missed_occurrence_grace_seconds": 6 * 3600.0,
}


UNSUBSCRIBE_SECRET = "test-unsubscribe-secret"


def citizen(number: int, **overrides: str) -> dict[str, str]:
    """One contacts-file row with a unique Vinaphone number, e-mail and a Vietnamese name."""
    row = {
        "external_id": f"DN-{number:06d}",
        "full_name": f"{FAMILY[number % len(FAMILY)]} {GIVEN[number % len(GIVEN)]} {number}",
        "phone": f"0912{number:06d}",
        "email": f"cong.dan{number}@example.vn",
        "segment": "citizen",
        "agency": "",
        "district": "Hải Châu",
        "ward": "Thạch Thang",
        "language": "vi",
        "tags": "",
    }
    row.update(overrides)
    return row


def citizens(count: int, *, first: int = 1) -> list[dict[str, str]]:
    return [citizen(n) for n in range(first, first + count)]


def write_contacts_csv(path: Path, rows: Iterable[Mapping[str, str]]) -> Path:
    """A contacts file as an officer exports it from Excel: UTF-8 with BOM, the docs/architecture.md §5 columns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CONTACT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in CONTACT_COLUMNS})
    return path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table (a Facebook provider's page_tokens)
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} to TOML")


def render_config(sections: Mapping[str, Mapping[str, Any]]) -> str:
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def provider_sections(
    *,
    smtp_port: int,
    smpp_port: int,
    sms: Mapping[str, Any] | None = None,
    mail: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    sms_main: dict[str, Any] = {
        "channel": "sms",
        "type": "smpp",
        "host": "127.0.0.1",
        "port": smpp_port,
        "system_id": "skhcn",
        "password": "sandbox",
        "source_addr": "SKHCN",
        "binds": 1,
        "window": 64,
        "pdu_timeout": 5.0,
        "reconnect_initial": 0.05,
        "reconnect_max": 0.5,
        "connect_timeout": 2.0,
        "throttle_backoff": 0.01,
        "throttle_backoff_max": 0.05,
    }
    sms_main.update(sms or {})
    mail_section: dict[str, Any] = {
        "channel": "email",
        "type": "smtp",
        "host": "127.0.0.1",
        "port": smtp_port,
        "from_address": "thongbao@skhcn.danang.gov.vn",
        "from_name": "Sở Khoa học và Công nghệ thành phố Đà Nẵng",
        "bounce_domain": "skhcn.danang.gov.vn",
        "unsubscribe_base_url": "https://skhcn.danang.gov.vn/huy-dang-ky",
        "tls": "none",
        "connections": 4,
        "timeout": 10.0,
    }
    mail_section.update(mail or {})
    return {"providers.sms_main": sms_main, "providers.mail": mail_section}


# The providers `broadcaster init` writes for the shipped campaigns' push and Page channels (broadcaster/workdir.py),
# for a test that validates those campaigns in a pipeline's directory. The Graph URL is a closed local port: no
# command may reach Facebook from a test.
SHIPPED_PROVIDERS: dict[str, dict[str, Any]] = {
    "app_danang": {"channel": "push", "type": "file", "path": "app-danang.jsonl"},
    "fanpage_skhcn": {
        "channel": "social",
        "type": "facebook",
        "graph_url": "http://127.0.0.1:9",
        "page_tokens": {"100000000000143": "change-me"},
    },
}
