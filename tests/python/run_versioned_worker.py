"""A versioned Python-SDK worker for the CLI tests: `run_versioned_worker.py ADDRESS TASK_QUEUE
DEPLOYMENT BUILD_ID` runs the wf_versioning workflows of build v1 ("1.0") or v2 (any other) with
worker versioning on, and prints "worker ready" once it polls."""
import asyncio
import sys

from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig

import wf_versioning as wf


async def main(address: str, tq: str, deployment: str, build: str) -> None:
    client = await Client.connect(address)
    worker = Worker(client, task_queue=tq, workflows=wf.V1 if build == "1.0" else wf.V2,
                    activities=[wf.build_activity(build)],
                    deployment_config=WorkerDeploymentConfig(
                        version=WorkerDeploymentVersion(deployment, build),
                        use_worker_versioning=True))
    async with worker:
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
