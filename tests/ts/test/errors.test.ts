// Bad input through the TypeScript client: each must give the typed error the SDK derives from the
// gRPC status (code + details), quickly (no retry storm from a wrong status code), and the server
// must keep working afterwards.
import assert from 'node:assert/strict';
import { after, describe } from 'node:test';
import { Client, QueryNotRegisteredError, ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import { NamespaceNotFoundError, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { echo, releaseSignal, waitForRelease } from '../src/features';
import { getStatusQuery, order } from '../src/order';
import { envTest, teardown, TestEnv, uniqueId, within, withWorker } from './harness';

after(async () => {
  await teardown();
});

/** The error must come back fast: a wrong gRPC code would make the client retry for ~10 s. */
const FAST_MS = 5_000;

async function rejection(p: Promise<unknown>, what: string): Promise<unknown> {
  return within(FAST_MS, what, p).then(
    (v) => assert.fail(`${what} should have failed but returned ${JSON.stringify(v)}`),
    (err: unknown) => err,
  );
}

/** After every error: a normal workflow still runs end to end. */
async function assertServerStillWorks(e: TestEnv): Promise<void> {
  const taskQueue = uniqueId('healthy-tq');
  await withWorker(e, taskQueue, async () => {
    const value = uniqueId('still-works');
    const r = await within(20_000, 'a normal workflow after the error', e.client.workflow.execute(echo, {
      taskQueue, workflowId: uniqueId('healthy'), args: [value],
    }));
    assert.equal(r, value);
  });
}

describe('bad input via the TypeScript client', () => {
  envTest("unknown namespace: NamespaceNotFoundError", async (e) => {
    const nope = new Client({ connection: e.client.connection, namespace: 'nope' });
    const startErr = await rejection(
      nope.workflow.start(echo, { taskQueue: 'nowhere', workflowId: uniqueId('nope'), args: ['x'] }),
      'start in namespace nope',
    );
    assert.ok(startErr instanceof NamespaceNotFoundError, `start: got ${String(startErr)}`);
    assert.equal(startErr.namespace, 'nope');

    const describeErr = await rejection(nope.workflow.getHandle(uniqueId('nope')).describe(), 'describe in namespace nope');
    assert.ok(describeErr instanceof NamespaceNotFoundError, `describe: got ${String(describeErr)}`);
    await assertServerStillWorks(e);
  });

  envTest('duplicate workflow id while running: WorkflowExecutionAlreadyStartedError', async (e) => {
    const taskQueue = uniqueId('dup-tq');
    const workflowId = uniqueId('dup');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(waitForRelease, { taskQueue, workflowId, args: ['dup'] });
      const err = await rejection(
        e.client.workflow.start(waitForRelease, { taskQueue, workflowId, args: ['again'] }),
        'second start with the same id',
      );
      assert.ok(err instanceof WorkflowExecutionAlreadyStartedError, `got ${String(err)}`);
      assert.equal(err.workflowId, workflowId);
      assert.equal(err.workflowType, 'waitForRelease');
      // The running workflow is untouched.
      assert.equal((await h.describe()).runId, h.firstExecutionRunId);
      await h.signal(releaseSignal);
      assert.equal(await within(20_000, 'result()', h.result()), 'released dup');
    });
    await assertServerStillWorks(e);
  });

  envTest('unknown query name: QueryNotRegisteredError', async (e) => {
    const taskQueue = uniqueId('query-tq');
    const workflowId = uniqueId('query');
    await withWorker(e, taskQueue, async () => {
      const h = await e.client.workflow.start(order, { taskQueue, workflowId, args: [21] });
      // A known query works (waits for the first workflow task).
      assert.ok((await within(15_000, 'getStatus', h.query(getStatusQuery))).state);
      const err = await within(15_000, 'unknown query', h.query('noSuchQuery')).then(
        () => assert.fail('an unknown query must fail'),
        (err: unknown) => err,
      );
      assert.ok(err instanceof QueryNotRegisteredError, `got ${String(err)}`);
      assert.match(err.message, /noSuchQuery/);
      // The workflow is unaffected and still answers known queries.
      assert.ok((await h.query(getStatusQuery)).state);
      await h.terminate('done with it');
    });
    await assertServerStillWorks(e);
  });

  envTest('signalling a workflow id that does not exist: WorkflowNotFoundError', async (e) => {
    const missing = uniqueId('missing');
    const err = await rejection(e.client.workflow.getHandle(missing).signal(releaseSignal), 'signal to a missing workflow');
    assert.ok(err instanceof WorkflowNotFoundError, `got ${String(err)}`);
    assert.equal(err.workflowId, missing);

    // describe / terminate of a missing id too.
    const describeErr = await rejection(e.client.workflow.getHandle(missing).describe(), 'describe of a missing workflow');
    assert.ok(describeErr instanceof WorkflowNotFoundError, `describe: got ${String(describeErr)}`);
    const terminateErr = await rejection(e.client.workflow.getHandle(missing).terminate(), 'terminate of a missing workflow');
    assert.ok(terminateErr instanceof WorkflowNotFoundError, `terminate: got ${String(terminateErr)}`);
    await assertServerStillWorks(e);
  });

  envTest('signalling a completed workflow: WorkflowNotFoundError', async (e) => {
    const taskQueue = uniqueId('closed-tq');
    const workflowId = uniqueId('closed');
    await withWorker(e, taskQueue, async () => {
      assert.equal(await e.client.workflow.execute(echo, { taskQueue, workflowId, args: ['done'] }), 'done');
    });
    const err = await rejection(e.client.workflow.getHandle(workflowId).signal(releaseSignal), 'signal to a completed workflow');
    assert.ok(err instanceof WorkflowNotFoundError, `got ${String(err)}`);
    await assertServerStillWorks(e);
  });

  envTest('a malformed list query is rejected (INVALID_ARGUMENT, not retried)', async (e) => {
    const err = await rejection(
      (async () => {
        for await (const _ of e.client.workflow.list({ query: 'WorkflowType = = AND' })) {
          // no rows expected
        }
      })(),
      'list with a malformed query',
    );
    assert.ok(err instanceof ServiceError, `got ${String(err)}`);
    const cause = err.cause as { code?: number } | undefined;
    assert.equal(cause?.code, 3, 'gRPC INVALID_ARGUMENT');
    await assertServerStillWorks(e);
  });
});
