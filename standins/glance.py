"""OpenStack Glance on loopback: the real glance-api from PyPI, without keystone.

Why the real service: what the openstack target must get right is Glance's own behaviour: an
image is ``queued`` until its data arrives, ``saving`` while it streams, ``active`` after; Glance
inspects the data and refuses an upload that is not really the declared disk format; a client
cut off mid-upload leaves the record behind. A fake would only answer what we told it to.

How it runs (one "cloud" = one process; start two for two clouds):

- Glance lives in its own virtualenv (``make glance-venv`` -> ``.glance-venv``), because its
  pinned oslo/SQLAlchemy stack must not meet fedimg's. The standalone ``glance-api`` server is
  gone from recent Glance: gunicorn serves the WSGI app ``glance.wsgi.api:application``.
- The app reads ``glance-api.conf`` and the paste ini from the folder named by
  ``OS_GLANCE_CONFIG_DIR``; the database is sqlite (``glance-manage db_sync`` creates it) and
  images are stored as files.
- An empty paste flavor selects the unauthenticated pipeline. Its request context carries no
  roles, so the policy file makes every caller admin (``"context_is_admin": "@"``); without
  it nothing at all is allowed, not even a list. Publishing a public image is an admin action in
  Glance, as in production clouds, where the uploading account holds that role.
- Clients (openstacksdk) connect with ``auth_type: none`` and an image endpoint override, the
  one clouds.yaml entry per cloud that ``clouds_yaml`` writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import subprocess
from typing import Any

import requests

from standins import REPO_ROOT, StandinError
from standins.processes import ManagedProcess, ProcessExited, free_port, wait_until

__all__ = ["GLANCE_VENV", "GlanceServer", "answers", "clouds_yaml", "glance_available",
           "glance_env", "gunicorn_argv", "prepare", "start_glance"]

GLANCE_VENV = pathlib.Path(os.environ.get("FEDIMG_GLANCE_VENV", REPO_ROOT / ".glance-venv"))
START_TIMEOUT = 90.0  # seconds: the first import of glance on a busy 2-core machine is slow
HTTP_TIMEOUT = 10.0  # seconds for the stand-in's own calls
DB_SYNC_TIMEOUT = 180.0

# Everything a caller may do is allowed: the context of the unauthenticated pipeline has no
# roles, and Glance's default rules all ask for one.
POLICY = {"context_is_admin": "@", "default": "@"}


def glance_available(venv: pathlib.Path = GLANCE_VENV) -> str | None:
    """None if Glance can run from ``venv``, else what is missing (one line)."""
    for tool in ("gunicorn", "glance-manage"):
        if not (venv / "bin" / tool).exists():
            return f"{venv / 'bin' / tool} is missing (run `make glance-venv`)"
    return None


def _paste_ini(venv: pathlib.Path) -> pathlib.Path:
    """The paste pipeline definition glance installs into its prefix."""
    found = venv / "etc" / "glance" / "glance-api-paste.ini"
    if not found.exists():
        raise StandinError(f"{found} is missing: the glance package in {venv} is incomplete")
    return found


def write_config(root: pathlib.Path, venv: pathlib.Path = GLANCE_VENV) -> pathlib.Path:
    """Write glance-api.conf, the paste ini and the policy under ``root``; return the conf dir.

    Layout: ``root/etc`` (config), ``root/images`` (the file store), ``root/staging`` and
    ``root/tasks`` (Glance's reserved stores), ``root/glance.sqlite``.
    """
    etc = root / "etc"
    for sub in ("etc", "images", "staging", "tasks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (etc / "glance-api-paste.ini").write_text(_paste_ini(venv).read_text())
    (etc / "policy.json").write_text(json.dumps(POLICY))
    (etc / "glance-api.conf").write_text(f"""\
[DEFAULT]
enabled_backends = file:file
# gunicorn serves the app; this only names the worker to itself
worker_self_reference_url = http://127.0.0.1
enabled_import_methods = []
image_size_cap = 10737418240
log_file = {root / "glance-api.log"}

[database]
connection = sqlite:///{root / "glance.sqlite"}

[glance_store]
default_backend = file

[file]
filesystem_store_datadir = {root / "images"}

[os_glance_staging_store]
filesystem_store_datadir = {root / "staging"}

[os_glance_tasks_store]
filesystem_store_datadir = {root / "tasks"}

[paste_deploy]
flavor =
config_file = {etc / "glance-api-paste.ini"}

[oslo_policy]
policy_file = {etc / "policy.json"}
enforce_scope = false
enforce_new_defaults = false
""")
    return etc


def glance_env(root: pathlib.Path) -> dict[str, str]:
    """The environment of a glance process of the cloud under ``root``: its config folder, and
    nothing of ours (no OS_* of a client, no PYTHONPATH into fedimg's venv)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
    env["OS_GLANCE_CONFIG_DIR"] = str(root / "etc")
    return env


def prepare(root: pathlib.Path, venv: pathlib.Path = GLANCE_VENV) -> None:
    """Config files (rewritten) and the database (made once) of the cloud under ``root``."""
    missing = glance_available(venv)
    if missing:
        raise StandinError(missing)
    write_config(root, venv)
    if not (root / "glance.sqlite").exists():
        db_sync(root, venv)


# gunicorn renames its processes ("gunicorn: master [...]") when setproctitle can be imported,
# and Glance's dependencies bring it in; the local stack knows its processes by their command
# line, so gunicorn is started with that module hidden and keeps the command line it got.
_GUNICORN = ("import sys; sys.modules['setproctitle'] = None; "
             "from gunicorn.app.wsgiapp import run; sys.argv[0] = 'gunicorn'; run()")


def gunicorn_argv(root: pathlib.Path, port: int, venv: pathlib.Path = GLANCE_VENV) -> list[str]:
    """The command that serves the Glance API of the cloud under ``root`` on 127.0.0.1:port."""
    return [str(venv / "bin" / "python"), "-c", _GUNICORN, "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--threads", "4", "--timeout", "300",
            "--access-logfile", str(root / "access.log"), "glance.wsgi.api:application"]


def answers(url: str) -> bool:
    """True if a Glance API answers an image list at ``url``."""
    return requests.get(f"{url}/v2/images?limit=1", timeout=2).status_code == 200


def db_sync(root: pathlib.Path, venv: pathlib.Path = GLANCE_VENV) -> None:
    """Create Glance's sqlite schema (``glance-manage db_sync``)."""
    conf = root / "etc" / "glance-api.conf"
    proc = subprocess.run(
        [str(venv / "bin" / "glance-manage"), "--config-file", str(conf), "db_sync"],
        env=glance_env(root), capture_output=True, text=True, timeout=DB_SYNC_TIMEOUT)
    if proc.returncode != 0:
        raise StandinError(f"glance-manage db_sync failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


@dataclasses.dataclass
class GlanceServer:
    """A running glance-api (one gunicorn worker) on 127.0.0.1."""

    name: str
    root: pathlib.Path
    process: ManagedProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def images(self) -> list[dict[str, Any]]:
        """Every image record, whatever its status or visibility (the stand-in's own view)."""
        found: list[dict[str, Any]] = []
        url: str | None = f"{self.url}/v2/images?visibility=all&limit=100"
        while url:
            resp = requests.get(url, timeout=HTTP_TIMEOUT)
            resp.raise_for_status()
            body = resp.json()
            found += body["images"]
            url = f"{self.url}{body['next']}" if body.get("next") else None
        return found

    def delete_all(self) -> None:
        """Delete every image (protected ones first lose their protection)."""
        for image in self.images():
            if image.get("protected"):
                requests.patch(f"{self.url}/v2/images/{image['id']}", timeout=HTTP_TIMEOUT,
                               headers={"Content-Type":
                                        "application/openstack-images-v2.1-json-patch"},
                               data=json.dumps([{"op": "replace", "path": "/protected",
                                                 "value": False}])).raise_for_status()
            resp = requests.delete(f"{self.url}/v2/images/{image['id']}", timeout=HTTP_TIMEOUT)
            if resp.status_code not in (204, 404):
                resp.raise_for_status()

    def requests_seen(self) -> list[str]:
        """Every request served so far as "METHOD /path" (from gunicorn's access log)."""
        try:
            lines = (self.root / "access.log").read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        return [" ".join(line.split('"')[1].split()[:2]) for line in lines if line.count('"') >= 2]

    def uploads_seen(self) -> int:
        """How many image data uploads (PUT .../file) were served so far."""
        return sum(1 for r in self.requests_seen()
                   if r.startswith("PUT /v2/images/") and r.endswith("/file"))

    def stop(self) -> None:
        """Stop gunicorn by its PID."""
        self.process.stop()


def _answers(proc: ManagedProcess, url: str) -> bool:
    if not proc.alive():
        raise ProcessExited(f"glance-api exited with {proc.proc.returncode}:\n{proc.tail()}")
    return answers(url)


def start_glance(root: pathlib.Path, name: str = "glance",
                 venv: pathlib.Path = GLANCE_VENV) -> GlanceServer:
    """Configure, create the database and start one glance-api on a free port under ``root``.

    StandinError (with the server's log) if it never answers.
    """
    prepare(root, venv)
    last_error: Exception | None = None
    for _attempt in range(3):  # a probed free port can be taken before gunicorn binds it
        port = free_port()
        proc = ManagedProcess(f"glance-api ({name})", gunicorn_argv(root, port, venv),
                              root / "gunicorn.log", env=glance_env(root), cwd=root)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda proc=proc, url=url: _answers(proc, url), START_TIMEOUT,
                       f"glance-api on {url}", interval=0.2)
        except Exception as exc:
            last_error = exc
            proc.stop()
            continue
        return GlanceServer(name, root, proc, port)
    log = (root / "gunicorn.log").read_text(errors="replace")[-4000:]
    raise StandinError(f"glance-api did not start: {last_error}\n{log}")


def clouds_yaml(clouds: dict[str, str]) -> str:
    """A clouds.yaml naming each cloud (name -> Glance URL) with no authentication.

    JSON is valid YAML, and openstacksdk reads clouds.yaml with a YAML parser.
    """
    return json.dumps({"clouds": {
        name: {"auth_type": "none", "image_endpoint_override": url,
               "region_name": "RegionOne"}
        for name, url in clouds.items()
    }}, indent=2) + "\n"
