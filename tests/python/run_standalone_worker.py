"""A Python-SDK worker with the standalone-activity test activities (sa_activities.py), for the
CLI tests of `temporal activity ...` on standalone activities; runs until killed.

usage: run_standalone_worker.py ADDRESS TASK_QUEUE"""
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from sa_activities import ACTIVITIES  # noqa: E402


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    async with Worker(client, task_queue=task_queue, activities=ACTIVITIES):
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
