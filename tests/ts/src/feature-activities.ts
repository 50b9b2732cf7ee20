// Activities for the tier-2 feature tests.
import { Context, CancelledFailure } from '@temporalio/activity';

export async function heartbeating(n: number): Promise<string> {
  const ctx = Context.current();
  const start: number = ctx.info.heartbeatDetails ?? 0;
  for (let i = start; i < n; i++) {
    ctx.heartbeat(i + 1);
    if (ctx.info.attempt === 1 && i === 2) await new Promise((r) => setTimeout(r, 3000));
    await new Promise((r) => setTimeout(r, 50));
  }
  return `attempt=${ctx.info.attempt} resumedFrom=${start}`;
}

export async function slowFirst(): Promise<string> {
  if (Context.current().info.attempt === 1) await new Promise((r) => setTimeout(r, 3000));
  return `attempt ${Context.current().info.attempt}`;
}

export async function waitForCancel(): Promise<string> {
  const ctx = Context.current();
  for (;;) {
    ctx.heartbeat();
    try {
      await ctx.sleep(100);
    } catch (e) {
      if (e instanceof CancelledFailure) throw e;
      throw e;
    }
  }
}
