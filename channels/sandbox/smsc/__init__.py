"""A small SMSC built on smpp34, for the sandbox, the demo and the tests (optional extra ``sandbox``).

The package: ``records`` (behaviour and records), ``fields`` (PDU fields), ``submits`` (answering submit_sm),
``deliver`` (receipts and MO), ``relay`` (the TCP relay), ``calls`` (smpp34 calls never cancelled) and
``server`` (``SandboxSmsc``, ``run_smsc``).

It accepts any bind, answers every submit_sm (accept, throttle, or reject per destination), writes one JSON
line per submit_sm to ``<folder>/sms.jsonl``, and sends delivery receipts and mobile-originated messages back
as deliver_sm. Its switches (``SmscBehaviour``) reproduce what real Vietnamese SMSCs do to an ESME: receipts
before the submit_sm_resp is stored, hex or decimal ids (and a different form in the receipt), receipts only in
the text or only in TLVs, duplicate and unknown-id receipts, ESME_RTHROTTLED, rejected and undeliverable
numbers (docs/peers.md "SMPP server peer").

smpp34 1.5.0 cannot close a session from the server side (``Server.stop()`` leaves bound sessions open), and
hides enquire_link. So by default clients talk to a thin TCP relay in front of smpp34: it counts the PDUs each
client sends (enquire_link included), closes connections that stay silent past ``idle_timeout`` like a real
SMSC, and can drop every connection at once (``drop_connections()``, ``stop()``). ``relay=False`` talks to
smpp34 directly (a little faster; ``stop()`` then unbinds the sessions instead of cutting them).

Everything runs in one asyncio loop on its own thread: ``start()`` returns ``(host, port)``, ``stop()``
ends it; the received records are kept in memory for tests (``submits``, ``delivers``, ``reassembled()``).

smpp34 settles each call's future from one of its tokio threads, under the GIL. A call cancelled from Python
still takes the GIL later on that thread, and if the interpreter is exiting by then the process aborts
(``Fatal Python error: PyGILState_Release``). So no smpp34 call is ever cancelled here: ``Calls.call`` waits with
a timeout that leaves the call running, the event pump ends on an event (a session of our own binds), and
``stop()`` returns only when every call has settled.
"""

from channels.sandbox.smsc.fields import parse_udh
from channels.sandbox.smsc.records import (
    ConnectionInfo,
    DeliverRecord,
    MoMessage,
    ReassembledMessage,
    SmscBehaviour,
    SubmitRecord,
)
from channels.sandbox.smsc.server import SandboxSmsc, run_smsc

__all__ = [
    "ConnectionInfo",
    "DeliverRecord",
    "MoMessage",
    "ReassembledMessage",
    "SandboxSmsc",
    "SmscBehaviour",
    "SubmitRecord",
    "parse_udh",
    "run_smsc",
]
