// Tier-2 features through the TypeScript SDK: child workflows, continue-as-new, cancellation,
// updates, signal-with-start, heartbeats and activity timeouts, list/count, id reuse and conflict
// policies, terminate, describe, and queries on completed workflows.
import assert from 'node:assert/strict';
import { after, describe } from 'node:test';
import {
  WorkflowContinuedAsNewError,
  WorkflowExecutionInfo,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
} from '@temporalio/client';
import {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  ChildWorkflowFailure,
  RetryState,
  TerminatedFailure,
  TimeoutFailure,
  TimeoutType,
  WorkflowExecutionAlreadyStartedError,
} from '@temporalio/common';
import { callsFor } from '../src/activities';
import {
  accumulator,
  addItemSignal,
  addUpdate,
  cancelActivitySignal,
  cancelHeartbeatingActivity,
  childEcho,
  collectItems,
  echo,
  finishSignal,
  heartbeatDetailsAcrossAttempts,
  heartbeatTimeoutThenRetry,
  itemsQuery,
  loopWithContinueAsNew,
  parentCatchesChild,
  parentPropagatesChildFailure,
  releaseSignal,
  scheduleToCloseEndsRetries,
  sleepForADay,
  slowAddUpdate,
  startToCloseTimeout,
  totalQuery,
  visibilityTarget,
  waitForRelease,
} from '../src/features';
import {
  eventNames,
  HistoryEvent,
  envTest,
  teardown,
  TestEnv,
  timeoutTypeName,
  uniqueId,
  waitFor,
  within,
  withWorker,
} from './harness';

after(async () => {
  await teardown();
});

/** Awaits a promise that must reject, and returns the error. */
async function rejectsWith(p: Promise<unknown>, ms = 20_000, what = 'the call'): Promise<unknown> {
  return within(ms, what, p).then(
    (v) => assert.fail(`${what} should have failed but returned ${JSON.stringify(v)}`),
    (err: unknown) => err,
  );
}

function startedAttempts(events: HistoryEvent[]): HistoryEvent[] {
  return events.filter((ev) => ev.activityTaskStartedEventAttributes);
}

describe('child workflows', () => {
  envTest('executeChild returns the child result; a failing child surfaces as ChildWorkflowFailure', async (e) => {
    const taskQueue = uniqueId('child-tq');
    const idPrefix = uniqueId('parent');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(parentCatchesChild, { taskQueue, workflowId: idPrefix, args: [idPrefix] });
      const r = await within(20_000, 'parent result', h.result());
      assert.equal(r.okResult, 'child says hello');
      assert.ok(r.failure, 'the failing child must raise in the parent');
      assert.equal(r.failure.errorName, 'ChildWorkflowFailure');
      assert.equal(r.failure.workflowType, 'childFails');
      assert.equal(r.failure.childWorkflowId, `${idPrefix}-bad`);
      // Temporal reports RETRY_POLICY_NOT_SET: the child was started without a retry policy.
      assert.equal(r.failure.retryState, RetryState.RETRY_POLICY_NOT_SET);
      assert.equal(r.failure.causeName, 'ApplicationFailure');
      assert.equal(r.failure.causeMessage, 'child boom');
      assert.equal(r.failure.causeType, 'ChildBoom');

      const names = eventNames((await h.fetchHistory()).events);
      for (const n of [
        'StartChildWorkflowExecutionInitiated',
        'ChildWorkflowExecutionStarted',
        'ChildWorkflowExecutionCompleted',
        'ChildWorkflowExecutionFailed',
      ]) {
        assert.ok(names.includes(n), `parent history has ${n}: ${names.join(',')}`);
      }
      // The children are real workflows with their parent recorded.
      const okChild = await e.client.workflow.getHandle<typeof childEcho>(`${idPrefix}-ok`).describe();
      assert.equal(okChild.status.name, 'COMPLETED');
      assert.equal(okChild.type, 'childEcho');
      assert.equal(okChild.parentExecution?.workflowId, idPrefix);
      const badChild = await e.client.workflow.getHandle(`${idPrefix}-bad`).describe();
      assert.equal(badChild.status.name, 'FAILED');
    });
  });

  envTest('an unhandled child failure fails the parent: WorkflowFailedError > ChildWorkflowFailure > ApplicationFailure', async (e) => {
    const taskQueue = uniqueId('child-tq');
    const idPrefix = uniqueId('parent-propagates');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(parentPropagatesChildFailure, { taskQueue, workflowId: idPrefix, args: [idPrefix] });
      const err = await rejectsWith(h.result(), 20_000, 'parent result');
      assert.ok(err instanceof WorkflowFailedError, `got ${String(err)}`);
      assert.ok(err.cause instanceof ChildWorkflowFailure, `cause: ${String(err.cause)}`);
      assert.equal(err.cause.execution.workflowId, `${idPrefix}-child`);
      assert.ok(err.cause.cause instanceof ApplicationFailure, `inner cause: ${String(err.cause.cause)}`);
      assert.equal(err.cause.cause.message, 'unhandled child boom');
    });
  });
});

describe('continue-as-new', () => {
  envTest('three continue-as-new hops; result() follows the chain', async (e) => {
    const taskQueue = uniqueId('can-tq');
    const workflowId = uniqueId('can');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(loopWithContinueAsNew, { taskQueue, workflowId, args: [0, 3] });
      const firstRunId = h.firstExecutionRunId;
      const r = await within(20_000, 'result() across the chain', h.result());
      assert.equal(r.iteration, 3);
      assert.equal(r.firstExecutionRunId, firstRunId, 'first_execution_run_id is carried along the chain');
      assert.notEqual(r.runId, firstRunId);
      assert.ok(r.continuedFromRunId, 'the last run knows which run it continued from');

      // The first run ended with ContinuedAsNew; without following runs, result() says so.
      const firstRun = e.client.workflow.getHandle(workflowId, firstRunId, { followRuns: false });
      const firstEvents = eventNames((await firstRun.fetchHistory()).events);
      assert.equal(firstEvents.at(-1), 'WorkflowExecutionContinuedAsNew');
      const err = await rejectsWith(firstRun.result(), 10_000, 'result() of the first run');
      assert.ok(err instanceof WorkflowContinuedAsNewError, `got ${String(err)}`);
      assert.equal((await firstRun.describe()).status.name, 'CONTINUED_AS_NEW');

      // The latest run is the current one for the workflow id.
      const latest = await e.client.workflow.getHandle(workflowId).describe();
      assert.equal(latest.runId, r.runId);
      assert.equal(latest.status.name, 'COMPLETED');
    });
  });
});

describe('cancellation', () => {
  envTest('handle.cancel() ends the workflow: WorkflowFailedError with a CancelledFailure cause', async (e) => {
    const taskQueue = uniqueId('cancel-tq');
    const workflowId = uniqueId('cancel');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(sleepForADay, { taskQueue, workflowId });
      await waitFor('the timer', async () => eventNames((await h.fetchHistory()).events).includes('TimerStarted'));
      await h.cancel();
      const err = await rejectsWith(h.result(), 20_000, 'result() of the cancelled workflow');
      assert.ok(err instanceof WorkflowFailedError, `got ${String(err)}`);
      assert.ok(err.cause instanceof CancelledFailure, `cause: ${String(err.cause)}`);
      const names = eventNames((await h.fetchHistory()).events);
      assert.ok(names.includes('WorkflowExecutionCancelRequested'), names.join(','));
      assert.equal(names.at(-1), 'WorkflowExecutionCanceled');
      assert.equal((await h.describe()).status.name, 'CANCELLED');
    });
  });

  envTest('a cancellable scope cancels a heartbeating activity and the activity sees the cancellation', async (e) => {
    const taskQueue = uniqueId('cancel-act-tq');
    const workflowId = uniqueId('cancel-act');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(cancelHeartbeatingActivity, { taskQueue, workflowId });
      await waitFor('the activity to start', () => callsFor(workflowId).includes('heartbeatUntilCancelled:started'));
      await h.signal(cancelActivitySignal);
      const r = await within(20_000, 'result()', h.result());
      assert.equal(r, 'cancelled: ActivityFailure / CancelledFailure');
      assert.ok(callsFor(workflowId).includes('heartbeatUntilCancelled:cancelled'), 'the activity received the cancellation');
      const names = eventNames((await h.fetchHistory()).events);
      assert.ok(names.includes('ActivityTaskCancelRequested'), names.join(','));
      assert.ok(names.includes('ActivityTaskCanceled'), names.join(','));
      assert.equal(names.at(-1), 'WorkflowExecutionCompleted');
    });
  });
});

describe('updates', () => {
  envTest('executeUpdate accepted, rejected by the validator, startUpdate + result()', async (e) => {
    const taskQueue = uniqueId('update-tq');
    const workflowId = uniqueId('update');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(accumulator, { taskQueue, workflowId });

      assert.equal(await within(20_000, 'executeUpdate add(2)', h.executeUpdate(addUpdate, { args: [2] })), 2);

      const err = await rejectsWith(h.executeUpdate(addUpdate, { args: [-1] }), 20_000, 'executeUpdate add(-1)');
      assert.ok(err instanceof WorkflowUpdateFailedError, `got ${String(err)}`);
      assert.ok(err.cause instanceof ApplicationFailure, `cause: ${String(err.cause)}`);
      assert.equal(err.cause.message, 'negative amount -1 rejected');

      const updateId = uniqueId('slow-add');
      const upd = await within(
        20_000,
        'startUpdate slowAdd(5)',
        h.startUpdate(slowAddUpdate, { args: [5], updateId, waitForStage: WorkflowUpdateStage.ACCEPTED }),
      );
      assert.equal(upd.updateId, updateId);
      assert.equal(await within(20_000, 'update result()', upd.result()), 7);
      // The outcome can also be fetched by update id.
      assert.equal(await within(20_000, 'getUpdateHandle().result()', h.getUpdateHandle<number>(updateId).result()), 7);

      assert.equal(await h.query(totalQuery), 7, 'the rejected update changed nothing');
      await h.signal(finishSignal);
      assert.equal(await within(20_000, 'result()', h.result()), 7);

      const names = eventNames((await h.fetchHistory()).events);
      assert.equal(names.filter((n) => n === 'WorkflowExecutionUpdateAccepted').length, 2, names.join(','));
      assert.equal(names.filter((n) => n === 'WorkflowExecutionUpdateCompleted').length, 2, names.join(','));
      assert.ok(!names.includes('WorkflowExecutionUpdateRejected'), 'a rejected update leaves no event');
    });
  });
});

describe('signal-with-start', () => {
  envTest('signalWithStart twice on the same id reaches the same run', async (e) => {
    const taskQueue = uniqueId('sws-tq');
    const workflowId = uniqueId('sws');
    await withWorker(e, taskQueue, async () => {
      const h1 = await e.client.workflow.signalWithStart(collectItems, {
        taskQueue, workflowId, args: [2], signal: addItemSignal, signalArgs: ['first'],
      });
      await waitFor('first item', async () => (await h1.query(itemsQuery)).length === 1);
      const h2 = await e.client.workflow.signalWithStart(collectItems, {
        taskQueue, workflowId, args: [2], signal: addItemSignal, signalArgs: ['second'],
      });
      assert.equal(h2.signaledRunId, h1.signaledRunId, 'the second signalWithStart signals the running run');
      assert.deepEqual(await within(20_000, 'result()', h1.result()), ['first', 'second']);
      const events = (await h1.fetchHistory()).events ?? [];
      const names = eventNames(events);
      assert.deepEqual(names.slice(0, 2), ['WorkflowExecutionStarted', 'WorkflowExecutionSignaled']);
      assert.equal(names.filter((n) => n === 'WorkflowExecutionStarted').length, 1);
      assert.equal(names.filter((n) => n === 'WorkflowExecutionSignaled').length, 2);
      assert.equal((await h1.describe()).runId, h1.signaledRunId);
    });
  });
});

describe('activity heartbeats and timeouts', () => {
  envTest('heartbeat timeout fires when the activity stops heartbeating; the retry gets the heartbeat details and succeeds', async (e) => {
    const taskQueue = uniqueId('hb-tq');
    const workflowId = uniqueId('hb-timeout');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(heartbeatTimeoutThenRetry, { taskQueue, workflowId });
      const r = await within(30_000, 'result()', h.result());
      assert.equal(r, 'attempt 2 resumed from "checkpoint-1"');
      const started = startedAttempts((await h.fetchHistory()).events ?? []);
      assert.equal(started.length, 1);
      const attrs = started[0].activityTaskStartedEventAttributes!;
      assert.equal(attrs.attempt, 2);
      assert.equal(timeoutTypeName(attrs.lastFailure?.timeoutFailureInfo?.timeoutType), 'TIMEOUT_TYPE_HEARTBEAT');
      assert.deepEqual(callsFor(workflowId), [
        'stallOnFirstAttempt:attempt1:details=null',
        'stallOnFirstAttempt:attempt2:details="checkpoint-1"',
      ]);
    });
  });

  envTest('heartbeat details recorded before a failure are given to the next attempt', async (e) => {
    const taskQueue = uniqueId('hb-tq');
    const workflowId = uniqueId('hb-details');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(heartbeatDetailsAcrossAttempts, { taskQueue, workflowId });
      assert.equal(await within(30_000, 'result()', h.result()), 'attempt 2 resumed from 3');
      assert.deepEqual(callsFor(workflowId), ['heartbeatThenFail:attempt1:details=null', 'heartbeatThenFail:attempt2:details=3']);
      const attrs = startedAttempts((await h.fetchHistory()).events ?? [])[0].activityTaskStartedEventAttributes!;
      assert.equal(attrs.attempt, 2);
      assert.equal(attrs.lastFailure?.message, 'crashed after progress 3');
    });
  });

  envTest('start-to-close timeout: each attempt times out, retries stop at maximumAttempts', async (e) => {
    const taskQueue = uniqueId('stc-tq');
    const workflowId = uniqueId('stc');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(startToCloseTimeout, { taskQueue, workflowId });
      const err = await rejectsWith(h.result(), 30_000, 'result()');
      assert.ok(err instanceof WorkflowFailedError, `got ${String(err)}`);
      assert.ok(err.cause instanceof ActivityFailure, `cause: ${String(err.cause)}`);
      assert.equal(err.cause.activityType, 'sleepPastTimeout');
      assert.equal(err.cause.retryState, RetryState.MAXIMUM_ATTEMPTS_REACHED);
      assert.ok(err.cause.cause instanceof TimeoutFailure, `inner cause: ${String(err.cause.cause)}`);
      assert.equal(err.cause.cause.timeoutType, TimeoutType.START_TO_CLOSE);
      assert.deepEqual(callsFor(workflowId), ['sleepPastTimeout:attempt1', 'sleepPastTimeout:attempt2']);
      const names = eventNames((await h.fetchHistory()).events);
      assert.ok(names.includes('ActivityTaskTimedOut'), names.join(','));
    });
  });

  envTest('schedule-to-close timeout ends the retries of an always-failing activity', async (e) => {
    const taskQueue = uniqueId('s2c-tq');
    const workflowId = uniqueId('s2c');
    await withWorker(e, taskQueue, async () => {
      const startedAt = Date.now();
      const h = await e.client.workflow.start(scheduleToCloseEndsRetries, { taskQueue, workflowId });
      const err = await rejectsWith(h.result(), 30_000, 'result()');
      const elapsed = Date.now() - startedAt;
      assert.ok(err instanceof WorkflowFailedError, `got ${String(err)}`);
      assert.ok(err.cause instanceof ActivityFailure, `cause: ${String(err.cause)}`);
      assert.equal(err.cause.retryState, RetryState.TIMEOUT);
      const attempts = callsFor(workflowId).length;
      // Temporal's dev server fires retry timers coarsely (2 attempts in 2 s); Perdure fits more in.
      assert.ok(attempts >= 2, `retried until the deadline (${attempts} attempts)`);
      assert.ok(attempts <= 12, `no retries past the deadline (${attempts} attempts)`);
      assert.ok(elapsed < 10_000, `stopped soon after the 2 s schedule-to-close timeout (${elapsed} ms)`);
    });
  });
});

describe('visibility', () => {
  envTest('list() and count() with WorkflowType and ExecutionStatus', async (e) => {
    const taskQueue = uniqueId('vis-tq');
    const ids = [uniqueId('vis-a'), uniqueId('vis-b'), uniqueId('vis-c')];
    await withWorker(e, taskQueue, async () => {
      for (const [i, workflowId] of ids.entries()) {
        await e.client.workflow.execute(visibilityTarget, { taskQueue, workflowId, args: [`v${i}`] });
      }
      const running = await e.client.workflow.start(waitForRelease, { taskQueue, workflowId: uniqueId('vis-running'), args: ['vis'] });

      const completedQuery = "WorkflowType = 'visibilityTarget' AND ExecutionStatus = 'Completed'";
      let rows: WorkflowExecutionInfo[] = [];
      await waitFor('3 completed visibilityTarget rows', async () => {
        rows = [];
        for await (const wf of e.client.workflow.list({ query: completedQuery })) rows.push(wf);
        return rows.length === 3;
      }, 15_000, 250);
      assert.deepEqual(rows.map((r) => r.workflowId).sort(), [...ids].sort());
      for (const r of rows) {
        assert.equal(r.type, 'visibilityTarget');
        assert.equal(r.status.name, 'COMPLETED');
        assert.equal(r.taskQueue, taskQueue);
        assert.ok(r.closeTime, 'closed rows have a close time');
      }
      assert.equal((await e.client.workflow.count(completedQuery)).count, 3);
      assert.equal((await e.client.workflow.count("WorkflowType = 'visibilityTarget' AND ExecutionStatus = 'Running'")).count, 0);

      const runningQuery = `WorkflowId = '${running.workflowId}' AND ExecutionStatus = 'Running'`;
      await waitFor('the running row', async () => (await e.client.workflow.count(runningQuery)).count === 1, 15_000, 250);
      await running.signal(releaseSignal);
      assert.equal(await within(20_000, 'result()', running.result()), 'released vis');
      await waitFor('the running row to close', async () => (await e.client.workflow.count(runningQuery)).count === 0, 15_000, 250);
    });
  });
});

describe('workflow id reuse and conflict policies', () => {
  envTest("workflowIdReusePolicy 'REJECT_DUPLICATE' refuses a closed id; the default allows a new run", async (e) => {
    const taskQueue = uniqueId('reuse-tq');
    const workflowId = uniqueId('reuse');
    await withWorker(e, taskQueue, async () => {
      const first = await e.client.workflow.start(echo, { taskQueue, workflowId, args: ['one'] });
      assert.equal(await within(20_000, 'result()', first.result()), 'one');
      const err = await rejectsWith(
        e.client.workflow.start(echo, { taskQueue, workflowId, args: ['two'], workflowIdReusePolicy: 'REJECT_DUPLICATE' }),
        10_000,
        'start with REJECT_DUPLICATE',
      );
      assert.ok(err instanceof WorkflowExecutionAlreadyStartedError, `got ${String(err)}`);
      assert.equal(err.workflowId, workflowId);

      const second = await e.client.workflow.start(echo, { taskQueue, workflowId, args: ['three'], workflowIdReusePolicy: 'ALLOW_DUPLICATE' });
      assert.notEqual(second.firstExecutionRunId, first.firstExecutionRunId);
      assert.equal(await within(20_000, 'result()', second.result()), 'three');
    });
  });

  envTest("workflowIdConflictPolicy 'USE_EXISTING' returns the running run; 'TERMINATE_EXISTING' replaces it", async (e) => {
    const taskQueue = uniqueId('conflict-tq');
    const workflowId = uniqueId('conflict');
    await withWorker(e, taskQueue, async () => {
      const first = await e.client.workflow.start(waitForRelease, { taskQueue, workflowId, args: ['first'] });
      const same = await e.client.workflow.start(waitForRelease, {
        taskQueue, workflowId, args: ['ignored'], workflowIdConflictPolicy: 'USE_EXISTING',
      });
      assert.equal(same.firstExecutionRunId, first.firstExecutionRunId, 'USE_EXISTING returns the running run');

      const replacement = await e.client.workflow.start(waitForRelease, {
        taskQueue, workflowId, args: ['replacement'], workflowIdConflictPolicy: 'TERMINATE_EXISTING',
      });
      assert.notEqual(replacement.firstExecutionRunId, first.firstExecutionRunId);
      const old = e.client.workflow.getHandle(workflowId, first.firstExecutionRunId);
      assert.equal((await old.describe()).status.name, 'TERMINATED');

      await replacement.signal(releaseSignal);
      assert.equal(await within(20_000, 'result()', replacement.result()), 'released replacement');
    });
  });
});

describe('terminate, describe, query after completion', () => {
  envTest('terminate: result() throws WorkflowFailedError with a TerminatedFailure cause', async (e) => {
    const taskQueue = uniqueId('terminate-tq');
    const workflowId = uniqueId('terminate');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(waitForRelease, { taskQueue, workflowId, args: ['t'] });
      await waitFor('the first workflow task', async () => eventNames((await h.fetchHistory()).events).includes('TimerStarted'));
      await h.terminate('enough of this');
      const err = await rejectsWith(h.result(), 20_000, 'result() of the terminated workflow');
      assert.ok(err instanceof WorkflowFailedError, `got ${String(err)}`);
      assert.ok(err.cause instanceof TerminatedFailure, `cause: ${String(err.cause)}`);
      assert.equal(err.cause.message, 'enough of this');
      const desc = await h.describe();
      assert.equal(desc.status.name, 'TERMINATED');
      assert.equal(eventNames((await h.fetchHistory()).events).at(-1), 'WorkflowExecutionTerminated');
    });
  });

  envTest('describe() while running and after completion; query on a completed workflow', async (e) => {
    const taskQueue = uniqueId('describe-tq');
    const workflowId = uniqueId('describe');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(accumulator, { taskQueue, workflowId });
      await waitFor('the first workflow task', async () => eventNames((await h.fetchHistory()).events).includes('WorkflowTaskCompleted'));
      const running = await h.describe();
      assert.equal(running.status.name, 'RUNNING');
      assert.equal(running.workflowId, workflowId);
      assert.equal(running.runId, h.firstExecutionRunId);
      assert.equal(running.type, 'accumulator');
      assert.equal(running.taskQueue, taskQueue);
      assert.ok(running.startTime instanceof Date);
      assert.equal(running.closeTime, undefined);

      assert.equal(await h.executeUpdate(addUpdate, { args: [40] }), 40);
      await h.signal(finishSignal);
      assert.equal(await within(20_000, 'result()', h.result()), 40);

      const done = await h.describe();
      const events = (await h.fetchHistory()).events ?? [];
      assert.equal(done.status.name, 'COMPLETED');
      assert.equal(done.historyLength, events.length);
      assert.ok(done.closeTime instanceof Date);
      assert.ok(done.closeTime.getTime() >= done.startTime.getTime());
      assert.equal(await within(20_000, 'query on the completed workflow', h.query(totalQuery)), 40);
    });
  });
});
