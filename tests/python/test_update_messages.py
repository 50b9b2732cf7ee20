"""Update protocol messages sent by a hand-written worker (raw RPCs, no SDK worker): invalid
Acceptance/Response messages fail the workflow task with BAD_UPDATE_WORKFLOW_EXECUTION_MESSAGE
and Temporal's message, the waiting update caller gets Temporal's error, and the run keeps working.
Run with PERDURE_TEST_TARGET=temporal to check the expectations against Temporal's dev server."""
import asyncio
import uuid
from datetime import timedelta

import pytest
from google.protobuf.any_pb2 import Any
from temporalio.api.command.v1 import (Command, CompleteWorkflowExecutionCommandAttributes,
                                       ProtocolMessageCommandAttributes)
from temporalio.api.common.v1 import Payload, Payloads, WorkflowExecution, WorkflowType
from temporalio.api.enums.v1 import CommandType, EventType, WorkflowTaskFailedCause
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage as Stage
from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
from temporalio.api.protocol.v1 import Message
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.update.v1 import (Acceptance, Input, Meta, Outcome, Request, Response,
                                      WaitPolicy)
from temporalio.api.workflowservice.v1 import (GetWorkflowExecutionHistoryRequest,
                                               PollWorkflowTaskQueueRequest,
                                               RespondWorkflowTaskCompletedRequest,
                                               SignalWorkflowExecutionRequest,
                                               StartWorkflowExecutionRequest,
                                               UpdateWorkflowExecutionRequest)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

NS = "default"
BAD = "BadUpdateWorkflowExecutionMessage: "


def pack(m) -> Any:
    a = Any()
    a.Pack(m)
    return a


def place(message_id: str) -> Command:
    return Command(command_type=CommandType.COMMAND_TYPE_PROTOCOL_MESSAGE,
                   protocol_message_command_attributes=ProtocolMessageCommandAttributes(
                       message_id=message_id))


def acceptance(request_msg: Message, sequencing_id: int) -> Message:
    req = Request()
    request_msg.body.Unpack(req)
    uid = request_msg.protocol_instance_id
    return Message(id=f"{uid}/accept", protocol_instance_id=uid, body=pack(Acceptance(
        accepted_request_message_id=request_msg.id,
        accepted_request_sequencing_event_id=sequencing_id, accepted_request=req)))


def response(uid: str, value: bytes) -> Message:
    payload = Payload(metadata={"encoding": b"json/plain"}, data=value)
    return Message(id=f"{uid}/complete", protocol_instance_id=uid, body=pack(Response(
        meta=Meta(update_id=uid), outcome=Outcome(success=Payloads(payloads=[payload])))))


class HandWorker:
    """Just enough of a worker, speaking raw RPCs."""

    def __init__(self, client: Client):
        self.c = client
        self.svc = client.workflow_service
        self.tq = f"raw-{uuid.uuid4()}"
        self.wid = f"raw-{uuid.uuid4()}"

    async def start(self) -> None:
        await self.svc.start_workflow_execution(StartWorkflowExecutionRequest(
            namespace=NS, workflow_id=self.wid, workflow_type=WorkflowType(name="raw"),
            task_queue=TaskQueue(name=self.tq), request_id=str(uuid.uuid4())))
        await self.complete(await self.poll())

    async def poll(self):
        while True:
            t = await self.svc.poll_workflow_task_queue(PollWorkflowTaskQueueRequest(
                namespace=NS, task_queue=TaskQueue(name=self.tq), identity="hand-worker"))
            if t.task_token:
                return t

    async def complete(self, task, messages=(), commands=()) -> None:
        await self.svc.respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest(
            namespace=NS, task_token=task.task_token, identity="hand-worker",
            messages=list(messages), commands=list(commands)))

    async def update(self, uid: str, stage=Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED):
        return await self.svc.update_workflow_execution(UpdateWorkflowExecutionRequest(
            namespace=NS, workflow_execution=WorkflowExecution(workflow_id=self.wid),
            wait_policy=WaitPolicy(lifecycle_stage=stage),
            request=Request(meta=Meta(update_id=uid, identity="client"),
                            input=Input(name="set"))), timeout=timedelta(seconds=20))

    async def signal(self) -> None:
        await self.svc.signal_workflow_execution(SignalWorkflowExecutionRequest(
            namespace=NS, workflow_execution=WorkflowExecution(workflow_id=self.wid),
            signal_name="poke", request_id=str(uuid.uuid4())))

    async def events(self):
        h = await self.svc.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace=NS, execution=WorkflowExecution(workflow_id=self.wid)))
        return list(h.history.events)

    async def finish(self) -> None:
        """The run still works: a signal gives a task that completes the workflow."""
        await self.signal()
        t = await self.poll()
        await self.complete(t, commands=[Command(
            command_type=CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
            complete_workflow_execution_command_attributes=CompleteWorkflowExecutionCommandAttributes())])
        assert (await self.events())[-1].event_type == \
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED


def last_task_failure(events):
    failed = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed, "no WorkflowTaskFailed event"
    return failed[-1].workflow_task_failed_event_attributes


def run(address: str, body) -> None:
    async def main():
        w = HandWorker(await Client.connect(address))
        await w.start()
        await asyncio.wait_for(body(w), 90)
    asyncio.run(main())


def test_acceptance_without_sequencing_event_id_fails_the_task(server):
    async def body(w: HandWorker):
        caller = asyncio.create_task(w.update("u1"))
        task = await w.poll()
        [req] = task.messages
        with pytest.raises(RPCError) as e:
            await w.complete(task, [acceptance(req, 0)], [place("u1/accept")])
        detail = "invalid *update.Acceptance: accepted_request_sequencing_event_id is not set"
        assert e.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert e.value.message == BAD + detail

        # The caller that waited on the update gets Temporal's not-ready error.
        with pytest.raises(RPCError) as e:
            await caller
        assert e.value.status == RPCStatusCode.FAILED_PRECONDITION
        assert e.value.message == ("Unable to perform workflow execution update due to "
                                   "unexpected workflow task failure.")
        assert e.value.grpc_status.details[0].Is(WorkflowNotReadyFailure.DESCRIPTOR)

        f = last_task_failure(await w.events())
        assert f.cause == \
            WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_UPDATE_WORKFLOW_EXECUTION_MESSAGE
        assert f.failure.message == BAD + detail
        assert not any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
                       for e in await w.events())

        # The retried task no longer carries the aborted update.
        retry = await w.poll()
        assert retry.attempt == 2
        assert list(retry.messages) == []
        await w.complete(retry)

        # The same update sent again is admitted anew and works end to end.
        caller = asyncio.create_task(w.update("u1"))
        task = await w.poll()
        [req] = task.messages
        await w.complete(task, [acceptance(req, req.event_id), response("u1", b"7")],
                         [place("u1/accept"), place("u1/complete")])
        r = await caller
        assert r.stage == Stage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED
        assert r.outcome.success.payloads[0].data == b"7"
        await w.finish()
    run(server, body)


def test_duplicate_response_fails_the_task(server):
    async def body(w: HandWorker):
        caller = asyncio.create_task(w.update("u1"))
        task = await w.poll()
        [req] = task.messages
        await w.complete(task, [acceptance(req, req.event_id), response("u1", b"1")],
                         [place("u1/accept"), place("u1/complete")])
        assert (await caller).outcome.success.payloads[0].data == b"1"

        await w.signal()
        task = await w.poll()
        with pytest.raises(RPCError) as e:
            await w.complete(task, [response("u1", b"2")], [place("u1/complete")])
        detail = ("invalid state transition attempted for Update u1: "
                  "received *update.Response message while in state Completed")
        assert e.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert e.value.message == BAD + detail
        events = await w.events()
        f = last_task_failure(events)
        assert f.cause == \
            WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_UPDATE_WORKFLOW_EXECUTION_MESSAGE
        assert f.failure.message == BAD + detail
        completed = [e for e in events
                     if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED]
        assert len(completed) == 1

        # The first outcome stands, and the run goes on.
        r = await w.update("u1")
        assert r.outcome.success.payloads[0].data == b"1"
        await w.complete(await w.poll())
        await w.finish()
    run(server, body)
