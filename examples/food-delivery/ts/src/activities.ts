// The food-delivery activities: a fake payment service, refunds and push notifications.
import { ApplicationFailure, Context } from '@temporalio/activity';
import { formatPrice, getProductById, type Product } from './products';

export interface ActivityOptions {
  /** Every charge fails until this many seconds after `startedAt` (0: no outage). */
  paymentOutageSecs?: number;
  /** When the worker started, in ms since the epoch (default: when the activities were created). */
  startedAt?: number;
}

function productOrFail(productId: number): Product {
  const product = getProductById(productId);
  if (!product) {
    throw ApplicationFailure.nonRetryable(`Product ${productId} not found`, 'UnknownProduct');
  }
  return product;
}

export function createActivities({ paymentOutageSecs = 0, startedAt = Date.now() }: ActivityOptions = {}) {
  const outageEndsAt = startedAt + paymentOutageSecs * 1000;

  return {
    /**
     * Charges the customer. The payment service is flaky: the first attempt of every charge fails
     * with a retryable error, so the server's retry shows in the history. During a configured
     * outage every attempt fails.
     */
    async chargeCustomer(productId: number): Promise<string> {
      const product = productOrFail(productId);
      const { attempt } = Context.current().info;
      const remainingMs = outageEndsAt - Date.now();
      if (remainingMs > 0) {
        const secs = Math.floor(remainingMs / 1000) + 1; // as the Rust worker counts
        console.log(`chargeCustomer(${productId}) attempt ${attempt}: payment service down for another ${secs} s`);
        throw ApplicationFailure.retryable(`Payment service is down for another ${secs} s`, 'PaymentUnavailable');
      }
      if (attempt === 1) {
        console.log(`chargeCustomer(${productId}) attempt 1: payment service unavailable`);
        throw ApplicationFailure.retryable('Payment service unavailable (attempt 1), please retry', 'PaymentUnavailable');
      }
      const result = `Charged ${formatPrice(product.cents)} for ${product.name}`;
      console.log(`chargeCustomer(${productId}) attempt ${attempt}: ${result}`);
      return result;
    },

    async refundOrder(productId: number): Promise<string> {
      const product = productOrFail(productId);
      const result = `Refunded ${formatPrice(product.cents)} for ${product.name}`;
      console.log(`refundOrder(${productId}): ${result}`);
      return result;
    },

    async sendPushNotification(message: string): Promise<void> {
      console.log(`push notification: ${message}`);
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
