"""Activities the standalone activity tests run (started by a client, not by a workflow). Each
records what it saw in CALLS, keyed by its activity id."""
import asyncio
from collections import defaultdict

from temporalio import activity
from temporalio.exceptions import ApplicationError

CALLS = defaultdict(list)


@activity.defn
async def greet(name: str) -> str:
    info = activity.info()
    CALLS[info.activity_id].append(("greet", info.attempt, info.workflow_id))
    return f"hello {name}"


@activity.defn
async def always_fails(msg: str) -> str:
    CALLS[activity.info().activity_id].append(("fail", activity.info().attempt))
    raise ApplicationError(f"boom {msg}", type="Boom")


@activity.defn
async def fails_twice(msg: str) -> str:
    attempt = activity.info().attempt
    CALLS[activity.info().activity_id].append(("try", attempt))
    if attempt < 3:
        raise ApplicationError(f"not yet {attempt}", type="NotYet")
    return f"{msg} on attempt {attempt}"


@activity.defn
async def heartbeats(n: int) -> str:
    """Heartbeats its progress every 0.1 s for about n/10 seconds; sees cancellation there."""
    info = activity.info()
    start = info.heartbeat_details[0] if info.heartbeat_details else 0
    CALLS[info.activity_id].append(("start", info.attempt, start))
    try:
        for i in range(start, n):
            activity.heartbeat(i)
            await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        CALLS[info.activity_id].append(("cancelled", info.attempt))
        raise
    return f"beat {n}"


@activity.defn
async def sleeps(seconds: float) -> str:
    CALLS[activity.info().activity_id].append(("sleep", activity.info().attempt))
    await asyncio.sleep(seconds)
    return "woke"


@activity.defn
async def manual() -> str:
    """Completes later, by id, from outside the worker."""
    CALLS[activity.info().activity_id].append(("manual", activity.info().attempt))
    activity.raise_complete_async()


ACTIVITIES = [greet, always_fails, fails_twice, heartbeats, sleeps, manual]
