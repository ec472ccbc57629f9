"""Numbers, dates and rates as a Vietnamese reader writes them in a document: ``1.150`` (dot for thousands),
``94,0%`` (comma for decimals), ``05/12/2025``. Used where the figure is text (DOCX); the XLSX keeps numbers as
numbers and formats them with the cell's number format."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

__all__ = ["day", "decimal", "integer", "money", "percent"]

NONE = "-"


def integer(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def decimal(value: float | None, places: int = 1) -> str:
    if value is None:
        return NONE
    whole, _, fraction = f"{value:,.{places}f}".partition(".")
    return whole.replace(",", ".") + ("," + fraction if fraction else "")


def percent(rate: float | None) -> str:
    """A rate between 0 and 1 as a percentage with one decimal; ``-`` when there is no rate."""
    return NONE if rate is None else decimal(100 * rate) + "%"


def money(value: Decimal) -> str:
    """An amount in VND, whole dong."""
    return integer(int(value.to_integral_value()))


def day(value: date) -> str:
    return f"{value:%d/%m/%Y}"
