"""Tier-2 features through the official Python SDK: child workflows, continue-as-new,
cancellation, updates, signal-with-start, heartbeats and activity timeouts, id reuse policies,
workflow retries and timeouts, external signals."""
import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import ContinueAsNewInitiator
from temporalio.client import (Client, WorkflowExecutionStatus, WorkflowFailureError,
                               WorkflowUpdateFailedError)
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import (ActivityError, CancelledError,
                                   ChildWorkflowError, TimeoutError, TimeoutType,
                                   WorkflowAlreadyStartedError)
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker


from wf_features import (ACTIVITIES, WORKFLOWS, Acts, CronCounter, Child, Counter, Flaky, Parent,
                         Signaller, Sleeper, Waiter)



async def run(address: str, body) -> None:
    client = await Client.connect(address)
    tq = f"feat-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=WORKFLOWS, activities=ACTIVITIES):
        await asyncio.wait_for(body(client, tq), 60)


def wid() -> str:
    return f"wf-{uuid.uuid4()}"


def test_child_workflows(server):
    async def body(c: Client, tq: str):
        assert await c.execute_workflow(Parent.run, 21, id=wid(), task_queue=tq) == 42
        with pytest.raises(WorkflowFailureError) as e:
            await c.execute_workflow(Parent.run, -1, id=wid(), task_queue=tq)
        assert isinstance(e.value.cause, ChildWorkflowError)
    asyncio.run(run(server, body))


def test_continue_as_new_follows_the_chain(server):
    async def body(c: Client, tq: str):
        h = await c.start_workflow(Counter.run, 0, id=wid(), task_queue=tq)
        assert await h.result() == 3
        runs = [w async for w in c.list_workflows(f"WorkflowId = '{h.id}'")]
        assert len(runs) == 4
        assert sorted(r.status.name for r in runs) == ["COMPLETED"] + ["CONTINUED_AS_NEW"] * 3
    asyncio.run(run(server, body))


def test_cancel_and_terminate(server):
    async def body(c: Client, tq: str):
        h = await c.start_workflow(Sleeper.run, id=wid(), task_queue=tq)
        await asyncio.sleep(0.3)
        await h.cancel()
        with pytest.raises(WorkflowFailureError) as e:
            await h.result()
        assert isinstance(e.value.cause, CancelledError)
        assert (await h.describe()).status == WorkflowExecutionStatus.CANCELED
        h = await c.start_workflow(Sleeper.run, id=wid(), task_queue=tq)
        await h.terminate("enough")
        with pytest.raises(WorkflowFailureError):
            await h.result()
        assert (await h.describe()).status == WorkflowExecutionStatus.TERMINATED
        # The running activity learns of the cancellation through its heartbeat response.
        assert await c.execute_workflow(Acts.run, "cancel", id=wid(), task_queue=tq) == "cancelled"
    asyncio.run(run(server, body))


def test_updates_signals_and_signal_with_start(server):
    async def body(c: Client, tq: str):
        id = wid()
        h = await c.start_workflow(Waiter.run, id=id, task_queue=tq)
        assert await h.execute_update(Waiter.add, 2) == 2
        assert await h.execute_update(Waiter.add, 3) == 5
        with pytest.raises(WorkflowUpdateFailedError):
            await h.execute_update(Waiter.add, -1)
        pending = await h.start_update(Waiter.wait_until_done, wait_for_stage=__import__("temporalio.client", fromlist=["x"]).WorkflowUpdateStage.ACCEPTED)
        h2 = await c.start_workflow(Waiter.run, id=id, task_queue=tq, start_signal="sig", start_signal_args=["via-sws"],
                                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        assert h2.result_run_id == h.result_run_id
        await c.start_workflow(Signaller.run, id, id=wid(), task_queue=tq)
        assert await h.result() == ["via-sws", "from-workflow", "done"]
        assert await pending.result() == "saw done"
        h3 = await c.start_workflow(Waiter.run, id=wid(), task_queue=tq, start_signal="sig", start_signal_args=["done"])
        assert await h3.result() == ["done"]
    asyncio.run(run(server, body))


def test_activity_heartbeats_and_timeouts(server):
    async def body(c: Client, tq: str):
        r = await c.execute_workflow(Acts.run, "heartbeat", id=wid(), task_queue=tq)
        assert r == "attempt=2 resumed_from=3", r
        assert await c.execute_workflow(Acts.run, "start_to_close", id=wid(), task_queue=tq) == "attempt 2"
        for which, tt in [("schedule_to_close", TimeoutType.SCHEDULE_TO_CLOSE),
                          ("schedule_to_start", TimeoutType.SCHEDULE_TO_START)]:
            with pytest.raises(WorkflowFailureError) as e:
                await c.execute_workflow(Acts.run, which, id=wid(), task_queue=tq)
            cause = e.value.cause
            assert isinstance(cause, ActivityError), cause
            assert isinstance(cause.cause, TimeoutError) and cause.cause.type == tt, cause.cause
    asyncio.run(run(server, body))


def test_id_reuse_policies_and_workflow_retry(server):
    async def body(c: Client, tq: str):
        id = wid()
        h = await c.start_workflow(Sleeper.run, id=id, task_queue=tq)
        with pytest.raises(WorkflowAlreadyStartedError):
            await c.start_workflow(Sleeper.run, id=id, task_queue=tq)
        h2 = await c.start_workflow(Sleeper.run, id=id, task_queue=tq,
                                    id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING)
        assert h2.result_run_id != h.result_run_id
        old = c.get_workflow_handle(id, run_id=h.result_run_id)
        assert (await old.describe()).status == WorkflowExecutionStatus.TERMINATED
        await h2.terminate()
        with pytest.raises(WorkflowAlreadyStartedError):
            await c.start_workflow(Sleeper.run, id=id, task_queue=tq,
                                   id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        done = wid()
        assert await c.execute_workflow(Child.run, 1, id=done, task_queue=tq) == 2
        with pytest.raises(WorkflowAlreadyStartedError):
            await c.start_workflow(Child.run, 1, id=done, task_queue=tq,
                                   id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
        assert await c.execute_workflow(Child.run, 2, id=done, task_queue=tq) == 4
        assert await c.execute_workflow(Flaky.run, id=wid(), task_queue=tq,
                                        retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100))) == 3
        with pytest.raises(WorkflowFailureError) as e:
            await c.execute_workflow(Sleeper.run, id=wid(), task_queue=tq, run_timeout=timedelta(seconds=1))
        assert isinstance(e.value.cause, TimeoutError)
    asyncio.run(run(server, body))


def test_namespace_rpcs(server):
    from temporalio.api.workflowservice.v1 import (DescribeNamespaceRequest, ListNamespacesRequest,
                                                   RegisterNamespaceRequest)
    from temporalio.service import RPCError, RPCStatusCode

    async def body():
        c = await Client.connect(server)
        name = f"ns-{uuid.uuid4().hex[:8]}"
        from google.protobuf.duration_pb2 import Duration
        with pytest.raises(RPCError) as e:
            await c.workflow_service.register_namespace(RegisterNamespaceRequest(namespace=name))
        assert e.value.status == RPCStatusCode.INVALID_ARGUMENT, "retention is required"
        day = Duration(seconds=86400)
        await c.workflow_service.register_namespace(RegisterNamespaceRequest(
            namespace=name, description="smoke", workflow_execution_retention_period=day))
        with pytest.raises(RPCError) as e:
            await c.workflow_service.register_namespace(RegisterNamespaceRequest(
                namespace=name, workflow_execution_retention_period=day))
        assert e.value.status == RPCStatusCode.ALREADY_EXISTS
        d = await c.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=name))
        assert d.namespace_info.name == name and d.namespace_info.description == "smoke"
        names = [n.namespace_info.name for n in
                 (await c.workflow_service.list_namespaces(ListNamespacesRequest())).namespaces]
        assert "default" in names and name in names
        with pytest.raises(RPCError) as e:
            await c.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="no-such-ns"))
        assert e.value.status == RPCStatusCode.NOT_FOUND
        # A workflow runs in the new namespace.
        nc = await Client.connect(server, namespace=name)
        tq = f"ns-{uuid.uuid4()}"
        async with Worker(nc, task_queue=tq, workflows=WORKFLOWS, activities=ACTIVITIES):
            assert await nc.execute_workflow(Child.run, 5, id=wid(), task_queue=tq) == 10
    asyncio.run(asyncio.wait_for(body(), 60))


def test_update_with_start(server):
    from temporalio.client import WithStartWorkflowOperation

    async def body(c: Client, tq: str):
        id = wid()
        op = WithStartWorkflowOperation(Waiter.run, id=id, task_queue=tq,
                                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        assert await c.execute_update_with_start_workflow(Waiter.add, 4, start_workflow_operation=op) == 4
        h = await op.workflow_handle()
        op2 = WithStartWorkflowOperation(Waiter.run, id=id, task_queue=tq,
                                         id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        assert await c.execute_update_with_start_workflow(Waiter.add, 1, start_workflow_operation=op2) == 5
        assert (await op2.workflow_handle()).result_run_id == h.result_run_id
        op3 = WithStartWorkflowOperation(Waiter.run, id=id, task_queue=tq,
                                         id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
        with pytest.raises(WorkflowAlreadyStartedError):
            await c.execute_update_with_start_workflow(Waiter.add, 1, start_workflow_operation=op3)
        await h.signal(Waiter.sig, "done")
        assert await h.result() == ["done"]
    asyncio.run(run(server, body))


def test_cron_schedule(server):
    async def body(c: Client, tq: str) -> None:
        with pytest.raises(RPCError) as e:
            await c.start_workflow(CronCounter.run, id=wid(), task_queue=tq, cron_schedule="61 * * * *")
        assert e.value.status == RPCStatusCode.INVALID_ARGUMENT
        id = wid()
        h = await c.start_workflow(CronCounter.run, id=id, task_queue=tq, cron_schedule="@every 1s")
        q = f"WorkflowId = '{id}' AND ExecutionStatus = 'Completed'"
        for _ in range(100):
            done = [w async for w in c.list_workflows(q)]
            if len(done) >= 3:
                break
            await asyncio.sleep(0.2)
        done.sort(key=lambda w: w.start_time)
        closes = [[e async for e in c.get_workflow_handle(id, run_id=w.run_id).fetch_history_events()][-1]
                  for w in done[:3]]
        results = [x.workflow_execution_completed_event_attributes.result.payloads[0].data for x in closes]
        assert results == [b"1", b"2", b"3"], "each run gets the previous run's result"
        assert all(w.execution_time > w.start_time for w in done), "each run waits for its tick"
        events = [e async for e in c.get_workflow_handle(id, run_id=done[1].run_id).fetch_history_events()]
        started = events[0].workflow_execution_started_event_attributes
        assert started.cron_schedule == "@every 1s"
        assert started.initiator == ContinueAsNewInitiator.CONTINUE_AS_NEW_INITIATOR_CRON_SCHEDULE
        assert started.continued_execution_run_id == done[0].run_id
        assert started.first_workflow_task_backoff.ToTimedelta() > timedelta(0)
        assert closes[0].workflow_execution_completed_event_attributes.new_execution_run_id == done[1].run_id
        # Terminating the current run ends the chain.
        await h.terminate("enough")
        d = await c.get_workflow_handle(id).describe()
        assert d.status == WorkflowExecutionStatus.TERMINATED
        await asyncio.sleep(1.5)
        d = await c.get_workflow_handle(id).describe()
        assert d.status == WorkflowExecutionStatus.TERMINATED, "no run after termination"
    asyncio.run(run(server, body))
