"""standins.net_audit: every host a process tries to reach is seen, in-process and in a child."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys

import requests

from standins.koji_hub import KojiHub
from standins.net_audit import Contact, off_host, read_log, subprocess_env, watching


def test_watching_sees_lookups_and_connections_from_any_library(koji_hub: KojiHub):
    with watching() as seen:
        requests.get(koji_hub.topurl + "/nothing", timeout=5)
        with contextlib.suppress(OSError):
            socket.getaddrinfo("evil.example.invalid", 443)
    assert Contact("connect", "127.0.0.1", koji_hub.port) in seen
    assert off_host(seen, {("127.0.0.1", koji_hub.port)}) == [
        Contact("lookup", "evil.example.invalid", 443)]
    with watching() as later:
        pass
    assert later == []


def test_a_child_process_records_its_contacts_to_a_file(tmp_path, koji_hub: KojiHub):
    log = tmp_path / "contacts.log"
    code = ("import requests, socket\n"
            f"requests.get({koji_hub.topurl + '/x'!r}, timeout=5)\n"
            "try: socket.create_connection(('127.0.0.1', 9), timeout=2)\n"
            "except OSError: pass\n")
    env = {**os.environ, **subprocess_env(log)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
    contacts = read_log(log)
    assert Contact("connect", "127.0.0.1", koji_hub.port) in contacts
    assert off_host(contacts, {("127.0.0.1", koji_hub.port)}) == [
        Contact("connect", "127.0.0.1", 9)]
