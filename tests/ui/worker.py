"""The Python-SDK worker the UI tests drive: the food-delivery order workflow (tests/python) and
the workflows of wf_ui.py, on one task queue, until killed.

usage: worker.py ADDRESS TASK_QUEUE"""
import asyncio
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "python")]

from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from wf_order import Order, charge_customer, send_push_notification  # noqa: E402
from wf_ui import ManyEvents, SlowOrder, Xss, flaky_payment  # noqa: E402


async def main(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    async with Worker(client, task_queue=task_queue,
                      workflows=[Order, SlowOrder, Xss, ManyEvents],
                      activities=[charge_customer, send_push_notification, flaky_payment]):
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
