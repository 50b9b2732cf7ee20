// The food-delivery order workflow (tests 1 and 2 of the suite):
// - the charge fails on attempt 1 and the server retries it;
// - the pickedUp/delivered signals advance the state seen by the getStatus query;
// - getStatus answers while running, after completion, and from a brand-new worker with no cache
//   (answered by replaying history), also in the middle of the run;
// - the no-pickup path refunds and fails with 'Not picked up in time';
// - the history of the happy path has exactly the event sequence the real Temporal server writes.
import assert from 'node:assert/strict';
import { after, describe } from 'node:test';
import { WorkflowFailedError, WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { callsFor } from '../src/activities';
import { deliveredSignal, getStatusQuery, order, pickedUpSignal } from '../src/order';
import {
  eventNames,
  HistoryEvent,
  envTest,
  teardown,
  TestEnv,
  uniqueId,
  waitFor,
  within,
  withWorker,
} from './harness';

after(async () => {
  await teardown();
});

type OrderHandle = WorkflowHandle<typeof order>;

async function stateOf(h: OrderHandle): Promise<string> {
  return (await h.query(getStatusQuery)).state;
}

async function historyEvents(h: OrderHandle): Promise<HistoryEvent[]> {
  return (await h.fetchHistory()).events ?? [];
}

/** The ActivityTaskStarted event belonging to the ActivityTaskScheduled of `activityType`. */
function startedEventOf(events: HistoryEvent[], activityType: string): HistoryEvent {
  const scheduled = events.find((ev) => ev.activityTaskScheduledEventAttributes?.activityType?.name === activityType);
  assert.ok(scheduled, `no ActivityTaskScheduled for ${activityType}`);
  const started = events.find(
    (ev) => ev.activityTaskStartedEventAttributes && String(ev.activityTaskStartedEventAttributes.scheduledEventId) === String(scheduled.eventId),
  );
  assert.ok(started, `no ActivityTaskStarted for ${activityType}`);
  return started;
}

function assertChargeRetriedOnce(events: HistoryEvent[], workflowId: string, productId: number): void {
  const attrs = startedEventOf(events, 'chargeCustomer').activityTaskStartedEventAttributes!;
  assert.equal(attrs.attempt, 2, 'chargeCustomer must succeed on attempt 2');
  assert.ok(attrs.lastFailure, 'ActivityTaskStarted of the retried attempt carries lastFailure');
  assert.equal(attrs.lastFailure.message, 'payment service unreachable');
  assert.equal(attrs.lastFailure.applicationFailureInfo?.type, 'PaymentUnavailable');
  assert.deepEqual(
    callsFor(workflowId).filter((c) => c.startsWith('chargeCustomer')),
    [`chargeCustomer:${productId}:attempt1`, `chargeCustomer:${productId}:attempt2`],
  );
}

// The event sequence of the happy path below, as written by Temporal's dev server (Temporal
// Server 1.32.0 / CLI 1.9.1) for the TypeScript SDK 1.24 worker with its sticky cache.
const EXPECTED_HAPPY_PATH_HISTORY = [
  'WorkflowExecutionStarted',
  'WorkflowTaskScheduled',
  'WorkflowTaskStarted',
  'WorkflowTaskCompleted',
  'ActivityTaskScheduled', // chargeCustomer
  'ActivityTaskStarted', // attempt 2, lastFailure of attempt 1
  'ActivityTaskCompleted',
  'WorkflowTaskScheduled',
  'WorkflowTaskStarted',
  'WorkflowTaskCompleted',
  'TimerStarted', // condition(pickedUp, 1 min)
  'WorkflowExecutionSignaled', // pickedUp
  'WorkflowTaskScheduled',
  'WorkflowTaskStarted',
  'WorkflowTaskCompleted',
  'TimerCanceled',
  'ActivityTaskScheduled', // sendPushNotification(picked up)
  'ActivityTaskStarted',
  'ActivityTaskCompleted',
  'WorkflowTaskScheduled',
  'WorkflowTaskStarted',
  'WorkflowTaskCompleted',
  'TimerStarted', // condition(delivered, 1 min)
  'WorkflowExecutionSignaled', // delivered
  'WorkflowTaskScheduled',
  'WorkflowTaskStarted',
  'WorkflowTaskCompleted',
  'TimerCanceled',
  'ActivityTaskScheduled', // sendPushNotification(delivered)
  'ActivityTaskStarted',
  'ActivityTaskCompleted',
  'WorkflowTaskScheduled',
  'WorkflowTaskStarted',
  'WorkflowTaskCompleted',
  'WorkflowExecutionCompleted',
];

describe('food-delivery order workflow', () => {
  envTest('charge retried by the server, signals advance getStatus, queries while running, after completion and by replay on a new worker', async (e) => {
    const taskQueue = uniqueId('order-tq');
    const workflowId = uniqueId('order');
    const productId = 11;

    // Worker A (normal sticky cache): start, query while running, wait for 'Paid'.
    const handle: OrderHandle = await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(order, { taskQueue, workflowId, args: [productId] });
      const first = await within(15_000, 'first getStatus', h.query(getStatusQuery));
      assert.equal(first.productId, productId);
      assert.ok(['Charging card', 'Paid'].includes(first.state), `unexpected first state ${first.state}`);
      await waitFor('state Paid', async () => (await stateOf(h)) === 'Paid', 15_000);
      return h;
    });

    // Worker A is shut down; the workflow waits for pickup. Worker B has no cache at all, so
    // every query and every workflow task is answered by replaying the history from event 1.
    await withWorker(e, taskQueue, async () => {
      assert.equal(await within(15_000, 'getStatus on a new worker', stateOf(handle)), 'Paid');
      const desc = await handle.describe();
      assert.equal(desc.status.name, 'RUNNING');

      await handle.signal(pickedUpSignal);
      await waitFor('state Picked up', async () => (await stateOf(handle)) === 'Picked up', 15_000);

      await handle.signal(deliveredSignal);
      await waitFor('state Delivered', async () => (await stateOf(handle)) === 'Delivered', 15_000);

      const result = await within(15_000, 'result()', handle.result());
      assert.equal(result.state, 'Delivered');
      assert.equal(result.productId, productId);
      assert.ok(result.deliveredAt && !Number.isNaN(Date.parse(String(result.deliveredAt))), 'deliveredAt is set');

      // Query after completion, same worker.
      const done = await handle.query(getStatusQuery);
      assert.equal(done.state, 'Delivered');
      assert.equal(String(done.deliveredAt), String(result.deliveredAt), 'deliveredAt is replayed deterministically');
    }, { maxCachedWorkflows: 0 });

    // After completion, with yet another brand-new worker: replay answers the query.
    await withWorker(e, taskQueue, async () => {
      const s = await within(15_000, 'getStatus after completion on a new worker', handle.query(getStatusQuery));
      assert.equal(s.state, 'Delivered');
      assert.ok(s.deliveredAt);
    }, { maxCachedWorkflows: 0 });

    const events = await historyEvents(handle);
    assertChargeRetriedOnce(events, workflowId, productId);
    assert.equal(eventNames(events).at(-1), 'WorkflowExecutionCompleted');
    assert.equal(eventNames(events).filter((n) => n === 'WorkflowExecutionSignaled').length, 2);
    assert.deepEqual(
      callsFor(workflowId).filter((c) => c.startsWith('sendPushNotification')),
      [`sendPushNotification:Order ${productId} picked up`, `sendPushNotification:Order ${productId} delivered`],
    );
    assert.deepEqual(callsFor(workflowId).filter((c) => c.startsWith('refundOrder')), []);
    const desc = await handle.describe();
    assert.equal(desc.status.name, 'COMPLETED');
    assert.equal(desc.historyLength, events.length);
  });

  envTest('no pickup within the (short) timeout: refund, notification, WorkflowFailedError "Not picked up in time"', async (e) => {
    const taskQueue = uniqueId('order-tq');
    const workflowId = uniqueId('order-nopickup');
    const productId = 12;
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(order, { taskQueue, workflowId, args: [productId, '2 seconds'] });
      await waitFor('state Paid', async () => (await stateOf(h)) === 'Paid', 15_000);
      const err = await within(20_000, 'result()', h.result()).then(
        () => assert.fail('the order must fail'),
        (err: unknown) => err,
      );
      assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
      assert.ok(err.cause instanceof ApplicationFailure, `expected ApplicationFailure cause, got ${String(err.cause)}`);
      assert.equal(err.cause.message, 'Not picked up in time');

      assert.equal(await stateOf(h), 'Refunded', 'getStatus on the failed workflow');
      const calls = callsFor(workflowId);
      assert.ok(calls.includes(`refundOrder:${productId}`), `refundOrder ran: ${calls.join(', ')}`);
      assert.ok(
        calls.includes(`sendPushNotification:Your order ${productId} was not picked up in time. Your payment has been refunded.`),
        `refund notification sent: ${calls.join(', ')}`,
      );
      const names = eventNames(await historyEvents(h));
      assert.ok(names.includes('TimerFired'), 'the pickup timer fired');
      assert.equal(names.at(-1), 'WorkflowExecutionFailed');
      assert.equal((await h.describe()).status.name, 'FAILED');
    });
  });

  envTest('history shape of the happy path equals the sequence written by Temporal', async (e) => {
    const taskQueue = uniqueId('order-tq');
    const workflowId = uniqueId('order-history');
    const productId = 13;
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(order, { taskQueue, workflowId, args: [productId] });
      // 'Paid' is visible to a query only once the task that started the pickup timer completed.
      await waitFor('state Paid', async () => (await stateOf(h)) === 'Paid', 15_000);
      await h.signal(pickedUpSignal);
      // Send 'delivered' only when the workflow is idle again, waiting on the second timer.
      await waitFor(
        'the delivery timer',
        async () => eventNames(await historyEvents(h)).filter((n) => n === 'TimerStarted').length === 2,
        15_000,
      );
      await h.signal(deliveredSignal);
      const result = await within(15_000, 'result()', h.result());
      assert.equal(result.state, 'Delivered');

      const events = await historyEvents(h);
      assert.deepEqual(eventNames(events), EXPECTED_HAPPY_PATH_HISTORY);
      // Event ids are contiguous from 1.
      assert.deepEqual(events.map((ev) => Number(ev.eventId)), events.map((_, i) => i + 1));
      assertChargeRetriedOnce(events, workflowId, productId);
      const desc = await h.describe();
      assert.equal(desc.historyLength, EXPECTED_HAPPY_PATH_HISTORY.length);
    });
  });
});
