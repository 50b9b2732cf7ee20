"""The food-delivery order workflow on a real Perdure server with the official Python SDK: the
server retries the failed charge, signals advance the state, the query answers throughout, and
the history has the same event types in the same order as on Temporal's dev server."""
import asyncio
import uuid

from temporalio.client import Client
from temporalio.worker import Worker

from wf_order import Order, charge_customer, send_push_notification


# Observed on Temporal's dev server for this exact sequence (temporal-protocol.md §3.5).
EXPECTED = [
    "WORKFLOW_EXECUTION_STARTED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED", "ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_STARTED",
    "ACTIVITY_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED", "TIMER_STARTED", "WORKFLOW_EXECUTION_SIGNALED",
    "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED",
    "TIMER_CANCELED", "ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_STARTED",
    "ACTIVITY_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED", "TIMER_STARTED", "WORKFLOW_EXECUTION_SIGNALED",
    "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED", "WORKFLOW_TASK_COMPLETED",
    "TIMER_CANCELED", "ACTIVITY_TASK_SCHEDULED", "ACTIVITY_TASK_STARTED",
    "ACTIVITY_TASK_COMPLETED", "WORKFLOW_TASK_SCHEDULED", "WORKFLOW_TASK_STARTED",
    "WORKFLOW_TASK_COMPLETED", "WORKFLOW_EXECUTION_COMPLETED",
]


async def wait_state(handle, want: str) -> None:
    for _ in range(200):
        if await handle.query(Order.get_status) == want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"state never became {want!r}")


async def wait_events(handle, event_type: int, count: int) -> None:
    for _ in range(200):
        hist = await handle.fetch_history()
        if sum(1 for e in hist.events if e.event_type == event_type) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"history never had {count} events of type {event_type}")


async def run_order(address: str) -> None:
    client = await Client.connect(address)
    tq = f"order-{uuid.uuid4()}"
    acts = [charge_customer, send_push_notification]
    async with Worker(client, task_queue=tq, workflows=[Order], activities=acts):
        handle = await client.start_workflow(Order.run, 3, id=f"order-{uuid.uuid4()}", task_queue=tq)
        assert await handle.query(Order.get_status) in ("Charging card", "Paid")
        await wait_state(handle, "Paid")
        await handle.signal(Order.picked_up)
        # Deterministic history: "delivered" goes out once the workflow waits for it (timer 2).
        await wait_events(handle, 17, 2)  # TIMER_STARTED
        assert await handle.query(Order.get_status) == "Picked up"
        await handle.signal(Order.delivered)
        assert await handle.result() == {"product_id": 3, "state": "Delivered"}
        assert await handle.query(Order.get_status) == "Delivered"

    # A brand-new worker with no cache answers by replaying the history.
    async with Worker(client, task_queue=tq, workflows=[Order], activities=acts,
                      max_cached_workflows=0):
        assert await handle.query(Order.get_status) == "Delivered"

    hist = await handle.fetch_history()
    from temporalio.api.enums.v1 import EventType
    names = [EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in hist.events]
    assert names == EXPECTED
    started = hist.events[5].activity_task_started_event_attributes
    assert started.attempt == 2, "the server retried the failed charge"
    assert started.last_failure.message == "payment service unreachable"
    desc = await handle.describe()
    assert desc.status.name == "COMPLETED"
    assert desc.raw_description.workflow_execution_info.history_length == len(EXPECTED)


def test_order_workflow(server):
    asyncio.run(asyncio.wait_for(run_order(server), 90))
