"""The SMPP v3.4 §5.1.3 command_status values the adapter acts on itself."""

from __future__ import annotations

from typing import Final

ESME_ROK: Final = 0x00
ESME_RMSGQFUL: Final = 0x14
ESME_RTHROTTLED: Final = 0x58
ESME_RX_T_APPN: Final = 0x64  # our answer to a deliver_sm we could not store: the SMSC redelivers later
THROTTLE_STATUSES: Final = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})
