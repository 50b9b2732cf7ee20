"""Workflows and activities of the tier-2 feature tests (kept out of the pytest modules; see
wf_order.py)."""
import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

@activity.defn
async def heartbeating(n: int) -> str:
    start = activity.info().heartbeat_details[0] if activity.info().heartbeat_details else 0
    for i in range(start, n):
        activity.heartbeat(i + 1)
        if activity.info().attempt == 1 and i == 2:
            await asyncio.sleep(3)  # stops heartbeating: heartbeat timeout
        await asyncio.sleep(0.05)
    return f"attempt={activity.info().attempt} resumed_from={start}"


@activity.defn
async def slow_first(_: str) -> str:
    if activity.info().attempt == 1:
        await asyncio.sleep(3)  # start-to-close timeout, then retried
    return f"attempt {activity.info().attempt}"


@activity.defn
async def waits_for_cancel() -> str:
    try:
        while True:
            activity.heartbeat()
            await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        return "cancelled"


@workflow.defn(name="child")
class Child:
    @workflow.run
    async def run(self, x: int) -> int:
        if x < 0:
            raise ApplicationError("negative", non_retryable=True)
        return x * 2


@workflow.defn(name="parent")
class Parent:
    @workflow.run
    async def run(self, x: int) -> int:
        return await workflow.execute_child_workflow(Child.run, x, id=f"{workflow.info().workflow_id}-child")


@workflow.defn(name="counter")
class Counter:
    @workflow.run
    async def run(self, n: int) -> int:
        if n < 3:
            workflow.continue_as_new(n + 1)
        return n


@workflow.defn(name="waiter")
class Waiter:
    def __init__(self) -> None:
        self.signals: list[str] = []
        self.value = 0

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: "done" in self.signals, timeout=timedelta(seconds=30))
        return self.signals

    @workflow.signal
    def sig(self, s: str) -> None:
        self.signals.append(s)

    @workflow.update
    async def add(self, n: int) -> int:
        self.value += n
        return self.value

    @add.validator
    def check(self, n: int) -> None:
        if n < 0:
            raise ValueError("negative")

    @workflow.update
    async def wait_until_done(self) -> str:
        await workflow.wait_condition(lambda: "done" in self.signals)
        return "saw done"


@workflow.defn(name="sleeper")
class Sleeper:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(60)
        return "woke"


@workflow.defn(name="acts")
class Acts:
    @workflow.run
    async def run(self, which: str) -> str:
        if which == "heartbeat":
            return await workflow.execute_activity(heartbeating, 6, start_to_close_timeout=timedelta(seconds=20),
                                                   heartbeat_timeout=timedelta(seconds=1),
                                                   retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)))
        if which == "start_to_close":
            return await workflow.execute_activity(slow_first, "x", start_to_close_timeout=timedelta(seconds=1),
                                                   retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)))
        if which == "schedule_to_close":
            return await workflow.execute_activity(slow_first, "x", schedule_to_close_timeout=timedelta(seconds=1))
        if which == "schedule_to_start":
            return await workflow.execute_activity(slow_first, "x", task_queue="nobody-polls-this",
                                                   schedule_to_start_timeout=timedelta(milliseconds=500),
                                                   start_to_close_timeout=timedelta(seconds=5))
        if which == "cancel":
            handle = workflow.start_activity(waits_for_cancel, start_to_close_timeout=timedelta(seconds=30),
                                             heartbeat_timeout=timedelta(seconds=2),
                                             cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
            await workflow.sleep(0.5)
            handle.cancel()
            try:
                return await handle
            except ActivityError as e:
                return f"activity error: {type(e.cause).__name__}"
        raise ApplicationError("unknown")


@workflow.defn(name="flaky")
class Flaky:
    @workflow.run
    async def run(self) -> int:
        if workflow.info().attempt < 3:
            raise ApplicationError(f"attempt {workflow.info().attempt} fails")
        return workflow.info().attempt


@workflow.defn(name="signaller")
class Signaller:
    @workflow.run
    async def run(self, target: str) -> str:
        await workflow.get_external_workflow_handle(target).signal("sig", "from-workflow")
        await workflow.get_external_workflow_handle(target).signal("sig", "done")
        return "sent"


@workflow.defn(name="cron_counter")
class CronCounter:
    @workflow.run
    async def run(self) -> int:
        last = workflow.get_last_completion_result(int)
        return (last or 0) + 1


WORKFLOWS = [CronCounter, Child, Parent, Counter, Waiter, Sleeper, Acts, Flaky, Signaller]
ACTIVITIES = [heartbeating, slow_first, waits_for_cancel]
