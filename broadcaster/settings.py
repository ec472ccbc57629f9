"""Settings: ``broadcaster.toml`` in the working directory, every key overridable by ``BROADCASTER_*``.

Nested keys use a double underscore in the environment: ``BROADCASTER_DATABASE__URL``,
``BROADCASTER_PROVIDERS__SMS_MAIN__HOST``. Agency names, report periods and prices are settings, never
constants: the department was renamed in 2025 and other cities may run this.
"""

from __future__ import annotations

import functools
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from broadcaster.errors import UserError
from broadcaster.i18n import gettext as _
from broadcaster.logs import LogFormat
from broadcaster.settings_rates import (
    REDIS_SCHEMES,
    RateLimitSettings,
    Route,
    RoutingSettings,
    route_problem,
)
from broadcaster.settings_sections import (
    AGENCY_KEY,
    AgencySettings,
    AlertSettings,
    AuditSettings,
    BounceSettings,
    BrokerSettings,
    ConsentSettings,
    ContactsSettings,
    DatabaseSettings,
    DeliverySettings,
    HealthSettings,
    LoggingSettings,
    MetricsSettings,
    OrgSettings,
    ProviderSettings,
    RenderingSettings,
    ReportSettings,
    RetentionSettings,
    SecuritySettings,
    SmsSettings,
    WebSettings,
    default_agencies,
    mask_secrets,
)

CONFIG_FILENAME = "broadcaster.toml"
# Sections that held rules guarding four-eyes; those rules now live in the database (broadcaster.policies),
# where a caller cannot switch them off with a file or a variable of their own.
RETIRED_SECTIONS = ("identity", "approval")
# ``[logging] format`` in the environment: how ``--log-format`` reaches the settings and the workers.
LOG_FORMAT_ENV = "BROADCASTER_LOGGING__FORMAT"


class SettingsError(UserError):
    """The settings file or environment is wrong; the message names the key and the file."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BROADCASTER_",
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    org: OrgSettings = Field(default_factory=OrgSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    rendering: RenderingSettings = Field(default_factory=RenderingSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    consent: ConsentSettings = Field(default_factory=ConsentSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    contacts: ContactsSettings = Field(default_factory=ContactsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    bounces: BounceSettings = Field(default_factory=BounceSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    agencies: dict[str, AgencySettings] = Field(default_factory=default_agencies)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    routes: dict[str, Route] = Field(default_factory=dict)
    plan_file: str = "campaigns/plan-143/plan.yaml"
    templates_dir: str = "templates"
    campaigns_dir: str = "campaigns"
    notices_dir: str = "notices"
    sandbox_dir: str = "sandbox"
    timezone: str = "Asia/Ho_Chi_Minh"

    # Where the settings came from; relative paths and SQLite URLs resolve against it.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    toml_path: ClassVar[Path | None] = None

    @field_validator("providers")
    @classmethod
    def _known_types(cls, value: dict[str, ProviderSettings]) -> dict[str, ProviderSettings]:
        from channels.registry import check_type

        for name, provider in value.items():
            try:
                check_type(provider.type)
            except KeyError as exc:
                raise ValueError(f"providers.{name}.type: {exc}") from None
        return value

    @field_validator("agencies")
    @classmethod
    def _agency_keys(cls, value: dict[str, AgencySettings]) -> dict[str, AgencySettings]:
        for key in value:
            if not AGENCY_KEY.match(key):
                raise ValueError(
                    _("agencies.%(key)s: a key is lowercase letters, digits and '-', e.g. vp-ubnd")
                    % {"key": key}
                )
        return value

    @model_validator(mode="after")
    def _reporting_agency(self) -> Settings:
        if self.reports.agency not in self.agencies:
            known = ", ".join(sorted(self.agencies)) or _("none configured")
            raise ValueError(
                _("reports.agency: unknown agency '%(agency)s'; name a key of [agencies] (known: %(known)s)")
                % {"agency": self.reports.agency, "known": known}
            )
        return self

    @model_validator(mode="after")
    def _visibility_outlasts_a_chunk(self) -> Settings:
        if self.broker.visibility_timeout <= self.delivery.chunk_max_seconds:
            raise ValueError(
                _(
                    "broker.visibility_timeout: %(timeout)s s is not longer than [delivery] chunk_max_seconds "
                    "(%(chunk)s s): Redis would give a chunk that is still being sent to a second worker"
                )
                % {"timeout": self.broker.visibility_timeout, "chunk": self.delivery.chunk_max_seconds}
            )
        return self

    @model_validator(mode="after")
    def _supervision_thresholds(self) -> Settings:
        if self.health.beat_stale_seconds <= self.delivery.tick_seconds:
            raise ValueError(
                _(
                    "health.beat_stale_seconds: %(stale)s s is not longer than [delivery] tick_seconds "
                    "(%(tick)s s): a running beat would be reported stopped between two ticks"
                )
                % {"stale": self.health.beat_stale_seconds, "tick": self.delivery.tick_seconds}
            )
        if self.health.backlog_unhealthy_seconds < self.health.backlog_degraded_seconds:
            raise ValueError(
                _(
                    "health.backlog_unhealthy_seconds: %(unhealthy)s s is shorter than "
                    "health.backlog_degraded_seconds (%(degraded)s s)"
                )
                % {
                    "unhealthy": self.health.backlog_unhealthy_seconds,
                    "degraded": self.health.backlog_degraded_seconds,
                }
            )
        provider = self.providers.get(self.alerts.provider) if self.alerts.provider else None
        if self.alerts.provider and (provider is None or provider.channel != "email"):
            raise ValueError(
                _("alerts.provider: '%(provider)s' is not an e-mail provider in [providers]")
                % {"provider": self.alerts.provider}
            )
        return self

    @model_validator(mode="after")
    def _routes_name_providers(self) -> Settings:
        shapes = {
            name: (provider.channel, provider.label_brackets) for name, provider in self.providers.items()
        }
        for name, route in self.routes.items():
            problem = route_problem(name, route, shapes)
            if problem is not None:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _redis_for_rate_limits(self) -> Settings:
        if self.rate_limit.backend == "redis" and self.rate_limit_redis_url() is None:
            raise ValueError(
                _(
                    'rate_limit.backend: "redis" needs [rate_limit] redis_url, or a Redis [broker] url '
                    "(it is %(url)s)"
                )
                % {"url": _mask_url(self.broker.url)}
            )
        return self

    def rate_limit_redis_url(self) -> str | None:
        """The Redis server of the providers' rate buckets, or None when they are database rows."""
        if self.rate_limit.backend == "database":
            return None
        if self.rate_limit.redis_url:
            return self.rate_limit.redis_url
        if self.broker.url.startswith(REDIS_SCHEMES):
            return self.broker.url
        return None

    @model_validator(mode="after")
    def _events_need_a_real_broker(self) -> Settings:
        if self.broker.task_events and self.broker.url.startswith("sqla+"):
            raise ValueError(
                _(
                    "broker.task_events: Celery task events need RabbitMQ or Redis ([broker] url); the embedded "
                    "SQLite broker cannot carry them: remove task_events or set it to false"
                )
            )
        return self

    @model_validator(mode="after")
    def _retention_outlives_reporting(self) -> Settings:
        needed = self.reports.longest_period_days() + self.reports.freeze_grace_days
        if self.retention.personal_data_days < needed:
            raise ValueError(
                _(
                    "retention.personal_data_days: %(days)s is shorter than the longest report period plus "
                    "[reports] freeze_grace_days (%(needed)s days): a report's messages would be gone before it "
                    "is written and frozen"
                )
                % {"days": self.retention.personal_data_days, "needed": needed}
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_path is not None and cls.toml_path.exists():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_path, deep_merge=True))
        return tuple(sources)

    def path(self, value: str) -> Path:
        candidate = Path(value)
        return candidate if candidate.is_absolute() else self.base_dir / candidate

    @property
    def database_url(self) -> str:
        return _resolve_sqlite(self.database.url, self.base_dir)

    @property
    def broker_url(self) -> str:
        return _resolve_sqlite(self.broker.url, self.base_dir)

    def provider(self, name: str) -> ProviderSettings:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or _("none")
            raise SettingsError(
                _(
                    "unknown provider %(name)s (configured: %(known)s); add [providers.%(key)s] to broadcaster.toml"
                )
                % {"name": repr(name), "known": known, "key": name}
            ) from None

    def masked(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        data["database"]["url"] = _mask_url(data["database"]["url"])
        data["broker"]["url"] = _mask_url(data["broker"]["url"])
        return mask_secrets(data)


def _resolve_sqlite(url: str, base_dir: Path) -> str:
    for prefix in ("sqla+sqlite:///", "sqlite:///"):
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            if rest and not rest.startswith("/") and not rest.startswith(":memory:"):
                return prefix + str((base_dir / rest).resolve())
    return url


def _mask_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    if url.startswith("sqla+"):
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL (a broker URL): show only the scheme
        return url.split("://", 1)[0] + "://…"


CONFIG_ENV = "BROADCASTER_CONFIG"


def find_config(explicit: Path | None = None) -> Path:
    """``--config`` wins, then ``BROADCASTER_CONFIG``, then ./broadcaster.toml."""
    if explicit is not None:
        return explicit
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path.cwd() / CONFIG_FILENAME


def load_settings(config: Path | None = None, *, require_file: bool = True) -> Settings:
    path = find_config(config).resolve()
    if require_file and not path.exists():
        raise SettingsError(
            _(
                "no settings file at %(path)s; run `broadcaster init DIR` and work inside DIR, "
                "or pass --config / set BROADCASTER_CONFIG"
            )
            % {"path": path}
        )

    retired = list(_retired_keys(path))
    if retired:
        raise SettingsError("\n".join(_retired_message(*found) for found in retired))

    try:
        loaded = _file_settings(path)(base_dir=path.parent)
    except ValidationError as exc:
        lines = [_("%(path)s: invalid settings:") % {"path": path}]
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            lines.append(f"  {where}: {error['msg']}")
        raise SettingsError("\n".join(lines)) from None
    except ValueError as exc:  # TOML syntax
        raise SettingsError(f"{path}: {exc}") from None
    return Settings.model_validate(loaded.model_dump() | {"base_dir": path.parent})


@functools.lru_cache(maxsize=32)
def _file_settings(path: Path) -> type[Settings]:
    """The settings class that reads ``path`` (each time it is instantiated). Made once per path: building a
    pydantic model class costs as much as reading the file, and a command loads its settings several times."""

    class _FileSettings(Settings):
        toml_path = path

    return _FileSettings


def configured_log_format(config: Path | None = None) -> LogFormat:
    """``[logging] format``, or its environment override; text when the settings cannot be read (whatever
    reads them next reports why)."""
    try:
        return load_settings(config, require_file=False).logging.format
    except UserError:
        return "text"


def _retired_message(where: str, key: str, fix: str) -> str:
    name = key.partition(".")[2]
    return _(
        "%(where)s sets %(key)s, which is no longer a setting: rules that guard four-eyes live in the database. "
        "%(fix)s; an admin changes the rule with `broadcaster policy set %(name)s VALUE --reason …` (see "
        "`broadcaster policy list`)"
    ) % {"where": where, "key": key, "fix": fix, "name": name or "KEY"}


def _retired_keys(path: Path) -> Iterator[tuple[str, str, str]]:
    """(where, section.key, what to do) for every retired key still set in the settings file or the
    environment."""
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            data = {}  # the loader below reports the syntax error with the file's name
        for section in RETIRED_SECTIONS:
            values = data.get(section)
            if values is not None:
                keys = list(values) if isinstance(values, dict) and values else [""]
                for key in keys:
                    fix = _("Remove [%(section)s] from the file") % {"section": section}
                    yield str(path), f"{section}.{key}".rstrip("."), fix
    for name in sorted(os.environ):
        section, _sep, key = name.lower().removeprefix("broadcaster_").partition("__")
        if name.upper().startswith("BROADCASTER_") and section in RETIRED_SECTIONS:
            where = _("the environment variable %(name)s") % {"name": name}
            yield where, f"{section}.{key}".rstrip("."), _("Unset it")
