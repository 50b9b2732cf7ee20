"""List/count with Temporal's query language, custom search attributes and GROUP BY, through the
official Python SDK."""
import asyncio
import uuid

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from wf_visibility import TIER, Vis


async def scenario(address: str) -> None:
    client = await Client.connect(address)
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace="default",
        search_attributes={"SmokeTier": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}))
    wf_type = f"vis-{uuid.uuid4().hex[:8]}"
    tq = f"vis-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[Vis]):
        handles = [await client.start_workflow(Vis.run, t, id=f"{wf_type}-{i}", task_queue=tq)
                   for i, t in enumerate(["gold", "gold", "silver"])]
        for h in handles:
            await h.result()
    # A running one, never picked up (no worker on its queue).
    await client.start_workflow("vis", "none", id=f"{wf_type}-running", task_queue=f"{tq}-idle")

    def ids(rows):
        return sorted(r.id for r in rows)

    q = f"WorkflowType = 'vis' AND WorkflowId STARTS_WITH '{wf_type}'"
    rows = [w async for w in client.list_workflows(q)]
    assert len(rows) == 4
    assert rows[0].id == f"{wf_type}-running", "running runs are listed first"
    done = [w async for w in client.list_workflows(q + " AND ExecutionStatus = 'Completed'")]
    assert ids(done) == [f"{wf_type}-{i}" for i in range(3)]
    gold = [w async for w in client.list_workflows(q + " AND SmokeTier = 'gold'")]
    assert ids(gold) == [f"{wf_type}-0", f"{wf_type}-1"]
    assert gold[0].typed_search_attributes.get(TIER) == "gold"
    assert (await client.count_workflows(q + " AND CloseTime IS NULL")).count == 1
    grouped = await client.count_workflows(q + " GROUP BY ExecutionStatus")
    assert grouped.count == 4
    assert sorted((g.group_values[0], g.count) for g in grouped.groups) == [("Completed", 3), ("Running", 1)]
    with pytest.raises(RPCError) as e:
        await client.count_workflows("NoSuchAttribute = 'x'")
    assert e.value.status == RPCStatusCode.INVALID_ARGUMENT
    assert "invalid search attribute: NoSuchAttribute" in e.value.message


def test_list_and_count(server):
    asyncio.run(asyncio.wait_for(scenario(server), 60))
