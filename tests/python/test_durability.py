"""Durability proven by killing things: the server is SIGKILLed with 100 workflows in flight and
restarted on the same file; a worker is SIGKILLed mid-workflow and replaced."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from conftest import free_port, perdure_command

LOG = os.environ.get("PERDURE_ACTIVITY_LOG", "/tmp/perdure-durability-activities.log")


from wf_durability import LOG, Durable, step


def start_server(port: int, db: Path) -> subprocess.Popen:
    proc = subprocess.Popen(perdure_command(port, db))
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


async def server_kill(tmp: Path) -> None:
    port, db = free_port(), tmp / "kill.db"
    Path(LOG).unlink(missing_ok=True)
    srv = start_server(port, db)
    try:
        client = await Client.connect(f"127.0.0.1:{port}")
        tq = f"dur-{uuid.uuid4()}"
        async with Worker(client, task_queue=tq, workflows=[Durable], activities=[step]):
            handles = [await client.start_workflow(Durable.run, i, id=f"dur-{i}-{uuid.uuid4()}",
                                                   task_queue=tq) for i in range(100)]
            await asyncio.sleep(1.0)  # first activities done, timers running
            srv.send_signal(signal.SIGKILL)
            srv.wait()
            srv = start_server(port, db)
            results = await asyncio.wait_for(asyncio.gather(*[h.result() for h in handles]), 90)
        for i, (h, r) in enumerate(zip(handles, results)):
            assert r == f"{i}:{h.id}:a:{h.id}:b"
            events = [e async for e in h.fetch_history_events()]
            assert [e.event_id for e in events] == list(range(1, len(events) + 1))
            assert events[0].event_type == 1 and events[-1].event_type == 2  # started ... completed
            completed = [e for e in events if e.event_type == 12]  # ACTIVITY_TASK_COMPLETED
            assert len(completed) == 2
        lines = Path(LOG).read_text().splitlines()
        # An activity whose completion the server acknowledged never runs again. One that was
        # running at the instant of the kill (completion not yet acknowledged) may run twice.
        counts = {name: lines.count(name) for name in set(lines)}
        assert len(counts) == 200
        assert all(c <= 2 for c in counts.values()), counts
        assert sum(c - 1 for c in counts.values()) <= 50, "only in-flight activities may repeat"
    finally:
        srv.kill()


def test_server_sigkill_with_100_workflows_in_flight(tmp_path):
    asyncio.run(server_kill(tmp_path))


WORKER = r'''
import asyncio, sys
sys.path.insert(0, sys.argv[3])
from wf_order import Order, charge_customer, send_push_notification
from temporalio.client import Client
from temporalio.worker import Worker
async def main():
    c = await Client.connect(sys.argv[1])
    async with Worker(c, task_queue=sys.argv[2], workflows=[Order],
                      activities=[charge_customer, send_push_notification]):
        await asyncio.Event().wait()
asyncio.run(main())
'''


async def worker_kill(address: str) -> None:
    from wf_order import Order
    tq = f"wk-{uuid.uuid4()}"
    here = str(Path(__file__).parent)
    spawn = lambda: subprocess.Popen([sys.executable, "-c", WORKER, address, tq, here])
    w1 = spawn()
    w2 = None
    try:
        client = await Client.connect(address)
        h = await client.start_workflow(Order.run, 7, id=f"wk-{uuid.uuid4()}", task_queue=tq)
        for _ in range(200):
            if await h.query(Order.get_status) == "Paid":
                break
            await asyncio.sleep(0.1)
        w1.send_signal(signal.SIGKILL)
        w1.wait()
        await h.signal(Order.picked_up)
        w2 = spawn()
        # Wait until the replacement worker has processed the pickup before the next signal.
        for _ in range(300):
            events = [e async for e in h.fetch_history_events()]
            if sum(1 for e in events if e.event_type == 12) >= 2:
                break
            await asyncio.sleep(0.1)
        await h.signal(Order.delivered)
        assert await asyncio.wait_for(h.result(), 60) == {"product_id": 7, "state": "Delivered"}
    finally:
        w1.kill()
        if w2:
            w2.kill()


def test_worker_sigkill_and_replacement(server):
    asyncio.run(asyncio.wait_for(worker_kill(server), 120))
