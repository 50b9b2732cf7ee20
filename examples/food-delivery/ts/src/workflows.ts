// The food-delivery order workflow, in the style of Temporal's TypeScript food-delivery sample.
// It behaves exactly like the Rust worker of this example: same workflow type (`order`), input,
// signals, query, states, notifications and failures, so the web app can drive either one.
import { ApplicationFailure, condition, defineQuery, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Activities } from './activities';
import { getProductById } from './products';

const { chargeCustomer } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 10 },
});

const { refundOrder, sendPushNotification } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: 5 },
});

export type OrderState =
  | 'Charging card'
  | 'Paid'
  | 'Picked up'
  | 'Delivered'
  | 'Refunding'
  | 'Refunded'
  | 'Payment failed'
  | 'Failed';

export interface OrderStatus {
  state: OrderState;
  /** ISO 8601 (workflow time), only once delivered. */
  deliveredAt?: string;
  productId: number;
}

/** The input: a bare product id (as in Temporal's sample) or an object with timeouts. */
export type OrderInput =
  | number
  | { productId: number; pickupTimeoutMs?: number | null; deliveryTimeoutMs?: number | null };

const DEFAULT_TIMEOUT_MS = 60_000;

export const pickedUpSignal = defineSignal('pickedUp');
export const deliveredSignal = defineSignal('delivered');
export const getStatusQuery = defineQuery<OrderStatus>('getStatus');

const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;
const isTimeout = (v: unknown) => v === undefined || v === null || (Number.isInteger(v) && (v as number) >= 0);

/** Reads the input as the Rust worker does; anything else fails the order (not its task). */
function readInput(input: unknown): { productId: number; pickupTimeoutMs?: number | null; deliveryTimeoutMs?: number | null } {
  if (isId(input)) return { productId: input };
  if (typeof input === 'object' && input !== null) {
    const o = input as Record<string, unknown>;
    if (isId(o.productId) && isTimeout(o.pickupTimeoutMs) && isTimeout(o.deliveryTimeoutMs)) {
      return o as { productId: number; pickupTimeoutMs?: number | null; deliveryTimeoutMs?: number | null };
    }
  }
  throw ApplicationFailure.nonRetryable(`Invalid order input ${JSON.stringify(input)}: expected a product id or {productId, pickupTimeoutMs?, deliveryTimeoutMs?}`, 'InvalidInput');
}

export async function order(input: OrderInput): Promise<OrderStatus> {
  const { productId, pickupTimeoutMs, deliveryTimeoutMs } = readInput(input);
  let state: OrderState = 'Charging card';
  let deliveredAt: string | undefined;

  setHandler(pickedUpSignal, () => {
    if (state === 'Paid') state = 'Picked up';
  });
  setHandler(deliveredSignal, () => {
    if (state === 'Picked up') {
      state = 'Delivered';
      deliveredAt = new Date().toISOString();
    }
  });
  setHandler(getStatusQuery, () => ({ state, deliveredAt, productId }));

  const product = getProductById(productId);
  if (!product) {
    state = 'Failed';
    throw ApplicationFailure.nonRetryable(`Product ${productId} not found`, 'UnknownProduct');
  }
  const { name } = product;

  try {
    await chargeCustomer(productId);
  } catch {
    state = 'Payment failed';
    await sendPushNotification(`❌ We could not charge your card for your ${name}. You have not been charged.`);
    throw ApplicationFailure.nonRetryable(`Failed to charge customer for ${name}`, 'PaymentFailed');
  }
  state = 'Paid';

  const pickedUp = await condition(() => state === 'Picked up', pickupTimeoutMs ?? DEFAULT_TIMEOUT_MS);
  if (!pickedUp) {
    state = 'Refunding';
    await refundOrder(productId);
    await sendPushNotification(`⚠️ No driver picked up your ${name} in time. Your payment has been refunded.`);
    state = 'Refunded';
    throw ApplicationFailure.nonRetryable('Not picked up in time', 'NotPickedUp');
  }

  await sendPushNotification(`🛵 Your ${name} is on its way.`);

  const delivered = await condition(() => state === 'Delivered', deliveryTimeoutMs ?? DEFAULT_TIMEOUT_MS);
  if (!delivered) {
    state = 'Refunding';
    await refundOrder(productId);
    await sendPushNotification(`⚠️ Your ${name} could not be delivered. Your payment has been refunded.`);
    state = 'Refunded';
    throw ApplicationFailure.nonRetryable('Not delivered in time', 'NotDelivered');
  }

  await sendPushNotification(`✅ Your ${name} was delivered. Enjoy!`);
  return { state, deliveredAt, productId };
}
