"""Standalone activities (started by a client, not by a workflow) through the official Python
SDK: start and result, execute, failure after retries, a retry that succeeds, timeouts,
cancellation seen by a heartbeating activity, terminate, describe, list and count with queries,
id reuse and conflict policies, completion and failure by id, start delay. Run against Perdure
and, with PERDURE_TEST_TARGET=temporal, Temporal's dev server (same results)."""
import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import (ActivityExecutionStatus, ActivityFailureError, Client,
                               PendingActivityState)
from temporalio.common import (ActivityIDConflictPolicy, ActivityIDReusePolicy, RetryPolicy,
                               SearchAttributeKey, TypedSearchAttributes,
                               SearchAttributePair)
from temporalio.exceptions import (ActivityAlreadyStartedError, ApplicationError,
                                   CancelledError, TerminatedError, TimeoutError, TimeoutType)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from sa_activities import ACTIVITIES, CALLS, always_fails, fails_twice, greet, heartbeats, manual, sleeps

FAST_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0)
S = timedelta(seconds=10)


def aid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


async def connect(address: str) -> Client:
    # A dev server just started may not serve yet ("Frontend is not healthy yet").
    for _ in range(50):
        try:
            return await Client.connect(address)
        except RuntimeError:
            await asyncio.sleep(0.2)
    return await Client.connect(address)


async def run(address: str, body, worker: bool = True) -> None:
    client = await connect(address)
    tq = f"sa-{uuid.uuid4()}"
    if worker:
        async with Worker(client, task_queue=tq, activities=ACTIVITIES):
            await asyncio.wait_for(body(client, tq), 60)
    else:
        await asyncio.wait_for(body(client, tq), 60)


async def wait_for(what, predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await what()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"timed out waiting; last value: {value}"
        await asyncio.sleep(0.1)


def test_start_result_and_execute(server):
    async def body(c: Client, tq: str):
        h = await c.start_activity(greet, "ann", id=aid("greet"), task_queue=tq,
                                   start_to_close_timeout=S, summary="say hello")
        assert h.run_id
        assert await h.result() == "hello ann"
        # The worker saw no workflow.
        assert CALLS[h.id] == [("greet", 1, None)]
        d = await h.describe(include_input=True, include_outcome=True)
        assert d.status == ActivityExecutionStatus.COMPLETED
        assert d.activity_run_id == h.run_id and d.activity_type == "greet"
        assert d.task_queue == tq and d.attempt == 1
        assert d.run_state is None
        assert await d.input() == ["ann"]
        assert await d.result() == "hello ann"
        assert d.close_time is not None and d.close_time >= d.schedule_time
        assert d.raw_info.user_metadata.summary.data == b'"say hello"'
        assert d.start_to_close_timeout == S
        assert d.retry_policy.maximum_attempts == 0
        assert d.retry_policy.initial_interval == timedelta(seconds=1)
        # A handle by id reads the same outcome; the activity is no workflow.
        assert await c.get_activity_handle(h.id, result_type=str).result() == "hello ann"
        assert [w async for w in c.list_workflows(f"WorkflowId = '{h.id}'")] == []
        assert await c.execute_activity(greet, "bob", id=aid("greet"), task_queue=tq,
                                        schedule_to_close_timeout=S) == "hello bob"
    asyncio.run(run(server, body))


def test_failure_after_retries_and_a_retry_that_succeeds(server):
    async def body(c: Client, tq: str):
        h = await c.start_activity(always_fails, "x", id=aid("fails"), task_queue=tq,
                                   start_to_close_timeout=S,
                                   retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100),
                                                            maximum_attempts=2))
        with pytest.raises(ActivityFailureError) as e:
            await h.result()
        assert isinstance(e.value.cause, ApplicationError)
        assert e.value.cause.type == "Boom" and e.value.cause.message == "boom x"
        assert CALLS[h.id] == [("fail", 1), ("fail", 2)]
        d = await h.describe(include_last_failure=True, include_outcome=True)
        assert d.status == ActivityExecutionStatus.FAILED and d.attempt == 2
        assert isinstance(await d.outcome_failure(), ApplicationError)
        assert d.raw_outcome.retry_state == 4  # RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED
        # A non-retryable failure type ends it at once.
        h = await c.start_activity(always_fails, "y", id=aid("fails"), task_queue=tq,
                                   start_to_close_timeout=S,
                                   retry_policy=RetryPolicy(non_retryable_error_types=["Boom"]))
        with pytest.raises(ActivityFailureError):
            await h.result()
        assert CALLS[h.id] == [("fail", 1)]
        h = await c.start_activity(fails_twice, "ok", id=aid("retry"), task_queue=tq,
                                   start_to_close_timeout=S, retry_policy=FAST_RETRY)
        assert await h.result() == "ok on attempt 3"
        d = await h.describe(include_last_failure=True)
        assert d.status == ActivityExecutionStatus.COMPLETED and d.attempt == 3
        assert (await d.last_failure()).message == "not yet 2"
    asyncio.run(run(server, body))


def test_timeouts(server):
    async def body(c: Client, tq: str):
        # Nobody polls this queue: schedule-to-start.
        h = await c.start_activity(greet, "x", id=aid("s2s"), task_queue=f"{tq}-nobody",
                                   start_to_close_timeout=S,
                                   schedule_to_start_timeout=timedelta(seconds=1))
        with pytest.raises(ActivityFailureError) as e:
            await h.result()
        assert isinstance(e.value.cause, TimeoutError)
        assert e.value.cause.type == TimeoutType.SCHEDULE_TO_START
        assert (await h.describe()).status == ActivityExecutionStatus.TIMED_OUT
        # Start-to-close, not retried with one attempt.
        h = await c.start_activity(sleeps, 3.0, id=aid("st2c"), task_queue=tq,
                                   start_to_close_timeout=timedelta(milliseconds=500),
                                   retry_policy=RetryPolicy(maximum_attempts=1))
        with pytest.raises(ActivityFailureError) as e:
            await h.result()
        assert e.value.cause.type == TimeoutType.START_TO_CLOSE
        # Schedule-to-close across retries.
        h = await c.start_activity(sleeps, 3.0, id=aid("s2c"), task_queue=tq,
                                   schedule_to_close_timeout=timedelta(seconds=1))
        with pytest.raises(ActivityFailureError) as e:
            await h.result()
        assert e.value.cause.type == TimeoutType.SCHEDULE_TO_CLOSE
        d = await h.describe()
        assert d.status == ActivityExecutionStatus.TIMED_OUT
        assert d.expiration_time is not None
        # Heartbeat timeout: an activity that stops heartbeating is timed out.
        h = await c.start_activity(sleeps, 3.0, id=aid("hb"), task_queue=tq,
                                   start_to_close_timeout=S,
                                   heartbeat_timeout=timedelta(milliseconds=500),
                                   retry_policy=RetryPolicy(maximum_attempts=1))
        with pytest.raises(ActivityFailureError) as e:
            await h.result()
        assert e.value.cause.type == TimeoutType.HEARTBEAT
    asyncio.run(run(server, body))


def test_cancel_reaches_a_heartbeating_activity(server):
    async def body(c: Client, tq: str):
        h = await c.start_activity(heartbeats, 200, id=aid("cancel"), task_queue=tq,
                                   start_to_close_timeout=S,
                                   heartbeat_timeout=timedelta(seconds=2))
        d = await wait_for(lambda: h.describe(include_heartbeat_details=True),
                           lambda d: d.has_heartbeat_details())
        assert d.status == ActivityExecutionStatus.RUNNING
        assert d.run_state == PendingActivityState.STARTED
        assert d.total_heartbeat_count >= 1
        assert (await d.heartbeat_details())[0] >= 0
        await h.cancel(reason="no longer needed")
        with pytest.raises(ActivityFailureError) as e:
            await h.result()
        assert isinstance(e.value.cause, CancelledError)
        assert CALLS[h.id][-1] == ("cancelled", 1)
        d = await h.describe()
        assert d.status == ActivityExecutionStatus.CANCELED
        assert d.canceled_reason == "no longer needed"
        # Canceling a closed activity is refused.
        with pytest.raises(RPCError) as err:
            await h.cancel()
        assert err.value.status == RPCStatusCode.FAILED_PRECONDITION
        assert err.value.message == "activity is in terminal state Canceled"
        # An activity no worker took is canceled at once.
        h = await c.start_activity(greet, "x", id=aid("cancel"), task_queue=f"{tq}-nobody",
                                   start_to_close_timeout=S)
        await h.cancel()
        with pytest.raises(ActivityFailureError) as e:
            await h.result()
        assert isinstance(e.value.cause, CancelledError)
    asyncio.run(run(server, body))


def test_terminate(server):
    async def body(c: Client, tq: str):
        h = await c.start_activity(heartbeats, 200, id=aid("term"), task_queue=tq,
                                   start_to_close_timeout=S)
        await wait_for(lambda: h.describe(), lambda d: d.run_state == PendingActivityState.STARTED)
        await h.terminate(reason="enough")
        with pytest.raises(ActivityFailureError) as e:
            await h.result()
        assert isinstance(e.value.cause, TerminatedError)
        assert e.value.cause.message == "enough"
        d = await h.describe()
        assert d.status == ActivityExecutionStatus.TERMINATED
        with pytest.raises(RPCError) as err:
            await h.terminate()
        assert err.value.status == RPCStatusCode.FAILED_PRECONDITION
        assert err.value.message.startswith("already terminated with request ID ")
        # Unknown ids.
        with pytest.raises(RPCError) as err:
            await c.get_activity_handle(aid("nope")).describe()
        assert err.value.status == RPCStatusCode.NOT_FOUND
        assert err.value.message.startswith("activity not found for ID: nope-")
    asyncio.run(run(server, body))


def test_list_and_count(server):
    async def body(c: Client, tq: str):
        key = SearchAttributeKey.for_keyword("SaTestColor")
        await c.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace="default",
            search_attributes={"SaTestColor": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}))
        ids = [aid("list") for _ in range(3)]
        for i, id in enumerate(ids):
            await c.execute_activity(
                greet, str(i), id=id, task_queue=tq, start_to_close_timeout=S,
                search_attributes=TypedSearchAttributes([SearchAttributePair(key, "red" if i else "blue")]))
        h = await c.start_activity(greet, "x", id=aid("list"), task_queue=f"{tq}-nobody",
                                   start_to_close_timeout=S)
        q = f"TaskQueue = '{tq}'"

        async def listed(query):
            return [a async for a in c.list_activities(query)]
        got = await wait_for(lambda: listed(q), lambda r: len(r) == 3)
        assert sorted(a.activity_id for a in got) == sorted(ids)
        assert all(a.status == ActivityExecutionStatus.COMPLETED for a in got)
        assert all(a.activity_type == "greet" and a.close_time for a in got)
        assert [a.activity_id for a in await listed(f"ActivityId = '{ids[1]}'")] == [ids[1]]
        assert len(await listed(f"{q} AND SaTestColor = 'red'")) == 2
        assert len(await listed(f"ActivityType = 'greet' AND {q} AND ExecutionStatus = 'Completed'")) == 3
        running = await listed(f"TaskQueue = '{tq}-nobody'")
        assert [(a.activity_id, a.status) for a in running] == [(h.id, ActivityExecutionStatus.RUNNING)]
        assert (await c.count_activities(q)).count == 3
        assert (await c.count_activities(f"{q} AND CloseTime > '2000-01-01T00:00:00Z'")).count == 3
        count = await c.count_activities(
            f"TaskQueue = '{tq}' OR TaskQueue = '{tq}-nobody' GROUP BY ExecutionStatus")
        assert count.count == 4
        assert sorted((g.group_values[0], g.count) for g in count.groups) == [("Completed", 3), ("Running", 1)]
        # Workflow lists do not show them.
        assert [w async for w in c.list_workflows(q)] == []
        await h.terminate()
        with pytest.raises(RPCError) as err:
            await listed("NoSuchAttribute = 'x'")
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
    asyncio.run(run(server, body))


def test_id_reuse_and_conflict_policies(server):
    async def body(c: Client, tq: str):
        id = aid("policy")
        nobody = f"{tq}-nobody"
        h = await c.start_activity(greet, "x", id=id, task_queue=nobody, start_to_close_timeout=S)
        with pytest.raises(ActivityAlreadyStartedError) as e:
            await c.start_activity(greet, "x", id=id, task_queue=nobody, start_to_close_timeout=S)
        assert e.value.run_id == h.run_id
        same = await c.start_activity(greet, "x", id=id, task_queue=nobody, start_to_close_timeout=S,
                                      id_conflict_policy=ActivityIDConflictPolicy.USE_EXISTING)
        assert same.run_id == h.run_id
        await h.terminate()
        # Closed as terminated: ALLOW_DUPLICATE_FAILED_ONLY lets a new one start.
        h2 = await c.start_activity(greet, "y", id=id, task_queue=tq, start_to_close_timeout=S,
                                    id_reuse_policy=ActivityIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
        assert h2.run_id != h.run_id
        assert await h2.result() == "hello y"
        # Completed: refused by REJECT_DUPLICATE and ALLOW_DUPLICATE_FAILED_ONLY.
        for policy in (ActivityIDReusePolicy.REJECT_DUPLICATE,
                       ActivityIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY):
            with pytest.raises(ActivityAlreadyStartedError) as e:
                await c.start_activity(greet, "z", id=id, task_queue=tq, start_to_close_timeout=S,
                                       id_reuse_policy=policy)
            assert e.value.run_id == h2.run_id
        h3 = await c.start_activity(greet, "z", id=id, task_queue=tq, start_to_close_timeout=S)
        assert await h3.result() == "hello z"
        # The latest run is the default target; an older one by its run id.
        assert (await c.get_activity_handle(id).describe()).activity_run_id == h3.run_id
        old = await c.get_activity_handle(id, run_id=h.run_id).describe()
        assert old.status == ActivityExecutionStatus.TERMINATED
        assert len([a async for a in c.list_activities(f"ActivityId = '{id}'")]) == 3
    asyncio.run(run(server, body))


def test_manual_completion_by_id(server):
    async def body(c: Client, tq: str):
        h = await c.start_activity(manual, id=aid("manual"), task_queue=tq,
                                   start_to_close_timeout=S)
        await wait_for(lambda: h.describe(), lambda d: d.run_state == PendingActivityState.STARTED)
        handle = c.get_async_activity_handle(activity_id=h.id, run_id=h.run_id)
        await handle.heartbeat("halfway")
        d = await h.describe(include_heartbeat_details=True)
        assert await d.heartbeat_details() == ["halfway"]
        await handle.complete("done by hand")
        assert await h.result() == "done by hand"
        # Completing it again is refused; a heartbeat finds no activity.
        with pytest.raises(RPCError) as err:
            await handle.complete("again")
        assert err.value.status == RPCStatusCode.FAILED_PRECONDITION
        assert err.value.message == "invalid transition from Completed"
        with pytest.raises(RPCError) as err:
            await handle.heartbeat()
        assert err.value.status == RPCStatusCode.NOT_FOUND
        assert err.value.message == f"activity not found for ID: {h.id}"
        # Failed by hand.
        h = await c.start_activity(manual, id=aid("manual"), task_queue=tq,
                                   start_to_close_timeout=S)
        await wait_for(lambda: h.describe(), lambda d: d.run_state == PendingActivityState.STARTED)
        await c.get_async_activity_handle(activity_id=h.id, run_id=h.run_id).fail(
            ApplicationError("by hand", non_retryable=True))
        with pytest.raises(ActivityFailureError) as e:
            await h.result()
        assert e.value.cause.message == "by hand"
    asyncio.run(run(server, body))


def test_start_delay(server):
    async def body(c: Client, tq: str):
        t0 = time.monotonic()
        h = await c.start_activity(greet, "later", id=aid("delay"), task_queue=tq,
                                   start_to_close_timeout=S, start_delay=timedelta(seconds=1.5))
        d = await h.describe()
        assert d.status == ActivityExecutionStatus.RUNNING
        assert d.run_state == PendingActivityState.SCHEDULED
        assert d.start_delay == timedelta(seconds=1.5)
        assert d.execution_time - d.schedule_time == timedelta(seconds=1.5)
        assert await h.result() == "hello later"
        assert time.monotonic() - t0 >= 1.4
    asyncio.run(run(server, body))


def test_batch_terminate_and_delete_standalone_activities(server):
    """StartBatchOperation's activity operations over a visibility query of standalone
    activities: terminate the running ones, then delete them all."""
    from temporalio.api.batch.v1 import (BatchOperationDeleteActivities,
                                          BatchOperationTerminateActivities)
    from temporalio.api.workflowservice.v1 import (DescribeBatchOperationRequest,
                                                   StartBatchOperationRequest)

    async def body(c: Client, tq: str):
        ids = [aid("batch") for _ in range(3)]
        for i in ids:
            await c.start_activity(greet, "nobody", id=i, task_queue=tq, start_to_close_timeout=S)
        query = f"TaskQueue = '{tq}'"
        await wait_for(lambda: c.count_activities(query), lambda n: n.count == 3)

        async def batch(op_field, op):
            job = str(uuid.uuid4())
            await c.workflow_service.start_batch_operation(StartBatchOperationRequest(
                namespace="default", job_id=job, visibility_query=query, reason="batch test",
                **{op_field: op}))
            d = await wait_for(
                lambda: c.workflow_service.describe_batch_operation(
                    DescribeBatchOperationRequest(namespace="default", job_id=job)),
                lambda d: d.state not in (0, 1))
            assert (d.state, d.complete_operation_count, d.failure_operation_count) == (2, 3, 0), d

        await batch("terminate_activities_operation",
                    BatchOperationTerminateActivities(identity="batch-test", reason="enough"))
        for i in ids:
            d = await c.get_activity_handle(i).describe()
            assert d.status == ActivityExecutionStatus.TERMINATED, d.status
        await batch("delete_activities_operation", BatchOperationDeleteActivities())
        for i in ids:
            with pytest.raises(RPCError) as err:
                await c.get_activity_handle(i).describe()
            assert err.value.status == RPCStatusCode.NOT_FOUND

    asyncio.run(run(server, body, worker=False))
