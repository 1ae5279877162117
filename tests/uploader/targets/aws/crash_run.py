"""Run publish_aws in a child process that SIGKILLs itself after the Nth call of an operation.

    python -m tests.uploader.targets.aws.crash_run RAW_PATH REGION[,REGION...] OPERATION N

A real SIGKILL: no finally blocks, no atexit, sockets cut mid-flight, exactly what a restarted
service finds afterwards.
"""

import itertools
import os
import signal
import sys

import boto3

from tests.uploader.targets.aws.conftest import make_config, make_image
from uploader.model import Clients
from uploader.targets.aws import publish_aws


def main() -> None:
    raw, regions, operation, n = sys.argv[1], sys.argv[2].split(","), sys.argv[3], int(sys.argv[4])
    counter = itertools.count(1)
    session = boto3.Session()

    def after_call(model, **_):
        if model.name == operation and next(counter) == n:
            os.kill(os.getpid(), signal.SIGKILL)

    session.events.register("after-call", after_call)
    publish_aws(make_image(raw), config=make_config(regions=regions),
                clients=Clients(aws=session), emit=lambda m: print("EMIT", m.topic, flush=True))
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
