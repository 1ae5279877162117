"""Run publish_openstack once in a child process, so a test can SIGKILL it mid-upload.

    python -m tests.uploader.targets.openstack.upload_run QCOW2 CLOUD[,CLOUD...]

The clouds come from OS_CLIENT_CONFIG_FILE, as in production. A real SIGKILL: no finally
blocks, no openstacksdk clean-up, the socket cut mid-request.
"""

import logging
import sys
from pathlib import Path

from tests.uploader.targets.openstack.conftest import make_config, make_image
from uploader.targets.openstack import publish_openstack


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    qcow2, clouds = Path(sys.argv[1]), sys.argv[2].split(",")
    outcome = publish_openstack(make_image(qcow2), config=make_config(clouds), clients=None,
                                emit=lambda m: print("EMIT", m.topic, flush=True))
    print("FINISHED", outcome, flush=True)


if __name__ == "__main__":
    main()
