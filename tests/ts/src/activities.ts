// Activities of the order workflow. chargeCustomer fails its first attempt: the server retries it.
import { Context } from '@temporalio/activity';

export const calls: string[] = [];

export async function chargeCustomer(productId: number): Promise<string> {
  calls.push(`charge:${productId}:${Context.current().info.attempt}`);
  if (Context.current().info.attempt === 1) {
    throw new Error('payment service unreachable');
  }
  return `charged-${productId}`;
}

export async function refundOrder(productId: number): Promise<void> {
  calls.push(`refund:${productId}`);
}

export async function sendPushNotification(message: string): Promise<void> {
  calls.push(`notify:${message}`);
}
