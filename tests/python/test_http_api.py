"""Temporal's HTTP API (`--http-port`): the same requests, the same JSON, on Perdure and on Temporal's
dev server (`PERDURE_TEST_TARGET=temporal`), and what it answers matches the same calls made
through gRPC with the official Python SDK."""
import asyncio
import base64
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

from google.protobuf.json_format import MessageToDict
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    CountWorkflowExecutionsRequest,
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
)
from temporalio.client import Client


def call(base: str, method: str, path: str, body=None, headers=None):
    """One HTTP request; returns (status, parsed JSON)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def contains(big, small, path="$"):
    """Every field of `small` (the gRPC answer) is in `big` (the HTTP answer) with the same value."""
    if isinstance(small, dict):
        assert isinstance(big, dict), f"{path}: {big!r} is not an object"
        for k, v in small.items():
            assert k in big, f"{path}.{k} missing from the HTTP answer"
            contains(big[k], v, f"{path}.{k}")
    elif isinstance(small, list):
        assert isinstance(big, list) and len(big) == len(small), f"{path}: {big!r} != {small!r}"
        for i, (b, s) in enumerate(zip(big, small)):
            contains(b, s, f"{path}[{i}]")
    else:
        assert big == small, f"{path}: {big!r} != {small!r}"


def test_http_api_matches_grpc(server, http_api):
    asyncio.run(scenario(server, http_api))


async def scenario(address: str, base: str) -> None:
    client = await Client.connect(address)
    svc = client.workflow_service
    wid = f"http-{uuid.uuid4()}"
    ns = "/api/v1/namespaces/default"
    tq = f"http-{uuid.uuid4()}"  # no worker: the run stays open

    # Start with payload shorthand: a JSON value per argument.
    status, started = call(base, "POST", f"{ns}/workflows/{urllib.parse.quote(wid, safe='')}", {
        "workflowType": {"name": "http-order"}, "taskQueue": {"name": tq},
        "input": [{"product": 3}, "<script>alert(1)</script>"], "requestId": str(uuid.uuid4()),
    })
    assert status == 200, started
    run_id = started["runId"]
    assert started["started"] is True

    # Describe: HTTP and gRPC agree.
    status, described = call(base, "GET", f"{ns}/workflows/{wid}?execution.runId={run_id}")
    assert status == 200, described
    grpc = MessageToDict(await svc.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace="default", execution=WorkflowExecution(workflow_id=wid, run_id=run_id))))
    info = described["workflowExecutionInfo"]
    assert info["execution"] == {"workflowId": wid, "runId": run_id}
    assert info["type"] == {"name": "http-order"}
    assert info["status"] == "WORKFLOW_EXECUTION_STATUS_RUNNING"
    for key in ("execution", "type", "status", "taskQueue", "historyLength", "startTime"):
        assert info[key] == grpc["workflowExecutionInfo"][key], key

    # Signal through HTTP; the history read through gRPC shows it.
    status, _ = call(base, "POST", f"{ns}/workflows/{wid}/signal/pickedUp",
                     {"workflowExecution": {"runId": run_id}, "input": [{"by": "driver"}]})
    assert status == 200

    # History: shorthand by default, canonical proto3 JSON with ?noPayloadShorthand, which is
    # exactly what the Python SDK's protobuf JSON says of the gRPC answer.
    status, short = call(base, "GET", f"{ns}/workflows/{wid}/history")
    assert status == 200, short
    events = short["history"]["events"]
    assert [e["eventType"] for e in events][0] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    first = events[0]["workflowExecutionStartedEventAttributes"]
    assert first["input"] == [{"product": 3}, "<script>alert(1)</script>"]
    signaled = [e for e in events if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED"]
    assert signaled and signaled[0]["workflowExecutionSignaledEventAttributes"]["input"] == [{"by": "driver"}]

    status, canonical = call(base, "GET", f"{ns}/workflows/{wid}/history?noPayloadShorthand")
    assert status == 200
    grpc_history = MessageToDict(await svc.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(namespace="default",
                                           execution=WorkflowExecution(workflow_id=wid))))
    contains(canonical["history"], grpc_history["history"])
    payloads = canonical["history"]["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"]
    assert payloads[0]["metadata"]["encoding"] == b64("json/plain")
    assert json.loads(base64.b64decode(payloads[0]["data"])) == {"product": 3}

    # The Accept header selects the same forms as the query flags.
    status, via_header = call(base, "GET", f"{ns}/workflows/{wid}/history",
                              headers={"Accept": "application/json+no-payload-shorthand"})
    assert status == 200 and via_header == canonical

    # List and count with a visibility query, as through gRPC.
    q = urllib.parse.quote(f"WorkflowId = '{wid}'")
    for _ in range(50):
        status, listed = call(base, "GET", f"{ns}/workflows?query={q}")
        if listed.get("executions"):
            break
        await asyncio.sleep(0.1)
    assert status == 200 and [e["execution"]["workflowId"] for e in listed["executions"]] == [wid]
    status, counted = call(base, "GET", f"{ns}/workflow-count?query={q}")
    grpc_count = await svc.count_workflow_executions(CountWorkflowExecutionsRequest(
        namespace="default", query=f"WorkflowId = '{wid}'"))
    assert status == 200 and int(counted["count"]) == grpc_count.count == 1

    # Terminate through HTTP; gRPC sees it closed.
    status, _ = call(base, "POST", f"{ns}/workflows/{wid}/terminate", {"reason": "http test"})
    assert status == 200
    d = await svc.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace="default", execution=WorkflowExecution(workflow_id=wid)))
    assert d.workflow_execution_info.status == 5  # TERMINATED


def test_http_api_errors(server, http_api):
    base = http_api
    ns = "/api/v1/namespaces/default"
    # Unknown workflow: 404 with Temporal's error body and its NotFoundFailure detail.
    status, err = call(base, "GET", f"{ns}/workflows/no-such-{uuid.uuid4()}/history")
    assert status == 404 and err["code"] == 5
    assert err["message"].startswith("workflow not found for ID: no-such-")
    assert err["details"][0]["@type"] == "type.googleapis.com/temporal.api.errordetails.v1.NotFoundFailure"
    # Unknown namespace: 404.
    status, err = call(base, "GET", f"/api/v1/namespaces/no-such-ns-{uuid.uuid4().hex[:6]}/workflows")
    assert status == 404 and err["code"] == 5 and "no-such-ns" in err["message"]
    # A body that is not JSON: 400, INVALID_ARGUMENT.
    status, err = call(base, "POST", f"{ns}/workflows/x/signal/s", b"{bad")
    assert status == 400 and err["code"] == 3 and err["message"]
    # A malformed visibility query: 400 naming the problem.
    q = urllib.parse.quote("WorkflowType = ")
    status, err = call(base, "GET", f"{ns}/workflows?query={q}")
    assert status == 400 and err["code"] == 3 and "invalid query" in err["message"]
    # Starting an id that is running: 409 ALREADY_EXISTS.
    wid = f"dup-{uuid.uuid4()}"
    start = {"workflowType": {"name": "x"}, "taskQueue": {"name": "nobody"}}
    assert call(base, "POST", f"{ns}/workflows/{wid}", start)[0] == 200
    status, err = call(base, "POST", f"{ns}/workflows/{wid}", start)
    assert status == 409 and err["code"] == 6
    call(base, "POST", f"{ns}/workflows/{wid}/terminate", {})
