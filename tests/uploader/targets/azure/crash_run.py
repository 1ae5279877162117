"""Run publish_azure in a child process that SIGKILLs itself at the Nth matching HTTP request.

    python -m tests.uploader.targets.azure.crash_run VHD SHA256 ENDPOINT METHOD URL_REGEX N
"""

import pathlib
import sys

from tests.harness.crash import kill_at_request
from tests.uploader.targets.azure.conftest import Vhd, make_config, make_image
from uploader.model import Clients
from uploader.targets.azure import publish_azure


def main() -> None:
    path, sha256, endpoint, method, pattern, n = sys.argv[1:7]
    kill_at_request(method, pattern, int(n))
    vhd = Vhd(pathlib.Path(path), sha256, pathlib.Path(path))
    publish_azure(make_image(vhd), config=make_config(endpoint, upload_workers=1),
                  clients=Clients(), emit=lambda m: print("EMIT", m.topic, flush=True))
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
