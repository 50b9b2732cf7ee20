"""Workflows for test_worker_versioning.py: the same workflow types in two builds (v1, v2), as
Temporal's SDK tests deploy them, one AUTO_UPGRADE and one PINNED, each answering with the build
that ran it."""
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import VersioningBehavior


def build_activity(build: str):
    @activity.defn(name="whichBuild")
    async def which_build() -> str:
        return build

    return which_build


class _Base:
    def __init__(self) -> None:
        self.finish = False

    @workflow.signal
    def do_finish(self) -> None:
        self.finish = True

    @workflow.query
    def build(self) -> str:
        return workflow.info().get_current_build_id()

    async def body(self, tag: str) -> str:
        await workflow.wait_condition(lambda: self.finish)
        act = await workflow.execute_activity(
            "whichBuild", start_to_close_timeout=timedelta(seconds=10))
        dv = workflow.info().get_current_deployment_version()
        return f"{tag}:{workflow.info().get_current_build_id()}:{dv.build_id if dv else ''}:{act}"


@workflow.defn(name="VersionedAuto", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class AutoV1(_Base):
    @workflow.run
    async def run(self) -> str:
        return await self.body("v1")


@workflow.defn(name="VersionedAuto", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class AutoV2(_Base):
    @workflow.run
    async def run(self) -> str:
        return await self.body("v2")


@workflow.defn(name="VersionedPinned", versioning_behavior=VersioningBehavior.PINNED)
class PinnedV1(_Base):
    @workflow.run
    async def run(self) -> str:
        return await self.body("v1")


@workflow.defn(name="VersionedPinned", versioning_behavior=VersioningBehavior.PINNED)
class PinnedV2(_Base):
    @workflow.run
    async def run(self) -> str:
        return await self.body("v2")


@workflow.defn(name="Quick", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class QuickV1:
    @workflow.run
    async def run(self) -> str:
        return "v1:" + workflow.info().get_current_build_id()


@workflow.defn(name="Quick", versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class QuickV2:
    @workflow.run
    async def run(self) -> str:
        return "v2:" + workflow.info().get_current_build_id()


@workflow.defn(name="Quick")
class QuickUnversioned:
    @workflow.run
    async def run(self) -> str:
        return "unversioned:" + workflow.info().get_current_build_id()


V1 = [AutoV1, PinnedV1, QuickV1]
V2 = [AutoV2, PinnedV2, QuickV2]


def _can_body(tag: str):
    async def run(self, mode: str, hop: int) -> str:
        if hop == 0:
            await workflow.wait_condition(lambda: self.finish)
            upgrade = (workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE
                       if mode == "upgrade" else None)
            workflow.continue_as_new(args=[mode, 1], initial_versioning_behavior=upgrade)
        return f"{tag}:{workflow.info().get_current_build_id()}"
    return run


@workflow.defn(name="PinnedCan", versioning_behavior=VersioningBehavior.PINNED)
class PinnedCanV1(_Base):
    @workflow.run
    async def run(self, mode: str, hop: int) -> str:
        return await _can_body("v1")(self, mode, hop)


@workflow.defn(name="PinnedCan", versioning_behavior=VersioningBehavior.PINNED)
class PinnedCanV2(_Base):
    @workflow.run
    async def run(self, mode: str, hop: int) -> str:
        return await _can_body("v2")(self, mode, hop)


V1.append(PinnedCanV1)
V2.append(PinnedCanV2)


def _parent_body(tag: str):
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.finish)
        child = await workflow.execute_child_workflow(
            "Quick", id=f"{workflow.info().workflow_id}-child")
        return f"{tag}:{child}"
    return run


@workflow.defn(name="PinnedParent", versioning_behavior=VersioningBehavior.PINNED)
class PinnedParentV1(_Base):
    @workflow.run
    async def run(self) -> str:
        return await _parent_body("v1")(self)


@workflow.defn(name="PinnedParent", versioning_behavior=VersioningBehavior.PINNED)
class PinnedParentV2(_Base):
    @workflow.run
    async def run(self) -> str:
        return await _parent_body("v2")(self)


V1.append(PinnedParentV1)
V2.append(PinnedParentV2)
