// The order workflow on a freshly started `perdure server start-dev`, driven by the official
// TypeScript SDK: server-side retry of the charge, signals, getStatus while running, after
// completion and after a worker restart (replay), the no-pickup refund path, and the history shape.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Client, WorkflowFailedError } from '@temporalio/client';
import { NativeConnection, Worker, bundleWorkflowCode } from '@temporalio/worker';
import * as activities from '../src/activities';
import { deliveredSignal, getStatusQuery, order, pickedUpSignal } from '../src/workflows';
import { TestServer, startServer, until } from './harness';

let server: TestServer;
let client: Client;
let connection: NativeConnection;
let bundle: Awaited<ReturnType<typeof bundleWorkflowCode>>;

before(async () => {
  server = await startServer();
  ({ client, connection } = server);
  bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../src/workflows') });
});

after(async () => {
  await server?.stop();
});

async function withWorker<T>(taskQueue: string, fn: () => Promise<T>, maxCachedWorkflows?: number): Promise<T> {
  const worker = await Worker.create({
    connection, taskQueue, workflowBundle: bundle, activities, ...(maxCachedWorkflows === undefined ? {} : { maxCachedWorkflows }),
  });
  return worker.runUntil(fn);
}

const EXPECTED = [
  'WORKFLOW_EXECUTION_STARTED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED',
  'ACTIVITY_TASK_SCHEDULED', 'ACTIVITY_TASK_STARTED', 'ACTIVITY_TASK_COMPLETED',
  'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED', 'TIMER_STARTED',
  'WORKFLOW_EXECUTION_SIGNALED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED',
  'TIMER_CANCELED', 'ACTIVITY_TASK_SCHEDULED', 'ACTIVITY_TASK_STARTED', 'ACTIVITY_TASK_COMPLETED',
  'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED', 'TIMER_STARTED',
  'WORKFLOW_EXECUTION_SIGNALED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED',
  'TIMER_CANCELED', 'ACTIVITY_TASK_SCHEDULED', 'ACTIVITY_TASK_STARTED', 'ACTIVITY_TASK_COMPLETED',
  'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED', 'WORKFLOW_EXECUTION_COMPLETED',
];

function eventTypeName(t: unknown): string {
  // The history proto gives enum numbers; map through the generated enum names.
  const { temporal } = require('@temporalio/proto');
  const name = temporal.api.enums.v1.EventType[t as number] as string;
  return name.replace(/^EVENT_TYPE_/, '');
}

test('order: retried charge, signals, queries throughout, replay after worker restart, history shape', async () => {
  const taskQueue = `order-${randomUUID()}`;
  const workflowId = `order-${randomUUID()}`;
  const handle = await withWorker(taskQueue, async () => {
    const h = await client.workflow.start(order, { taskQueue, workflowId, args: [3] });
    assert.ok(['Charging card', 'Paid'].includes((await h.query(getStatusQuery)).state));
    await until(async () => (await h.query(getStatusQuery)).state === 'Paid', 'Paid');
    await h.signal(pickedUpSignal);
    await until(async () => {
      const hist = await h.fetchHistory();
      // Deterministic history: send "delivered" once the workflow waits for it (second timer).
      return hist.events!.filter((e) => eventTypeName(e.eventType) === 'TIMER_STARTED').length >= 2;
    }, 'the wait for delivery');
    assert.equal((await h.query(getStatusQuery)).state, 'Picked up');
    await h.signal(deliveredSignal);
    const result = await h.result();
    assert.equal(result.state, 'Delivered');
    assert.equal(result.productId, 3);
    assert.equal((await h.query(getStatusQuery)).state, 'Delivered');
    return h;
  });
  // A new worker with no cache answers by replaying the history.
  await withWorker(taskQueue, async () => {
    const s = await handle.query(getStatusQuery);
    assert.equal(s.state, 'Delivered');
    assert.ok(s.deliveredAt);
  }, 0);
  const hist = await handle.fetchHistory();
  assert.deepEqual(hist.events!.map((e) => eventTypeName(e.eventType)), EXPECTED);
  const started = hist.events![5].activityTaskStartedEventAttributes!;
  assert.equal(started.attempt, 2, 'the server retried the charge');
  assert.equal(started.lastFailure!.message, 'payment service unreachable');
  const desc = await handle.describe();
  assert.equal(desc.status.name, 'COMPLETED');
  assert.equal(desc.historyLength, EXPECTED.length);
});

test('order: no pickup in time ends in a refund', async () => {
  const taskQueue = `order-${randomUUID()}`;
  await withWorker(taskQueue, async () => {
    const before = activities.calls.length;
    const h = await client.workflow.start(order, { taskQueue, workflowId: `nopickup-${randomUUID()}`, args: [4, '1 second'] });
    await assert.rejects(h.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError);
      assert.equal((err.cause as Error).message, 'Not picked up in time');
      return true;
    });
    assert.ok(activities.calls.slice(before).includes('refund:4'));
    assert.equal((await h.query(getStatusQuery)).state, 'Refunded');
  });
});
