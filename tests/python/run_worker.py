"""A Python-SDK worker for cross-language tests (the Rust SDK's client tests start it): the order
workflow and the feature workflows on one task queue, until killed.

usage: run_worker.py ADDRESS TASK_QUEUE [NAMESPACE]"""
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from wf_features import ACTIVITIES, WORKFLOWS  # noqa: E402
from wf_order import Order, charge_customer, send_push_notification  # noqa: E402


async def main(address: str, task_queue: str, namespace: str) -> None:
    client = await Client.connect(address, namespace=namespace)
    async with Worker(client, task_queue=task_queue, workflows=[Order, *WORKFLOWS],
                      activities=[charge_customer, send_push_notification, *ACTIVITIES]):
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "default"))
