"""Schedules through the official Python SDK: create/describe/list/update/pause/trigger/
backfill/delete, interval and calendar specs (Temporal's normalized form), overlap policies,
limited actions, search attributes and memo on the schedule and on the started workflows, and
the last completion result passed to the next run. The same tests pass against Temporal's dev
server (PERDURE_TEST_TARGET=temporal), whose scheduler works asynchronously: results are awaited
by polling."""
import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import ListScheduleMatchingTimesRequest
from temporalio.client import (Client, Schedule, ScheduleAlreadyRunningError, ScheduleActionStartWorkflow, ScheduleBackfill,
                               ScheduleCalendarSpec, ScheduleIntervalSpec, ScheduleOverlapPolicy,
                               SchedulePolicy, ScheduleRange, ScheduleSpec, ScheduleState,
                               ScheduleUpdate, WorkflowExecutionStatus)
from temporalio.common import SearchAttributeKey, TypedSearchAttributes, SearchAttributePair
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from wf_schedules import WORKFLOWS, Block, Count

KEYWORD = SearchAttributeKey.for_keyword("ScheduleTestTier")
SCHEDULED_BY = SearchAttributeKey.for_keyword("TemporalScheduledById")
SCHEDULED_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


async def run(address: str, body) -> None:
    client = await Client.connect(address)
    try:
        await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
            namespace="default",
            search_attributes={KEYWORD.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}))
    except RPCError as e:
        assert e.status == RPCStatusCode.ALREADY_EXISTS, e
    tq = f"sched-{uuid.uuid4()}"
    async with Worker(client, task_queue=tq, workflows=WORKFLOWS):
        await asyncio.wait_for(body(client, tq), 60)


def sid() -> str:
    return f"sched-{uuid.uuid4()}"


async def until(check, timeout: float = 15.0):
    """Polls `check` (async, returns a value or None/False) until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        v = await check()
        if v:
            return v
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.2)


def action(workflow, tq: str, wf_id: str, **kw) -> ScheduleActionStartWorkflow:
    return ScheduleActionStartWorkflow(workflow, id=wf_id, task_queue=tq, **kw)


def paused_hourly(act) -> Schedule:
    return Schedule(action=act, spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
                    state=ScheduleState(paused=True))


def test_create_describe_list_delete(server):
    async def body(c: Client, tq: str):
        id = sid()
        spec = ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(2, 10, 3)],
                                            day_of_week=[ScheduleRange(1, 5)], comment="weekdays")],
            cron_expressions=["15 4 * * 1-5"],
            time_zone_name="America/New_York")
        h = await c.create_schedule(
            id,
            Schedule(action=action(Count.run, tq, "wf-" + id),
                     spec=spec, state=ScheduleState(paused=True, note="created paused")),
            memo={"owner": "team-a"},
            search_attributes=TypedSearchAttributes([SearchAttributePair(KEYWORD, "gold")]))
        d = await h.describe()
        assert d.id == id
        # Temporal stores calendars and cron strings as structured calendars.
        cals = d.schedule.spec.calendars
        assert len(cals) == 2 and not d.schedule.spec.cron_expressions
        assert list(cals[0].hour) == [ScheduleRange(2, 10, 3)]
        assert list(cals[0].second) == [ScheduleRange(0)] and list(cals[0].minute) == [ScheduleRange(0)]
        assert list(cals[0].day_of_week) == [ScheduleRange(1, 5)]
        assert list(cals[0].month) == [ScheduleRange(1, 12)] and list(cals[0].day_of_month) == [ScheduleRange(1, 31)]
        assert cals[0].comment == "weekdays"
        assert list(cals[1].minute) == [ScheduleRange(15)] and list(cals[1].hour) == [ScheduleRange(4)]
        assert d.schedule.spec.time_zone_name == "America/New_York"
        assert d.schedule.state.paused and d.schedule.state.note == "created paused"
        assert d.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert d.schedule.policy.catchup_window == timedelta(days=365)
        assert await d.memo_value("owner") == "team-a"
        assert d.typed_search_attributes[KEYWORD] == "gold"
        assert d.info.num_actions == 0 and d.info.recent_actions == []
        assert d.info.created_at is not None
        # The next 10 times, each at 02:00, 05:00, 08:00 or 04:15 New York time on a weekday.
        nxt = d.info.next_action_times
        assert len(nxt) == 10 and nxt == sorted(nxt)
        for t in nxt:
            local = t.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
            assert (local.hour, local.minute) in [(2, 0), (5, 0), (8, 0), (4, 15)], local
            assert local.weekday() < 5

        # ListScheduleMatchingTimes agrees with the future action times.
        now = datetime.now(timezone.utc)
        req = ListScheduleMatchingTimesRequest(namespace="default", schedule_id=id)
        req.start_time.FromDatetime(now)
        req.end_time.FromDatetime(nxt[3] + timedelta(seconds=1))
        got = await c.workflow_service.list_schedule_matching_times(req)
        assert [t.ToDatetime(tzinfo=timezone.utc) for t in got.start_time] == nxt[:4]

        with pytest.raises(ScheduleAlreadyRunningError) as e:
            await c.create_schedule(id, paused_hourly(action(Count.run, tq, "x")))
        cause = e.value.__context__  # the RPC error it was raised from
        assert cause.status == RPCStatusCode.ALREADY_EXISTS
        assert cause.message == f'schedule "{id}" is already registered'

        with pytest.raises(RPCError) as e:
            await c.create_schedule(sid(), Schedule(action=action(Count.run, tq, "x"),
                                                    spec=ScheduleSpec(cron_expressions=["* * *"])))
        assert e.value.status == RPCStatusCode.INVALID_ARGUMENT
        assert e.value.message == "Invalid schedule spec: CronString does not have 5-7 fields"

        async def listed():
            entries = [s async for s in await c.list_schedules()]
            return next((s for s in entries if s.id == id), None)
        entry = await until(listed)
        assert entry.schedule.state.paused and entry.schedule.state.note == "created paused"
        assert entry.schedule.action.workflow == "sched-count"
        assert len(entry.schedule.spec.calendars) == 2
        assert entry.info.next_action_times == nxt[:5]
        assert entry.typed_search_attributes[KEYWORD] == "gold"

        await h.delete()
        with pytest.raises(RPCError) as e:
            await h.describe()
        assert e.value.status == RPCStatusCode.NOT_FOUND
    asyncio.run(run(server, body))


def test_trigger_passes_the_last_completion_result_and_tags_the_runs(server):
    async def body(c: Client, tq: str):
        id = sid()
        h = await c.create_schedule(id, paused_hourly(action(
            Count.run, tq, "count-" + id, memo={"from": "schedule"},
            typed_search_attributes=TypedSearchAttributes([SearchAttributePair(KEYWORD, "silver")]))))

        async def completed(n):
            async def check():
                d = await h.describe()
                done = [a for a in d.info.recent_actions
                        if (await c.get_workflow_handle(a.action.workflow_id).describe()).status
                        == WorkflowExecutionStatus.COMPLETED]
                return d if len(done) >= n else None
            return await until(check)

        await h.trigger()
        d = await completed(1)
        first = d.info.recent_actions[0]
        wf_id = first.action.workflow_id
        assert wf_id.startswith("count-" + id + "-") and wf_id.endswith("Z")
        assert await c.get_workflow_handle(wf_id).result() == 1
        desc = await c.get_workflow_handle(wf_id).describe()
        assert desc.typed_search_attributes[SCHEDULED_BY] == id
        assert desc.typed_search_attributes[KEYWORD] == "silver"
        nominal = desc.typed_search_attributes[SCHEDULED_TIME]
        assert wf_id == f"count-{id}-{nominal.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}"
        assert await desc.memo_value("from") == "schedule"

        await asyncio.sleep(1.1)  # a new second: a new workflow id
        await h.trigger()
        d = await completed(2)
        second = d.info.recent_actions[-1].action.workflow_id
        assert second != wf_id
        assert await c.get_workflow_handle(second).result() == 2
        assert d.info.num_actions == 2
        await h.delete()
    asyncio.run(run(server, body))


def test_interval_schedule_starts_on_time_and_limited_actions_run_out(server):
    async def body(c: Client, tq: str):
        id = sid()
        h = await c.create_schedule(id, Schedule(
            action=action(Count.run, tq, "tick-" + id),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=1))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
            state=ScheduleState(limited_actions=True, remaining_actions=2)))
        d = await until(lambda: _with(h, lambda d: d.info.num_actions >= 2))
        ids = [a.action.workflow_id for a in d.info.recent_actions]
        for wf in ids:
            assert wf.startswith("tick-" + id + "-20")
        # One second apart, on whole seconds.
        times = [a.scheduled_at for a in d.info.recent_actions]
        assert times[1] - times[0] == timedelta(seconds=1) and times[0].microsecond == 0
        await asyncio.sleep(2.5)
        d = await h.describe()
        assert d.info.num_actions == 2
        assert d.schedule.state.limited_actions and d.schedule.state.remaining_actions == 0
        assert d.info.next_action_times == []
        await h.delete()
    asyncio.run(run(server, body))


async def _with(h, pred):
    d = await h.describe()
    return d if pred(d) else None


def test_overlap_policies(server):
    async def body(c: Client, tq: str):
        id = sid()
        h = await c.create_schedule(id, paused_hourly(action(Block.run, tq, "block-" + id)))
        await h.trigger()
        d = await until(lambda: _with(h, lambda d: len(d.info.running_actions) == 1))
        a = d.info.running_actions[0].workflow_id
        # SKIP (the schedule's policy): nothing starts while one runs.
        await h.trigger()
        await until(lambda: _with(h, lambda d: d.info.num_actions_skipped_overlap == 1))
        # BUFFER_ONE: starts once the running one has closed.
        await asyncio.sleep(1.1)
        await h.trigger(overlap=ScheduleOverlapPolicy.BUFFER_ONE)
        await asyncio.sleep(0.5)
        assert (await h.describe()).info.num_actions == 1
        await c.get_workflow_handle(a).signal(Block.finish)
        d = await until(lambda: _with(h, lambda d: d.info.num_actions == 2 and len(d.info.running_actions) == 1))
        b = d.info.running_actions[0].workflow_id
        assert b != a
        # TERMINATE_OTHER: the running one is terminated and the new one started.
        await asyncio.sleep(1.1)
        await h.trigger(overlap=ScheduleOverlapPolicy.TERMINATE_OTHER)
        d = await until(lambda: _with(h, lambda d: d.info.num_actions == 3 and len(d.info.running_actions) == 1))
        assert (await c.get_workflow_handle(b).describe()).status == WorkflowExecutionStatus.TERMINATED
        c3 = d.info.running_actions[0].workflow_id
        assert c3 not in (a, b)
        await c.get_workflow_handle(c3).terminate("done")
        await h.delete()
    asyncio.run(run(server, body))


def test_backfill_pause_and_update(server):
    async def body(c: Client, tq: str):
        id = sid()
        h = await c.create_schedule(id, Schedule(
            action=action(Count.run, tq, "bf-" + id),
            spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(0, 23)])]),
            state=ScheduleState(paused=True)))
        base = datetime(2026, 1, 1, tzinfo=timezone.utc)
        await h.backfill(ScheduleBackfill(start_at=base, end_at=base + timedelta(hours=2),
                                          overlap=ScheduleOverlapPolicy.ALLOW_ALL))
        d = await until(lambda: _with(h, lambda d: d.info.num_actions == 3))
        assert sorted(a.action.workflow_id for a in d.info.recent_actions) == [
            f"bf-{id}-2026-01-01T00:00:00Z", f"bf-{id}-2026-01-01T01:00:00Z",
            f"bf-{id}-2026-01-01T02:00:00Z"]
        assert sorted(a.scheduled_at for a in d.info.recent_actions) == [
            base, base + timedelta(hours=1), base + timedelta(hours=2)]

        await h.unpause(note="go")
        d = await h.describe()
        assert not d.schedule.state.paused and d.schedule.state.note == "go"
        await h.pause(note="stop")
        d = await h.describe()
        assert d.schedule.state.paused and d.schedule.state.note == "stop"

        def change(inp):
            s = inp.description.schedule
            s.spec = ScheduleSpec(cron_expressions=["30 12 * * *"], time_zone_name="Europe/Paris")
            s.policy.overlap = ScheduleOverlapPolicy.BUFFER_ALL
            s.policy.catchup_window = timedelta(seconds=5)  # raised to the 10 s minimum
            return ScheduleUpdate(schedule=s)
        await h.update(change)
        d = await h.describe()
        assert d.schedule.policy.overlap == ScheduleOverlapPolicy.BUFFER_ALL
        assert d.schedule.policy.catchup_window == timedelta(seconds=10)
        cal = d.schedule.spec.calendars[0]
        assert list(cal.hour) == [ScheduleRange(12)] and list(cal.minute) == [ScheduleRange(30)]
        assert d.schedule.spec.time_zone_name == "Europe/Paris"
        for t in d.info.next_action_times:
            local = t.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
            assert (local.hour, local.minute, local.second) == (12, 30, 0)
        await h.delete()
    asyncio.run(run(server, body))
