import time
from sqlalchemy import select
from broadcaster.db.models import MessagePart, InboundRecord, DeliveryEventRow
from tests.broadcaster.delivery.conftest import Pipeline, citizens
from tests.broadcaster.delivery.test_sms_delivery import sms_only, LONG_SMS

def test_scratch(pipeline: Pipeline) -> None:
    pipeline.add_contacts(citizens(300))
    cid = sms_only(pipeline, text=LONG_SMS, unaccented=False)
    t=time.monotonic()
    run_id = pipeline.send(cid)
    print("send", time.monotonic()-t)
    pipeline.wait_for_statuses(run_id, {("sms", "delivered"): 300}, timeout=60)
    print("all", time.monotonic()-t)
    bad = [m for m in pipeline.messages(run_id) if m.parts_delivered != 3]
    print(len(bad))
    with pipeline.context.readers() as s:
        for m in bad[:3]:
            print(m.id, m.parts_total, m.parts_delivered, m.status, m.final_at)
            print(list(s.execute(select(MessagePart.number, MessagePart.state, MessagePart.updated_at).where(MessagePart.message_id==m.id))))
            print(list(s.execute(select(DeliveryEventRow.id, DeliveryEventRow.inbound_id, DeliveryEventRow.dedupe_key).where(DeliveryEventRow.message_id==m.id))))
    assert 0
