// The food-delivery order workflow, in the style of Temporal's TypeScript samples.
import {
  ApplicationFailure,
  condition,
  defineQuery,
  defineSignal,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import type * as activities from './activities';

const { chargeCustomer, refundOrder, sendPushNotification } = proxyActivities<typeof activities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '100 milliseconds' },
});

export type OrderState = 'Charging card' | 'Paid' | 'Picked up' | 'Delivered' | 'Refunding' | 'Refunded';
export interface OrderStatus {
  state: OrderState;
  deliveredAt?: Date;
  productId: number;
}

export const pickedUpSignal = defineSignal('pickedUp');
export const deliveredSignal = defineSignal('delivered');
export const getStatusQuery = defineQuery<OrderStatus>('getStatus');

export async function order(productId: number, pickupTimeout: string = '1 min'): Promise<OrderStatus> {
  let state: OrderState = 'Charging card';
  let deliveredAt: Date | undefined;

  setHandler(getStatusQuery, () => ({ state, deliveredAt, productId }));
  setHandler(pickedUpSignal, () => {
    if (state === 'Paid') state = 'Picked up';
  });
  setHandler(deliveredSignal, () => {
    if (state === 'Picked up') {
      state = 'Delivered';
      deliveredAt = new Date();
    }
  });

  await chargeCustomer(productId);
  state = 'Paid';

  const pickedUp = await condition(() => state === 'Picked up', pickupTimeout);
  if (!pickedUp) {
    state = 'Refunding';
    await refundOrder(productId);
    await sendPushNotification('No driver was available to pick up your order. Your payment has been refunded.');
    state = 'Refunded';
    throw ApplicationFailure.create({ message: 'Not picked up in time' });
  }

  await sendPushNotification('Driver picked up your order.');
  await condition(() => state === 'Delivered', '1 min');
  await sendPushNotification('Order delivered!');
  return { state, deliveredAt, productId };
}
