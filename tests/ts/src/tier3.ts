// Workflows for tier3.test.ts: user metadata on an activity, a timer and a child; a workflow a
// schedule starts; a workflow that ends while an update it accepted is still running.
import { HandlerUnfinishedPolicy } from '@temporalio/common';
import * as wf from '@temporalio/workflow';
import type * as activities from './activities';

const { sendPushNotification } = wf.proxyActivities<typeof activities>({
  startToCloseTimeout: '10s',
  summary: 'notify summary',
});

export async function metadataChild(): Promise<string> {
  return 'child';
}

export async function metadataParent(): Promise<string> {
  await sendPushNotification('hello');
  await wf.sleep(10, { summary: 'timer summary' });
  return await wf.executeChild(metadataChild, {
    workflowId: `${wf.workflowInfo().workflowId}-child`,
    staticSummary: 'child summary',
    staticDetails: 'child details',
  });
}

export async function scheduledEcho(value: string): Promise<string> {
  return `${value} from ${wf.workflowInfo().workflowId}`;
}

export const finish = wf.defineSignal('finish');
export const stuckUpdate = wf.defineUpdate<string>('stuck');

export async function endsWithUpdatePending(): Promise<string> {
  let done = false;
  wf.setHandler(finish, () => {
    done = true;
  });
  wf.setHandler(
    stuckUpdate,
    async () => {
      await wf.condition(() => false);
      return 'never';
    },
    { unfinishedPolicy: HandlerUnfinishedPolicy.ABANDON },
  );
  await wf.condition(() => done);
  return 'done';
}

const { pausable } = wf.proxyActivities<typeof activities>({
  activityId: 'pausable-activity',
  startToCloseTimeout: '30s',
  heartbeatTimeout: '5s',
  retry: { initialInterval: '100ms', maximumAttempts: 5 },
});

export async function runsPausable(): Promise<string> {
  return await pausable();
}
