"""Workflows the schedule tests start (kept out of the pytest module; see wf_order.py)."""
from temporalio import workflow


@workflow.defn(name="sched-count")
class Count:
    """Returns the last completion result plus one (1 on the first run)."""

    @workflow.run
    async def run(self) -> int:
        last = workflow.get_last_completion_result(int) if workflow.has_last_completion_result() else 0
        return (last or 0) + 1


@workflow.defn(name="sched-block")
class Block:
    """Runs until signalled `done`."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "done"

    @workflow.signal
    def finish(self) -> None:
        self.done = True


WORKFLOWS = [Count, Block]
