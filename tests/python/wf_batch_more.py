"""Workflow of the batch-operation tests (kept out of the pytest module, see wf_order.py): it
waits for a "go" signal and returns how many it received."""
from temporalio import workflow


@workflow.defn
class WaitForGo:
    def __init__(self) -> None:
        self.signals = 0

    @workflow.signal
    def go(self) -> None:
        self.signals += 1

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.signals > 0)
        return self.signals


WORKFLOWS = [WaitForGo]
