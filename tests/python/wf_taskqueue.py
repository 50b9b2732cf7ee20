"""Workflow and activity of the cluster-info and task-queue tests (kept out of the pytest modules;
see wf_order.py)."""
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def echo(text: str) -> str:
    return text


@workflow.defn
class EchoOnce:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(echo, text,
                                               start_to_close_timeout=timedelta(seconds=10))
