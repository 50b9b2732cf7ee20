"""Workflow and activities of the activity-operation tests (pause, unpause, reset, update
options; kept out of the pytest module, see wf_order.py). Each activity records what it saw per
workflow id in CALLS, so a test can check which attempts ran and why they stopped."""
import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

CALLS: dict = {}


def _log(event: str) -> int:
    info = activity.info()
    CALLS.setdefault(info.workflow_id, []).append((event, info.attempt))
    return len([e for e in CALLS[info.workflow_id] if e[0] == "start"])


@activity.defn
async def beats() -> str:
    """Heartbeats until told to stop on its first call; later calls finish after a few beats."""
    call = _log("start")
    try:
        for i in range(600 if call == 1 else 3):
            activity.heartbeat(i)
            await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        d = activity.cancellation_details()
        _log("paused" if d and d.paused else "reset" if d and d.reset else "cancelled")
        raise
    return f"done attempt {activity.info().attempt}"


@activity.defn
async def fails_first() -> str:
    """Its first call fails; later ones succeed."""
    if _log("start") == 1:
        raise RuntimeError("first call fails")
    return f"done attempt {activity.info().attempt}"


@activity.defn
async def fails_attempt_one() -> str:
    """Attempt 1 fails; later attempts succeed (in any worker process)."""
    _log("start")
    if activity.info().attempt == 1:
        raise RuntimeError("attempt 1 fails")
    return f"done attempt {activity.info().attempt}"


@activity.defn
async def slow_first() -> str:
    """Its first call takes 20 s (it never heartbeats); later ones return at once."""
    if _log("start") == 1:
        await asyncio.sleep(20)
    return f"done attempt {activity.info().attempt}"


@workflow.defn
class RunActivity:
    """Runs one activity (id "a1") and returns its result."""

    @workflow.run
    async def run(self, name: str, initial_interval_ms: int, heartbeat_s: int) -> str:
        return await workflow.execute_activity(
            name,
            activity_id="a1",
            start_to_close_timeout=timedelta(seconds=30),
            heartbeat_timeout=timedelta(seconds=heartbeat_s) if heartbeat_s else None,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(milliseconds=initial_interval_ms),
                maximum_interval=timedelta(seconds=60)),
        )


WORKFLOWS = [RunActivity]
ACTIVITIES = [beats, fails_first, fails_attempt_one, slow_first]
