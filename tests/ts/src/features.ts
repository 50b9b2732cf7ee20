// Workflows for the tier-2 feature tests and the bad-input tests.
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  allHandlersFinished,
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
import type * as activities from './activities';

/** The smallest workflow: used to check that the server still works after an error. */
export async function echo(value: string): Promise<string> {
  return value;
}

/** Waits (a timer) until cancelled, terminated or released by the `release` signal. */
export const releaseSignal = defineSignal('release');
export async function waitForRelease(label: string): Promise<string> {
  let released = false;
  setHandler(releaseSignal, () => {
    released = true;
  });
  if (!(await condition(() => released, '1 hour'))) {
    throw ApplicationFailure.nonRetryable('never released');
  }
  return `released ${label}`;
}

/** Sleeps (a timer) for a day; used for workflow cancellation. */
export async function sleepForADay(): Promise<void> {
  await sleep('1 day');
}

// ---- child workflows ------------------------------------------------------------------------

export async function childEcho(value: string): Promise<string> {
  return `child says ${value}`;
}

export async function childFails(message: string): Promise<string> {
  throw ApplicationFailure.nonRetryable(message, 'ChildBoom');
}

export interface ParentResult {
  okResult: string;
  failure: null | {
    errorName: string;
    workflowType: string;
    childWorkflowId: string;
    retryState: string;
    causeName: string;
    causeMessage: string;
    causeType: string | undefined | null;
  };
}

/** Runs one child that succeeds and one that fails, catching the ChildWorkflowFailure. */
export async function parentCatchesChild(idPrefix: string): Promise<ParentResult> {
  const okResult = await executeChild(childEcho, { args: ['hello'], workflowId: `${idPrefix}-ok` });
  try {
    await executeChild(childFails, { args: ['child boom'], workflowId: `${idPrefix}-bad` });
    return { okResult, failure: null };
  } catch (err) {
    if (!(err instanceof ChildWorkflowFailure)) throw err;
    const cause = err.cause;
    return {
      okResult,
      failure: {
        errorName: err.name,
        workflowType: err.workflowType,
        childWorkflowId: err.execution.workflowId ?? '',
        retryState: String(err.retryState),
        causeName: cause?.name ?? 'none',
        causeMessage: cause?.message ?? '',
        causeType: cause instanceof ApplicationFailure ? cause.type : undefined,
      },
    };
  }
}

/** Does not catch the child's failure: the parent fails with it. */
export async function parentPropagatesChildFailure(idPrefix: string): Promise<void> {
  await executeChild(childFails, { args: ['unhandled child boom'], workflowId: `${idPrefix}-child` });
}

// ---- continue-as-new ------------------------------------------------------------------------

export interface LoopResult {
  iteration: number;
  continuedFromRunId: string | null;
  firstExecutionRunId: string;
  runId: string;
}

export async function loopWithContinueAsNew(iteration: number, lastIteration: number): Promise<LoopResult> {
  if (iteration < lastIteration) {
    await continueAsNew<typeof loopWithContinueAsNew>(iteration + 1, lastIteration);
  }
  const info = workflowInfo();
  return {
    iteration,
    continuedFromRunId: info.continuedFromExecutionRunId ?? null,
    firstExecutionRunId: info.firstExecutionRunId,
    runId: info.runId,
  };
}

// ---- cancelling a heartbeating activity from a cancellation scope ---------------------------

export const cancelActivitySignal = defineSignal('cancelActivity');

export async function cancelHeartbeatingActivity(): Promise<string> {
  const { heartbeatUntilCancelled } = proxyActivities<typeof activities>({
    startToCloseTimeout: '60 seconds',
    heartbeatTimeout: '2 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 1 },
  });
  const scope = new CancellationScope();
  const running = scope.run(() => heartbeatUntilCancelled());
  setHandler(cancelActivitySignal, () => scope.cancel());
  try {
    return `not cancelled: ${await running}`;
  } catch (err) {
    if (isCancellation(err)) {
      const error = err as Error;
      const inner = error instanceof ActivityFailure ? error.cause : error;
      return `cancelled: ${error.name} / ${inner?.name}`;
    }
    throw err;
  }
}

// ---- updates ----------------------------------------------------------------------------------

export const addUpdate = defineUpdate<number, [number]>('add');
export const slowAddUpdate = defineUpdate<number, [number]>('slowAdd');
export const totalQuery = defineQuery<number>('total');
export const finishSignal = defineSignal('finish');

export async function accumulator(): Promise<number> {
  let total = 0;
  let finished = false;
  const validator = (amount: number): void => {
    if (amount < 0) throw new Error(`negative amount ${amount} rejected`);
  };
  setHandler(
    addUpdate,
    (amount: number) => {
      total += amount;
      return total;
    },
    { validator },
  );
  setHandler(
    slowAddUpdate,
    async (amount: number) => {
      await sleep('300 milliseconds');
      total += amount;
      return total;
    },
    { validator },
  );
  setHandler(totalQuery, () => total);
  setHandler(finishSignal, () => {
    finished = true;
  });
  await condition(() => finished && allHandlersFinished());
  return total;
}

// ---- signal-with-start ------------------------------------------------------------------------

export const addItemSignal = defineSignal<[string]>('addItem');
export const itemsQuery = defineQuery<string[]>('items');

export async function collectItems(expected: number): Promise<string[]> {
  const items: string[] = [];
  setHandler(addItemSignal, (item: string) => {
    items.push(item);
  });
  setHandler(itemsQuery, () => items);
  await condition(() => items.length >= expected, '1 hour');
  return items;
}

// ---- activity heartbeats and timeouts -----------------------------------------------------------

/** The activity stops heartbeating on attempt 1; the heartbeat timeout fires; attempt 2 succeeds. */
export async function heartbeatTimeoutThenRetry(): Promise<string> {
  const { stallOnFirstAttempt } = proxyActivities<typeof activities>({
    startToCloseTimeout: '30 seconds',
    heartbeatTimeout: '1 second',
    retry: { initialInterval: '200 milliseconds', backoffCoefficient: 1, maximumAttempts: 3 },
  });
  return await stallOnFirstAttempt();
}

/** Heartbeat details recorded before a failure are handed to the next attempt. */
export async function heartbeatDetailsAcrossAttempts(): Promise<string> {
  const { heartbeatThenFail } = proxyActivities<typeof activities>({
    startToCloseTimeout: '30 seconds',
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '200 milliseconds', backoffCoefficient: 1, maximumAttempts: 3 },
  });
  return await heartbeatThenFail();
}

/** Every attempt overruns its start-to-close timeout; two attempts, then the workflow fails. */
export async function startToCloseTimeout(): Promise<string> {
  const { sleepPastTimeout } = proxyActivities<typeof activities>({
    startToCloseTimeout: '1 second',
    retry: { initialInterval: '200 milliseconds', backoffCoefficient: 1, maximumAttempts: 2 },
  });
  return await sleepPastTimeout(5000);
}

/** Retries stop once the schedule-to-close timeout has passed. */
export async function scheduleToCloseEndsRetries(): Promise<string> {
  const { alwaysFails } = proxyActivities<typeof activities>({
    scheduleToCloseTimeout: '2 seconds',
    startToCloseTimeout: '2 seconds',
    retry: { initialInterval: '300 milliseconds', backoffCoefficient: 1 },
  });
  return await alwaysFails();
}

// ---- visibility -------------------------------------------------------------------------------

/** Only the list/count test uses this workflow type. */
export async function visibilityTarget(label: string): Promise<string> {
  return label;
}
