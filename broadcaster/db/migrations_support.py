"""What Alembic compares against: the engine's and consent's metadata, minus kombu's broker tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData

KOMBU_TABLES = frozenset({"kombu_message", "kombu_queue"})


def target_metadata() -> list[MetaData]:
    import broadcaster.db.models
    import broadcaster.db.monitoring  # noqa: F401  (both register their tables)
    from broadcaster.db.base import metadata
    from consent.models import consent_metadata

    return [metadata, consent_metadata]


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    # The broker may share the database in some deployments; its tables are kombu's business.
    return not (type_ == "table" and name in KOMBU_TABLES)
