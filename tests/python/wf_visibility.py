"""The workflow of the visibility test (kept out of the pytest modules; see wf_order.py)."""
from temporalio import workflow
from temporalio.common import SearchAttributeKey

TIER = SearchAttributeKey.for_keyword("SmokeTier")


@workflow.defn(name="vis")
class Vis:
    @workflow.run
    async def run(self, tier: str) -> str:
        workflow.upsert_search_attributes([TIER.value_set(tier)])
        await workflow.sleep(0.1)
        return tier
