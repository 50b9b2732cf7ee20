"""Protocol details the official SDKs' own tests compare, checked the same way against Perdure
and Temporal's dev server (PERDURE_TEST_TARGET=temporal): user metadata (summaries and details)
on runs, activities, timers and children; an update to a closed run; an accepted update whose run
closes; cancelling a closed run (from a client and from a workflow); search attribute names with
dashes; the continue-as-new suggestion set by dynamic config."""
import asyncio
import contextlib
import json
import uuid

import pytest
from google.protobuf.json_format import MessageToDict
from temporalio.api.enums.v1 import EventType, IndexedValueType
from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import NamespaceState, WorkerStatus, WorkflowIdConflictPolicy
from temporalio.api.operatorservice.v1 import (AddSearchAttributesRequest, DeleteNamespaceRequest,
                                               ListClustersRequest)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice import v1 as ws
from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest
from temporalio.client import (Client, WithStartWorkflowOperation, WorkflowUpdateFailedError,
                               WorkflowUpdateStage)
from temporalio.common import (SearchAttributeKey, SearchAttributePair, TypedSearchAttributes,
                               WorkflowIDConflictPolicy, WorkflowIDReusePolicy)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from conftest import CONTINUE_AS_NEW_SUGGEST_HISTORY_COUNT
from wf_edges import (ACTIVITIES, WORKFLOWS, CancelClosed, Gate, MetaParent,
                      UntilSuggested, Updatable)


async def run(address: str, body) -> None:
    client = await Client.connect(address)
    tq = f"edges-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=WORKFLOWS, activities=ACTIVITIES):
        await asyncio.wait_for(body(client, tq), 60)


def metadata_text(md: dict, field: str):
    """The JSON string a summary or details payload carries (the SDK's default converter)."""
    import base64
    p = md.get(field)
    return None if p is None else json.loads(base64.b64decode(p["data"]))


def test_user_metadata_is_stored_shown_and_passed_to_children(server):
    async def body(client: Client, tq: str):
        wid = f"meta-{uuid.uuid4()}"
        h = await client.start_workflow(MetaParent.run, id=wid, task_queue=tq,
                                        static_summary="wf summary", static_details="wf details")
        assert await h.result() == "p"
        seen = {}
        async for e in h.fetch_history_events():
            md = MessageToDict(e).get("userMetadata")
            if md:
                seen[e.event_type] = (metadata_text(md, "summary"), metadata_text(md, "details"))
        assert seen == {
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: ("wf summary", "wf details"),
            EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: ("act summary", None),
            EventType.EVENT_TYPE_TIMER_STARTED: ("timer summary", None),
            EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
                ("child summary", "child details"),
        }
        d = await h.describe()
        assert (await d.static_summary(), await d.static_details()) == ("wf summary", "wf details")
        child = await client.get_workflow_handle(f"{wid}-child").describe()
        assert (await child.static_summary(), await child.static_details()) == \
            ("child summary", "child details")
        # A run started without any has none.
        plain = await client.start_workflow(MetaParent.run, id=f"plain-{uuid.uuid4()}",
                                            task_queue=tq)
        await plain.result()
        d = await plain.describe()
        assert (await d.static_summary(), await d.static_details()) == (None, None)
        assert not d.raw_description.execution_config.HasField("user_metadata")

    asyncio.run(run(server, body))


def test_updates_and_cancels_reaching_a_closed_run(server):
    async def body(client: Client, tq: str):
        # An update sent after the run completed.
        h = await client.start_workflow(Gate.run, id=f"gate-{uuid.uuid4()}", task_queue=tq)
        await h.signal(Gate.finish)
        await h.result()
        with pytest.raises(RPCError) as err:
            await h.execute_update(Gate.stuck)
        assert err.value.status == RPCStatusCode.NOT_FOUND
        assert "workflow execution already completed" in str(err.value)

        # An accepted update whose run completes first fails with Temporal's failure.
        h = await client.start_workflow(Gate.run, id=f"gate-{uuid.uuid4()}", task_queue=tq)
        uh = await h.start_update(Gate.stuck, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        await h.signal(Gate.finish)
        await h.result()
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await uh.result()
        cause = err.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == "AcceptedUpdateCompletedWorkflow"
        assert cause.message == \
            "Workflow Update failed because the Workflow completed before the Update completed."
        assert cause.non_retryable

        # Cancelling a completed run succeeds and changes nothing; terminating or signalling it
        # does not.
        events = [e.event_type async for e in h.fetch_history_events()]
        await h.cancel()
        assert [e.event_type async for e in h.fetch_history_events()] == events
        for act in (h.terminate(), h.signal(Gate.finish)):
            with pytest.raises(RPCError) as err:
                await act
            assert err.value.status == RPCStatusCode.NOT_FOUND
            assert "workflow execution already completed" in str(err.value)

        # So does asking it to cancel from another workflow.
        c = await client.start_workflow(CancelClosed.run, h.id, id=f"cc-{uuid.uuid4()}",
                                        task_queue=tq)
        assert await c.result() == "requested"
        types = [e.event_type async for e in c.fetch_history_events()]
        assert EventType.EVENT_TYPE_EXTERNAL_WORKFLOW_EXECUTION_CANCEL_REQUESTED in types
        assert [e.event_type async for e in h.fetch_history_events()] == events

    asyncio.run(run(server, body))


def test_search_attribute_names_with_dashes(server):
    async def body(client: Client, tq: str):
        name = f"my-key-{uuid.uuid4().hex[:8]}"
        await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace="default",
            search_attributes={name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}))
        with pytest.raises(RPCError) as err:
            await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
                namespace="default",
                search_attributes={"TemporalMine": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}))
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert "reserved by system" in str(err.value)
        key = SearchAttributeKey.for_keyword(name)
        value = uuid.uuid4().hex
        h = await client.start_workflow(
            Gate.run, id=f"sa-{uuid.uuid4()}", task_queue=tq,
            search_attributes=TypedSearchAttributes([SearchAttributePair(key, value)]))
        d = await h.describe()
        assert d.typed_search_attributes.get(key) == value
        query = f"`{name}` = '{value}'"
        for _ in range(100):
            found = [w.id async for w in client.list_workflows(query)]
            if found:
                break
            await asyncio.sleep(0.1)
        assert found == [h.id]
        await h.signal(Gate.finish)
        await h.result()

    asyncio.run(run(server, body))


def test_continue_as_new_is_suggested_past_the_configured_history_length(server):
    async def body(client: Client, tq: str):
        r = await client.execute_workflow(UntilSuggested.run, id=f"can-{uuid.uuid4()}",
                                          task_queue=tq)
        assert r["suggested"] is True
        assert r["length"] >= CONTINUE_AS_NEW_SUGGEST_HISTORY_COUNT
        assert r["length"] < CONTINUE_AS_NEW_SUGGEST_HISTORY_COUNT + 10
        assert r["sizes_grow"] and r["first_size"] > 0

    asyncio.run(run(server, body))


def test_eager_workflow_start_hands_the_first_task_to_the_local_worker(server):
    async def body(client: Client, tq: str):
        h = await client.start_workflow(MetaParent.run, id=f"eager-{uuid.uuid4()}",
                                        task_queue=tq, request_eager_start=True)
        assert getattr(h, "__temporal_eagerly_started") is True
        assert await h.result() == "p"
        events = [e async for e in h.fetch_history_events()]
        assert [e.event_type for e in events[:4]] == [
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        ]
        assert events[2].workflow_task_started_event_attributes.identity == client.identity
        # Without a local worker for the queue the SDK does not ask.
        other = await client.start_workflow(Gate.run, id=f"eager-{uuid.uuid4()}",
                                            task_queue=f"{tq}-nobody", request_eager_start=True)
        assert getattr(other, "__temporal_eagerly_started") is False
        await other.terminate()
        # A start that finds the workflow running (USE_EXISTING) gets no task.
        wid = f"eager-{uuid.uuid4()}"

        def start_request():
            return StartWorkflowExecutionRequest(
                namespace="default", workflow_id=wid, workflow_type=WorkflowType(name="Gate"),
                task_queue=TaskQueue(name=f"{tq}-raw"), identity="raw-starter",
                request_id=str(uuid.uuid4()), request_eager_execution=True,
                workflow_id_conflict_policy=WorkflowIdConflictPolicy.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING)
        first = await client.workflow_service.start_workflow_execution(start_request())
        assert first.started and first.HasField("eager_workflow_task")
        assert first.eager_workflow_task.workflow_execution.run_id == first.run_id
        assert first.eager_workflow_task.workflow_type.name == "Gate"
        again = await client.workflow_service.start_workflow_execution(start_request())
        assert not again.started and again.run_id == first.run_id
        assert not again.HasField("eager_workflow_task")
        await client.get_workflow_handle(wid).terminate()

    asyncio.run(run(server, body))


def expected_update_with_start(prior: str, conflict, reuse) -> str:
    """What Temporal's dev server does (measured over every combination)."""
    C, R = WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    if reuse == R.TERMINATE_IF_RUNNING or (
            reuse == R.REJECT_DUPLICATE and conflict == C.TERMINATE_EXISTING):
        return "invalid"
    if prior == "wait":
        return {C.FAIL: "already-started", C.USE_EXISTING: "same-run",
                C.TERMINATE_EXISTING: "new-run"}[conflict]
    if reuse == R.ALLOW_DUPLICATE or (reuse == R.ALLOW_DUPLICATE_FAILED_ONLY and prior == "fail"):
        return "new-run"
    return "already-started"


def test_update_with_start_under_every_conflict_and_reuse_policy(server):
    async def one(client: Client, tq: str, prior: str, conflict, reuse) -> str:
        wid = f"uws-{uuid.uuid4()}"
        first = await client.start_workflow(Updatable.run, prior, id=wid, task_queue=tq)
        if prior != "wait":
            with pytest.raises(Exception) if prior == "fail" else contextlib.nullcontext():
                await first.result()
        op = WithStartWorkflowOperation(Updatable.run, "wait", id=wid, task_queue=tq,
                                        id_conflict_policy=conflict, id_reuse_policy=reuse)
        try:
            updated_run = await client.execute_update_with_start_workflow(
                Updatable.which_run, start_workflow_operation=op)
        except WorkflowAlreadyStartedError:
            return "already-started"
        except RPCError as e:
            assert e.status == RPCStatusCode.INVALID_ARGUMENT, e
            assert "cannot be used together with" in str(e), e
            return "invalid"
        handle = await op.workflow_handle()
        # The update ran on the run the start operation answers with.
        assert updated_run == handle.result_run_id
        outcome = "same-run" if handle.result_run_id == first.result_run_id else "new-run"
        await handle.signal(Updatable.finish)
        return outcome

    async def body(client: Client, tq: str):
        cases = [(prior, conflict, reuse)
                 for prior in ("wait", "complete", "fail")
                 for conflict in (WorkflowIDConflictPolicy.FAIL,
                                  WorkflowIDConflictPolicy.USE_EXISTING,
                                  WorkflowIDConflictPolicy.TERMINATE_EXISTING)
                 for reuse in (WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                               WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                               WorkflowIDReusePolicy.REJECT_DUPLICATE,
                               WorkflowIDReusePolicy.TERMINATE_IF_RUNNING)]
        got = await asyncio.gather(*(one(client, tq, *c) for c in cases))
        mismatches = [(p, c.name, r.name, g, expected_update_with_start(p, c, r))
                      for (p, c, r), g in zip(cases, got)
                      if g != expected_update_with_start(p, c, r)]
        assert mismatches == []

    asyncio.run(run(server, body))


def expected_signal_with_start(prior: str, conflict, reuse) -> str:
    """What Temporal's dev server does (measured over every combination)."""
    C, R = WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    if (reuse == R.TERMINATE_IF_RUNNING and conflict != C.UNSPECIFIED) or (
            reuse == R.REJECT_DUPLICATE and conflict == C.TERMINATE_EXISTING) or \
            conflict == C.FAIL:
        return "invalid"
    if prior == "none":
        return "new-run"
    if prior == "wait":
        replaced = conflict == C.TERMINATE_EXISTING or reuse == R.TERMINATE_IF_RUNNING
        return "new-run, first terminated" if replaced else "same-run"
    return "already-started" if reuse == R.REJECT_DUPLICATE else "new-run"


def test_signal_with_start_under_conflict_and_reuse_policies(server):
    async def one(client: Client, tq: str, prior: str, conflict, reuse) -> str:
        wid = f"sws-{uuid.uuid4()}"
        first = None
        if prior != "none":
            first = await client.start_workflow(Updatable.run, prior, id=wid, task_queue=tq)
            if prior != "wait":
                await first.result()
        try:
            h = await client.start_workflow(Updatable.run, "wait", id=wid, task_queue=tq,
                                            start_signal="finish", id_conflict_policy=conflict,
                                            id_reuse_policy=reuse)
        except WorkflowAlreadyStartedError:
            return "already-started"
        except RPCError as e:
            assert e.status == RPCStatusCode.INVALID_ARGUMENT, e
            assert "cannot be used together with" in str(e) or \
                "is not supported for this operation" in str(e), e
            return "invalid"
        # The signal reached the run the start answered with: it finishes.
        assert await client.get_workflow_handle(wid, run_id=h.result_run_id).result() == "done"
        if first is None or h.result_run_id != first.result_run_id:
            if first is not None and prior == "wait":
                d = await client.get_workflow_handle(wid, run_id=first.result_run_id).describe()
                assert d.status.name == "TERMINATED"
                return "new-run, first terminated"
            return "new-run"
        return "same-run"

    async def body(client: Client, tq: str):
        C, R = WorkflowIDConflictPolicy, WorkflowIDReusePolicy
        cases = [(prior, conflict, reuse)
                 for prior in ("none", "wait", "complete")
                 for conflict in (C.UNSPECIFIED, C.FAIL, C.USE_EXISTING, C.TERMINATE_EXISTING)
                 for reuse in (R.ALLOW_DUPLICATE, R.REJECT_DUPLICATE, R.TERMINATE_IF_RUNNING)]
        got = await asyncio.gather(*(one(client, tq, *c) for c in cases))
        mismatches = [(p, c.name, r.name, g, expected_signal_with_start(p, c, r))
                      for (p, c, r), g in zip(cases, got)
                      if g != expected_signal_with_start(p, c, r)]
        assert mismatches == []

    asyncio.run(run(server, body))


def test_history_reverse_partitions_clusters_archival_and_deprecated_versioning(server):
    async def body(client: Client, tq: str):
        h = await client.start_workflow(MetaParent.run, id=f"rev-{uuid.uuid4()}", task_queue=tq)
        await h.result()
        forward = [e.event_id async for e in h.fetch_history_events()]
        backward, token = [], b""
        while True:
            r = await client.workflow_service.get_workflow_execution_history_reverse(
                ws.GetWorkflowExecutionHistoryReverseRequest(
                    namespace="default", execution=WorkflowExecution(workflow_id=h.id),
                    maximum_page_size=4, next_page_token=token))
            # (Temporal pages by stored batches, so a page may hold a few more than asked.)
            backward += [e.event_id for e in r.history.events]
            token = r.next_page_token
            if not token:
                break
        assert backward == list(reversed(forward))
        with pytest.raises(RPCError) as err:
            await client.workflow_service.get_workflow_execution_history_reverse(
                ws.GetWorkflowExecutionHistoryReverseRequest(
                    namespace="default", execution=WorkflowExecution(workflow_id="")))
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert "WorkflowId is not set on request." in str(err.value)

        p = await client.workflow_service.list_task_queue_partitions(
            ws.ListTaskQueuePartitionsRequest(namespace="default", task_queue=TaskQueue(name=tq)))
        for parts in (p.workflow_task_queue_partitions, p.activity_task_queue_partitions):
            assert parts[0].key == tq and parts[0].owner_host_name

        clusters = await client.operator_service.list_clusters(ListClustersRequest())
        assert len(clusters.clusters) == 1
        assert clusters.clusters[0].cluster_name == "active"
        assert clusters.clusters[0].cluster_id and clusters.clusters[0].address

        with pytest.raises(RPCError) as err:
            await client.workflow_service.list_archived_workflow_executions(
                ws.ListArchivedWorkflowExecutionsRequest(namespace="default"))
        assert err.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert "Cluster is not configured for visibility archival." in str(err.value)
        for call, req, version in [
            (client.workflow_service.get_worker_build_id_compatibility,
             ws.GetWorkerBuildIdCompatibilityRequest(namespace="default", task_queue=tq), "v0.1"),
            (client.workflow_service.get_worker_versioning_rules,
             ws.GetWorkerVersioningRulesRequest(namespace="default", task_queue=tq), "v0.2"),
        ]:
            with pytest.raises(RPCError) as err:
                await call(req)
            assert err.value.status == RPCStatusCode.PERMISSION_DENIED
            assert f"Worker versioning {version}" in str(err.value)

    asyncio.run(run(server, body))


def test_deprecate_and_delete_namespace(server):
    async def body(client: Client, tq: str):
        async def register(name: str):
            await client.workflow_service.register_namespace(ws.RegisterNamespaceRequest(
                namespace=name, workflow_execution_retention_period=Duration(seconds=86400)))
            for _ in range(100):  # Temporal's namespace cache needs a moment
                try:
                    await client.workflow_service.describe_namespace(
                        ws.DescribeNamespaceRequest(namespace=name))
                    return
                except RPCError:
                    await asyncio.sleep(0.1)

        def start(name: str, wid: str):
            return client.workflow_service.start_workflow_execution(
                ws.StartWorkflowExecutionRequest(
                    namespace=name, workflow_id=wid, workflow_type=WorkflowType(name="Gate"),
                    task_queue=TaskQueue(name=tq), request_id=str(uuid.uuid4())))

        old = f"dep-{uuid.uuid4().hex[:8]}"
        await register(old)
        await client.workflow_service.deprecate_namespace(ws.DeprecateNamespaceRequest(namespace=old))
        for _ in range(100):
            try:
                await start(old, str(uuid.uuid4()))
            except RPCError as e:
                if e.status == RPCStatusCode.FAILED_PRECONDITION:
                    assert "Namespace has invalid state: Deprecated. Must be Registered." in str(e)
                    break
                raise
            await asyncio.sleep(0.1)  # Temporal applies the new state through its cache
        else:
            raise AssertionError("a deprecated namespace still starts workflows")
        d = await client.workflow_service.describe_namespace(ws.DescribeNamespaceRequest(namespace=old))
        assert d.namespace_info.state == NamespaceState.NAMESPACE_STATE_DEPRECATED

        gone = f"del-{uuid.uuid4().hex[:8]}"
        await register(gone)
        await start(gone, "doomed")
        r = await client.operator_service.delete_namespace(DeleteNamespaceRequest(namespace=gone))
        assert r.deleted_namespace.startswith(f"{gone}-deleted-")
        with pytest.raises(RPCError) as err:
            await client.workflow_service.describe_namespace(
                ws.DescribeNamespaceRequest(namespace=gone))
        assert err.value.status == RPCStatusCode.NOT_FOUND
        await register(gone)  # the name is free again
        d = await client.workflow_service.describe_namespace(ws.DescribeNamespaceRequest(namespace=gone))
        assert d.namespace_info.state == NamespaceState.NAMESPACE_STATE_REGISTERED

    asyncio.run(run(server, body))


def test_worker_heartbeats_list_count_and_describe_workers(server):
    from datetime import timedelta
    from temporalio.runtime import Runtime, TelemetryConfig

    async def body():
        rt = Runtime(telemetry=TelemetryConfig(), worker_heartbeat_interval=timedelta(seconds=1))
        client = await Client.connect(server, runtime=rt)
        tq = f"beat-{uuid.uuid4()}"
        async with Worker(client, task_queue=tq, workflows=WORKFLOWS, activities=ACTIVITIES):
            query = f"TaskQueue = '{tq}'"
            for _ in range(100):
                r = await client.workflow_service.list_workers(
                    ws.ListWorkersRequest(namespace="default", query=query))
                if r.workers:
                    break
                await asyncio.sleep(0.1)
            assert len(r.workers) == 1, r
            w = r.workers[0]
            assert (w.task_queue, w.sdk_name) == (tq, "temporal-python")
            assert w.status == WorkerStatus.WORKER_STATUS_RUNNING
            assert w.worker_instance_key and w.host_name and w.start_time.seconds > 0
            c = await client.workflow_service.count_workers(
                ws.CountWorkersRequest(namespace="default", query=query))
            assert c.count == 1
            none = await client.workflow_service.count_workers(
                ws.CountWorkersRequest(namespace="default", query=f"TaskQueue = '{tq}-nobody'"))
            assert none.count == 0
            d = await client.workflow_service.describe_worker(ws.DescribeWorkerRequest(
                namespace="default", worker_instance_key=w.worker_instance_key))
            assert d.worker_info.worker_heartbeat.task_queue == tq
            assert d.worker_info.worker_heartbeat.sdk_version == w.sdk_version
            with pytest.raises(RPCError) as err:
                await client.workflow_service.describe_worker(ws.DescribeWorkerRequest(
                    namespace="default", worker_instance_key="nope"))
            assert err.value.status == RPCStatusCode.NOT_FOUND
            assert "nope" in str(err.value)

    asyncio.run(asyncio.wait_for(body(), 60))
