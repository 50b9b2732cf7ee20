// Tier-2 features with the official TypeScript SDK on a real Perdure server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  Client,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { CancelledFailure, TerminatedFailure } from '@temporalio/common';
import * as acts from '../src/feature-activities';
import { activities, add, counter, parent, sig, sleeper, valueQuery, waiter } from '../src/features';
import { TestServer, startServer } from './harness';

let server: TestServer;
let client: Client;
let bundle: Awaited<ReturnType<typeof bundleWorkflowCode>>;
const taskQueue = `features-${randomUUID()}`;
let worker: Worker;
let running: Promise<void>;

before(async () => {
  server = await startServer();
  client = server.client;
  bundle = await bundleWorkflowCode({ workflowsPath: require.resolve('../src/features') });
  worker = await Worker.create({ connection: server.connection, taskQueue, workflowBundle: bundle, activities: acts });
  running = worker.run();
});

after(async () => {
  worker?.shutdown();
  await running;
  await server?.stop();
});

const id = () => `wf-${randomUUID()}`;

test('child workflows: result and failure', async () => {
  assert.equal(await client.workflow.execute(parent, { taskQueue, workflowId: id(), args: [21] }), 42);
  assert.equal(await client.workflow.execute(parent, { taskQueue, workflowId: id(), args: [-1] }), 'child failed: negative');
});

test('continue-as-new: result follows the chain, every run is listed', async () => {
  const workflowId = id();
  assert.equal(await client.workflow.execute(counter, { taskQueue, workflowId, args: [0] }), 3);
  const statuses: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) statuses.push(w.status.name);
  assert.deepEqual(statuses.sort(), ['COMPLETED', 'CONTINUED_AS_NEW', 'CONTINUED_AS_NEW', 'CONTINUED_AS_NEW']);
  assert.equal(await client.workflow.count(`WorkflowId = '${workflowId}' AND ExecutionStatus = 'Completed'`).then((c) => c.count), 1);
});

test('cancel, terminate, and cancelling a running activity', async () => {
  const h = await client.workflow.start(sleeper, { taskQueue, workflowId: id() });
  await new Promise((r) => setTimeout(r, 300));
  await h.cancel();
  await assert.rejects(h.result(), (e: unknown) => e instanceof WorkflowFailedError && e.cause instanceof CancelledFailure);
  const t = await client.workflow.start(sleeper, { taskQueue, workflowId: id() });
  await t.terminate('enough');
  await assert.rejects(t.result(), (e: unknown) => e instanceof WorkflowFailedError && e.cause instanceof TerminatedFailure);
  assert.equal((await t.describe()).status.name, 'TERMINATED');
  assert.equal(await client.workflow.execute(activities, { taskQueue, workflowId: id(), args: ['cancel'] }), 'cancelled');
});

test('updates, signals and signal-with-start', async () => {
  const workflowId = id();
  const h = await client.workflow.start(waiter, { taskQueue, workflowId });
  assert.equal(await h.executeUpdate(add, { args: [2] }), 2);
  assert.equal(await h.executeUpdate(add, { args: [3] }), 5);
  await assert.rejects(h.executeUpdate(add, { args: [-1] }), WorkflowUpdateFailedError);
  const u = await h.startUpdate(add, { args: [1], waitForStage: 'ACCEPTED' });
  assert.equal(await u.result(), 6);
  assert.equal(await h.query(valueQuery), 6);
  const again = await client.workflow.signalWithStart(waiter, { taskQueue, workflowId, signal: sig, signalArgs: ['sws'] });
  assert.equal(again.signaledRunId, h.firstExecutionRunId);
  await h.signal(sig, 'done');
  assert.deepEqual(await h.result(), ['sws', 'done']);
  const fresh = await client.workflow.signalWithStart(waiter, { taskQueue, workflowId: id(), signal: sig, signalArgs: ['done'] });
  assert.deepEqual(await fresh.result(), ['done']);
});

test('heartbeats and activity timeouts', async () => {
  assert.equal(await client.workflow.execute(activities, { taskQueue, workflowId: id(), args: ['heartbeat'] }), 'attempt=2 resumedFrom=3');
  assert.equal(await client.workflow.execute(activities, { taskQueue, workflowId: id(), args: ['startToClose'] }), 'attempt 2');
  await assert.rejects(
    client.workflow.execute(activities, { taskQueue, workflowId: id(), args: ['scheduleToClose'] }),
    (e: unknown) => e instanceof WorkflowFailedError && /activity/i.test(String(e.cause?.message)),
  );
});

test('id reuse and conflict policies', async () => {
  const workflowId = id();
  const h = await client.workflow.start(sleeper, { taskQueue, workflowId });
  await assert.rejects(client.workflow.start(sleeper, { taskQueue, workflowId }), WorkflowExecutionAlreadyStartedError);
  const same = await client.workflow.start(sleeper, { taskQueue, workflowId, workflowIdConflictPolicy: 'USE_EXISTING' });
  assert.equal(same.firstExecutionRunId, h.firstExecutionRunId);
  await h.terminate();
  await assert.rejects(
    client.workflow.start(sleeper, { taskQueue, workflowId, workflowIdReusePolicy: 'REJECT_DUPLICATE' }),
    WorkflowExecutionAlreadyStartedError,
  );
  const next = await client.workflow.start(sleeper, { taskQueue, workflowId, workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY' });
  assert.notEqual(next.firstExecutionRunId, h.firstExecutionRunId);
  await next.terminate();
});
