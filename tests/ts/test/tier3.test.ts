// Beyond the core protocol, through the TypeScript SDK (also run against Temporal's dev server
// with PERDURE_TEST_TARGET=temporal): user metadata on runs, activities, timers and children;
// schedules (create, describe, trigger, list, pause, delete); updates reaching a closed run.
import assert from 'node:assert/strict';
import { after, describe } from 'node:test';
import {
  ActivityExecutionAlreadyStartedError,
  ActivityExecutionFailedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { callsFor } from '../src/activities';
import {
  endsWithUpdatePending,
  finish,
  metadataParent,
  runsPausable,
  scheduledEcho,
  stuckUpdate,
} from '../src/tier3';
import { envTest, HistoryEvent, teardown, uniqueId, waitFor, within, withWorker } from './harness';

after(async () => {
  await teardown();
});

/** A JSON string payload (the SDKs' encoding of a summary or details) as text. */
function text(p: { data?: Uint8Array | null } | null | undefined): string | undefined {
  return p?.data ? JSON.parse(Buffer.from(p.data).toString('utf8')) : undefined;
}

function metadataOf(events: HistoryEvent[], pick: (e: HistoryEvent) => unknown): [string?, string?] {
  const e = events.find((ev) => pick(ev));
  assert.ok(e, 'event present');
  return [text(e.userMetadata?.summary), text(e.userMetadata?.details)];
}

describe('user metadata', () => {
  envTest('summaries and details of a run, an activity, a timer and a child are kept and shown', async (e) => {
    const taskQueue = uniqueId('meta-tq');
    const workflowId = uniqueId('meta');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(metadataParent, {
        taskQueue,
        workflowId,
        staticSummary: 'run summary',
        staticDetails: 'run details',
      });
      assert.equal(await within(20_000, 'result', h.result()), 'child');
      const events = (await h.fetchHistory()).events ?? [];
      assert.deepEqual(metadataOf(events, (ev) => ev.workflowExecutionStartedEventAttributes), ['run summary', 'run details']);
      assert.deepEqual(metadataOf(events, (ev) => ev.activityTaskScheduledEventAttributes), ['notify summary', undefined]);
      assert.deepEqual(metadataOf(events, (ev) => ev.timerStartedEventAttributes), ['timer summary', undefined]);
      assert.deepEqual(
        metadataOf(events, (ev) => ev.startChildWorkflowExecutionInitiatedEventAttributes),
        ['child summary', 'child details'],
      );
      const d = await h.describe();
      assert.equal(await d.staticSummary(), 'run summary');
      assert.equal(await d.staticDetails(), 'run details');
      const child = await e.client.workflow.getHandle(`${workflowId}-child`).describe();
      assert.equal(await child.staticSummary(), 'child summary');
      assert.equal(await child.staticDetails(), 'child details');
    });
  });
});

describe('schedules', () => {
  envTest('create paused, trigger, describe the action, list, pause, delete', async (e) => {
    const taskQueue = uniqueId('sched-tq');
    const scheduleId = uniqueId('sched');
    await withWorker(e, taskQueue, async () => {
      const handle = await e.client.schedule.create({
        scheduleId,
        spec: { intervals: [{ every: '1h' }] },
        action: { type: 'startWorkflow', workflowType: scheduledEcho, args: ['hi'], taskQueue },
        state: { paused: true, note: 'created paused' },
      });
      let d = await handle.describe();
      assert.equal(d.state.paused, true);
      assert.equal(d.state.note, 'created paused');
      assert.equal(d.action.type, 'startWorkflow');
      assert.equal(d.action.workflowType, 'scheduledEcho');
      assert.equal(d.info.numActionsTaken, 0);
      assert.equal(d.spec.intervals?.[0]?.every, 3_600_000);
      assert.ok(d.info.nextActionTimes.length > 0, 'next action times are listed even while paused');

      await handle.trigger();
      await waitFor('the triggered action is recorded', async () => {
        d = await handle.describe();
        return d.info.recentActions.length === 1;
      }, 20_000);
      assert.equal(d.info.numActionsTaken, 1);
      const started = d.info.recentActions[0].action.workflow;
      assert.ok(started.workflowId.startsWith(`${scheduleId}-`), started.workflowId);
      const r = await within(20_000, 'scheduled run result', e.client.workflow.getHandle(started.workflowId).result());
      assert.equal(r, `hi from ${started.workflowId}`);

      const listed: string[] = [];
      await waitFor('the schedule is listed', async () => {
        listed.length = 0;
        for await (const s of e.client.schedule.list()) listed.push(s.scheduleId);
        return listed.includes(scheduleId);
      }, 20_000);

      await handle.unpause('go');
      assert.equal((await handle.describe()).state.paused, false);
      await handle.pause('stop');
      d = await handle.describe();
      assert.equal(d.state.paused, true);
      assert.equal(d.state.note, 'stop');

      await handle.delete();
      await assert.rejects(handle.describe());
    });
  });
});

describe('updates reaching a closed run', () => {
  envTest('after completion, and accepted but unfinished when the run completes', async (e) => {
    const taskQueue = uniqueId('upd-tq');
    await withWorker(e, taskQueue, async () => {
      const done = await e.client.workflow.start(endsWithUpdatePending, { taskQueue, workflowId: uniqueId('closed') });
      await done.signal(finish);
      await within(20_000, 'result', done.result());
      await assert.rejects(done.executeUpdate(stuckUpdate), /workflow execution already completed/);

      const h = await e.client.workflow.start(endsWithUpdatePending, { taskQueue, workflowId: uniqueId('pending') });
      const u = await h.startUpdate(stuckUpdate, { waitForStage: WorkflowUpdateStage.ACCEPTED });
      await h.signal(finish);
      await within(20_000, 'result', h.result());
      const err = await u.result().then(
        () => assert.fail('the update should fail'),
        (x: unknown) => x,
      );
      assert.ok(err instanceof WorkflowUpdateFailedError, String(err));
      assert.ok(err.cause instanceof ApplicationFailure, String(err.cause));
      assert.equal(err.cause.type, 'AcceptedUpdateCompletedWorkflow');
    });
  });
});

describe('activity pause', () => {
  envTest('a paused activity learns it on its next heartbeat and runs again once unpaused', async (e) => {
    const taskQueue = uniqueId('pause-tq');
    const workflowId = uniqueId('pause');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(runsPausable, { taskQueue, workflowId });
      await waitFor('the activity runs', () => callsFor(workflowId).includes('pausable:started'), 20_000);
      await e.client.workflowService.pauseActivity({
        namespace: 'default',
        execution: { workflowId },
        id: 'pausable-activity',
        identity: 'ts-test',
        reason: 'testing',
      });
      await waitFor(
        'the attempt is cancelled as paused',
        () => callsFor(workflowId).includes('pausable:cancelled:paused=true'),
        20_000,
      );
      const d = await h.describe();
      const pending = d.raw.pendingActivities ?? [];
      assert.equal(pending.length, 1);
      assert.equal(pending[0].paused, true);
      // No retry while paused.
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(!callsFor(workflowId).some((c) => c.startsWith('pausable:attempt')), callsFor(workflowId).join(','));
      await e.client.workflowService.unpauseActivity({
        namespace: 'default',
        execution: { workflowId },
        id: 'pausable-activity',
        identity: 'ts-test',
      });
      assert.equal(await within(20_000, 'result', h.result()), 'done on attempt 2');
    });
  });
});

describe('standalone activities', () => {
  envTest('start, retries, result, describe, list, count, failure, id conflicts, cancel', async (e) => {
    const taskQueue = uniqueId('sa-tq');
    await withWorker(e, taskQueue, async () => {
      const id = uniqueId('charge');
      const h = await e.client.activity.start('chargeCustomer', {
        id,
        taskQueue,
        args: [7],
        startToCloseTimeout: '10s',
        retry: { initialInterval: '100ms', maximumAttempts: 3 },
      });
      await within(20_000, 'result', h.result());
      const d = await h.describe();
      assert.equal(d.activityId, id);
      assert.equal(d.activityType, 'chargeCustomer');
      assert.equal(d.status, 'COMPLETED');
      assert.equal(d.attempt, 2, 'the first attempt failed and the server retried it');
      assert.equal(d.taskQueue, taskQueue);

      await assert.rejects(
        e.client.activity.start('chargeCustomer', { id, taskQueue, args: [7], startToCloseTimeout: '10s', idReusePolicy: 'REJECT_DUPLICATE' }),
        (err: unknown) => err instanceof ActivityExecutionAlreadyStartedError,
      );

      await e.client.activity.execute('sendPushNotification', { id: uniqueId('notify'), taskQueue, args: ['hi'], startToCloseTimeout: '10s' });

      const failing = await e.client.activity.start('alwaysFails', {
        id: uniqueId('fails'),
        taskQueue,
        startToCloseTimeout: '10s',
        retry: { initialInterval: '100ms', maximumAttempts: 2 },
      });
      const err = await failing.result().then(
        () => assert.fail('alwaysFails succeeded'),
        (x: unknown) => x,
      );
      assert.ok(err instanceof ActivityExecutionFailedError, String(err));
      assert.equal((await failing.describe()).status, 'FAILED');

      await waitFor('the activity is listed', async () => {
        const ids: string[] = [];
        for await (const a of e.client.activity.list(`ActivityId = '${id}'`)) ids.push(a.activityId);
        return ids.length === 1 && ids[0] === id;
      }, 20_000);
      const c = await e.client.activity.count(`ActivityType = 'chargeCustomer' AND TaskQueue = '${taskQueue}'`);
      assert.equal(c.count, 1);

      const long = await e.client.activity.start('heartbeatUntilCancelled', {
        id: uniqueId('long'),
        taskQueue,
        startToCloseTimeout: '60s',
        heartbeatTimeout: '5s',
      });
      await waitFor('the attempt runs', async () => (await long.describe()).runState === 'STARTED', 20_000);
      await long.cancel('enough');
      await assert.rejects(within(20_000, 'cancelled result', long.result()));
      assert.equal((await long.describe()).status, 'CANCELED');
    });
  });
});
