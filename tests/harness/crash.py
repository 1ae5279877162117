"""SIGKILL a child process at the Nth HTTP request matching a method and a URL pattern.

The cloud SDKs (google-cloud-*, azure-core) send through requests.Session, so one hook there
sees uploads and API calls alike. A real SIGKILL: no finally blocks, no atexit, exactly what a
restarted consumer finds afterwards.
"""

import itertools
import os
import re
import signal

import requests


def kill_at_request(method: str, pattern: str, n: int, when: str = "before") -> None:
    """Install the hook in this process: die before (or after) the Nth matching request."""
    counter = itertools.count(1)
    matches = re.compile(pattern)
    send = requests.Session.request

    def request(self, verb, url, *args, **kwargs):
        hit = verb.upper() == method and matches.search(url) and next(counter) == n
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        response = send(self, verb, url, *args, **kwargs)
        if hit:
            os.kill(os.getpid(), signal.SIGKILL)
        return response

    requests.Session.request = request
