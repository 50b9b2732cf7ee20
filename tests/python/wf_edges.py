"""Workflows for test_protocol_edges.py: user metadata on a run, an activity, a timer and a child;
an update left unfinished; cancelling a closed run from another workflow; history size and the
continue-as-new suggestion."""
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def noop() -> str:
    return "a"


@workflow.defn
class MetaChild:
    @workflow.run
    async def run(self) -> str:
        return "c"


@workflow.defn
class MetaParent:
    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity(noop, start_to_close_timeout=timedelta(seconds=10),
                                        summary="act summary")
        await workflow.sleep(timedelta(milliseconds=10), summary="timer summary")
        await workflow.execute_child_workflow(MetaChild.run,
                                              id=workflow.info().workflow_id + "-child",
                                              static_summary="child summary",
                                              static_details="child details")
        return "p"


@workflow.defn
class Gate:
    """Runs until signalled; its update waits for a release that never comes."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.done)
        return "ok"

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.update(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def stuck(self) -> str:
        await workflow.wait_condition(lambda: False)
        return "never"


@workflow.defn
class CancelClosed:
    """Asks a (closed) workflow to cancel through an external handle."""

    @workflow.run
    async def run(self, target: str) -> str:
        await workflow.get_external_workflow_handle(target).cancel()
        return "requested"


@workflow.defn
class UntilSuggested:
    """Starts short timers until the server suggests continue-as-new; returns what it saw."""

    @workflow.run
    async def run(self) -> dict:
        sizes = []
        while not workflow.info().is_continue_as_new_suggested():
            sizes.append(workflow.info().get_current_history_size())
            if len(sizes) > 100:
                break
            await workflow.sleep(timedelta(milliseconds=1))
        return {
            "suggested": workflow.info().is_continue_as_new_suggested(),
            "length": workflow.info().get_current_history_length(),
            "sizes_grow": all(a < b for a, b in zip(sizes, sizes[1:])),
            "first_size": sizes[0] if sizes else 0,
        }


WORKFLOWS = [MetaParent, MetaChild, Gate, CancelClosed, UntilSuggested]
ACTIVITIES = [noop]


@workflow.defn
class Updatable:
    """Fails, completes, or waits for `finish`; its update answers with the run id."""

    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self, mode: str) -> str:
        if mode == "fail":
            from temporalio.exceptions import ApplicationError
            raise ApplicationError("boom", non_retryable=True)
        if mode == "wait":
            await workflow.wait_condition(lambda: self.done)
        return "done"

    @workflow.update
    async def which_run(self) -> str:
        return workflow.info().run_id

    @workflow.signal
    def finish(self) -> None:
        self.done = True


WORKFLOWS.append(Updatable)
