"""The food-delivery order workflow and its activities, in the style of Temporal's Python samples.

Workflow definitions live outside the pytest test modules: the SDK sandbox re-imports the module
that defines a workflow, and re-importing a module that pytest rewrote for assertions trips a
CPython 3.11 bug ("AST constructor recursion depth mismatch")."""
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@activity.defn
async def charge_customer(product_id: int) -> str:
    if activity.info().attempt == 1:
        raise RuntimeError("payment service unreachable")
    return f"charged-{product_id}"


@activity.defn
async def send_push_notification(message: str) -> None:
    return None


@workflow.defn(name="order")
class Order:
    def __init__(self) -> None:
        self.state = "Charging card"

    @workflow.run
    async def run(self, product_id: int) -> dict:
        await workflow.execute_activity(
            charge_customer, product_id,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )
        self.state = "Paid"
        await workflow.wait_condition(lambda: self.state == "Picked up", timeout=timedelta(minutes=1))
        await workflow.execute_activity(
            send_push_notification, "picked up", start_to_close_timeout=timedelta(seconds=10))
        await workflow.wait_condition(lambda: self.state == "Delivered", timeout=timedelta(minutes=1))
        await workflow.execute_activity(
            send_push_notification, "delivered", start_to_close_timeout=timedelta(seconds=10))
        return {"product_id": product_id, "state": self.state}

    @workflow.signal(name="pickedUp")
    def picked_up(self) -> None:
        if self.state == "Paid":
            self.state = "Picked up"

    @workflow.signal(name="delivered")
    def delivered(self) -> None:
        if self.state == "Picked up":
            self.state = "Delivered"

    @workflow.query(name="getStatus")
    def get_status(self) -> str:
        return self.state
