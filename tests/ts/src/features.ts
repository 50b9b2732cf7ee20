// Workflows for the tier-2 feature tests.
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type * as acts from './feature-activities';

const { heartbeating } = proxyActivities<typeof acts>({
  startToCloseTimeout: '20s',
  heartbeatTimeout: '1s',
  retry: { initialInterval: '100ms' },
});
const { slowFirst } = proxyActivities<typeof acts>({ startToCloseTimeout: '1s', retry: { initialInterval: '100ms' } });
const { slowFirst: slowOnce } = proxyActivities<typeof acts>({ scheduleToCloseTimeout: '1s' });
const { waitForCancel } = proxyActivities<typeof acts>({ startToCloseTimeout: '30s', heartbeatTimeout: '2s' });

export async function child(x: number): Promise<number> {
  if (x < 0) throw ApplicationFailure.nonRetryable('negative');
  return x * 2;
}

export async function parent(x: number): Promise<number | string> {
  try {
    return await executeChild(child, { args: [x], workflowId: `${workflowInfo().workflowId}-child` });
  } catch (e) {
    if (e instanceof ChildWorkflowFailure) return `child failed: ${e.cause?.message}`;
    throw e;
  }
}

export async function counter(n: number): Promise<number> {
  if (n < 3) await continueAsNew<typeof counter>(n + 1);
  return n;
}

export const sig = defineSignal<[string]>('sig');
export const add = defineUpdate<number, [number]>('add');
export const valueQuery = defineQuery<number>('value');

export async function waiter(): Promise<string[]> {
  const signals: string[] = [];
  let value = 0;
  setHandler(sig, (s) => void signals.push(s));
  setHandler(valueQuery, () => value);
  setHandler(add, (n) => (value += n), {
    validator: (n) => {
      if (n < 0) throw new Error('negative');
    },
  });
  await condition(() => signals.includes('done'), '30s');
  return signals;
}

export async function sleeper(): Promise<string> {
  await sleep('60s');
  return 'woke';
}

export async function activities(which: string): Promise<string> {
  switch (which) {
    case 'heartbeat':
      return await heartbeating(6);
    case 'startToClose':
      return await slowFirst();
    case 'scheduleToClose':
      return await slowOnce();
    case 'cancel': {
      const scope = new CancellationScope();
      const p = scope.run(() => waitForCancel());
      await sleep(500);
      scope.cancel();
      try {
        return await p;
      } catch (e) {
        return isCancellation(e) ? 'cancelled' : `other: ${e}`;
      }
    }
  }
  throw ApplicationFailure.nonRetryable(`unknown ${which}`);
}
