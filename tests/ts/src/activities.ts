// Activities for the TypeScript SDK tests. They run inside the test process (the Worker is created
// in-process), so every call is recorded in `calls` and the tests can assert what ran, per
// workflow id.
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';

const calls = new Map<string, string[]>();

function record(entry: string): void {
  const workflowId = Context.current().info.workflowExecution?.workflowId ?? '(standalone)';
  const list = calls.get(workflowId) ?? [];
  list.push(entry);
  calls.set(workflowId, list);
}

/** What the activities of one workflow id recorded, in order. */
export function callsFor(workflowId: string): string[] {
  return [...(calls.get(workflowId) ?? [])];
}

// ---- the food-delivery order ----------------------------------------------------------------

/** Fails its first attempt with a retryable error; the server must retry it. */
export async function chargeCustomer(productId: number): Promise<void> {
  const { attempt } = Context.current().info;
  record(`chargeCustomer:${productId}:attempt${attempt}`);
  if (attempt === 1) {
    throw ApplicationFailure.retryable('payment service unreachable', 'PaymentUnavailable');
  }
}

export async function refundOrder(productId: number): Promise<void> {
  record(`refundOrder:${productId}`);
}

export async function sendPushNotification(message: string): Promise<void> {
  record(`sendPushNotification:${message}`);
}

// ---- feature tests --------------------------------------------------------------------------

/** Heartbeats every 200 ms until cancelled (bounded to ~30 s). */
export async function heartbeatUntilCancelled(): Promise<string> {
  const ctx = Context.current();
  record('heartbeatUntilCancelled:started');
  try {
    for (let i = 0; i < 150; i++) {
      ctx.heartbeat(i);
      await ctx.sleep(200);
    }
  } catch (err) {
    if (err instanceof CancelledFailure) {
      record('heartbeatUntilCancelled:cancelled');
    }
    throw err;
  }
  return 'never cancelled';
}

/**
 * Attempt 1 heartbeats once with a checkpoint, then stops heartbeating (the server's heartbeat
 * timeout must fire). Later attempts succeed and report the details they were given.
 */
export async function stallOnFirstAttempt(): Promise<string> {
  const ctx = Context.current();
  const { attempt, heartbeatDetails } = ctx.info;
  record(`stallOnFirstAttempt:attempt${attempt}:details=${JSON.stringify(heartbeatDetails ?? null)}`);
  if (attempt === 1) {
    ctx.heartbeat('checkpoint-1');
    try {
      await ctx.sleep(5000); // no heartbeats while sleeping
    } catch {
      // cancelled locally (timed out / worker shutdown): nothing to do
    }
    return 'attempt 1 should have timed out';
  }
  return `attempt ${attempt} resumed from ${JSON.stringify(heartbeatDetails)}`;
}

/** Attempt 1 records progress 1..3 through heartbeats and then crashes; attempt 2 resumes. */
export async function heartbeatThenFail(): Promise<string> {
  const ctx = Context.current();
  const { attempt, heartbeatDetails } = ctx.info;
  record(`heartbeatThenFail:attempt${attempt}:details=${JSON.stringify(heartbeatDetails ?? null)}`);
  if (attempt === 1) {
    for (let progress = 1; progress <= 3; progress++) {
      ctx.heartbeat(progress);
      await ctx.sleep(100);
    }
    throw ApplicationFailure.retryable('crashed after progress 3', 'Crash');
  }
  return `attempt ${attempt} resumed from ${JSON.stringify(heartbeatDetails)}`;
}

/** Sleeps longer than its start-to-close timeout (cancellation-aware so the worker can stop). */
export async function sleepPastTimeout(ms: number): Promise<string> {
  const ctx = Context.current();
  record(`sleepPastTimeout:attempt${ctx.info.attempt}`);
  try {
    await ctx.sleep(ms);
  } catch {
    // cancelled locally
  }
  return 'finished late';
}

/** Always fails with a retryable error. */
export async function alwaysFails(): Promise<never> {
  record(`alwaysFails:attempt${Context.current().info.attempt}`);
  throw ApplicationFailure.retryable('still broken', 'StillBroken');
}

/**
 * Attempt 1 heartbeats until the server tells it to stop (a pause), and records why it was
 * cancelled; later attempts succeed at once.
 */
export async function pausable(): Promise<string> {
  const ctx = Context.current();
  const { attempt } = ctx.info;
  if (attempt > 1) {
    record(`pausable:attempt${attempt}`);
    return `done on attempt ${attempt}`;
  }
  record('pausable:started');
  try {
    for (let i = 0; i < 300; i++) {
      ctx.heartbeat(i);
      await ctx.sleep(100);
    }
  } catch (err) {
    const d = ctx.cancellationDetails;
    record(`pausable:cancelled:paused=${d?.paused ?? false}`);
    throw err;
  }
  return 'never paused';
}
