"""A city-app device request in one transaction: the nonce, the person's contact, the token registered,
refreshed or removed, and its audit entry (by contact id and a hash of the token: no address, no token).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcaster import audit
from broadcaster.db.models import Contact
from broadcaster.devices import forget_token, lift_rejection, register_token
from broadcaster.web.app_nonces import use_nonce
from broadcaster.web.city_app_device_request import DeviceRequest
from broadcaster.web.city_app_request import invalid
from broadcaster.web.city_app_withdrawal import RECORDED_BY

REGISTER_ACTION = "device.register"
REMOVE_ACTION = "device.remove"


def record_device_request(
    session: Session, request: DeviceRequest, *, at: datetime, window_seconds: int
) -> str:
    """Apply ``request``; returns what happened (``created``, ``refreshed``, ``moved``, ``removed`` or
    ``not_registered``). ``Problem`` (and the caller's rollback) for a used nonce or an unknown person."""
    use_nonce(session, request.nonce, at=at, window_seconds=window_seconds)
    contact_id = _contact_of(session, request)
    if request.action == "register":
        assert request.platform is not None  # parse_device_request requires it for a registration
        outcome = register_token(
            session,
            contact_id=contact_id,
            token=request.token,
            platform=request.platform,
            app_version=request.app_version,
            now=at,
        ).value
        lifted = lift_rejection(session, token=request.token)
        action = REGISTER_ACTION
    else:
        lifted = False
        outcome = (
            "removed"
            if forget_token(session, token=request.token, contact_id=contact_id)
            else "not_registered"
        )
        action = REMOVE_ACTION
    audit.record(
        session,
        actor=RECORDED_BY,
        action=action,
        subject_type="contact",
        subject_id=contact_id,
        at=at,
        details={
            "outcome": outcome,
            "rejection_lifted": lifted,
            "platform": request.platform.value if request.platform else None,
            "app_version": request.app_version,
            # Enough to tell two devices apart in the trail; the token itself is a credential of the device.
            "device_sha256": hashlib.sha256(request.token.encode("utf-8")).hexdigest()[:16],
            "nonce": request.nonce,
        },
    )
    return outcome


def _contact_of(session: Session, request: DeviceRequest) -> int:
    """The contact the request names; the oldest when the address is on several (imported twice)."""
    where = (
        Contact.phone == request.address
        if request.channel == "sms"
        else func.lower(Contact.email) == request.address.lower()
    )
    found = session.scalar(select(Contact.id).where(where).order_by(Contact.id).limit(1))
    if found is None:
        raise invalid(
            "address",
            "unknown-person",
            "Không có người nào trong danh bạ với trường “address” này; thiết bị chỉ đăng ký được cho người đã có trong danh bạ.",
        )
    return found
