"""The SMS channel over SMPP v3.4: ``SmppAdapter`` (the registry's ``channels.sms.smpp:SmppAdapter``) and the
names the engine and tests use with it. The adapter is built from modules of one job each: ``client`` (locked
smpplib client, octet writes), ``session`` (one bind's link), ``inbound`` (deliver_sm hand-over), ``window``
(the PDU window's rules, pure), ``submit`` (sending through the windows), ``outcome`` (part states ->
SendResult) and ``adapter`` (the façade)."""

from channels.sms.smpp.adapter import SEND_WINDOWS_PER_CALL, SmppAdapter
from channels.sms.smpp.health import HealthHandler
from channels.sms.smpp.inbound import INBOUND_BATCH_MAX, InboundBatchHandler, InboundHandler
from channels.sms.smpp.statuses import ESME_RMSGQFUL, ESME_ROK, ESME_RTHROTTLED, ESME_RX_T_APPN
from channels.sms.smpp.submit import HandingHandler, Pacer, SettledHandler

__all__ = [
    "ESME_RMSGQFUL",
    "ESME_ROK",
    "ESME_RTHROTTLED",
    "ESME_RX_T_APPN",
    "INBOUND_BATCH_MAX",
    "SEND_WINDOWS_PER_CALL",
    "HandingHandler",
    "HealthHandler",
    "InboundBatchHandler",
    "InboundHandler",
    "Pacer",
    "SettledHandler",
    "SmppAdapter",
]
