"""GetClusterInfo and DescribeTaskQueue through the official Python SDK: a running worker shows
up as a poller of both task queue types under its identity, a queue nobody polls has none, tasks
waiting for a worker are counted in the backlog, and the cluster id survives a restart on the
same database file."""
import asyncio
import os
import socket
import subprocess
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (DescribeTaskQueueRequest, GetClusterInfoRequest,
                                               GetSystemInfoRequest)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from conftest import free_port, perdure_command
from wf_taskqueue import EchoOnce, echo

ON_TEMPORAL = os.environ.get("PERDURE_TEST_TARGET") == "temporal"
WORKFLOW = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
ACTIVITY = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY


async def describe(client: Client, queue: str, kind=WORKFLOW, **kw):
    return await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace="default", task_queue=TaskQueue(name=queue), task_queue_type=kind, **kw))


def pollers_named(resp, identity: str):
    return [p for p in resp.pollers if p.identity == identity]


async def worker_pollers(address: str) -> None:
    client = await Client.connect(address)
    tq = f"tq-{uuid.uuid4()}"
    identity = f"worker-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[EchoOnce], activities=[echo],
                      identity=identity, max_task_queue_activities_per_second=25):
        assert await client.execute_workflow(EchoOnce.run, "hi", id=f"tq-{uuid.uuid4()}",
                                             task_queue=tq) == "hi"
        now = datetime.now(timezone.utc)
        for kind, rate in ((WORKFLOW, 100000), (ACTIVITY, 25)):
            resp = await describe(client, tq, kind, report_stats=True)
            mine = pollers_named(resp, identity)
            # One entry per identity, however many poll requests that worker has in flight.
            assert len(mine) == 1, (kind, resp.pollers)
            seen = mine[0].last_access_time.ToDatetime(tzinfo=timezone.utc)
            assert abs((now - seen).total_seconds()) < 60, (kind, seen, now)
            assert mine[0].rate_per_second == rate, (kind, mine[0])
            assert resp.HasField("stats")
            assert resp.stats.approximate_backlog_count == 0
        # The default type is the workflow type; the legacy status comes only when asked for.
        resp = await describe(client, tq, TaskQueueType.TASK_QUEUE_TYPE_UNSPECIFIED)
        assert len(pollers_named(resp, identity)) == 1
        assert not resp.HasField("task_queue_status") and not resp.HasField("stats")
        resp = await describe(client, tq, include_task_queue_status=True)
        assert resp.HasField("task_queue_status")
        assert resp.task_queue_status.backlog_count_hint == 0

        for kind in (WORKFLOW, ACTIVITY):
            resp = await describe(client, f"nobody-polls-{uuid.uuid4()}", kind,
                                  report_stats=True)
            assert list(resp.pollers) == []
            assert resp.stats.approximate_backlog_count == 0

        with pytest.raises(RPCError) as e:
            await describe(client, "")
        assert e.value.status == RPCStatusCode.INVALID_ARGUMENT
        with pytest.raises(RPCError) as e:
            await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace="default"))
        assert e.value.status == RPCStatusCode.INVALID_ARGUMENT
        with pytest.raises(RPCError) as e:
            await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=f"no-such-{uuid.uuid4()}", task_queue=TaskQueue(name=tq)))
        assert e.value.status == RPCStatusCode.NOT_FOUND


def test_describe_task_queue_lists_the_worker_as_poller_of_both_types(server):
    asyncio.run(asyncio.wait_for(worker_pollers(server), 60))


async def backlog(address: str) -> None:
    client = await Client.connect(address)
    tq = f"backlog-{uuid.uuid4()}"
    h = await client.start_workflow(EchoOnce.run, "later", id=f"bl-{uuid.uuid4()}",
                                    task_queue=tq)
    resp = None
    for _ in range(100):  # Temporal's backlog counts are approximate and may lag a little
        resp = await describe(client, tq, report_stats=True)
        if resp.stats.approximate_backlog_count == 1:
            break
        await asyncio.sleep(0.1)
    assert resp.stats.approximate_backlog_count == 1, resp
    assert list(resp.pollers) == []
    status = await describe(client, tq, include_task_queue_status=True)
    assert status.HasField("task_queue_status")
    if not ON_TEMPORAL:
        # The legacy status describes one partition; Temporal may have put the task in another.
        assert status.task_queue_status.backlog_count_hint == 1, status
    activities = await describe(client, tq, ACTIVITY, report_stats=True)
    assert activities.stats.approximate_backlog_count == 0
    identity = f"late-worker-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=[EchoOnce], activities=[echo],
                      identity=identity):
        assert await h.result() == "later"
        for _ in range(50):
            resp = await describe(client, tq, report_stats=True)
            if resp.stats.approximate_backlog_count == 0:
                break
            await asyncio.sleep(0.1)
        assert resp.stats.approximate_backlog_count == 0
        assert len(pollers_named(resp, identity)) == 1


def test_describe_task_queue_counts_the_backlog(server):
    asyncio.run(asyncio.wait_for(backlog(server), 60))


def start_server(port: int, db: Path) -> subprocess.Popen:
    if ON_TEMPORAL:
        cmd = ["temporal", "server", "start-dev", "--headless", "--ip", "127.0.0.1",
               "--port", str(port), "--http-port", str(free_port()),
               "--metrics-port", str(free_port()), "--db-filename", str(db),
               "--log-level", "error"]
    else:
        cmd = perdure_command(port, db)
    proc = subprocess.Popen(cmd)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


async def cluster_info(address: str):
    deadline = time.time() + 20
    while True:  # a server that just opened its port may not serve yet
        try:
            client = await Client.connect(address)
            return (await client.workflow_service.get_cluster_info(GetClusterInfoRequest()),
                    await client.workflow_service.get_system_info(GetSystemInfoRequest()))
        except RuntimeError:
            if time.time() > deadline:
                raise
            await asyncio.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait()


def test_cluster_info_and_a_cluster_id_kept_across_restarts(tmp_path):
    port, db = free_port(), tmp_path / "cluster.db"
    srv = start_server(port, db)
    try:
        info, system = asyncio.run(cluster_info(f"127.0.0.1:{port}"))
    finally:
        stop(srv)
    clients = dict(info.supported_clients)
    for name in ("temporal-cli", "temporal-go", "temporal-java", "temporal-typescript",
                 "temporal-server"):
        assert clients.get(name) == "<2.0.0", clients
    assert clients.get("temporal-ui") == "<3.0.0", clients
    assert info.server_version == system.server_version != ""
    assert str(uuid.UUID(info.cluster_id)) == info.cluster_id
    assert info.cluster_name == "active"
    assert info.history_shard_count >= 1
    # Temporal's dev server and Perdure's start-dev say sqlite; Perdure on PostgreSQL says so.
    store = "postgres" if os.environ.get("PERDURE_TEST_POSTGRES_URL") and not ON_TEMPORAL \
        else "sqlite"
    assert info.persistence_store == store
    assert info.visibility_store == store
    if not ON_TEMPORAL:
        assert info.history_shard_count == 16  # the engine's shard count (Temporal's dev: 1)

    srv = start_server(port, db)  # same database: same cluster
    try:
        again, _ = asyncio.run(cluster_info(f"127.0.0.1:{port}"))
    finally:
        stop(srv)
    assert again.cluster_id == info.cluster_id
    assert again.history_shard_count == info.history_shard_count

    other_port = free_port()
    srv = start_server(other_port, tmp_path / "other.db")  # another database: another cluster
    try:
        other, _ = asyncio.run(cluster_info(f"127.0.0.1:{other_port}"))
    finally:
        stop(srv)
    assert other.cluster_id != info.cluster_id
