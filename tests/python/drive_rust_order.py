"""A Python-SDK client driving the Rust SDK's order workflow (crates/sdk/examples/food_delivery):
start it, query, signal, wait for the result; prints one JSON line for the Rust test to check.

usage: drive_rust_order.py ADDRESS TASK_QUEUE WORKFLOW_ID"""
import asyncio
import os
import traceback
import json
import sys

from temporalio.client import Client


async def main(address: str, task_queue: str, workflow_id: str) -> None:
    client = await Client.connect(address)
    handle = await client.start_workflow("order", {"productId": 7}, id=workflow_id, task_queue=task_queue)
    seen = []

    async def until(state: str) -> None:
        for _ in range(600):
            status = await handle.query("getStatus")
            if not seen or seen[-1] != status["state"]:
                seen.append(status["state"])
            if status["state"] == state:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"never reached {state}: {seen}")

    await until("Paid")
    await handle.signal("pickedUp")
    await until("Picked up")
    await handle.signal("delivered")
    result = await handle.result()
    status = await handle.query("getStatus")
    print(json.dumps({"result": result, "status": status, "seen": seen}), flush=True)


if __name__ == "__main__":
    # Leave without finalizing the interpreter: the SDK's native runtime can crash while Python
    # shuts down (PyGILState_Release during finalization), after the result is already printed.
    code = 0
    try:
        asyncio.run(asyncio.wait_for(main(*sys.argv[1:4]), 60))
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
