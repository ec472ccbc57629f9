"""ZNS answers' ``error`` codes → the channel error tree (docs/social.md, "ZNS errors").

Codes 0 and -100 to -112 are confirmed by Zalo's own ZNS error page (docs/social.md says which); the others
are the numbers third-party integrations use and are marked unconfirmed there. An unknown code is a
``PermanentError`` that keeps the code, so the message fails visibly instead of being retried blindly.
"""

from __future__ import annotations

from collections.abc import Mapping

from channels.errors import (
    ChannelError,
    ConfigurationError,
    PermanentError,
    RecipientRejected,
    Throttled,
    TransientError,
)

ZNS_CODES: Mapping[int, type[ChannelError]] = {
    -100: TransientError,  # unknown error: "try again later"
    -101: ConfigurationError,  # application invalid
    -102: ConfigurationError,  # application does not exist
    -103: ConfigurationError,  # application not activated
    -104: ConfigurationError,  # app secret key invalid
    -105: ConfigurationError,  # application not linked to any OA
    -106: ConfigurationError,  # method unsupported: our request is wrong for every message
    -107: PermanentError,  # message id invalid
    -108: RecipientRejected,  # phone number invalid
    -109: PermanentError,  # template id invalid
    -110: PermanentError,  # the recipient's Zalo app is too old (not the address's fault: not suppressed)
    -111: PermanentError,  # template data empty
    -112: PermanentError,  # template data invalid
    # Unconfirmed numbers (docs/social.md):
    -113: PermanentError,  # button invalid
    -114: PermanentError,  # user inactive, refused ZNS, old app or internal error: mixed reasons, not suppressed
    -115: ConfigurationError,  # out of quota: the ZNS account's balance is spent, a person must top it up
    -116: PermanentError,  # text invalid
    -117: ConfigurationError,  # the OA or app may not use this template
    -118: RecipientRejected,  # no Zalo account for this phone number
    -119: RecipientRejected,  # the account cannot receive ZNS
    -124: ConfigurationError,  # access token invalid or expired
    -144: Throttled,  # the OA's daily sending limit is reached
}


def error_class(code: int | None, status: int) -> type[ChannelError]:
    """The class for one ZNS answer that is not a success; ``status`` decides when it carried no code."""
    if code is None:
        if status == 429:
            return Throttled
        return TransientError if status >= 500 else PermanentError
    return ZNS_CODES.get(code, PermanentError)
