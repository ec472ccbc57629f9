"""What every campaign-file model shares: unknown keys refused, frozen values, and errors that name a field.

Errors that a model-level validator raises carry the dotted path of the offending field in their context
(``ctx["path"]``), so that ``schema_errors`` can still point at the right YAML line.
"""

from __future__ import annotations

from pydantic import ConfigDict
from pydantic_core import PydanticCustomError

__all__ = ["CAMPAIGN_MODEL_CONFIG", "located"]

# A typo in a key (``provder:``) is an error with its line, never a silently ignored setting. Each module
# declares its own ``BaseModel`` subclass with this config (so linters see the models as pydantic's).
CAMPAIGN_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True)


def located(path: str, message: str) -> PydanticCustomError:
    """A validation error whose ``ctx["path"]`` names the field (dotted) that a model validator blames."""
    return PydanticCustomError("campaign_rule", "{path}: {detail}", {"path": path, "detail": message})
