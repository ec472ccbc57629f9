"""The sections of ``broadcaster.toml`` (``[org]``, ``[sms]``, ``[web]``, ``[providers.NAME]``…): one model
each, with its defaults and checks. ``broadcaster.settings`` assembles them and loads the file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from broadcaster.consent_texts import consent_message
from broadcaster.i18n import gettext as _
from broadcaster.logs import LogFormat
from consent.keywords import DEFAULT_OPT_OUT_KEYWORDS, Keywords, keywords_from
from consent.policy import PolicySettings, PurposeLimits, UnknownPurpose, rules_for

SECRET_MARKERS = ("password", "secret", "token", "key")


class OrgSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "Sở Khoa học và Công nghệ thành phố Đà Nẵng"
    short_name: str = "SKHCN"
    parent: str = "UBND thành phố Đà Nẵng"
    city: str = "Đà Nẵng"
    address: str = "Tầng 20, Trung tâm Hành chính thành phố, 24 Trần Phú, Đà Nẵng"
    phone: str = "0236 3822 123"
    hotline: str = "1022"
    email: str = "skhcn@danang.gov.vn"
    website: str = "https://skhcn.danang.gov.vn"
    # The language of the CLI, the web UI and the API's problem texts; unset: LANG when it names one of
    # them, else Vietnamese (broadcaster/i18n.py).
    language: Literal["vi", "en"] | None = None


class AgencySettings(BaseModel):
    """An agency the plan names: its current name and the code of its documents ("số / ký hiệu")."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    code: str = Field(min_length=1, max_length=20)


# The agencies plan 143 names, after the 2025 reorganisation (docs/domain.md §0): the Department of Information
# and Communications is part of the Department of Science and Technology, Planning and Investment part of
# Finance, and the districts are gone (their tasks are the wards' and communes'). ``init`` writes these to
# broadcaster.toml; campaigns/plan-143/plan.yaml and recorded activities name them by key.
DEFAULT_AGENCIES: dict[str, tuple[str, str]] = {
    "skhcn": ("Sở Khoa học và Công nghệ thành phố Đà Nẵng", "SKHCN"),
    "snv": ("Sở Nội vụ thành phố Đà Nẵng", "SNV"),
    "stc": ("Sở Tài chính thành phố Đà Nẵng", "STC"),
    "svhtt": ("Sở Văn hóa và Thể thao thành phố Đà Nẵng", "SVHTT"),
    "vp-ubnd": ("Văn phòng UBND thành phố Đà Nẵng", "VP"),
    "cong-ttdt": ("Cổng Thông tin điện tử thành phố Đà Nẵng", "CTTĐT"),
    "dai-ptth": ("Đài Phát thanh - Truyền hình Đà Nẵng", "PTTH"),
    "bao-da-nang": ("Báo Đà Nẵng", "BĐN"),
    "tap-chi-ptktxh": ("Tạp chí Phát triển Kinh tế - Xã hội Đà Nẵng", "TCPTKTXH"),
    "tap-chi-non-nuoc": ("Tạp chí Non nước", "TCNN"),
    "btg-tu": ("Ban Tuyên giáo và Dân vận Thành ủy Đà Nẵng", "BTGDVTU"),
    "ubnd-phuong-xa": ("UBND các phường, xã", "UBND"),
    "co-quan-don-vi": ("Các cơ quan hành chính, đơn vị sự nghiệp thành phố", "CQĐV"),
}


def default_agencies() -> dict[str, AgencySettings]:
    return {key: AgencySettings(name=name, code=code) for key, (name, code) in DEFAULT_AGENCIES.items()}


AGENCY_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_MONTH_DAY = r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class ReportSettings(BaseModel):
    """The half-year report periods (plan 143 section V: reports before 30/5 and 30/11).

    ``2026-H1`` runs from the day after the previous year's ``h2_cutoff`` to ``h1_cutoff`` of 2026, ``2026-H2``
    from the day after ``h1_cutoff`` to ``h2_cutoff``: a report due on 30/5 counts what happened up to the
    cut-off, leaving the agency time to write it (broadcaster/reporting/periods.py)."""

    model_config = ConfigDict(extra="forbid")

    h1_cutoff: str = Field(default="05-15", pattern=_MONTH_DAY)
    h2_cutoff: str = Field(default="11-15", pattern=_MONTH_DAY)
    # The reporting agency: a key of [agencies], printed in the report's header with its name and code.
    agency: str = "skhcn"
    # A half-year's daily rollups are frozen this many days after it ends (after the 30/5 and 30/11 deadlines
    # with the default cut-offs); only an admin rebuilds frozen days (`report rollup --refreeze`).
    freeze_grace_days: int = Field(default=15, ge=0, le=366)

    @model_validator(mode="after")
    def _ordered(self) -> ReportSettings:
        for name in ("h1_cutoff", "h2_cutoff"):
            month, day = (int(part) for part in getattr(self, name).split("-"))
            try:
                date(2000, month, day)  # a leap year: 02-29 is allowed (the 28th in other years)
            except ValueError:
                raise ValueError(
                    _("%(field)s: %(value)s is not a day of the year")
                    % {"field": name, "value": getattr(self, name)}
                ) from None
        if self.h1_cutoff >= self.h2_cutoff:
            raise ValueError(
                _("h1_cutoff %(h1)s must come before h2_cutoff %(h2)s")
                % {"h1": self.h1_cutoff, "h2": self.h2_cutoff}
            )
        return self

    def longest_period_days(self) -> int:
        """The days of the longer half-year (in a leap year: the bound for every year)."""
        h1_end = date(2024, *(int(part) for part in self.h1_cutoff.split("-")))
        h2_end = date(2024, *(int(part) for part in self.h2_cutoff.split("-")))
        second = (h2_end - h1_end).days
        return max(second, 366 - second)


class DatabaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = "sqlite:///broadcaster.sqlite3"
    echo: bool = False


class BrokerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Embedded default: kombu's SQLAlchemy transport on its own SQLite file (never the data file).
    url: str = "sqla+sqlite:///broker.sqlite3"
    # Redis only: how long a task a worker took but did not acknowledge (late acks) stays invisible before
    # Redis gives it to another worker; after a worker is killed its tasks wait this long. It must exceed the
    # longest a task runs ([delivery] chunk_max_seconds), or a running chunk would be redelivered; kombu's
    # default is an hour (docs/architecture.md §3, "A killed worker's tasks come back").
    visibility_timeout: float = Field(default=300.0, gt=0)
    # Celery task events (sent, started, succeeded…) and worker heartbeats, which Flower shows. Unset: on with
    # RabbitMQ and Redis, off with the embedded SQLite broker, which has no fan-out for them
    # (docs/deployment.md, "Flower").
    task_events: bool | None = None

    def events_on(self, url: str) -> bool:
        return (not url.startswith("sqla+")) if self.task_events is None else self.task_events


class HealthSettings(BaseModel):
    """Thresholds of ``broadcaster health`` (docs/supervision.md, "Health")."""

    model_config = ConfigDict(extra="forbid")

    # The tick (beat or `run`) is stopped when its last run is older than this; it must exceed
    # [delivery] tick_seconds.
    beat_stale_seconds: float = Field(default=180.0, gt=0)
    # The oldest queued message that is due: degraded past the first age, unhealthy past the second.
    backlog_degraded_seconds: float = Field(default=600.0, gt=0)
    backlog_unhealthy_seconds: float = Field(default=3600.0, gt=0)
    # A provider unreachable this long is unhealthy (shorter: degraded); also the alert's threshold.
    provider_down_seconds: float = Field(default=300.0, gt=0)
    # Connect + EHLO to a mail relay, connect to the broker: each gives up after this.
    probe_timeout_seconds: float = Field(default=5.0, gt=0, le=60)


class MetricsSettings(BaseModel):
    """Prometheus metrics: ``broadcaster metrics`` listens on host:port; ``serve`` shows /metrics only with a
    token (docs/supervision.md, "Metrics")."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=1, le=65535)
    # Non-empty: `broadcaster serve` answers GET /metrics to "Authorization: Bearer <token>" (else 404).
    token: str = ""


class AlertSettings(BaseModel):
    """E-mails to the admins when something needs a person (docs/supervision.md, "Alerts")."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # The e-mail provider alerts go through (default: the first e-mail provider in [providers]).
    provider: str = ""
    # Admins' addresses by login: an alert goes to each active admin listed here.
    admins: dict[str, str] = Field(default_factory=dict)
    # An open incident is told again this often, until it is over.
    remind_seconds: float = Field(default=4 * 3600.0, gt=0)

    @field_validator("admins")
    @classmethod
    def _addresses(cls, value: dict[str, str]) -> dict[str, str]:
        for login, address in value.items():
            if "@" not in address.strip("@") or any(c.isspace() for c in address):
                raise ValueError(
                    _("alerts.admins.%(login)s: '%(address)s' is not an e-mail address")
                    % {"login": login, "address": address}
                )
        return value


class SecuritySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Signs List-Unsubscribe tokens; `init` writes a random one. Empty: no opt-out links are offered.
    unsubscribe_secret: str = ""
    # Keys the hash by which people erased on request are still recognised (a refusal outlives erasure).
    # Never change it: a new key forgets every erasure. Empty: the unsubscribe secret is used.
    subject_key: str = ""
    # Shared with the city app's backend, which signs its consent requests with it (HMAC-SHA256). Empty: the
    # city-app endpoint refuses every request.
    city_app_key: str = ""
    # How far a signed request's timestamp may be from this server's clock; nonces are kept this long.
    city_app_replay_window_seconds: int = Field(default=300, ge=30, le=3600)

    def erasure_key(self) -> str:
        """The key of erasure tombstones' hashes (``consent.erasure.subject_hash``)."""
        return self.subject_key or self.unsubscribe_secret


class PriceTable(BaseModel):
    """Price of one SMS part in VND, by encoding."""

    model_config = ConfigDict(extra="forbid")

    gsm7: float = Field(ge=0)
    ucs2: float = Field(ge=0)


class ConsentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A reply that is, normalised, exactly one of these opts the number out (consent.keywords).
    opt_out_keywords: list[str] = Field(default_factory=lambda: list(DEFAULT_OPT_OUT_KEYWORDS))

    @field_validator("opt_out_keywords")
    @classmethod
    def _usable_keywords(cls, value: list[str]) -> list[str]:
        keywords_from({"[consent] opt_out_keywords": value})  # an empty or duplicated keyword is refused here
        return value

    # Send hours and per-recipient caps per purpose, over the table's defaults ([consent.purposes.advertising]).
    purposes: dict[str, PurposeLimits] = Field(default_factory=dict)

    @field_validator("purposes")
    @classmethod
    def _known_purposes(cls, value: dict[str, PurposeLimits]) -> dict[str, PurposeLimits]:
        for name in value:
            try:
                rules_for(name)
            except UnknownPurpose as stranger:  # named with its section, not pydantic's nested location
                raise ValueError(f"[consent.purposes.{name}]: {consent_message(stranger)}") from None
        return value

    def keywords(self) -> Keywords:
        return keywords_from({"[consent] opt_out_keywords": self.opt_out_keywords})

    def policy(self) -> PolicySettings:
        return PolicySettings(purposes=self.purposes)


class SmsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    currency: str = "VND"
    # Keys are allocated-carrier names as phonenumbers reports them; "default" covers the rest.
    prices: dict[str, PriceTable] = Field(
        default_factory=lambda: {
            "default": PriceTable(gsm7=800, ucs2=1600),
            "Viettel": PriceTable(gsm7=750, ucs2=1500),
            "Vinaphone": PriceTable(gsm7=770, ucs2=1540),
            "MobiFone": PriceTable(gsm7=770, ucs2=1540),
        }
    )
    max_segments: int = Field(default=5, ge=1, le=255)

    def price(self, *, carrier: str | None, encoding: str) -> float:
        table = self.prices.get(carrier or "", None) or self.prices.get("default")
        if table is None:
            return 0.0
        return float(getattr(table, encoding))


class DeliverySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chunk_size: int = Field(default=500, ge=1, le=5000)
    plan_page_size: int = Field(default=1000, ge=10)
    chunk_max_seconds: float = Field(default=120.0, gt=0)
    # Rows stuck in queued/sending longer than this are handed back by the sweeper.
    stuck_after_seconds: float = Field(default=600.0, gt=0)
    # A run still being planned with no page planned for this long is asked of the workers again: its task was
    # refused by a broker that was down, or lost with its worker (planning resumes at its checkpoint).
    plan_stalled_seconds: float = Field(default=300.0, gt=0)
    # Back-off between attempts after a transient error (seconds); its length bounds the attempts.
    retry_backoff: list[float] = Field(default_factory=lambda: [30.0, 120.0, 600.0, 1800.0])
    # A window in which more than this share fails permanently pauses the campaign before anyone is
    # suppressed, once the window has at least ``auto_pause_min_window`` messages.
    auto_pause_failure_share: float = Field(default=0.5, gt=0, le=1)
    auto_pause_min_window: int = Field(default=10, ge=1)
    tick_seconds: float = Field(default=60.0, gt=0)
    # An occurrence found due later than this (the engine was stopped) is recorded as missed, not sent.
    missed_occurrence_grace_seconds: float = Field(default=6 * 3600.0, gt=0)
    # How long the broker's message table keeps acknowledged rows (kombu's SQL transport never deletes).
    broker_cleanup_seconds: float = Field(default=3600.0, gt=0)
    # An embedded worker whose parent (send --wait, run) died stops like on SIGTERM; past this, at once.
    orphan_grace_seconds: float = Field(default=15.0, gt=0)
    # One gateway per SMPP account: the lease it renews lapses this long after a gateway that vanished on
    # another host (on the same host, a dead gateway's lease is taken over at once).
    gateway_lease_seconds: float = Field(default=30.0, ge=3)
    # Exactly one beat ticks: the leader renews its lease every third of this; a waiting beat takes over this
    # long after the leader vanished on another host (at once when it was on the same host).
    beat_lease_seconds: float = Field(default=30.0, ge=3)


class ContactsSettings(BaseModel):
    """Bounds on one contacts file: a hostile or mistaken file is refused at once, not read for minutes (an
    XLSX is a zip: 2.6 MB on disk can unpack to 700 MB of XML and 3 million rows)."""

    model_config = ConfigDict(extra="forbid")

    # The whole city in one file: ~2.8 million residents (docs/domain.md §0); the import streams, so these bound
    # the time a file may take (a few minutes), not memory.
    max_rows: int = Field(default=4_000_000, ge=1)  # rows of contacts, the header not counted
    max_file_mb: int = Field(default=1024, ge=1)  # a CSV's size; an XLSX's content once unpacked

    @property
    def max_file_bytes(self) -> int:
        return self.max_file_mb * 1024 * 1024


class RenderingSettings(BaseModel):
    """What one rendering of one message part (SMS text; e-mail subject, text or HTML) may cost, wherever it
    runs: validate, load, preview, test sends and the workers. A template past a limit fails with an error
    naming the template and the setting, instead of hanging the engine or filling its memory."""

    model_config = ConfigDict(extra="forbid")

    # Characters (or list items) in the rendering and in any value made on the way. An SMS of 255 parts is
    # ~40,000 characters; mail clients cut HTML mails at ~100 KB.
    max_output_chars: int = Field(default=200_000, ge=1_000)
    # Checked at every loop step and call of the template (no signal: workers render in threads). Real
    # templates render in milliseconds.
    max_seconds: float = Field(default=2.0, gt=0)


class LoggingSettings(BaseModel):
    """How the engine's processes write their log lines (the CLI's ``--log-format`` overrides it)."""

    model_config = ConfigDict(extra="forbid")

    # "json": one object per line with campaign_id, run_id, message_id, provider when known (broadcaster.logs).
    format: LogFormat = "text"


class WebSettings(BaseModel):
    """Where ``broadcaster serve`` listens; the public base URL of the opt-out links must reach it."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)  # processes of `broadcaster serve`
    # "auto": session cookies are Secure whenever the request came over HTTPS (uvicorn believes the
    # X-Forwarded-Proto of the proxies in forwarded_allow_ips); "always": Secure even over plain HTTP.
    secure_cookies: Literal["auto", "always"] = "auto"
    forwarded_allow_ips: str = "127.0.0.1"
    # A session ends after this long without a request, and in any case after session_max_hours.
    session_idle_minutes: int = Field(default=30, ge=5, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=7 * 24)
    # After lockout_attempts failed sign-ins in a row the account is locked for lockout_minutes.
    lockout_attempts: int = Field(default=5, ge=3, le=20)
    lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # The city SSO's reverse proxy: the header naming the signed-in login, believed only from these
    # addresses. Empty: sign-in by password only.
    sso_header: str = ""
    sso_trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    # API keys: requests per minute a new key may make unless `apikeys create --rate` says otherwise.
    api_rate_per_minute: int = Field(default=600, ge=1, le=1_000_000)


class BounceSettings(BaseModel):
    """Where the inbound SMTP listener (``broadcaster bounces``) takes DSNs and mailto opt-outs; the bounce
    domain's MX must reach it."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=2526, ge=1, le=65535)
    # A DSN returns at most the original's headers or the bulletin itself; bigger mails are refused (552).
    max_message_bytes: int = Field(default=10_000_000, ge=10_000)
    # The embedded deployment: ``broadcaster run`` starts the listener next to its workers.
    start_with_run: bool = False


class AuditSettings(BaseModel):
    """The tamper-evident audit trail (docs/audit.md)."""

    model_config = ConfigDict(extra="forbid")

    # An Ed25519 private key (PEM, PKCS#8) that signs `audit anchor` exports; a path relative to the settings
    # file. Empty: anchors are written unsigned. `broadcaster audit keygen` makes one.
    signing_key: str = ""
    # One entry per sending window and per applied batch of delivery results (ids, statuses, address and
    # content hashes). Off only to measure what the entries cost (benchmarks); an installation keeps it on.
    deliveries: bool = True


class RetentionSettings(BaseModel):
    """How long message content and recipient addresses are kept (docs/audit.md, retention).

    After ``personal_data_days`` days a settled message keeps only its proof: id, status, times, events, the
    keyed hash of its address and the hash of its content; the frozen rollups keep the reports' figures. The
    period may not be shorter than the longest report period plus ``[reports] freeze_grace_days``
    (checked when the settings load): a report must be written and frozen before its data goes."""

    model_config = ConfigDict(extra="forbid")

    personal_data_days: int = Field(default=730, ge=1, le=36_500)
    # Raw inbound records (receipts, MO, bounce mails as received) are deleted this many days after they
    # arrived, once applied: their outcome lives on in delivery events, statuses and the inbox.
    inbound_days: int = Field(default=90, ge=1, le=36_500)


class ProviderSettings(BaseModel):
    """A named provider: ``channel`` and ``type`` pick the adapter; the other keys are the adapter's."""

    model_config = ConfigDict(extra="allow")

    channel: Literal["sms", "email", "push", "social"]
    type: str
    tps: float | None = Field(
        default=None, gt=0
    )  # per second (SMPP: submit_sm, i.e. SMS parts); None = unlimited
    # Messages per dispatch task for this provider; None = ``[delivery] chunk_size``. An SMPP gateway
    # sends its chunks one after another in one process, so bigger chunks spare it the per-chunk start
    # and finish, which no window overlaps.
    chunk_size: int | None = Field(default=None, ge=1, le=20000)
    # SMS: whether the account's brandname route takes brackets, so advertising starts "[QC]" rather than
    # "QC " (docs/domain.md §1.1, Decree 91/2020 art. 15); campaign validation checks the label by it. A
    # declared field, not an adapter option: the adapter is built from the others. E-mail ignores it.
    label_brackets: bool = True

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def masked(self) -> dict[str, Any]:
        return mask_secrets(self.model_dump())


def mask_secrets(data: Mapping[str, Any], *, secret: bool = False) -> dict[str, Any]:
    """``data`` with the values of secret keys masked; below a secret key (a Facebook provider's
    ``page_tokens``: page id → token) every value is, and the keys stay readable."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        hidden = secret or any(marker in str(key).lower() for marker in SECRET_MARKERS)
        if isinstance(value, Mapping):
            out[key] = mask_secrets(value, secret=hidden)
        elif hidden and value:
            out[key] = "********"
        else:
            out[key] = value
    return out
