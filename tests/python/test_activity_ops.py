"""Activity operations through the official Python SDK's raw WorkflowService client:
PauseActivity (the running attempt sees `activity.cancellation_details().paused`, no retry is
scheduled, describe shows the pause), UnpauseActivity, ResetActivity (attempt 1 again; a running
attempt sees `reset`), UpdateActivityOptions (a shorter start-to-close timeout and a shorter
retry interval take effect), the errors for unknown targets, and no history event for any of
them. Run against Perdure and, with PERDURE_TEST_TARGET=temporal, Temporal's dev server."""
import asyncio
import time
import uuid

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.activity.v1 import ActivityOptions
from temporalio.api.common.v1 import RetryPolicy, WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.workflowservice.v1 import (PauseActivityRequest, ResetActivityRequest,
                                               UnpauseActivityRequest,
                                               UpdateActivityOptionsRequest)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from wf_activity_ops import ACTIVITIES, CALLS, WORKFLOWS, RunActivity

NOT_FOUND = ("Can't find pending activity with such ID. Invalid activityID or activity already "
             "completed")


async def run(address: str, body) -> None:
    client = await Client.connect(address)
    tq = f"actops-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=WORKFLOWS, activities=ACTIVITIES):
        await asyncio.wait_for(body(client, tq), 60)


async def pending(handle):
    d = await handle.describe()
    acts = d.raw_description.pending_activities
    return acts[0] if acts else None


async def wait_for(what, predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await what()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"timed out waiting; last value: {value}"
        await asyncio.sleep(0.1)


async def start(c: Client, tq: str, activity: str, initial_ms: int, heartbeat_s: int):
    wid = f"actops-{uuid.uuid4()}"
    h = await c.start_workflow(RunActivity.run, args=[activity, initial_ms, heartbeat_s], id=wid,
                               task_queue=tq)
    return h, WorkflowExecution(workflow_id=wid)


def event_types(history) -> list:
    return [EventType.Name(e.event_type) for e in history.events]


PLAIN_HISTORY = ["EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
                 "EVENT_TYPE_WORKFLOW_TASK_STARTED", "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
                 "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED", "EVENT_TYPE_ACTIVITY_TASK_STARTED",
                 "EVENT_TYPE_ACTIVITY_TASK_COMPLETED", "EVENT_TYPE_WORKFLOW_TASK_SCHEDULED",
                 "EVENT_TYPE_WORKFLOW_TASK_STARTED", "EVENT_TYPE_WORKFLOW_TASK_COMPLETED",
                 "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"]


def test_pause_stops_the_activity_until_unpaused(server):
    async def body(c: Client, tq: str):
        ws = c.workflow_service
        h, ex = await start(c, tq, "beats", 200, 1)
        await wait_for(lambda: pending(h),
                       lambda p: p and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED)
        await ws.pause_activity(PauseActivityRequest(
            namespace="default", execution=ex, id="a1", identity="ops", reason="maintenance"))
        p = await pending(h)
        assert p.paused
        assert p.pause_info.manual.identity == "ops"
        assert p.pause_info.manual.reason == "maintenance"
        # The running attempt learns of the pause at its next heartbeat and stops; no retry.
        p = await wait_for(lambda: pending(h), lambda p: p.state ==
                           PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED)
        assert (CALLS[h.id]) == [("start", 1), ("paused", 1)]
        assert p.attempt == 2 and p.paused
        assert p.last_failure.application_failure_info.type == "ActivityPause"
        assert not p.HasField("next_attempt_schedule_time")
        await asyncio.sleep(1.5)
        assert (await pending(h)).state == PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED
        assert CALLS[h.id] == [("start", 1), ("paused", 1)]
        # Pausing again: the same (empty) request id is a no-op, another one is refused.
        await ws.pause_activity(PauseActivityRequest(namespace="default", execution=ex, id="a1"))
        with pytest.raises(RPCError) as e:
            await ws.pause_activity(PauseActivityRequest(
                namespace="default", execution=ex, id="a1", request_id="another"))
        assert e.value.status == RPCStatusCode.FAILED_PRECONDITION
        assert e.value.message == "activity is already paused"
        await ws.unpause_activity(UnpauseActivityRequest(namespace="default", execution=ex,
                                                         id="a1"))
        assert await h.result() == "done attempt 2"
        assert CALLS[h.id] == [("start", 1), ("paused", 1), ("start", 2)]
        # Neither the pause nor the unpause wrote an event.
        assert event_types(await h.fetch_history()) == PLAIN_HISTORY
    asyncio.run(run(server, body))


def test_reset_runs_the_activity_again_from_attempt_one(server):
    async def body(c: Client, tq: str):
        ws = c.workflow_service
        # Waiting 30 s for its second attempt: a reset runs it at once, as attempt 1.
        h, ex = await start(c, tq, "fails_first", 30_000, 0)
        p = await wait_for(lambda: pending(h), lambda p: p and p.attempt == 2)
        assert p.state == PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED
        assert p.HasField("next_attempt_schedule_time")
        await ws.reset_activity(ResetActivityRequest(namespace="default", execution=ex, id="a1",
                                                     reset_heartbeat=True))
        assert await asyncio.wait_for(h.result(), 10) == "done attempt 1"
        assert CALLS[h.id] == [("start", 1), ("start", 1)]
        # A running attempt is told of the reset at its heartbeat; its retry is attempt 2.
        h, ex = await start(c, tq, "beats", 200, 1)
        await wait_for(lambda: pending(h),
                       lambda p: p and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED)
        await ws.reset_activity(ResetActivityRequest(namespace="default", execution=ex,
                                                     type="beats"))
        assert await h.result() == "done attempt 2"
        assert CALLS[h.id] == [("start", 1), ("reset", 1), ("start", 2)]
        assert event_types(await h.fetch_history()) == PLAIN_HISTORY
    asyncio.run(run(server, body))


def test_update_options_takes_effect_on_the_pending_activity(server):
    async def body(c: Client, tq: str):
        ws = c.workflow_service
        # A running attempt given a 1 s start-to-close timeout times out and is retried.
        h, ex = await start(c, tq, "slow_first", 100, 0)
        await wait_for(lambda: pending(h),
                       lambda p: p and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED)
        resp = await ws.update_activity_options(UpdateActivityOptionsRequest(
            namespace="default", execution=ex, id="a1",
            activity_options=ActivityOptions(start_to_close_timeout=Duration(seconds=1)),
            update_mask=FieldMask(paths=["start_to_close_timeout"])))
        assert resp.activity_options.start_to_close_timeout.ToSeconds() == 1
        assert resp.activity_options.task_queue.name == tq
        p = await pending(h)
        assert p.activity_options.start_to_close_timeout.ToSeconds() == 1
        started = time.monotonic()
        assert await asyncio.wait_for(h.result(), 10) == "done attempt 2"
        assert time.monotonic() - started < 5
        # Waiting 30 s for a retry: a 100 ms initial interval brings the retry forward.
        h, ex = await start(c, tq, "fails_first", 30_000, 0)
        await wait_for(lambda: pending(h), lambda p: p and p.attempt == 2)
        resp = await ws.update_activity_options(UpdateActivityOptionsRequest(
            namespace="default", execution=ex, type="fails_first",
            activity_options=ActivityOptions(retry_policy=RetryPolicy(
                initial_interval=Duration(nanos=100_000_000), maximum_attempts=5)),
            update_mask=FieldMask(paths=["retry_policy.initial_interval",
                                         "retry_policy.maximum_attempts"])))
        assert resp.activity_options.retry_policy.maximum_attempts == 5
        assert resp.activity_options.retry_policy.initial_interval.ToMilliseconds() == 100
        assert await asyncio.wait_for(h.result(), 10) == "done attempt 2"
        assert event_types(await h.fetch_history()) == PLAIN_HISTORY
    asyncio.run(run(server, body))


def test_errors(server):
    async def body(c: Client, tq: str):
        ws = c.workflow_service
        h, ex = await start(c, tq, "fails_first", 30_000, 0)
        await wait_for(lambda: pending(h), lambda p: p and p.attempt == 2)

        async def status(call, req):
            with pytest.raises(RPCError) as e:
                await call(req)
            return e.value.status, e.value.message
        assert await status(ws.pause_activity, PauseActivityRequest(
            namespace="default", execution=ex, id="nope")) == (RPCStatusCode.NOT_FOUND, NOT_FOUND)
        assert await status(ws.unpause_activity, UnpauseActivityRequest(
            namespace="default", execution=ex, type="nope")) == (RPCStatusCode.NOT_FOUND, NOT_FOUND)
        assert await status(ws.reset_activity, ResetActivityRequest(
            namespace="default", execution=ex)) == (
            RPCStatusCode.INVALID_ARGUMENT,
            "Either Activity.Id or Activity.Type should be set on request.")
        assert await status(ws.pause_activity, PauseActivityRequest(
            namespace="default", id="a1")) == (
            RPCStatusCode.INVALID_ARGUMENT, "WorkflowId is not set on request.")
        assert await status(ws.update_activity_options, UpdateActivityOptionsRequest(
            namespace="default", execution=ex, id="a1",
            activity_options=ActivityOptions(start_to_close_timeout=Duration(seconds=1)))) == (
            RPCStatusCode.INVALID_ARGUMENT, "UpdateMask is not provided")
        assert await status(ws.update_activity_options, UpdateActivityOptionsRequest(
            namespace="default", execution=ex, id="a1", restore_original=True,
            update_mask=FieldMask(paths=["start_to_close_timeout"]))) == (
            RPCStatusCode.INVALID_ARGUMENT, "Both UpdateMask and RestoreOriginal are provided")
        await h.terminate()
        assert await status(ws.pause_activity, PauseActivityRequest(
            namespace="default", execution=ex, id="a1")) == (
            RPCStatusCode.NOT_FOUND, "workflow execution already completed")
    asyncio.run(run(server, body))
