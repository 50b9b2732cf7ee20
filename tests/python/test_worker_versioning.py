"""Worker deployments and worker versioning with the official Python SDK, modelled on Temporal's
own SDK tests: two workers of one deployment with different build ids in one process, the
version registered by their polls, SetWorkerDeploymentCurrentVersion (with the conflict token of
DescribeWorkerDeployment), AUTO_UPGRADE workflows moving to the new current version at their next
task while PINNED ones (and their activities) stay, ramping at 0% and 100%, unversioned workers
getting the tasks while there is no current version, `get_current_build_id()`, the WFT-completed
event's versioning fields, DescribeWorkflowExecution's `versioning_info`, a pinned versioning
override (UpdateWorkflowExecutionOptions, its history event), and the deployment RPCs' errors.
Run against Perdure and, with PERDURE_TEST_TARGET=temporal, Temporal's dev server."""
import asyncio
import time
import uuid

import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from temporalio.api.deployment.v1 import WorkerDeploymentVersion as PbVersion
from temporalio.api.enums.v1 import EventType
from temporalio.api.enums.v1 import VersioningBehavior as PbBehavior
from temporalio.api.workflow.v1 import VersioningOverride, WorkflowExecutionOptions
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    DeleteWorkerDeploymentRequest, DeleteWorkerDeploymentVersionRequest,
    DescribeWorkerDeploymentRequest, DescribeWorkerDeploymentVersionRequest,
    ListWorkerDeploymentsRequest, SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest, UpdateWorkflowExecutionOptionsRequest)
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker, WorkerDeploymentConfig

import wf_versioning as wf


def versioned_worker(client, tq, deployment, build, workflows):
    return Worker(client, task_queue=tq, workflows=workflows,
                  activities=[wf.build_activity(build)],
                  deployment_config=WorkerDeploymentConfig(
                      version=WorkerDeploymentVersion(deployment, build),
                      use_worker_versioning=True))


async def eventually(what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await what()
        except (RPCError, AssertionError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def wait_version(client, deployment, build):
    """Waits until the version's polls registered it (Temporal creates it implicitly)."""
    req = DescribeWorkerDeploymentVersionRequest(
        namespace="default", deployment_version=PbVersion(deployment_name=deployment,
                                                           build_id=build))
    return await eventually(lambda: client.workflow_service.describe_worker_deployment_version(req))


async def set_current(client, deployment, build):
    svc = client.workflow_service
    d = await svc.describe_worker_deployment(
        DescribeWorkerDeploymentRequest(namespace="default", deployment_name=deployment))
    r = await svc.set_worker_deployment_current_version(SetWorkerDeploymentCurrentVersionRequest(
        namespace="default", deployment_name=deployment, build_id=build,
        conflict_token=d.conflict_token, identity="versioning-test"))
    return r


async def routed_to(client, tq, tag):
    """Waits until new workflows of the queue reach `tag`'s build: Temporal hands a routing
    change to its task queues asynchronously."""
    async def fresh():
        out = await client.execute_workflow("Quick", id=f"probe-{uuid.uuid4()}", task_queue=tq)
        assert out.startswith(tag), out
    await eventually(fresh)


async def set_ramping(client, deployment, build, percentage):
    svc = client.workflow_service
    d = await svc.describe_worker_deployment(
        DescribeWorkerDeploymentRequest(namespace="default", deployment_name=deployment))
    r = await svc.set_worker_deployment_ramping_version(SetWorkerDeploymentRampingVersionRequest(
        namespace="default", deployment_name=deployment, build_id=build, percentage=percentage,
        conflict_token=d.conflict_token, identity="versioning-test"))
    return r


def names():
    u = uuid.uuid4().hex[:8]
    return f"versioning-{u}", f"deploy-{u}"


async def query_build(handle, want):
    async def q():
        got = await handle.query("build")
        assert got == want, got
        return got
    return await eventually(q)


def test_auto_upgrade_moves_and_pinned_stays(server):
    async def body():
        client = await Client.connect(server)
        tq, dep = names()
        async with versioned_worker(client, tq, dep, "1.0", wf.V1), \
                versioned_worker(client, tq, dep, "2.0", wf.V2):
            await wait_version(client, dep, "1.0")
            await wait_version(client, dep, "2.0")
            await set_current(client, dep, "1.0")
            auto = await client.start_workflow("VersionedAuto", id=f"auto-{tq}", task_queue=tq)
            pinned = await client.start_workflow("VersionedPinned", id=f"pinned-{tq}",
                                                 task_queue=tq)
            assert await query_build(auto, "1.0") == "1.0"
            assert await query_build(pinned, "1.0") == "1.0"

            info = (await auto.describe()).raw_description.workflow_execution_info.versioning_info
            assert info.behavior == PbBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE
            assert (info.deployment_version.deployment_name, info.deployment_version.build_id) \
                == (dep, "1.0")
            info = (await pinned.describe()).raw_description.workflow_execution_info.versioning_info
            assert info.behavior == PbBehavior.VERSIONING_BEHAVIOR_PINNED
            assert info.deployment_version.build_id == "1.0"

            r = await set_current(client, dep, "2.0")
            assert r.previous_deployment_version.build_id == "1.0"
            await routed_to(client, tq, "v2:")
            await auto.signal("do_finish")
            await pinned.signal("do_finish")
            # The auto-upgrade run moves to v2 at its next task (its activity too); the pinned
            # run and its activity stay on v1.
            assert await auto.result() == "v2:2.0:2.0:2.0"
            assert await pinned.result() == "v1:1.0:1.0:1.0"

            completed = [e.workflow_task_completed_event_attributes
                         async for e in pinned.fetch_history_events()
                         if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
            assert completed
            for c in completed:
                assert c.versioning_behavior == PbBehavior.VERSIONING_BEHAVIOR_PINNED
                assert c.worker_deployment_name == dep
                assert (c.deployment_version.deployment_name, c.deployment_version.build_id) \
                    == (dep, "1.0")
            builds = [e.workflow_task_completed_event_attributes.deployment_version.build_id
                      async for e in auto.fetch_history_events()
                      if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
            assert builds[0] == "1.0" and builds[-1] == "2.0", builds

            svc = client.workflow_service
            d = await svc.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(namespace="default", deployment_name=dep))
            info = d.worker_deployment_info
            assert info.name == dep
            assert info.routing_config.current_deployment_version.build_id == "2.0"
            status = {s.deployment_version.build_id: s.status for s in info.version_summaries}
            assert status == {"1.0": 4, "2.0": 2}, status  # DRAINING, CURRENT

            async def listed():  # Temporal lists deployments from visibility: eventually
                r = await svc.list_worker_deployments(ListWorkerDeploymentsRequest(
                    namespace="default"))
                mine = [x for x in r.worker_deployments if x.name == dep]
                assert len(mine) == 1
                assert mine[0].routing_config.current_deployment_version.build_id == "2.0"
                assert mine[0].current_version_summary.deployment_version.build_id == "2.0"
            await eventually(listed)
            v = await svc.describe_worker_deployment_version(DescribeWorkerDeploymentVersionRequest(
                namespace="default", deployment_version=PbVersion(deployment_name=dep,
                                                                   build_id="2.0")))
            queues = sorted((q.name, q.type) for q in v.version_task_queues)
            assert queues == [(tq, 1), (tq, 2)], queues
    asyncio.run(body())


def test_ramping_sends_new_workflows_to_the_ramping_version(server):
    async def body():
        client = await Client.connect(server)
        tq, dep = names()
        async with versioned_worker(client, tq, dep, "1.0", wf.V1), \
                versioned_worker(client, tq, dep, "2.0", wf.V2):
            await wait_version(client, dep, "1.0")
            await wait_version(client, dep, "2.0")
            await set_current(client, dep, "1.0")
            r = await set_ramping(client, dep, "2.0", 100)
            assert r.previous_percentage == 0
            await routed_to(client, tq, "v2:")
            for i in range(3):
                out = await client.execute_workflow("Quick", id=f"ramp100-{i}-{tq}",
                                                    task_queue=tq)
                assert out == "v2:2.0", out
            await set_ramping(client, dep, "2.0", 0)
            await routed_to(client, tq, "v1:")
            for i in range(3):
                out = await client.execute_workflow("Quick", id=f"ramp0-{i}-{tq}",
                                                    task_queue=tq)
                assert out == "v1:1.0", out
            d = await client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(namespace="default", deployment_name=dep))
            rc = d.worker_deployment_info.routing_config
            assert rc.ramping_deployment_version.build_id == "2.0"
            assert rc.ramping_version_percentage == 0
            status = {s.deployment_version.build_id: s.status
                      for s in d.worker_deployment_info.version_summaries}
            assert status == {"1.0": 2, "2.0": 3}, status  # CURRENT, RAMPING
    asyncio.run(body())


def test_unversioned_worker_serves_until_a_current_version_is_set(server):
    async def body():
        client = await Client.connect(server)
        tq, dep = names()
        async with versioned_worker(client, tq, dep, "1.0", wf.V1), \
                Worker(client, task_queue=tq, workflows=[wf.QuickUnversioned],
                       activities=[wf.build_activity("none")]):
            await wait_version(client, dep, "1.0")
            out = await client.execute_workflow("Quick", id=f"unv-{tq}", task_queue=tq)
            assert out.startswith("unversioned:"), out
            await set_current(client, dep, "1.0")
            await routed_to(client, tq, "v1:")
            out = await client.execute_workflow("Quick", id=f"v1-{tq}", task_queue=tq)
            assert out == "v1:1.0", out
    asyncio.run(body())


def test_pinned_override_keeps_an_auto_upgrade_run_on_its_version(server):
    async def body():
        client = await Client.connect(server)
        tq, dep = names()
        async with versioned_worker(client, tq, dep, "1.0", wf.V1), \
                versioned_worker(client, tq, dep, "2.0", wf.V2):
            await wait_version(client, dep, "1.0")
            await wait_version(client, dep, "2.0")
            await set_current(client, dep, "1.0")
            h = await client.start_workflow("VersionedAuto", id=f"ovr-{tq}", task_queue=tq)
            await query_build(h, "1.0")
            ov = VersioningOverride(pinned=VersioningOverride.PinnedOverride(
                behavior=VersioningOverride.PINNED_OVERRIDE_BEHAVIOR_PINNED,
                version=PbVersion(deployment_name=dep, build_id="1.0")))
            resp = await client.workflow_service.update_workflow_execution_options(
                UpdateWorkflowExecutionOptionsRequest(
                    namespace="default",
                    workflow_execution=WorkflowExecution(workflow_id=h.id),
                    workflow_execution_options=WorkflowExecutionOptions(versioning_override=ov),
                    update_mask=FieldMask(paths=["versioning_override"]),
                    identity="versioning-test"))
            assert resp.workflow_execution_options.versioning_override.pinned.version.build_id \
                == "1.0"
            info = (await h.describe()).raw_description.workflow_execution_info.versioning_info
            assert info.versioning_override.pinned.version.build_id == "1.0"
            await set_current(client, dep, "2.0")
            await routed_to(client, tq, "v2:")
            await h.signal("do_finish")
            assert await h.result() == "v1:1.0:1.0:1.0"
            updated = [e.workflow_execution_options_updated_event_attributes
                       async for e in h.fetch_history_events()
                       if e.event_type
                       == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED]
            assert len(updated) == 1
            assert updated[0].versioning_override.pinned.version.build_id == "1.0"
            assert updated[0].identity == "versioning-test"
    asyncio.run(body())


def test_deployment_errors(server):
    async def body():
        client = await Client.connect(server)
        svc = client.workflow_service
        tq, dep = names()

        async def code_and_message(call):
            with pytest.raises(RPCError) as e:
                await call
            return e.value.status, e.value.message

        assert await code_and_message(svc.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace="default", deployment_name=dep))) == (
            RPCStatusCode.NOT_FOUND,
            f"no Worker Deployment found with name '{dep}'; does your Worker Deployment have "
            "pollers?")
        async with versioned_worker(client, tq, dep, "1.0", wf.V1):
            await wait_version(client, dep, "1.0")
            assert await code_and_message(svc.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace="default", deployment_name=dep, build_id="9.9"))) == (
                RPCStatusCode.NOT_FOUND, f"build ID '9.9' not found in Worker Deployment '{dep}'")
            assert await code_and_message(svc.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace="default", deployment_name=dep, build_id="1.0",
                    conflict_token=b"stale"))) == (
                RPCStatusCode.FAILED_PRECONDITION, "conflict token mismatch")
            await set_current(client, dep, "1.0")
            assert await code_and_message(svc.set_worker_deployment_ramping_version(
                SetWorkerDeploymentRampingVersionRequest(
                    namespace="default", deployment_name=dep, build_id="1.0",
                    percentage=50))) == (
                RPCStatusCode.FAILED_PRECONDITION,
                f"requested ramping version {dep}.1.0 is already current")
            assert await code_and_message(svc.set_worker_deployment_ramping_version(
                SetWorkerDeploymentRampingVersionRequest(
                    namespace="default", deployment_name=dep, build_id="1.0",
                    percentage=150))) == (
                RPCStatusCode.INVALID_ARGUMENT, "Percentage must be between 0 and 100 (inclusive)")
            assert await code_and_message(svc.delete_worker_deployment_version(
                DeleteWorkerDeploymentVersionRequest(
                    namespace="default",
                    deployment_version=PbVersion(deployment_name=dep, build_id="1.0")))) == (
                RPCStatusCode.FAILED_PRECONDITION,
                f"version '{dep}:1.0' cannot be deleted since it is current or ramping")
            assert await code_and_message(svc.delete_worker_deployment(
                DeleteWorkerDeploymentRequest(namespace="default", deployment_name=dep))) == (
                RPCStatusCode.FAILED_PRECONDITION, "deployment has versions, can't be deleted")
            assert (await code_and_message(svc.describe_worker_deployment_version(
                DescribeWorkerDeploymentVersionRequest(
                    namespace="default",
                    deployment_version=PbVersion(deployment_name=dep, build_id="7")))))[0] \
                == RPCStatusCode.NOT_FOUND
            await set_current(client, dep, "")
            assert await code_and_message(svc.delete_worker_deployment_version(
                DeleteWorkerDeploymentVersionRequest(
                    namespace="default",
                    deployment_version=PbVersion(deployment_name=dep, build_id="1.0")))) == (
                RPCStatusCode.FAILED_PRECONDITION,
                f"version '{dep}:1.0' cannot be deleted since it is draining")
    asyncio.run(body())
