"""The body of a city-app withdrawal: parsed strictly, addresses normalised, refusals as problem details.

Only a withdrawal can be expressed: ``action`` may only be ``withdraw`` and any other field is refused
(``extra="forbid"``), so no body, however crafted, grants consent (docs/architecture.md §5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from broadcaster.contacts.emails import EmailError, normalize_email
from broadcaster.contacts.phones import PhoneError, parse_phone
from broadcaster.web.problems import Problem
from consent.policy import Purpose, UnknownPurpose, rules_for
from consent.suppression import address_key

# Long enough to be random (a UUID has 36 characters), short enough for app_request_nonces.nonce.
NONCE_PATTERN = r"^[A-Za-z0-9_-]{16,64}$"


class WithdrawalBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    nonce: str = Field(pattern=NONCE_PATTERN)
    channel: Literal["sms", "email", "push"]
    address: str = Field(min_length=1, max_length=320)
    purposes: list[str] | None = Field(default=None, min_length=1, max_length=len(Purpose))
    evidence: str | None = Field(default=None, min_length=1, max_length=200)
    action: Literal["withdraw"] = "withdraw"


@dataclass(frozen=True)
class AppWithdrawal:
    """A valid request: the address as contacts store it, the purposes to withdraw (no duplicates)."""

    nonce: str
    channel: str
    address: str
    purposes: tuple[str, ...]
    evidence: str | None


def opt_out_purposes() -> tuple[str, ...]:
    """The purposes a person can opt out of (docs/domain.md §1.4): what a request without ``purposes`` means."""
    return tuple(purpose.value for purpose in Purpose if rules_for(purpose).unsubscribe_offered)


def parse_withdrawal(body: bytes) -> AppWithdrawal:
    """The request in ``body`` (JSON), or ``Problem`` naming the field (400 for bad JSON, 422 otherwise)."""
    try:
        parsed = WithdrawalBody.model_validate_json(body)
    except ValidationError as error:
        raise _problem(error.errors()[0]) from None
    return AppWithdrawal(
        nonce=parsed.nonce,
        channel=parsed.channel,
        address=_consent_address(parsed.channel, parsed.address),
        purposes=_purposes(parsed.purposes),
        evidence=parsed.evidence,
    )


def _consent_address(channel: str, raw: str) -> str:
    """The ledger's address: on push the person's phone number or e-mail address (lower-cased), the key the
    engine judges all their devices by (docs/push.md, "Consent")."""
    if channel != "push":
        return person_address(channel, raw)
    named_by = "email" if "@" in raw else "sms"
    return address_key(named_by, person_address(named_by, raw))


def person_address(channel: str, raw: str) -> str:
    """The person's address as contacts store it (E.164, or the normalised e-mail), or ``Problem`` 422 naming
    ``address``: how every city-app request says whom it is about."""
    try:
        return parse_phone(raw).e164 if channel == "sms" else normalize_email(raw)
    except (PhoneError, EmailError) as error:
        kind = "số điện thoại" if channel == "sms" else "địa chỉ thư điện tử"
        raise invalid(
            "address", "bad-address", f"Trường “address” không phải {kind} hợp lệ ({error})."
        ) from None


def _purposes(asked: list[str] | None) -> tuple[str, ...]:
    if asked is None:
        return opt_out_purposes()
    for purpose in asked:
        try:
            offered = rules_for(purpose).unsubscribe_offered
        except UnknownPurpose:
            offered = None
        if not offered:
            allowed = ", ".join(opt_out_purposes())
            what = "không có" if offered is None else "không cho phép từ chối"
            raise invalid(
                "purposes",
                "bad-purpose",
                f"Mục đích “{purpose}” {what}; trường “purposes” chỉ nhận: {allowed}.",
            )
    return tuple(dict.fromkeys(asked))


def _problem(error: Any) -> Problem:
    kind = error["type"]
    field = ".".join(str(part) for part in error["loc"])
    if kind == "json_invalid":
        return Problem(400, "bad-json", "Body is not JSON", "Nội dung yêu cầu không phải JSON hợp lệ.")
    if not field:
        return invalid(None, "bad-body", "Nội dung yêu cầu phải là một đối tượng JSON.")
    if field == "action":
        return invalid(
            field,
            "grant-refused",
            "Trường “action” chỉ nhận “withdraw”: ứng dụng chỉ có thể rút lại sự đồng ý, không thể cấp.",
        )
    if kind == "extra_forbidden":
        return invalid(
            field,
            "unknown-field",
            f"Trường “{field}” không được chấp nhận: yêu cầu chỉ có nonce, channel, address, purposes, "
            "evidence và action (= withdraw).",
        )
    if kind == "missing":
        return invalid(field, "missing-field", f"Thiếu trường “{field}”.")
    if field == "nonce":
        return invalid(field, "bad-nonce", "Trường “nonce” phải gồm 16 đến 64 chữ cái, chữ số, “-” hoặc “_”.")
    if field == "channel":
        return invalid(field, "bad-channel", "Trường “channel” phải là “sms”, “email” hoặc “push”.")
    return invalid(field, "bad-field", f"Trường “{field}” không hợp lệ ({error['msg']}).")


def invalid(field: str | None, code: str, detail: str) -> Problem:
    return Problem(422, code, "Request body refused", detail, field=field)
