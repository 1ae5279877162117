"""Run publish_gcp in a child process that SIGKILLs itself at the Nth matching HTTP request.

    python -m tests.uploader.targets.gcp.crash_run ARCHIVE SHA256 METHOD URL_REGEX N before|after
"""

import pathlib
import sys

from tests.harness.crash import kill_at_request
from tests.uploader.targets.gcp.conftest import Archive, make_config, make_image
from uploader.model import Clients
from uploader.targets.gcp import publish_gcp


def main() -> None:
    archive, sha256, method, pattern, n, when = sys.argv[1:7]
    kill_at_request(method, pattern, int(n), when)
    publish_gcp(make_image(Archive(pathlib.Path(archive), sha256)), config=make_config(),
                clients=Clients(), emit=lambda m: print("EMIT", m.topic, flush=True))
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
