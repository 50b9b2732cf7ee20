// The food-delivery order workflow, written in the style of Temporal's TypeScript
// food-delivery sample. The pickup timeout is an argument so the no-pickup test can use ~2 s.
import { ApplicationFailure, condition, defineQuery, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import type * as activities from './activities';

const { chargeCustomer, refundOrder, sendPushNotification } = proxyActivities<typeof activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200 milliseconds', backoffCoefficient: 2, maximumAttempts: 5 },
});

export type OrderState = 'Charging card' | 'Paid' | 'Picked up' | 'Delivered' | 'Refunding' | 'Refunded';

export interface OrderStatus {
  productId: number;
  state: OrderState;
  deliveredAt?: Date;
}

export const pickedUpSignal = defineSignal('pickedUp');
export const deliveredSignal = defineSignal('delivered');
export const getStatusQuery = defineQuery<OrderStatus>('getStatus');

export async function order(productId: number, pickupTimeout: Duration = '1 min'): Promise<OrderStatus> {
  let state: OrderState = 'Charging card';
  let deliveredAt: Date | undefined;

  setHandler(pickedUpSignal, () => {
    if (state === 'Paid') state = 'Picked up';
  });
  setHandler(deliveredSignal, () => {
    if (state === 'Picked up') {
      state = 'Delivered';
      deliveredAt = new Date();
    }
  });
  setHandler(getStatusQuery, () => ({ productId, state, deliveredAt }));

  await chargeCustomer(productId);
  state = 'Paid';

  const pickedUpInTime = await condition(() => state === 'Picked up', pickupTimeout);
  if (!pickedUpInTime) {
    state = 'Refunding';
    await refundOrder(productId);
    await sendPushNotification(`Your order ${productId} was not picked up in time. Your payment has been refunded.`);
    state = 'Refunded';
    throw ApplicationFailure.create({ message: 'Not picked up in time' });
  }

  await sendPushNotification(`Order ${productId} picked up`);

  const deliveredInTime = await condition(() => state === 'Delivered', '1 min');
  if (!deliveredInTime) {
    state = 'Refunding';
    await refundOrder(productId);
    state = 'Refunded';
    throw ApplicationFailure.create({ message: 'Not delivered in time' });
  }

  await sendPushNotification(`Order ${productId} delivered`);
  return { productId, state, deliveredAt };
}
