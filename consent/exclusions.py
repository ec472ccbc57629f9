"""Per-campaign exclusion lists: addresses one campaign must never reach, whatever their consent.

The engine is never imported; times come from the caller.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.models import CampaignExclusion
from consent.suppression import address_key

_PAGE = 500


def excluded_among(session: Session, *, campaign_id: str, channel: str, addresses: Iterable[str]) -> set[str]:
    """The subset of ``addresses`` (as given) on ``campaign_id``'s exclusion list for ``channel``."""
    by_key: dict[str, set[str]] = {}
    for address in addresses:
        by_key.setdefault(address_key(channel, address), set()).add(address)
    wanted = list(by_key)
    found: set[str] = set()
    for start in range(0, len(wanted), _PAGE):
        page = wanted[start : start + _PAGE]
        for key in session.scalars(
            select(CampaignExclusion.address).where(
                CampaignExclusion.campaign_id == campaign_id,
                CampaignExclusion.channel == channel,
                CampaignExclusion.address.in_(page),
            )
        ):
            found.update(by_key[key])
    return found
