"""Workflows for the UI tests (kept out of worker.py: the SDK sandbox re-imports this module):
a slow-retry order whose failed first attempt stays visible as a pending activity, a workflow
whose result and query answer are XSS payloads, and one that writes a long history."""
import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@activity.defn
async def flaky_payment(product_id: int) -> str:
    """Fails its first attempt; the retry is a minute away, so the UI shows it pending."""
    if activity.info().attempt == 1:
        raise RuntimeError("payment service unreachable")
    return f"charged-{product_id}"


@workflow.defn(name="slow_order")
class SlowOrder:
    @workflow.run
    async def run(self, product_id: int) -> str:
        return await workflow.execute_activity(
            flaky_payment, product_id,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(initial_interval=timedelta(minutes=1)),
        )


@workflow.defn(name="xss")
class Xss:
    @workflow.run
    async def run(self, text: str) -> str:
        return text

    @workflow.query(name="echo")
    def echo(self) -> str:
        return "<img src=x onerror=alert(2)>"


@workflow.defn(name="many_events")
class ManyEvents:
    """Starts `n` timers and cancels them (2n events and a few more), `batch` at a time per
    workflow task (all at once when 0)."""

    @workflow.run
    async def run(self, n: int, batch: int = 0) -> int:
        left = n
        while left > 0:
            size = min(left, batch or n)
            timers = [asyncio.ensure_future(workflow.sleep(3600)) for _ in range(size)]
            await workflow.sleep(0.01)
            for t in timers:
                t.cancel()
            await asyncio.gather(*timers, return_exceptions=True)
            left -= size
        return n
