"""A real OCI registry on loopback: Debian's ``docker-registry`` (the CNCF distribution registry).

    python -m standins.registry --workdir DIR [--port N] [--user NAME --password PW]

runs one in the foreground until TERM (the demo stack starts it this way); tests use
``LocalRegistry`` directly. Either way the registry speaks HTTPS with a certificate from a
throwaway CA (``standins.koji_pki``) and requires basic auth from an htpasswd file (bcrypt, made
by ``htpasswd`` from apache2-utils), so skopeo talks to it exactly as to quay.io: through an
authfile (containers-auth.json) and a cert dir holding the CA (``ca.crt``). Storage is a plain
directory, so a registry stopped and started again on the same port keeps its content; a test
that needs "the registry is down" stops it.

Everything a test checks is read back over the registry API (``manifest``, ``tags``) with the
same credentials, never from the storage directory.
"""

from __future__ import annotations

import argparse
import base64
import json
import pathlib
import re
import signal
import subprocess
import sys
import threading
from typing import Any

import requests

from standins import StandinError
from standins.koji_pki import KojiPKI
from standins.processes import ManagedProcess, free_port, wait_until

REGISTRY = "/usr/bin/docker-registry"
HTPASSWD = "/usr/bin/htpasswd"
START_TIMEOUT = 30.0  # seconds until the registry must answer /v2/
HTTP_TIMEOUT = 10.0  # seconds for our own API calls
ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def auth_entry(user: str, password: str) -> dict[str, str]:
    """One containers-auth.json `auths` entry for basic credentials."""
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


class RegistryClient:
    """Reads a running stand-in registry back over its API with its CA and credentials: the
    tests' and the demo's view of what is in it (never its storage directory)."""

    def __init__(self, workdir: pathlib.Path, host: str, user: str = "fedimg",
                 password: str = "stand-in-secret") -> None:
        self.workdir = workdir
        self.host = host
        self.url = f"https://{host}"
        self.user, self.password = user, password
        self.ca_path = workdir / "pki" / "ca.pem"
        self.cert_dir = workdir / "certs.d"
        self.authfile = workdir / "auth.json"

    def _get(self, path: str, accept: str | None = None) -> requests.Response:
        return requests.get(f"{self.url}/v2/{path}", auth=(self.user, self.password),
                            verify=str(self.ca_path), timeout=HTTP_TIMEOUT,
                            headers={"Accept": accept} if accept else {})

    def tags(self, repository: str) -> list[str]:
        """The repository's tags, sorted ([] if it does not exist)."""
        resp = self._get(f"{repository}/tags/list")
        if resp.status_code == 404:
            return []
        resp.raise_for_status()
        return sorted(resp.json().get("tags") or [])

    def manifest(self, repository: str, reference: str) -> tuple[str, dict] | None:
        """(digest, manifest) at a tag or digest, None if there is none."""
        resp = self._get(f"{repository}/manifests/{reference}", accept=ACCEPT)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.headers["Docker-Content-Digest"], resp.json()

    def blob(self, repository: str, digest: str) -> bytes:
        resp = self._get(f"{repository}/blobs/{digest}")
        resp.raise_for_status()
        return resp.content

    def writes(self) -> int:
        """How many write requests (blob uploads, manifest and tag PUTs, deletes) the registry
        has answered so far, from its access log: unchanged means nothing was pushed."""
        log = self.workdir / "registry.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return len(re.findall(r'"(?:PUT|POST|PATCH|DELETE) /v2/', text))

    def catalog(self) -> list[str]:
        resp = self._get("_catalog")
        resp.raise_for_status()
        return sorted(resp.json().get("repositories") or [])


class LocalRegistry(RegistryClient):
    """A ``docker-registry`` process on 127.0.0.1 with TLS and basic auth (see module docstring).

    Files under ``workdir``: ``pki/`` (CA and server cert), ``certs.d/`` (the cert dir for skopeo:
    ``ca.crt``), ``auth.json`` (an authfile with the user's credentials), ``htpasswd``,
    ``config.yml``, ``storage/`` and ``registry.log``.
    """

    def __init__(self, workdir: pathlib.Path, port: int | None = None, user: str = "fedimg",
                 password: str = "stand-in-secret") -> None:
        for tool in (REGISTRY, HTPASSWD):
            if not pathlib.Path(tool).exists():
                raise StandinError(f"{tool} is missing: run deploy/local/ensure-system.sh "
                                   "(packages docker-registry, apache2-utils)")
        self.port = port or free_port()
        super().__init__(workdir, f"127.0.0.1:{self.port}", user, password)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "pki").mkdir(exist_ok=True)
        self.pki = KojiPKI(workdir / "pki", ca_name="fedimg stand-in registry CA")
        self.cert_dir.mkdir(exist_ok=True)
        (self.cert_dir / "ca.crt").write_bytes(self.ca_path.read_bytes())
        self.write_authfile(self.authfile, user, password)
        self._write_htpasswd()
        self.config_path = workdir / "config.yml"
        self._write_config()
        self.process: ManagedProcess | None = None

    def write_authfile(self, path: pathlib.Path, user: str, password: str) -> pathlib.Path:
        """An authfile for this registry with the given (possibly wrong) credentials."""
        path.write_text(json.dumps({"auths": {self.host: auth_entry(user, password)}}))
        path.chmod(0o600)
        return path

    def _write_htpasswd(self) -> None:
        proc = subprocess.run([HTPASSWD, "-Bbn", self.user, self.password],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise StandinError(f"htpasswd failed: {proc.stderr.strip()}")
        (self.workdir / "htpasswd").write_text(proc.stdout)

    def _write_config(self) -> None:
        server = str(self.pki.server_path)  # cert and key in one PEM: Go reads each block it needs
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text"},
            "storage": {"filesystem": {"rootdirectory": str(self.workdir / "storage")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": "fedimg-stand-in",
                     "tls": {"certificate": server, "key": server}},
            "auth": {"htpasswd": {"realm": "fedimg-standin",
                                  "path": str(self.workdir / "htpasswd")}},
        }
        # JSON is YAML: the registry reads this as its YAML config
        self.config_path.write_text(json.dumps(config, indent=1))

    # --- the process ----------------------------------------------------------------------

    def start(self) -> LocalRegistry:
        """Start (or start again, same port and storage) and wait until /v2/ answers."""
        if self.process is not None and self.process.alive():
            return self
        self.process = ManagedProcess("docker-registry", [REGISTRY, "serve",
                                                          str(self.config_path)],
                                      self.workdir / "registry.log")
        try:
            wait_until(self._answers, START_TIMEOUT, f"the registry on {self.host}")
        except TimeoutError as exc:
            tail = self.process.tail()
            self.process.stop()
            raise StandinError(f"{exc}\n--- docker-registry output ---\n{tail}") from None
        return self

    def _answers(self) -> bool:
        if self.process is not None and not self.process.alive():
            raise StandinError(f"docker-registry exited:\n{self.process.tail()}")
        resp = requests.get(f"{self.url}/v2/", verify=str(self.ca_path), timeout=HTTP_TIMEOUT)
        return resp.status_code == 401  # up, and asking for credentials as configured

    def stop(self) -> None:
        """Stop the process (by its PID); storage stays for a later start()."""
        if self.process is not None:
            self.process.stop()

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

def registry_answers(workdir: pathlib.Path, host: str) -> bool:
    """Whether the registry of ``workdir`` (started by ``main``) answers /v2/ on ``host``."""
    ca = workdir / "pki" / "ca.pem"
    if not ca.exists():
        return False
    resp = requests.get(f"https://{host}/v2/", verify=str(ca), timeout=HTTP_TIMEOUT)
    return resp.status_code == 401


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=pathlib.Path, required=True)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--user", default="fedimg")
    parser.add_argument("--password", default="stand-in-secret")
    args = parser.parse_args(argv)
    registry = LocalRegistry(args.workdir, port=args.port, user=args.user,
                             password=args.password).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(f"registry ready: {registry.host} (authfile {registry.authfile}, cert dir "
          f"{registry.cert_dir})", flush=True)
    try:
        while not done.wait(0.5):
            if registry.process is None or not registry.process.alive():
                print("docker-registry exited", file=sys.stderr, flush=True)
                return 1
    finally:
        registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
