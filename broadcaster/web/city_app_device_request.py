"""The body of a city-app device request (register or remove a push token): parsed strictly, the person
identified as the consent endpoint identifies them (``channel`` + ``address``), refusals as problem details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from broadcaster.devices import TOKEN_PATTERN, Platform
from broadcaster.web.city_app_request import NONCE_PATTERN, invalid, person_address
from broadcaster.web.problems import Problem

APP_VERSION_PATTERN = r"^[0-9A-Za-z.+\-]{1,32}$"
_FIELDS = "nonce, action, channel, address, token, platform, app_version"


class DeviceBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    nonce: str = Field(pattern=NONCE_PATTERN)
    action: Literal["register", "remove"]
    channel: Literal["sms", "email"]
    address: str = Field(min_length=1, max_length=320)
    token: str = Field(pattern=TOKEN_PATTERN)
    platform: Literal["android", "ios", "web"] | None = None
    app_version: str | None = Field(default=None, pattern=APP_VERSION_PATTERN)


@dataclass(frozen=True)
class DeviceRequest:
    """A valid request: the person's address as contacts store it; ``platform`` set when registering."""

    nonce: str
    action: str
    channel: str
    address: str
    token: str
    platform: Platform | None
    app_version: str | None


def parse_device_request(body: bytes) -> DeviceRequest:
    """The request in ``body`` (JSON), or ``Problem`` naming the field (400 for bad JSON, 422 otherwise)."""
    try:
        parsed = DeviceBody.model_validate_json(body)
    except ValidationError as error:
        raise _problem(error.errors()[0]) from None
    if parsed.action == "register" and parsed.platform is None:
        raise invalid(
            "platform",
            "missing-field",
            "Thiếu trường “platform” (android, ios hoặc web) khi đăng ký thiết bị.",
        )
    return DeviceRequest(
        nonce=parsed.nonce,
        action=parsed.action,
        channel=parsed.channel,
        address=person_address(parsed.channel, parsed.address),
        token=parsed.token,
        platform=Platform(parsed.platform) if parsed.platform else None,
        app_version=parsed.app_version,
    )


# Per field, what a wrong value is told (the field is named in ``field`` and in the text).
_FIELD_TEXTS = {
    "nonce": ("bad-nonce", "Trường “nonce” phải gồm 16 đến 64 chữ cái, chữ số, “-” hoặc “_”."),
    "action": ("bad-action", "Trường “action” phải là “register” (đăng ký) hoặc “remove” (gỡ bỏ)."),
    "channel": ("bad-channel", "Trường “channel” phải là “sms” hoặc “email”."),
    "token": (
        "bad-token",
        "Trường “token” phải là mã thiết bị FCM hoặc APNs: 16 đến 320 chữ cái, chữ số, “:”, “.”, “-” hoặc “_”.",
    ),
    "platform": ("bad-platform", "Trường “platform” phải là “android”, “ios” hoặc “web”."),
    "app_version": (
        "bad-app-version",
        "Trường “app_version” phải gồm 1 đến 32 chữ cái, chữ số, “.”, “+” hoặc “-”.",
    ),
}


def _problem(error: Any) -> Problem:
    kind = error["type"]
    field = ".".join(str(part) for part in error["loc"])
    if kind == "json_invalid":
        return Problem(400, "bad-json", "Body is not JSON", "Nội dung yêu cầu không phải JSON hợp lệ.")
    if not field:
        return invalid(None, "bad-body", "Nội dung yêu cầu phải là một đối tượng JSON.")
    if kind == "extra_forbidden":
        return invalid(
            field,
            "unknown-field",
            f"Trường “{field}” không được chấp nhận: yêu cầu chỉ có {_FIELDS}.",
        )
    if kind == "missing":
        return invalid(field, "missing-field", f"Thiếu trường “{field}”.")
    if field in _FIELD_TEXTS:
        code, text = _FIELD_TEXTS[field]
        return invalid(field, code, text)
    return invalid(field, "bad-field", f"Trường “{field}” không hợp lệ ({error['msg']}).")
