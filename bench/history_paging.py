"""Time per page of GetWorkflowExecutionHistory on long histories, against any Temporal-compatible
server: for each history length, a workflow gets that many events (markers), then
pages are read from the middle of its history at page sizes 1, 100 and 1,000.

usage: python bench/history_paging.py ADDRESS [--events 10000,50000] [--pages 50] [--closed]
(--closed terminates each workflow before reading it: Perdure then reads pages from its store,
not from the open run's in-memory history.)
Prints one line per (history length, page size): median and 90th-percentile milliseconds per page.
"""
import argparse
import asyncio
import statistics
import time
import uuid

from temporalio.api.command.v1 import Command, RecordMarkerCommandAttributes
from temporalio.api.common.v1 import WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import CommandType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    GetWorkflowExecutionHistoryRequest,
    PollWorkflowTaskQueueRequest,
    RespondWorkflowTaskCompletedRequest,
    StartWorkflowExecutionRequest,
    TerminateWorkflowExecutionRequest,
)
from temporalio.client import Client


async def make_history(svc, events: int) -> str:
    """A workflow whose history holds at least `events` events: a hand-driven worker completes
    its workflow tasks with 5 RecordMarker commands each (Temporal caps signals per execution at
    10,000, and stores each completion's events as one batch that a page never splits, so the
    batches are kept small)."""
    wid = f"paging-{events}-{uuid.uuid4()}"
    tq = TaskQueue(name=wid)
    await svc.start_workflow_execution(StartWorkflowExecutionRequest(
        namespace="default", workflow_id=wid, workflow_type=WorkflowType(name="wf"),
        task_queue=tq, request_id=str(uuid.uuid4())))
    written = 2
    while written < events:
        t = await svc.poll_workflow_task_queue(PollWorkflowTaskQueueRequest(
            namespace="default", task_queue=tq, identity="bench"))
        n = min(5, events - written)
        markers = [Command(command_type=CommandType.COMMAND_TYPE_RECORD_MARKER,
                           record_marker_command_attributes=RecordMarkerCommandAttributes(
                               marker_name="m")) for _ in range(n)]
        await svc.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest(
            namespace="default", task_token=t.task_token, commands=markers, identity="bench",
            force_create_new_workflow_task=True))
        written = t.started_event_id + 1 + n + 1
    return wid


async def page(svc, wid: str, size: int, token: bytes):
    r = await svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
        namespace="default", execution=WorkflowExecution(workflow_id=wid),
        maximum_page_size=size, next_page_token=token))
    return len(r.history.events), r.next_page_token


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("address")
    ap.add_argument("--events", default="10000,50000")
    ap.add_argument("--pages", type=int, default=50)
    ap.add_argument("--closed", action="store_true")
    a = ap.parse_args()
    client = await Client.connect(a.address)
    svc = client.workflow_service
    for events in [int(x) for x in a.events.split(",")]:
        t0 = time.monotonic()
        wid = await make_history(svc, events)
        print(f"# {events} events written in {time.monotonic() - t0:.1f} s", flush=True)
        if a.closed:
            await svc.terminate_workflow_execution(TerminateWorkflowExecutionRequest(
                namespace="default", workflow_execution=WorkflowExecution(workflow_id=wid),
                reason="bench"))
        for size in (1, 100, 1000):
            # Walk to the middle of the history with big pages, then time pages from there.
            token, read = b"", 0
            while read < events // 2:
                n, token = await page(svc, wid, 1000, token)
                read += n
            times = []
            for _ in range(a.pages):
                if not token:
                    break
                t = time.perf_counter()
                _, token = await page(svc, wid, size, token)
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            p90 = times[max(0, int(len(times) * 0.9) - 1)]
            print(f"events={events} page_size={size} pages={len(times)} "
                  f"closed={a.closed} median_ms={statistics.median(times):.2f} p90_ms={p90:.2f}",
                  flush=True)


if __name__ == "__main__":
    asyncio.run(main())
