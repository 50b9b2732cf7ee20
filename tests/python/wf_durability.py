"""The workflow of the durability tests (kept out of the pytest modules; see wf_order.py)."""
import os
from datetime import timedelta

from temporalio import activity, workflow

LOG = os.environ.get("PERDURE_ACTIVITY_LOG", "/tmp/perdure-durability-activities.log")


@activity.defn
async def step(name: str) -> str:
    with open(LOG, "a") as f:
        f.write(name + "\n")
    return name


@workflow.defn(name="durable")
class Durable:
    @workflow.run
    async def run(self, n: int) -> str:
        wid = workflow.info().workflow_id
        a = await workflow.execute_activity(step, f"{wid}:a", start_to_close_timeout=timedelta(seconds=10))
        await workflow.sleep(2)
        b = await workflow.execute_activity(step, f"{wid}:b", start_to_close_timeout=timedelta(seconds=10))
        return f"{n}:{a}:{b}"
