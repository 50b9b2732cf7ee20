"""Fills a server with N workflows for the web UI benchmark: types `bench-a` and `bench-b`
alternating, ids `bench-<i>`, on a task queue no worker polls (they stay Running), plus, when
a worker is on `ui-bench`, one `many_events` run of 20,010 events (tests/ui/worker.py).

usage: populate.py ADDRESS N [TIMERS_PER_TASK]
(Temporal's dev server runs out of memory on 10,000 timers in one task: give it 500.)"""
import asyncio
import sys
import time

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy


async def main(address: str, n: int, batch: int) -> None:
    client = await Client.connect(address)
    sem = asyncio.Semaphore(200)
    done = 0
    t0 = time.time()

    async def one(i: int) -> None:
        nonlocal done
        async with sem:
            await client.start_workflow("bench-a" if i % 2 else "bench-b", i, id=f"bench-{i}",
                                        task_queue="bench-idle")
            done += 1
            if done % 10000 == 0:
                print(f"{done} started, {done / (time.time() - t0):.0f}/s", flush=True)

    await asyncio.gather(*(one(i) for i in range(n)))
    h = await client.start_workflow("many_events", args=[10000, batch], id="bench-long-history",
                                    task_queue="ui-bench", id_conflict_policy=WorkflowIDConflictPolicy.TERMINATE_EXISTING)
    await h.result()
    print(f"{n} workflows and a long history in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0))
