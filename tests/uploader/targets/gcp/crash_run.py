"""Run publish_gcp in a child process that SIGKILLs itself at the Nth matching HTTP request.

    python -m tests.uploader.targets.gcp.crash_run ARCHIVE SHA256 METHOD URL_REGEX N before|after

Both Google clients send their requests through requests.Session, so one hook there sees the
chunks of the resumable upload and the images API calls alike. A real SIGKILL: no finally
blocks, no atexit, a chunk cut mid-flight, exactly what a restarted consumer finds afterwards.
"""

import itertools
import os
import pathlib
import re
import signal
import sys

import requests

from tests.uploader.targets.gcp.conftest import Archive, make_config, make_image
from uploader.model import Clients
from uploader.targets.gcp import publish_gcp


def main() -> None:
    archive, sha256, method, pattern, n, when = sys.argv[1:7]
    counter = itertools.count(1)
    matches = re.compile(pattern)
    send = requests.Session.request

    def request(self, verb, url, *args, **kwargs):
        hit = verb.upper() == method and matches.search(url) and next(counter) == int(n)
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        response = send(self, verb, url, *args, **kwargs)
        if hit:
            os.kill(os.getpid(), signal.SIGKILL)
        return response

    requests.Session.request = request
    publish_gcp(make_image(Archive(pathlib.Path(archive), sha256)), config=make_config(),
                clients=Clients(), emit=lambda m: print("EMIT", m.topic, flush=True))
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main()
