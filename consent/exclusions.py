"""Per-campaign exclusion lists: addresses one campaign must never reach, whatever their consent.

The engine is never imported; times come from the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from consent.lookup import keys_among
from consent.models import CampaignExclusion
from consent.suppression import address_key, keys_of

_PAGE = 500
_LOOKUP_PAGE = 5000  # keys per look-up: one parameter whatever their number


def excluded_among(session: Session, *, campaign_id: str, channel: str, addresses: Iterable[str]) -> set[str]:
    """The subset of ``addresses`` (as given) on ``campaign_id``'s exclusion list for ``channel``."""
    return excluded_of(session, campaign_id=campaign_id, channel=channel, by_key=keys_of(channel, addresses))


def excluded_of(
    session: Session, *, campaign_id: str, channel: str, by_key: Mapping[str, Iterable[str]]
) -> set[str]:
    """``excluded_among`` of addresses already grouped by key (``keys_of``)."""
    wanted = list(by_key)
    found: set[str] = set()
    for start in range(0, len(wanted), _LOOKUP_PAGE):
        query = select(CampaignExclusion.address).where(
            CampaignExclusion.campaign_id == campaign_id, CampaignExclusion.channel == channel
        )
        page = wanted[start : start + _LOOKUP_PAGE]
        for key in session.scalars(keys_among(session, query, CampaignExclusion.address, page)):
            found.update(by_key[key])
    return found


def add_exclusions(
    session: Session,
    *,
    campaign_id: str,
    addresses: Sequence[tuple[str, str]],
    list_name: str,
    added_by: str,
    at: datetime,
) -> int:
    """Add (channel, address) pairs to ``campaign_id``'s exclusions in the caller's transaction; an address
    already on it keeps its first list. Returns how many were new."""
    keys = list(dict.fromkeys((channel, address_key(channel, address)) for channel, address in addresses))
    known = {
        (row.channel, row.address)
        for row in session.execute(
            select(CampaignExclusion.channel, CampaignExclusion.address).where(
                CampaignExclusion.campaign_id == campaign_id
            )
        )
    }
    new = [key for key in keys if key not in known]
    for start in range(0, len(new), _PAGE):
        session.execute(
            insert(CampaignExclusion),
            [
                {
                    "campaign_id": campaign_id,
                    "channel": channel,
                    "address": address,
                    "list_name": list_name[:255],
                    "added_by": added_by,
                    "added_at": at,
                }
                for channel, address in new[start : start + _PAGE]
            ],
        )
    return len(new)


def exclusions_of(session: Session, campaign_id: str) -> list[CampaignExclusion]:
    """``campaign_id``'s exclusion list, oldest first."""
    return list(
        session.scalars(
            select(CampaignExclusion)
            .where(CampaignExclusion.campaign_id == campaign_id)
            .order_by(CampaignExclusion.id)
        )
    )
