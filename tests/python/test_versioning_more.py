"""Worker versioning, continued: a versioning override on the start request, and continue-as-new
of a PINNED workflow (the new run inherits the pinned version, or with
`initial_versioning_behavior=AUTO_UPGRADE` starts on the current one). Run against Perdure and,
with PERDURE_TEST_TARGET=temporal, Temporal's dev server."""
import asyncio

from temporalio.client import Client
from temporalio.common import PinnedVersioningOverride, WorkerDeploymentVersion

import wf_versioning as wf
from test_worker_versioning import (names, routed_to, set_current, versioned_worker,
                                    wait_version)


def test_start_with_a_pinned_override_runs_on_that_version(server):
    async def body():
        client = await Client.connect(server)
        tq, dep = names()
        async with versioned_worker(client, tq, dep, "1.0", wf.V1), \
                versioned_worker(client, tq, dep, "2.0", wf.V2):
            await wait_version(client, dep, "1.0")
            await wait_version(client, dep, "2.0")
            await set_current(client, dep, "1.0")
            await routed_to(client, tq, "v1:")
            out = await client.execute_workflow(
                "Quick", id=f"override-{tq}", task_queue=tq,
                versioning_override=PinnedVersioningOverride(WorkerDeploymentVersion(dep, "2.0")))
            assert out == "v2:2.0", out
            h = client.get_workflow_handle(f"override-{tq}")
            info = (await h.describe()).raw_description.workflow_execution_info.versioning_info
            assert info.versioning_override.pinned.version.build_id == "2.0"
    asyncio.run(body())


def test_continue_as_new_of_a_pinned_run_inherits_or_upgrades(server):
    async def body():
        client = await Client.connect(server)
        tq, dep = names()
        async with versioned_worker(client, tq, dep, "1.0", wf.V1), \
                versioned_worker(client, tq, dep, "2.0", wf.V2):
            await wait_version(client, dep, "1.0")
            await wait_version(client, dep, "2.0")
            await set_current(client, dep, "1.0")
            await routed_to(client, tq, "v1:")
            stay = await client.start_workflow("PinnedCan", args=["stay", 0],
                                               id=f"can-stay-{tq}", task_queue=tq)
            upgrade = await client.start_workflow("PinnedCan", args=["upgrade", 0],
                                                  id=f"can-upgrade-{tq}", task_queue=tq)
            for h in (stay, upgrade):
                async def on_v1(h=h):
                    assert await h.query("build") == "1.0"
                from test_worker_versioning import eventually
                await eventually(on_v1)
            await set_current(client, dep, "2.0")
            await routed_to(client, tq, "v2:")
            await stay.signal("do_finish")
            await upgrade.signal("do_finish")
            assert await stay.result() == "v1:1.0"
            assert await upgrade.result() == "v2:2.0"
    asyncio.run(body())


def test_a_child_of_a_pinned_parent_starts_on_the_parents_version(server):
    async def body():
        client = await Client.connect(server)
        tq, dep = names()
        async with versioned_worker(client, tq, dep, "1.0", wf.V1), \
                versioned_worker(client, tq, dep, "2.0", wf.V2):
            await wait_version(client, dep, "1.0")
            await wait_version(client, dep, "2.0")
            await set_current(client, dep, "1.0")
            await routed_to(client, tq, "v1:")
            parent = await client.start_workflow("PinnedParent", id=f"parent-{tq}",
                                                 task_queue=tq)
            from test_worker_versioning import eventually

            async def on_v1():
                assert await parent.query("build") == "1.0"
            await eventually(on_v1)
            await set_current(client, dep, "2.0")
            await routed_to(client, tq, "v2:")
            await parent.signal("do_finish")
            # The child (an AUTO_UPGRADE type) starts on its pinned parent's version.
            assert await parent.result() == "v1:v1:1.0"
    asyncio.run(body())
